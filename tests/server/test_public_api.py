"""The server package's front door and its pieces that need no running server."""

from __future__ import annotations

import types

import pytest

import mesaguard.server as server_api
from mesaguard.server import ServerSettings, create_app
from mesaguard.server._webhook import signature


def test_all_lists_exactly_the_public_names() -> None:
    """The front door cannot drift: __all__ is every public name the package exports."""
    public = {name for name in dir(server_api) if not name.startswith("_")}
    modules = {n for n in public if isinstance(getattr(server_api, n), types.ModuleType)}
    assert set(server_api.__all__) == public - modules


def test_settings_travel_to_worker_processes_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ServerSettings(db="x.sqlite", ledger="postgresql://h/db", session_ttl=60)
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert ServerSettings.from_env() == settings


def test_the_webhook_signature_is_an_hmac_of_the_body() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert signature("Jefe", b"what do ya want for nothing?") == "sha256=" + expected


def test_the_app_builds_without_opening_stores() -> None:
    app = create_app(open_stores=False)
    assert "/api/v1/decisions" in app.openapi()["paths"]
    assert [app.url_path_for(name) for name in ("ui_login", "ui_queue", "ui_log")] == [
        "/login",
        "/queue",
        "/log",
    ]
