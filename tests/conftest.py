"""Shared fixtures: the real data beside the checkout and a session-wide organism cache."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (the real issue data); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real issue data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory for every test that builds organisms in this session."""
    return tmp_path_factory.mktemp("mesaguard-cache")
