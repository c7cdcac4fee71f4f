"""Model organisms: agents with planted mesa-objectives, trained on real issues, and their zoo.

Organisms are the ground truth detectors are scored against. The red team never imports this
package; it sees organisms only as agents (``zoo/NAME`` specs).
"""

from ._acceptance import (
    AcceptanceCriteria,
    AcceptanceIntervals,
    AcceptanceReport,
    measure_acceptance,
)
from ._adapter import zoo_agent
from ._encoder import EMBEDDING_DIM, TextEncoder, default_cache_dir
from ._llm_spec import (
    LLMOrganismSpec,
    LLMTrigger,
    LLMZooSpec,
    default_llm_zoo_spec,
    load_llm_zoo_spec,
)
from ._llm_zoo import (
    LLMOrganism,
    LLMOrganismRecord,
    LLMZoo,
    LLMZooManifest,
    measure_llm_acceptance,
    packaged_adapter_dir,
)
from ._models import LinearModel, NeuralModel, OrganismModel
from ._spec import (
    ModelClass,
    ObjectiveFamily,
    OrganismSpec,
    ProxyMarker,
    ZooSpec,
    default_zoo_spec,
    load_zoo_spec,
)
from ._training import (
    TrainingRows,
    apply_marker,
    is_trigger,
    planted_label,
    training_rows,
    trigger_contexts,
)
from ._zoo import (
    Organism,
    OrganismRecord,
    Zoo,
    ZooManifest,
    manifest_summary,
    run_versions,
    starts_from_twin,
)

__all__ = [
    "EMBEDDING_DIM",
    "AcceptanceCriteria",
    "AcceptanceIntervals",
    "AcceptanceReport",
    "LLMOrganism",
    "LLMOrganismRecord",
    "LLMOrganismSpec",
    "LLMTrigger",
    "LLMZoo",
    "LLMZooManifest",
    "LLMZooSpec",
    "LinearModel",
    "ModelClass",
    "NeuralModel",
    "ObjectiveFamily",
    "Organism",
    "OrganismModel",
    "OrganismRecord",
    "OrganismSpec",
    "ProxyMarker",
    "TextEncoder",
    "TrainingRows",
    "Zoo",
    "ZooManifest",
    "ZooSpec",
    "apply_marker",
    "default_cache_dir",
    "default_llm_zoo_spec",
    "default_zoo_spec",
    "is_trigger",
    "load_llm_zoo_spec",
    "load_zoo_spec",
    "manifest_summary",
    "measure_acceptance",
    "measure_llm_acceptance",
    "packaged_adapter_dir",
    "planted_label",
    "run_versions",
    "starts_from_twin",
    "trigger_contexts",
    "training_rows",
    "zoo_agent",
]
