"""Holm correction: hand values, statsmodels reference, and its defining properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from mesaguard._errors import ConfigError, DataError
from mesaguard.stats import holm, holm_adjust


def test_hand_computed_adjustment_in_input_order() -> None:
    """Holm by hand: ascending p times m, m-1, ..., 1 with a running max, in input order.

    Sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, 0.06 (0.04 * 1 is raised to 0.06).
    """
    result = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
    assert result.labels == ("a", "b", "c", "d")
    assert result.adjusted == pytest.approx((0.03, 0.06, 0.06, 0.02))
    assert result.reject == (True, False, False, True)
    assert result.adjusted_for("c") == pytest.approx(0.06)
    with pytest.raises(KeyError):
        result.adjusted_for("z")


def test_matches_statsmodels_multipletests() -> None:
    """Adjusted p-values and rejections equal ``multipletests(method="holm")``, ties included."""
    rng = np.random.default_rng(3)
    for size in (1, 2, 3, 5, 8, 13):
        raw = rng.random(size) ** 3
        raw[: size // 2] = raw[0]
        reject, adjusted, _, _ = multipletests(raw, alpha=0.05, method="holm")
        result = holm(list(raw))
        assert np.allclose(result.adjusted, adjusted, rtol=0.0, atol=1e-15)
        assert result.reject == tuple(bool(r) for r in reject)


def test_vectorised_rows_are_independent_families() -> None:
    """``holm_adjust`` on a 2-D array equals row-by-row adjustment."""
    rng = np.random.default_rng(4)
    table = rng.random((50, 6))
    rows = np.stack([np.array(holm(list(row)).adjusted) for row in table])
    assert np.array_equal(holm_adjust(table), rows)


def test_edge_cases() -> None:
    """Empty input, a single test, and invalid p-values or alpha."""
    assert holm([]).adjusted == ()
    assert holm([0.2]).adjusted == (0.2,)
    assert holm([1.0, 1.0]).adjusted == (1.0, 1.0)
    with pytest.raises(DataError, match="'1'"):
        holm([0.1, float("nan")])
    with pytest.raises(DataError, match="'x'"):
        holm({"x": 1.5})
    with pytest.raises(ConfigError, match="alpha"):
        holm([0.1], alpha=0.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=20),
    st.sampled_from([0.01, 0.05, 0.1]),
)
def test_adjusted_dominates_raw_and_preserves_order(raw: list[float], alpha: float) -> None:
    """Adjusted p-values dominate raw ones, keep their order, and never exceed Bonferroni.

    Also: adjusted <= 1, rejections are exactly adjusted <= alpha and form a prefix of the
    ascending p-values.
    """
    result = holm(raw, alpha=alpha)
    adjusted = np.array(result.adjusted)
    p = np.array(raw)
    assert np.all(adjusted >= p)
    assert np.all(adjusted <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= 0.0)
    assert result.reject == tuple(bool(a <= alpha) for a in adjusted)
    assert np.all(adjusted <= np.minimum(p * len(p), 1.0) + 1e-15)
    rejected = np.array(result.reject)[order]
    assert not np.any(np.diff(rejected.astype(int)) > 0)
