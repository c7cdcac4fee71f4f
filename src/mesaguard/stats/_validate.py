"""Input checks shared by the statistics functions.

Every public function turns its array-like inputs into numpy arrays here, so bad input fails
early with a :class:`~mesaguard._errors.DataError` (malformed samples) or a
:class:`~mesaguard._errors.ConfigError` (an option out of range) that names the argument.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._errors import ConfigError, DataError

__all__ = [
    "as_binary",
    "as_ordinal",
    "check_confidence",
    "check_count",
    "check_level",
    "check_same_length",
]


def as_binary(values: ArrayLike, name: str) -> NDArray[np.bool_]:
    """Return ``values`` as a 1-D boolean array; only booleans, 0 and 1 are accepted."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.bool_)
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name} must hold booleans or 0/1, got dtype {array.dtype}")
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{name}[{first}] = {array[first]!r} is not a binary outcome (expected 0/1 or a bool)"
        )
    return array.astype(np.bool_)


def as_ordinal(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``values`` as a 1-D float array of finite ordinal levels."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.float64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name} must hold numeric ordinal levels, got dtype {array.dtype}")
    out = array.astype(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}[{first}] = {array[first]!r} is not a finite ordinal level")
    return out


def check_same_length(first: NDArray[np.generic], second: NDArray[np.generic], names: str) -> None:
    """Raise when two paired samples differ in length; ``names`` reads like ``"a and b"``."""
    if first.shape[0] != second.shape[0]:
        raise DataError(
            f"{names} must be paired item by item, but have lengths "
            f"{first.shape[0]} and {second.shape[0]}"
        )


def check_level(alpha: float, name: str = "alpha") -> float:
    """Return ``alpha`` as a float after checking 0 < alpha < 1."""
    value = float(alpha)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ConfigError(f"{name} must lie strictly between 0 and 1, got {alpha!r}")
    return value


def check_confidence(confidence: float) -> float:
    """Return ``confidence`` as a float after checking 0 < confidence < 1."""
    return check_level(confidence, "confidence")


def check_count(value: int, name: str) -> int:
    """Return ``value`` as an int after checking it is a non-negative whole number."""
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise DataError(f"{name} must be a non-negative whole number, got {value!r}")
    return int(value)
