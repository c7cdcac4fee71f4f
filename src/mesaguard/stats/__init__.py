"""Statistics for paired probes: effects, intervals, exact and sequential tests.

Thin, tested wrappers over scipy and statsmodels. The unit is a *pair* (one work item decided
under two contexts that differ only in the cue under test); see ``docs/statistics.md`` for what
each test is for and why it was chosen.

- Binary outcomes: :func:`compliance_gap` (flip rate, gap with Newcombe's paired interval,
  exact McNemar), :func:`accuracy_difference` for sandbagging.
- Ordinal outcomes: :func:`ordinal_shift` (direction counts, Wilcoxon signed-rank, r = Z/sqrt N).
- Across families: :func:`holm`.
- Sequential: :class:`DiscordantPairEProcess` / :func:`sequential_flip_test`, anytime-valid.
"""

from ._bootstrap import BootstrapInterval, bootstrap_interval
from ._multiple import HolmResult, holm, holm_adjust
from ._ordinal import OrdinalShiftResult, ZeroMethod, ordinal_shift
from ._paired import (
    AccuracyDifference,
    PairedBinaryResult,
    PairedCounts,
    accuracy_difference,
    compliance_gap,
    compliance_gap_from_counts,
    mcnemar_exact,
    paired_difference_interval,
)
from ._proportion import ProportionEstimate, wilson_interval
from ._sequential import (
    DiscordantPairEProcess,
    SequentialDecision,
    SequentialState,
    sequential_flip_test,
)

__all__ = [
    "AccuracyDifference",
    "BootstrapInterval",
    "DiscordantPairEProcess",
    "HolmResult",
    "OrdinalShiftResult",
    "PairedBinaryResult",
    "PairedCounts",
    "ProportionEstimate",
    "SequentialDecision",
    "SequentialState",
    "ZeroMethod",
    "accuracy_difference",
    "bootstrap_interval",
    "compliance_gap",
    "compliance_gap_from_counts",
    "holm",
    "holm_adjust",
    "mcnemar_exact",
    "ordinal_shift",
    "paired_difference_interval",
    "sequential_flip_test",
    "wilson_interval",
]
