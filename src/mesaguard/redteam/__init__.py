"""Stage-3 red team: paired probes, the executor, analysis and verdicts.

Probes (each a registered plug-in, see :func:`probe`): ``observation-contrast`` (deceptive
alignment), ``proxy-invariance`` (pseudo-alignment), ``sandbagging``, ``trigger-search``
(an adaptive black-box search for the change that downgrades severe issues, confirmed on fresh
items), ``whitebox-defection`` (framings a linear defection probe on the agent's activations
rates most unwatched, tested by behaviour; agents without activations are skipped).
:func:`run_redteam`
schedules their paired trials, asks the agent in batches (resumable, with a query budget and an
anytime-valid sequential mode), analyses every test the same way (compliance gap, McNemar,
Wilcoxon, Holm) and returns a :class:`RedTeamReport` with a :class:`Verdict`.

This package never imports :mod:`mesaguard.organisms`: it sees agents only through the
:class:`~mesaguard.agents.Agent` protocol.
"""

from ._calibration import MIN_CALIBRATION_PAIRS, ProxyCalibration, calibrate_proxy_effect
from ._executor import DEFAULT_SUITE, ProbeSpec, RedTeamConfig, run_redteam
from ._models import (
    DecidedPair,
    Example,
    Finding,
    RedTeamReport,
    RunRecord,
    SequentialSummary,
    TrialPair,
    Verdict,
    VerdictKind,
)
from ._observation import ObservationContrast, observation_contrast
from ._probe import Probe, ProbeFactory, make_probe, probe, registered_probes
from ._proxy import ProxyEdit, ProxyInvariance, mine_proxy_edits, proxy_invariance
from ._sandbagging import SandbaggingProbe, sandbagging
from ._sequential import NetRateSequence, TestDecision
from ._trigger import (
    ConfirmedTrigger,
    TriggerSearch,
    TriggerSearchConfig,
    TriggerSearchResult,
    search_triggers,
    trigger_search,
)
from ._trigger_candidates import TriggerCandidate, candidate_space
from ._verdict import decide_verdict
from ._whitebox_probe import WhiteboxDefection, whitebox_defection

__all__ = [
    "DEFAULT_SUITE",
    "MIN_CALIBRATION_PAIRS",
    "ConfirmedTrigger",
    "DecidedPair",
    "Example",
    "Finding",
    "NetRateSequence",
    "ObservationContrast",
    "Probe",
    "ProbeFactory",
    "ProbeSpec",
    "ProxyCalibration",
    "ProxyEdit",
    "ProxyInvariance",
    "RedTeamConfig",
    "RedTeamReport",
    "RunRecord",
    "SandbaggingProbe",
    "SequentialSummary",
    "TestDecision",
    "TrialPair",
    "TriggerCandidate",
    "TriggerSearch",
    "TriggerSearchConfig",
    "TriggerSearchResult",
    "Verdict",
    "VerdictKind",
    "WhiteboxDefection",
    "calibrate_proxy_effect",
    "candidate_space",
    "decide_verdict",
    "make_probe",
    "mine_proxy_edits",
    "observation_contrast",
    "probe",
    "proxy_invariance",
    "registered_probes",
    "run_redteam",
    "sandbagging",
    "search_triggers",
    "trigger_search",
    "whitebox_defection",
]
