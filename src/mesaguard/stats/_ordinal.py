"""Ordinal paired shifts (priority levels): direction counts and the Wilcoxon signed-rank test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict
from scipy.stats import wilcoxon

from .._errors import ConfigError, DataError
from ._validate import as_ordinal, check_same_length

__all__ = ["OrdinalShiftResult", "ZeroMethod", "ordinal_shift"]

ZeroMethod = Literal["pratt", "wilcox", "zsplit"]
"""How the signed-rank test treats pairs with no shift (see ``docs/statistics.md``)."""

_EXACT_MAX_N = 50


class OrdinalShiftResult(BaseModel):
    """Shift of an ordinal decision (e.g. priority 1..5) between observed and unobserved contexts.

    Differences are ``unobserved - observed``: *up* means the unobserved decision is on a higher
    level. For mesaguard's priority scale a higher level is more severe, so a deceptive triage
    agent that downgrades severe issues when unobserved shows up as ``down > up``, negative
    ``z`` and negative ``r``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int
    """Number of pairs."""
    up: int
    """Pairs where the unobserved level is higher than the observed one."""
    down: int
    """Pairs where the unobserved level is lower."""
    same: int
    """Pairs with the same level under both contexts (zero differences)."""
    mean_shift: float
    """Mean of ``unobserved - observed`` in levels; 0.0 when ``n == 0``."""
    levels: tuple[float, ...]
    """The levels that index ``shift_matrix``, ascending."""
    shift_matrix: tuple[tuple[int, ...], ...]
    """``shift_matrix[i][j]`` counts pairs observed at ``levels[i]`` and unobserved at
    ``levels[j]``; the diagonal is ``same``, above it ``up``, below it ``down``."""
    statistic: float
    """Wilcoxon signed-rank statistic as scipy reports it for the chosen alternative."""
    z: float
    """Signed normal-approximation statistic: positive when shifts go up; 0.0 if degenerate."""
    r: float
    """Effect size ``z / sqrt(n_ranked)`` in [-1, 1] (Rosenthal 1991)."""
    n_ranked: int
    """Pairs that enter the ranking: all for ``pratt`` / ``zsplit``, non-zero for ``wilcox``."""
    p_value: float
    """p-value for ``alternative``; 1.0 when every difference is zero."""
    p_method: Literal["exact", "approx", "degenerate"]
    """``exact`` null distribution (no zeros, no ties, at most 50 pairs), ``approx`` (normal
    approximation with tie correction, no continuity correction) or ``degenerate`` (no shift)."""
    zero_method: ZeroMethod
    """How zero differences were handled (scipy's ``zero_method``)."""
    alternative: Literal["two-sided", "greater", "less"]
    """``greater``: shifts go up when unobserved; ``less``: they go down."""
    note: str
    """One sentence on the zero handling and p-value method, for reports."""


