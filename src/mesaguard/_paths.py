"""Where mesaguard keeps built artefacts (organisms, embeddings, converted models, caches)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir"]


def default_cache_dir() -> Path:
    """Where built artefacts live: ``$MESAGUARD_CACHE`` or the user cache directory."""
    env = os.environ.get("MESAGUARD_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("mesaguard"))
