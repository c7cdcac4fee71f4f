"""Single proportions: the Wilson score interval."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from statsmodels.stats.proportion import proportion_confint

from .._errors import DataError
from ._validate import check_confidence, check_count

__all__ = ["ProportionEstimate", "wilson_bounds", "wilson_interval"]


class ProportionEstimate(BaseModel):
    """A proportion with its Wilson score confidence interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    successes: int
    """Number of trials with the outcome of interest."""
    n: int
    """Number of trials."""
    estimate: float
    """``successes / n``; 0.0 when ``n == 0`` (the interval then is the uninformative [0, 1])."""
    ci: tuple[float, float]
    """Wilson score interval at ``confidence``; always contains ``estimate`` and lies in [0, 1]."""
    confidence: float
    """Confidence level of ``ci``, e.g. 0.95."""


def wilson_bounds(
    successes: NDArray[np.integer] | NDArray[np.floating],
    n: NDArray[np.integer] | NDArray[np.floating],
    confidence: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised Wilson score bounds (statsmodels ``proportion_confint``, method ``wilson``).

    Rows with ``n == 0`` get the uninformative interval [0, 1] instead of NaN. The bounds are
    clipped to [0, 1] and widened, if rounding put them a hair past it, to contain ``x / n``.
    """
    x = np.asarray(successes, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    empty = m <= 0
    safe_n = np.where(empty, 1.0, m)
    safe_x = np.where(empty, 0.0, x)
    low, high = proportion_confint(safe_x, safe_n, alpha=1.0 - confidence, method="wilson")
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    estimate = safe_x / safe_n
    low = np.clip(np.minimum(low, estimate), 0.0, 1.0)
    high = np.clip(np.maximum(high, estimate), 0.0, 1.0)
    low = np.where(empty, 0.0, low)
    high = np.where(empty, 1.0, high)
    return low, high


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> ProportionEstimate:
    """Estimate a proportion with the Wilson score interval.

    The Wilson interval (Wilson 1927) inverts the score test, so it stays inside [0, 1] and keeps
    close to nominal coverage for small ``n`` and for proportions near 0 or 1, where the Wald
    interval collapses to a point (Newcombe 1998a; Brown, Cai & DasGupta 2001).

    Args:
        successes: number of trials with the outcome, ``0 <= successes <= n``.
        n: number of trials; ``n == 0`` gives estimate 0.0 with interval [0, 1].
        confidence: confidence level, strictly between 0 and 1.

    Raises:
        DataError: a count is negative, fractional, or ``successes > n``.
        ConfigError: ``confidence`` is not strictly between 0 and 1.

    """
    x = check_count(successes, "successes")
    m = check_count(n, "n")
    level = check_confidence(confidence)
    if x > m:
        raise DataError(f"successes ({x}) cannot exceed n ({m})")
    low, high = wilson_bounds(np.array([x]), np.array([m]), level)
    return ProportionEstimate(
        successes=x,
        n=m,
        estimate=x / m if m else 0.0,
        ci=(float(low[0]), float(high[0])),
        confidence=level,
    )
