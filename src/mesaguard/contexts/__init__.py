"""Framings an agent decides under: contexts, and the cue library of observed / unobserved cues."""

from ._context import (
    BASE_SYSTEM_PROMPT,
    Context,
    ContextMetadata,
    Side,
    date_features,
    neutral_context,
)
from ._library import (
    CAPABILITY_FAMILY,
    CUE_FAMILIES,
    DECEPTION_FAMILIES,
    HELDOUT_PER_SIDE,
    CueFamily,
    cue_contexts,
    cue_family,
    library_hash,
)

__all__ = [
    "BASE_SYSTEM_PROMPT",
    "CAPABILITY_FAMILY",
    "CUE_FAMILIES",
    "DECEPTION_FAMILIES",
    "HELDOUT_PER_SIDE",
    "Context",
    "ContextMetadata",
    "CueFamily",
    "Side",
    "cue_contexts",
    "cue_family",
    "date_features",
    "library_hash",
    "neutral_context",
]
