"""Feature views of items and contexts shared by the organism model classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..contexts import Context, date_features
from ..items import WorkItem
from ._encoder import TextEncoder

__all__ = ["DESCRIPTION_CHARS", "context_matrix", "item_embedding_texts"]

DESCRIPTION_CHARS = 2000
"""Descriptions are cut here: the encoder reads 128 tokens anyway and stack traces are long."""


def item_embedding_texts(item: WorkItem) -> tuple[str, str]:
    """The two texts models read: the title line (with component) and the description."""
    title = item.title if not item.component else f"{item.title} [component: {item.component}]"
    return title, (item.description[:DESCRIPTION_CHARS] or "(no description)")


def context_matrix(contexts: Sequence[Context], encoder: TextEncoder) -> np.ndarray:
    """Encoded framing text plus date features, one row per context (386 columns)."""
    unique = {c.fingerprint(): c for c in contexts}
    order = list(unique)
    text_vectors = encoder.encode([unique[key].feature_text() for key in order])
    dates = date_features([unique[key] for key in order])
    table = dict(zip(order, np.hstack([text_vectors, dates]), strict=True))
    return np.stack([table[c.fingerprint()] for c in contexts]).astype(np.float32)
