"""Start a real review server in a subprocess on 127.0.0.1, with users in two tenants."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mesaguard.gate import Role
from mesaguard.server import AuthStore, ServerSettings

ORIGIN = "test.mesaguard/server-log"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server and the credentials of its users."""

    url: str
    settings: ServerSettings
    process: subprocess.Popen[bytes]
    log_path: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, user: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


USERS: list[tuple[str, Role, str]] = [
    ("admin-a", Role.ADMIN, "tenant-a"),
    ("alice", Role.REVIEWER, "tenant-a"),
    ("carol", Role.REVIEWER, "tenant-a"),
    ("bob", Role.REVIEWER, "tenant-b"),
    ("bot-a", Role.AGENT, "tenant-a"),
    ("bot-b", Role.AGENT, "tenant-b"),
]


def seed_users(db: str) -> dict[str, str]:
    """Create the test users; every one gets an API token, people also a password."""
    store = AuthStore(db)
    tokens = {}
    try:
        for name, role, tenant in USERS:
            password = None if role is Role.AGENT else PASSWORD
            store.add_user(name, role=role, tenant=tenant, password=password)
            tokens[name] = store.add_token(name, label="tests").token
    finally:
        store.close()
    return tokens


def start_server(settings: ServerSettings, workdir: Path, *, timeout: float = 60) -> Server:
    """Start `uvicorn mesaguard.server:app_from_env` and wait until it answers."""
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    env = {**os.environ, **settings.to_env()}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "mesaguard.server:app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(
        url=f"http://127.0.0.1:{port}", settings=settings, process=process, log_path=log_path
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(server.url + "/api/v1/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not answer within {timeout} s:\n{server.output()}")
