"""`mesaguard serve` as an operator runs it: users from the CLI, several workers, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import free_port
from test_api import decision_body

from mesaguard.gate import Role
from mesaguard.server import AuthStore

pytestmark = pytest.mark.slow

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def serve(cwd: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with (cwd / f"serve-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from mesaguard.cli import main; main()", "serve"]
            + ["--port", str(port), *args],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, (cwd / f"serve-{port}.log").read_text()
        try:
            if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("mesaguard serve did not answer")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def round_trip(url: str, agent_token: str, reviewer_token: str, tenant: str) -> None:
    """An agent submits, a reviewer approves, the log verifies."""
    body = decision_body(agent="agent-1", tenant=tenant, item_key="CLI-1")
    agent = {"Authorization": f"Bearer {agent_token}"}
    reviewer = {"Authorization": f"Bearer {reviewer_token}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        result = client.post("/api/v1/decisions", json=body, headers=agent).json()
        assert result["outcome"] == "queued", result
        again = client.post("/api/v1/decisions", json=body, headers=agent).json()
        assert again["submission_id"] == result["submission_id"]
        approved = client.post(
            f"/api/v1/reviews/{result['review_id']}/actions",
            json={"action": "approve", "reason": "checked"},
            headers=reviewer,
        )
        assert approved.status_code == 200 and approved.json()["state"] == "approved"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = client.get("/api/v1/log", headers=reviewer).json()
            if status["verified"] and status["tree_size"] >= 4:
                break
            time.sleep(0.3)
        assert status["verified"] is True, status


def setup_users(db: str, tenant: str) -> tuple[str, str]:
    """An agent and a reviewer with tokens (the CLI commands are tested in test_auth_store)."""
    store = AuthStore(db)
    try:
        store.add_user("agent-1", role=Role.AGENT, tenant=tenant)
        store.add_user("rita", role=Role.REVIEWER, tenant=tenant, password="long enough")
        return store.add_token("agent-1").token, store.add_token("rita").token
    finally:
        store.close()


def test_mesaguard_serve_with_two_workers_on_sqlite(tmp_path: Path) -> None:
    db = str(tmp_path / "gate.sqlite")
    agent_token, reviewer_token = setup_users(db, "ops")
    gate_config = tmp_path / "gate.yaml"
    gate_config.write_text("autonomy: {set_priority: 1}\nreview_ttl: PT2H\n", encoding="utf-8")
    process, url = serve(
        tmp_path,
        "--db",
        db,
        "--ledger",
        str(tmp_path / "log.sqlite"),
        "--workers",
        "2",
        "--gate-config",
        str(gate_config),
    )
    try:
        round_trip(url, agent_token, reviewer_token, "ops")
        reviews = httpx.get(
            url + "/api/v1/reviews?state=approved",
            headers={"Authorization": f"Bearer {reviewer_token}"},
        ).json()
        created = dt.datetime.fromisoformat(reviews[0]["created_at"])
        expires = dt.datetime.fromisoformat(reviews[0]["expires_at"])
        assert expires - created == dt.timedelta(hours=2), "--gate-config was not applied"
    finally:
        stop(process)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (dropped afterwards)."""
    psycopg = pytest.importorskip("psycopg")
    name = f"mg_server_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_mesaguard_serve_on_postgresql_for_several_hosts(tmp_path: Path, pg_database: str) -> None:
    """Two server processes (as on two hosts) share the queue, users and log in PostgreSQL."""
    agent_token, reviewer_token = setup_users(pg_database, "ops")
    first, url_a = serve(tmp_path, "--db", pg_database, "--ledger", pg_database)
    second, url_b = serve(tmp_path, "--db", pg_database, "--ledger", pg_database)
    try:
        round_trip(url_a, agent_token, reviewer_token, "ops")
        reviewer = {"Authorization": f"Bearer {reviewer_token}"}
        seen_a = httpx.get(url_a + "/api/v1/reviews?state=approved", headers=reviewer).json()
        seen_b = httpx.get(url_b + "/api/v1/reviews?state=approved", headers=reviewer).json()
        assert [r["id"] for r in seen_a] == [r["id"] for r in seen_b] != []
        status_b = httpx.get(url_b + "/api/v1/log", headers=reviewer).json()
        assert status_b["verified"] is True and status_b["tree_size"] >= 4
    finally:
        stop(first)
        stop(second)
