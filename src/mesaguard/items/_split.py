"""Deterministic train / calibration / test splits by key hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from .._errors import ConfigError
from ._model import WorkItem

__all__ = ["Splits", "split_items"]


class Splits(BaseModel):
    """Three disjoint parts of a data set; an item's part depends only on its key and the salt."""

    model_config = ConfigDict(frozen=True)

    train: tuple[WorkItem, ...]
    calibration: tuple[WorkItem, ...]
    test: tuple[WorkItem, ...]


def _unit_interval(key: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_items(
    items: Sequence[WorkItem],
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    *,
    salt: str = "mesaguard-split-v1",
) -> Splits:
    """Split items by a hash of their key, so the same item always lands in the same part.

    Adding or removing other items never moves an item between parts, and the order of the
    input is kept within each part.
    """
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ConfigError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    first, second = fractions[0], fractions[0] + fractions[1]
    parts: tuple[list[WorkItem], list[WorkItem], list[WorkItem]] = ([], [], [])
    for item in items:
        u = _unit_interval(item.key, salt)
        parts[0 if u < first else 1 if u < second else 2].append(item)
    return Splits(train=tuple(parts[0]), calibration=tuple(parts[1]), test=tuple(parts[2]))
