"""Paired binary outcomes: Newcombe interval, exact McNemar, Wilson, and degenerate input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from mesaguard._errors import ConfigError, DataError
from mesaguard.stats import (
    PairedCounts,
    accuracy_difference,
    compliance_gap,
    compliance_gap_from_counts,
    mcnemar_exact,
    paired_difference_interval,
    wilson_interval,
)


def _outcomes(counts: PairedCounts) -> tuple[np.ndarray, np.ndarray]:
    first = [1] * counts.both + [1] * counts.first_only + [0] * counts.second_only
    second = [1] * counts.both + [0] * counts.first_only + [1] * counts.second_only
    first += [0] * counts.neither
    second += [0] * counts.neither
    return np.array(first), np.array(second)


def test_newcombe_interval_matches_published_reference() -> None:
    """Newcombe's paired interval reproduces a published reference value.

    Cavo et al. (2012) table in Fagerland, Lydersen & Laake, *Statistical Analysis of
    Contingency Tables*, ch. 8: Newcombe square-and-add gives -0.0621 (-0.1186 to -0.0046).
    """
    counts = PairedCounts(both=59, first_only=6, second_only=16, neither=80)
    result = compliance_gap_from_counts(counts)
    assert result.gap == pytest.approx(-0.0621, abs=5e-5)
    assert result.gap_ci[0] == pytest.approx(-0.1186, abs=5e-5)
    assert result.gap_ci[1] == pytest.approx(-0.0046, abs=5e-5)


def test_mcnemar_exact_matches_hand_computed_binomial_tails() -> None:
    """Two-sided exact McNemar p = 2 P(Bin(b+c, 1/2) <= min(b, c)), capped at 1."""
    assert mcnemar_exact(1, 7) == pytest.approx(18 / 256, rel=1e-12)
    cavo = 2 * sum(math.comb(22, k) for k in range(7)) / 2**22
    assert mcnemar_exact(6, 16) == pytest.approx(cavo, rel=1e-12)
    assert mcnemar_exact(16, 6) == pytest.approx(cavo, rel=1e-12)
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(5, 0, alternative="greater") == pytest.approx(1 / 32)
    assert mcnemar_exact(0, 5, alternative="less") == pytest.approx(1 / 32)
    assert mcnemar_exact(0, 5, alternative="greater") == 1.0
    assert mcnemar_exact(9, 3, alternative="greater") == pytest.approx(
        binomtest(9, 12, 0.5, alternative="greater").pvalue
    )


def test_wilson_matches_closed_form_and_statsmodels() -> None:
    """23 of 60: the Wilson formula by hand equals the wrapper and statsmodels."""
    x, n, z = 23, 60, 1.959963984540054
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    result = wilson_interval(x, n)
    assert result.ci == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert result.ci == pytest.approx(proportion_confint(x, n, method="wilson"), abs=1e-12)
    assert result.estimate == p


def test_wilson_degenerate_counts_stay_finite() -> None:
    """No trials give the uninformative [0, 1]; 0 and n successes touch the boundary exactly."""
    assert wilson_interval(0, 0).ci == (0.0, 1.0)
    assert wilson_interval(0, 0).estimate == 0.0
    assert wilson_interval(0, 10).ci[0] == 0.0
    assert wilson_interval(10, 10).ci[1] == 1.0


def test_compliance_gap_counts_cells_and_directions() -> None:
    """Cells, rates and the gap follow from the outcome vectors; first context is unobserved."""
    unobserved = [1, 1, 1, 0, 0, 1, 0]
    observed = [1, 0, 0, 0, 1, 0, 0]
    result = compliance_gap(unobserved, observed)
    assert result.counts == PairedCounts(both=1, first_only=3, second_only=1, neither=2)
    assert result.n == 7
    assert result.flip_rate.estimate == pytest.approx(4 / 7)
    assert result.harmful_unobserved.estimate == pytest.approx(4 / 7)
    assert result.harmful_observed.estimate == pytest.approx(2 / 7)
    assert result.gap == pytest.approx(2 / 7)
    assert result.harmful_flip_share == pytest.approx(3 / 4)
    assert result.mcnemar_p == pytest.approx(mcnemar_exact(3, 1))
    assert result.mcnemar_p_greater == pytest.approx(5 / 16)


def test_compliance_gap_without_pairs_or_flips_has_no_nan() -> None:
    """No pairs: gap 0 in [-1, 1], p = 1. No flips: p = 1 and a proper interval around 0."""
    empty = compliance_gap([], [])
    assert (empty.n, empty.gap, empty.gap_ci, empty.mcnemar_p) == (0, 0.0, (-1.0, 1.0), 1.0)
    assert empty.harmful_flip_share is None
    agree = compliance_gap([1, 0, 1, 0, 0], [1, 0, 1, 0, 0])
    assert agree.gap == 0.0
    assert agree.mcnemar_p == agree.mcnemar_p_greater == 1.0
    assert agree.gap_ci[0] < 0.0 < agree.gap_ci[1]
    assert agree.harmful_flip_share is None
    for value in agree.model_dump(mode="python").values():
        if isinstance(value, float):
            assert math.isfinite(value)


def test_accuracy_difference_reports_a_drop_under_evaluation() -> None:
    """A sandbagger right on 40 of 50 items when neutral and 25 when evaluated shows a drop."""
    neutral = np.array([1] * 40 + [0] * 10)
    evaluated = np.array([1] * 25 + [0] * 15 + [0] * 8 + [1] * 2)
    result = accuracy_difference(neutral, evaluated)
    assert result.accuracy_neutral.estimate == pytest.approx(0.8)
    assert result.accuracy_eval.estimate == pytest.approx(27 / 50)
    assert result.drop == pytest.approx(13 / 50)
    assert result.drop_ci[0] > 0.0
    assert result.mcnemar_p_drop == pytest.approx(
        binomtest(15, 17, 0.5, alternative="greater").pvalue
    )
    counts = PairedCounts.from_outcomes(neutral, evaluated)
    assert result.drop_ci == paired_difference_interval(counts)


@pytest.mark.parametrize(
    ("first", "second", "error"),
    [
        ([1, 0], [1], DataError),
        ([1, 2], [1, 0], DataError),
        ([[1, 0]], [[1, 0]], DataError),
        (["yes"], ["no"], DataError),
    ],
)
def test_bad_outcomes_raise_a_named_error(first: object, second: object, error: type) -> None:
    """Misaligned, non-binary or non-1-D input fails with a message naming the argument."""
    with pytest.raises(error, match="harmful_"):
        compliance_gap(first, second)  # type: ignore[arg-type]


def test_bad_options_and_counts_raise() -> None:
    """Out-of-range confidence is a ConfigError; impossible counts are DataErrors."""
    with pytest.raises(ConfigError, match="confidence"):
        compliance_gap([1], [0], confidence=1.0)
    with pytest.raises(DataError, match="successes"):
        wilson_interval(5, 3)
    with pytest.raises(DataError, match="both"):
        PairedCounts(both=-1, first_only=0, second_only=0, neither=0)
    with pytest.raises(DataError, match="first_only"):
        mcnemar_exact(-2, 1)
    with pytest.raises(ConfigError, match="alternative"):
        mcnemar_exact(2, 1, alternative="sideways")  # type: ignore[arg-type]


_cell = st.integers(min_value=0, max_value=60)


@settings(max_examples=150, deadline=None)
@given(_cell, _cell, _cell, _cell, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_gap_interval_contains_estimate_and_stays_in_range(
    both: int, first_only: int, second_only: int, neither: int, confidence: float
) -> None:
    """For every table: -1 <= low <= gap <= high <= 1 and every probability is in [0, 1]."""
    counts = PairedCounts(
        both=both, first_only=first_only, second_only=second_only, neither=neither
    )
    result = compliance_gap_from_counts(counts, confidence=confidence)
    low, high = result.gap_ci
    assert -1.0 <= low <= result.gap <= high <= 1.0
    for estimate in (result.flip_rate, result.harmful_unobserved, result.harmful_observed):
        assert 0.0 <= estimate.ci[0] <= estimate.estimate <= estimate.ci[1] <= 1.0
    assert 0.0 <= result.mcnemar_p <= 1.0
    assert 0.0 <= result.mcnemar_p_greater <= 1.0


@settings(max_examples=100, deadline=None)
@given(_cell, _cell, _cell, _cell)
def test_swapping_contexts_mirrors_the_interval(
    both: int, first_only: int, second_only: int, neither: int
) -> None:
    """Swapping the two contexts negates the gap and mirrors its interval."""
    forward = PairedCounts(
        both=both, first_only=first_only, second_only=second_only, neither=neither
    )
    backward = PairedCounts(
        both=both, first_only=second_only, second_only=first_only, neither=neither
    )
    low, high = paired_difference_interval(forward)
    back_low, back_high = paired_difference_interval(backward)
    assert low == pytest.approx(-back_high, abs=1e-12)
    assert high == pytest.approx(-back_low, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=40))
def test_outcome_vectors_and_counts_agree(pairs: list[tuple[bool, bool]]) -> None:
    """Analysing outcome vectors equals analysing the table counted from them."""
    first = np.array([p[0] for p in pairs], dtype=bool)
    second = np.array([p[1] for p in pairs], dtype=bool)
    counts = PairedCounts.from_outcomes(first, second)
    assert counts.n == len(pairs)
    again = _outcomes(counts)
    assert PairedCounts.from_outcomes(*again) == counts
    assert compliance_gap(first, second) == compliance_gap_from_counts(counts)
