"""Seeded bootstrap confidence intervals (a wrapper over ``scipy.stats.bootstrap``)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict
from scipy.stats import DegenerateDataWarning, bootstrap

from .._errors import ConfigError, DataError
from ._validate import check_confidence

__all__ = ["BootstrapInterval", "bootstrap_interval"]

BootstrapMethod = Literal["BCa", "percentile", "basic"]


class BootstrapInterval(BaseModel):
    """A bootstrap confidence interval and how it was made (enough to reproduce it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimate: float
    """The statistic on the original data."""
    ci: tuple[float, float]
    """Bootstrap interval at ``confidence``; a point when the resamples do not vary."""
    method: BootstrapMethod
    """Interval method actually used (BCa falls back to percentile on degenerate data)."""
    n_resamples: int
    """Number of bootstrap resamples."""
    seed: int
    """Seed of the ``numpy.random.Generator`` that drew the resamples."""
    confidence: float
    """Confidence level of ``ci``."""
    paired: bool
    """Whether the samples were resampled together, index by index."""


def bootstrap_interval(
    data: Sequence[ArrayLike],
    statistic: Callable[..., Any],
    *,
    seed: int,
    paired: bool = True,
    n_resamples: int = 9999,
    confidence: float = 0.95,
    method: BootstrapMethod = "BCa",
) -> BootstrapInterval:
    """Bootstrap a confidence interval for ``statistic(*data)``, deterministically for a seed.

    Use it for effect sizes without a closed-form interval (e.g. the mean priority shift).
    With ``paired=True`` (the default; mesaguard's samples are pairs) the samples are resampled
    together by index. ``statistic`` may accept an ``axis`` keyword to be vectorised.

    Args:
        data: one or more equal-length 1-D samples.
        statistic: function of the samples returning a scalar.
        seed: seed for ``numpy.random.default_rng``; the same seed gives the same interval.
        paired: resample the samples jointly.
        n_resamples: number of resamples.
        confidence: confidence level.
        method: ``BCa`` (default; Efron 1987), ``percentile`` or ``basic``.

    Raises:
        DataError: no samples, an empty sample, or unequal lengths when paired.
        ConfigError: ``confidence`` or ``n_resamples`` is out of range.

    """
    level = check_confidence(confidence)
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ConfigError(f"n_resamples must be a positive whole number, got {n_resamples!r}")
    if method not in ("BCa", "percentile", "basic"):
        raise ConfigError(f"method must be 'BCa', 'percentile' or 'basic', got {method!r}")
    samples = tuple(np.asarray(sample, dtype=np.float64) for sample in data)
    if not samples:
        raise DataError("bootstrap needs at least one sample")
    for index, sample in enumerate(samples):
        if sample.ndim != 1 or sample.size == 0:
            raise DataError(
                f"sample {index} must be a non-empty 1-D array, got shape {sample.shape}"
            )
    if paired and len({s.size for s in samples}) > 1:
        raise DataError(f"paired samples must have equal lengths, got {[s.size for s in samples]}")
    estimate = float(statistic(*samples))
    used: BootstrapMethod = method
    low, high = _run(samples, statistic, seed, paired, int(n_resamples), level, method)
    if method == "BCa" and not (math.isfinite(low) and math.isfinite(high)):
        used = "percentile"
        low, high = _run(samples, statistic, seed, paired, int(n_resamples), level, used)
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = estimate
    return BootstrapInterval(
        estimate=estimate,
        ci=(low, high),
        method=used,
        n_resamples=int(n_resamples),
        seed=seed,
        confidence=level,
        paired=paired,
    )


def _run(
    samples: tuple[np.ndarray, ...],
    statistic: Callable[..., Any],
    seed: int,
    paired: bool,
    n_resamples: int,
    confidence: float,
    method: BootstrapMethod,
) -> tuple[float, float]:
    with warnings.catch_warnings():
        # Degenerate resamples (all equal) give NaN bounds; the caller falls back instead.
        warnings.simplefilter("ignore", DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        result = bootstrap(
            samples,
            statistic,
            n_resamples=n_resamples,
            paired=paired,
            confidence_level=confidence,
            method=method,
            rng=np.random.default_rng(seed),
        )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)
