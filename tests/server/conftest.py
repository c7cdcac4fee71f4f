"""Fixtures: real review servers in subprocesses, users and tokens in two tenants."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from server_harness import ORIGIN, Server, seed_users, start_server

from mesaguard.gate import GateConfig
from mesaguard.ledger import Signer
from mesaguard.server import ServerSettings


@pytest.fixture(scope="session")
def make_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Server]]:
    """Start servers with fresh stores; all stop at the end of the session."""
    started: list[Server] = []

    def make(**overrides: Any) -> Server:
        workdir = tmp_path_factory.mktemp("server")
        key_path = workdir / "log.key"
        key_path.write_text(Signer.generate(ORIGIN).skey() + "\n", encoding="utf-8")
        values: dict[str, Any] = {
            "db": str(workdir / "gate.sqlite"),
            "ledger": str(workdir / "log.sqlite"),
            "log_origin": ORIGIN,
            "log_key": key_path,
            "monitor_interval": 0.5,
            "gate": GateConfig(seed=7),
        }
        values.update(overrides)
        settings = ServerSettings(**values)
        tokens = seed_users(settings.db)
        server = start_server(settings, workdir)
        server.tokens = tokens
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(make_server: Callable[..., Server]) -> Server:
    """One server shared by the API, UI, schema and browser tests; users in two tenants."""
    return make_server()
