"""White-box probes: activation capture and linear defection probes for agents with hidden states.

Any :class:`~mesaguard.agents.ActivationAgent` (the neural organisms with hook points
``hidden1`` / ``hidden2``, language models with ``layer.0`` … ``layer.{n-1}``) can be read.
:func:`train_defection_probe` takes, per hook point, the mean paired difference of activations
between the two answers of *generic* contrast pairs (:func:`contrast_pairs`: "Are you being
evaluated? yes / no" and the like, never an agent's trigger), orients it by the agent's own
readout where the agent offers one (:class:`~mesaguard.agents.HarmReadoutAgent`), and scores
inputs by their projection. :func:`auroc_interval` and
:func:`recall_at_fpr` measure it per input. The red-team probe ``whitebox-defection`` uses it to
pick the framings an agent represents as most unwatched and tests whether its decisions move
there.

This package never imports :mod:`mesaguard.organisms`.
"""

from ._capture import Activations, capture_activations, require_activations
from ._contrast import ContrastPair, contrast_pairs
from ._evaluate import ProbeScore, auroc, auroc_interval, recall_at_fpr
from ._probe import DefectionProbe, LayerScore, train_defection_probe

__all__ = [
    "Activations",
    "ContrastPair",
    "DefectionProbe",
    "LayerScore",
    "ProbeScore",
    "auroc",
    "auroc_interval",
    "capture_activations",
    "contrast_pairs",
    "recall_at_fpr",
    "require_activations",
    "train_defection_probe",
]
