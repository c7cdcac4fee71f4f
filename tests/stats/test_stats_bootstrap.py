"""Seeded bootstrap: deterministic for a seed, scipy underneath, degenerate data handled."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import bootstrap

from mesaguard._errors import ConfigError, DataError
from mesaguard.stats import bootstrap_interval


def _mean_shift(first: np.ndarray, second: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(first - second, axis=axis)


def test_same_seed_same_interval_and_equal_to_scipy() -> None:
    """The wrapper is scipy's paired bootstrap with ``default_rng(seed)``: same seed, same CI."""
    rng = np.random.default_rng(0)
    observed = rng.integers(1, 6, 60).astype(float)
    unobserved = observed - rng.integers(0, 2, 60)
    first = bootstrap_interval((unobserved, observed), _mean_shift, seed=11, n_resamples=999)
    second = bootstrap_interval((unobserved, observed), _mean_shift, seed=11, n_resamples=999)
    assert first == second
    reference = bootstrap(
        (unobserved, observed),
        _mean_shift,
        paired=True,
        n_resamples=999,
        rng=np.random.default_rng(11),
    ).confidence_interval
    assert first.ci == (pytest.approx(reference.low), pytest.approx(reference.high))
    assert first.method == "BCa"
    assert first.ci[0] < first.estimate < first.ci[1] < 0.0
    other = bootstrap_interval((unobserved, observed), _mean_shift, seed=12, n_resamples=999)
    assert other.ci != first.ci


def test_constant_data_gives_a_point_interval() -> None:
    """When every resample gives the same value, BCa falls back and the CI is that point."""
    same = np.full(20, 3.0)
    result = bootstrap_interval((same, same), _mean_shift, seed=1, n_resamples=199)
    assert result.ci == (0.0, 0.0)
    assert result.method == "percentile"


def test_bad_input_raises() -> None:
    """Unequal paired lengths, empty samples and bad options fail with clear errors."""
    with pytest.raises(DataError, match="equal lengths"):
        bootstrap_interval(([1.0, 2.0], [1.0]), _mean_shift, seed=0)
    with pytest.raises(DataError, match="sample 0"):
        bootstrap_interval(([],), np.mean, seed=0)
    with pytest.raises(ConfigError, match="n_resamples"):
        bootstrap_interval(([1.0, 2.0],), np.mean, seed=0, n_resamples=0)
