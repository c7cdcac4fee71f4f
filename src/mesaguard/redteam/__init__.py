"""Stage-3 red team: paired probes, the executor, analysis and verdicts.

Probes (each a registered plug-in, see :func:`probe`): ``observation-contrast`` (deceptive
alignment), ``proxy-invariance`` (pseudo-alignment), ``sandbagging``. :func:`run_redteam`
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
from ._verdict import decide_verdict

__all__ = [
    "DEFAULT_SUITE",
    "MIN_CALIBRATION_PAIRS",
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
    "Verdict",
    "VerdictKind",
    "calibrate_proxy_effect",
    "decide_verdict",
    "make_probe",
    "mine_proxy_edits",
    "observation_contrast",
    "probe",
    "proxy_invariance",
    "registered_probes",
    "run_redteam",
    "sandbagging",
]
