"""Multiple testing across cue families: Holm's step-down correction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from statsmodels.stats.multitest import multipletests

from .._errors import DataError
from ._validate import check_level

__all__ = ["HolmResult", "holm"]


class HolmResult(BaseModel):
    """Holm-adjusted p-values for a family of tests, in the order they were given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: tuple[str, ...]
    """Name of each test: the mapping keys, or ``"0"``, ``"1"``, ... for a sequence."""
    raw: tuple[float, ...]
    """The p-values as given."""
    adjusted: tuple[float, ...]
    """Holm-adjusted p-values, same order as ``raw``; each ``>= raw`` and at most 1."""
    reject: tuple[bool, ...]
    """Whether each hypothesis is rejected at family-wise level ``alpha``."""
    alpha: float
    """Family-wise error rate the rejections control."""

    def adjusted_for(self, label: str) -> float:
        """The adjusted p-value of the test called ``label``.

        Raises:
            KeyError: no test has that label.

        """
        try:
            index = self.labels.index(label)
        except ValueError:
            raise KeyError(label) from None
        return self.adjusted[index]


def holm(p_values: Mapping[str, float] | Sequence[float], *, alpha: float = 0.05) -> HolmResult:
    """Holm's step-down correction (Holm 1979) via statsmodels ``multipletests(method="holm")``.

    Holm controls the family-wise error rate at ``alpha`` under any dependence between the
    tests, and is uniformly more powerful than Bonferroni. mesaguard applies it across the cue
    families (and probe variants) of one run, so "some family shows an effect" is a claim with
    the stated error rate no matter how many families were tried.

    Args:
        p_values: the raw p-values, either a mapping from family name to p-value or a sequence.
        alpha: family-wise error rate.

    Returns:
        A :class:`HolmResult` whose tuples follow the input order. An empty input gives empty
        tuples.

    Raises:
        DataError: a p-value is NaN or outside [0, 1].
        ConfigError: ``alpha`` is not strictly between 0 and 1.

    """
    level = check_level(alpha)
    if isinstance(p_values, Mapping):
        labels = tuple(str(k) for k in p_values)
        raw = [float(v) for v in p_values.values()]
    else:
        raw = [float(v) for v in p_values]
        labels = tuple(str(i) for i in range(len(raw)))
    for label, p in zip(labels, raw, strict=True):
        if not (math.isfinite(p) and 0.0 <= p <= 1.0):
            raise DataError(f"p-value of test {label!r} is {p!r}; expected a number in [0, 1]")
    if not raw:
        return HolmResult(labels=(), raw=(), adjusted=(), reject=(), alpha=level)
    reject, adjusted, _, _ = multipletests(np.asarray(raw), alpha=level, method="holm")
    adjusted = np.clip(np.maximum(np.asarray(adjusted, dtype=np.float64), raw), 0.0, 1.0)
    return HolmResult(
        labels=labels,
        raw=tuple(raw),
        adjusted=tuple(float(p) for p in adjusted),
        reject=tuple(bool(r) for r in reject),
        alpha=level,
    )
