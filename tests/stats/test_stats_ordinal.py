"""Ordinal shifts: direction counts, shift matrix, Wilcoxon against scipy, r = Z/sqrt(N)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wilcoxon

from mesaguard._errors import ConfigError, DataError
from mesaguard.stats import ordinal_shift


def test_downgrades_when_unobserved_read_as_negative_shift() -> None:
    """A triage agent that lowers priority when unobserved: down > up, z < 0, r < 0."""
    observed = np.array([5, 5, 4, 4, 3, 3, 2, 5, 4, 3, 2, 1])
    unobserved = np.array([3, 4, 3, 2, 3, 2, 2, 4, 4, 2, 1, 1])
    result = ordinal_shift(unobserved, observed, levels=range(1, 6))
    assert (result.up, result.down, result.same) == (0, 8, 4)
    assert result.z < 0 and result.r < 0
    assert result.mean_shift == pytest.approx(float(np.mean(unobserved - observed)))
    reference = wilcoxon(unobserved - observed, zero_method="pratt", method="approx")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.p_method == "approx"
    assert result.r == pytest.approx(result.z / math.sqrt(12))
    assert "Pratt" in result.note


def test_shift_matrix_places_pairs_by_observed_row_and_unobserved_column() -> None:
    """Row = observed level, column = unobserved level; above the diagonal is 'up'."""
    result = ordinal_shift([2, 1, 3, 3], [1, 1, 3, 2], levels=[1, 2, 3])
    assert result.levels == (1.0, 2.0, 3.0)
    assert result.shift_matrix == ((1, 1, 0), (0, 0, 1), (0, 0, 1))
    matrix = np.array(result.shift_matrix)
    assert int(np.trace(matrix)) == result.same
    assert int(np.triu(matrix, 1).sum()) == result.up
    assert int(np.tril(matrix, -1).sum()) == result.down


def test_exact_p_value_when_no_zeros_and_no_ties() -> None:
    """Untied, zero-free, small samples use scipy's exact null distribution."""
    observed = np.zeros(8)
    unobserved = np.array([1.0, -2.0, 3.0, 4.0, 5.0, 6.0, -7.0, 8.0])
    result = ordinal_shift(unobserved, observed)
    assert result.p_method == "exact"
    assert result.p_value == pytest.approx(wilcoxon(unobserved, method="exact").pvalue)
    assert result.z > 0


@pytest.mark.parametrize("zero_method", ["pratt", "wilcox", "zsplit"])
def test_zero_methods_match_scipy_and_count_ranked_pairs(zero_method: str) -> None:
    """Each zero method gives scipy's p-value; ``wilcox`` ranks only the non-zero pairs."""
    rng = np.random.default_rng(7)
    observed = rng.integers(1, 6, 80)
    unobserved = np.clip(observed - rng.integers(-1, 3, 80), 1, 5)
    result = ordinal_shift(unobserved, observed, zero_method=zero_method, alternative="less")  # type: ignore[arg-type]
    diff = unobserved - observed
    reference = wilcoxon(diff, zero_method=zero_method, method="approx", alternative="less")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    expected_n = int(np.count_nonzero(diff)) if zero_method == "wilcox" else diff.size
    assert result.n_ranked == expected_n
    assert result.r == pytest.approx(result.z / math.sqrt(expected_n))


def test_no_shift_at_all_is_degenerate_but_finite() -> None:
    """All differences zero (or no pairs): p = 1, z = r = 0, and the note says why."""
    same = ordinal_shift([3, 2, 5], [3, 2, 5])
    assert (same.p_value, same.z, same.r, same.p_method) == (1.0, 0.0, 0.0, "degenerate")
    assert same.same == 3
    empty = ordinal_shift([], [])
    assert (empty.n, empty.p_value, empty.r, empty.mean_shift) == (0, 1.0, 0.0, 0.0)


def test_bad_input_raises_named_errors() -> None:
    """Mismatched lengths and out-of-scale levels name the argument; bad options are config."""
    with pytest.raises(DataError, match="unobserved and observed"):
        ordinal_shift([1, 2], [1])
    with pytest.raises(DataError, match=r"observed\[1\] = 7"):
        ordinal_shift([1, 2], [1, 7], levels=range(1, 6))
    with pytest.raises(DataError, match="finite"):
        ordinal_shift([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ConfigError, match="zero_method"):
        ordinal_shift([1], [2], zero_method="drop")  # type: ignore[arg-type]


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.integers(1, 5)),
        max_size=60,
    ),
    st.sampled_from(["pratt", "wilcox", "zsplit"]),
)
def test_counts_effect_size_and_p_value_are_well_formed(
    pairs: list[tuple[int, int]], zero_method: str
) -> None:
    """For any sample: counts add up, -1 <= r <= 1 with the sign of z, 0 <= p <= 1."""
    unobserved = [p[0] for p in pairs]
    observed = [p[1] for p in pairs]
    result = ordinal_shift(unobserved, observed, zero_method=zero_method, levels=range(1, 6))  # type: ignore[arg-type]
    assert result.up + result.down + result.same == result.n == len(pairs)
    assert sum(map(sum, result.shift_matrix)) == result.n
    assert -1.0 <= result.r <= 1.0
    assert math.copysign(1.0, result.r) == math.copysign(1.0, result.z) or result.z == 0.0
    assert 0.0 <= result.p_value <= 1.0
    if result.up > 0 and result.down == 0:
        assert result.z > 0