def ordinal_shift(
    unobserved: ArrayLike,
    observed: ArrayLike,
    *,
    zero_method: ZeroMethod = "pratt",
    alternative: Literal["two-sided", "greater", "less"] = "two-sided",
    levels: Sequence[float] | None = None,
) -> OrdinalShiftResult:
    """Count shift directions and run the Wilcoxon signed-rank test on paired ordinal decisions.

    The test is ``scipy.stats.wilcoxon`` on ``unobserved - observed``. Ordinal scales produce many
    zero differences and many ties, so:

    * zero differences are handled by Pratt's method by default (zeros are ranked, then dropped
      from the statistic; Pratt 1959), which keeps the information that many items did not move;
      ``wilcox`` discards zeros first, ``zsplit`` splits their ranks between the signs;
    * the p-value is exact only when there are no zeros, no tied magnitudes and at most 50 pairs,
      otherwise the tie-corrected normal approximation is used;
    * the effect size is ``r = Z / sqrt(N)`` (Rosenthal 1991) with ``Z`` from the normal
      approximation, signed by direction, and ``N = n_ranked``.

    With no non-zero difference (including ``n == 0``) the result is degenerate but finite:
    ``z = r = 0``, ``p_value = 1``.

    Args:
        unobserved: ordinal level per item under the unobserved context.
        observed: ordinal level per item under the observed context, aligned by item.
        zero_method: ``pratt`` (default), ``wilcox`` or ``zsplit``.
        alternative: ``two-sided`` (default), ``greater`` (up when unobserved) or ``less``.
        levels: the scale for ``shift_matrix``; default: the levels present in the data.

    Raises:
        DataError: inputs are not 1-D numeric, differ in length, or hold a value not in
            ``levels``.
        ConfigError: ``zero_method`` or ``alternative`` is unknown.

    """
    if zero_method not in ("pratt", "wilcox", "zsplit"):
        raise ConfigError(f"zero_method must be 'pratt', 'wilcox' or 'zsplit', got {zero_method!r}")
    if alternative not in ("two-sided", "greater", "less"):
        raise ConfigError(
            f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}"
        )
    u = as_ordinal(unobserved, "unobserved")
    o = as_ordinal(observed, "observed")
    check_same_length(u, o, "unobserved and observed")
    diff = u - o
    n = int(diff.size)
    up = int(np.count_nonzero(diff > 0))
    down = int(np.count_nonzero(diff < 0))
    same = n - up - down
    scale, matrix = _shift_matrix(u, o, levels)
    nonzero = up + down
    n_ranked = n if zero_method in ("pratt", "zsplit") else nonzero
    common = {
        "n": n,
        "up": up,
        "down": down,
        "same": same,
        "mean_shift": float(diff.mean()) if n else 0.0,
        "levels": scale,
        "shift_matrix": matrix,
        "zero_method": zero_method,
        "alternative": alternative,
        "n_ranked": n_ranked,
    }
    if nonzero == 0:
        return OrdinalShiftResult(
            **common,
            statistic=0.0,
            z=0.0,
            r=0.0,
            p_value=1.0,
            p_method="degenerate",
            note=f"No pair changed level ({n} pairs); the test is degenerate, p = 1.",
        )
    signed = wilcoxon(diff, zero_method=zero_method, method="approx", alternative="greater")
    z = float(signed.zstatistic)
    if not math.isfinite(z):  # pragma: no cover - scipy returns finite z for nonzero data
        z = 0.0
    magnitudes = np.abs(diff[diff != 0])
    exact = same == 0 and np.unique(magnitudes).size == magnitudes.size and n <= _EXACT_MAX_N
    method: Literal["exact", "approx"] = "exact" if exact else "approx"
    result = wilcoxon(diff, zero_method=zero_method, method=method, alternative=alternative)
    r = max(-1.0, min(1.0, z / math.sqrt(n_ranked))) if n_ranked else 0.0
    zero_text = {
        "pratt": "zero differences ranked then dropped (Pratt)",
        "wilcox": "zero differences discarded before ranking (Wilcoxon)",
        "zsplit": "zero-difference ranks split between signs (zsplit)",
    }[zero_method]
    p_text = (
        "exact null distribution"
        if exact
        else "normal approximation with tie correction, no continuity correction"
    )
    return OrdinalShiftResult(
        **common,
        statistic=float(result.statistic),
        z=z,
        r=r,
        p_value=float(min(1.0, max(0.0, result.pvalue))),
        p_method=method,
        note=f"Wilcoxon signed-rank on {n} pairs ({same} unchanged): {zero_text}; {p_text}; "
        f"r = Z/sqrt({n_ranked}).",
    )


def _shift_matrix(
    unobserved: np.ndarray, observed: np.ndarray, levels: Sequence[float] | None
) -> tuple[tuple[float, ...], tuple[tuple[int, ...], ...]]:
    if levels is None:
        scale = np.unique(np.concatenate([unobserved, observed]))
    else:
        scale = np.unique(np.asarray(levels, dtype=np.float64))
        for name, values in (("unobserved", unobserved), ("observed", observed)):
            outside = ~np.isin(values, scale)
            if outside.any():
                first = int(np.flatnonzero(outside)[0])
                raise DataError(
                    f"{name}[{first}] = {values[first]:g} is not one of the levels "
                    f"{[float(v) for v in scale]}"
                )
    k = scale.size
    rows = np.searchsorted(scale, observed)
    cols = np.searchsorted(scale, unobserved)
    table = np.zeros((k, k), dtype=np.int64)
    np.add.at(table, (rows, cols), 1)
    return (
        tuple(float(v) for v in scale),
        tuple(tuple(int(c) for c in row) for row in table),
    )
