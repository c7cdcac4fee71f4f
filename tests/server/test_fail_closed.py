"""Fail closed: with the gate's store unavailable mid-run, nothing is applied and nothing is lost.

A stream of decisions the gate would apply on its own runs against a real server; midway, the
store's database is locked by another process (as a stuck migration or a dead peer would hold
it), so every write times out; then the lock goes away. Every decision must end up applied and
delivered exactly once, or reported to its agent as not applied (503) and not recorded, never
silently applied; a reviewer's action during the outage is refused and changes nothing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from receiver import Receiver
from server_harness import Server
from test_api import decision_body, submit
from test_delivery import autonomous_gate, wait_for

pytestmark = pytest.mark.slow


def applicable(index: int) -> dict[str, Any]:
    """A decision the autonomous gate applies: a confident one-level upgrade."""
    return decision_body(
        key=f"fc-{index}-{uuid.uuid4().hex[:8]}",
        value="Major",
        current="Minor",
        confidence=0.95,
        item_key=f"FC-{index}",
    )


def accepted_keys(receiver: Receiver) -> set[str]:
    with receiver.lock:
        return {p["idempotency_key"] for p in receiver.accepted.values()}


def test_store_outage_mid_run_applies_nothing_and_reports_every_decision(
    make_server: Callable[..., Server],
) -> None:
    with Receiver() as receiver:
        server = make_server(
            gate=autonomous_gate(),
            webhook_url=receiver.url,
            deliver_interval=0.1,
            delivery_lease=2.0,
            store_timeout=0.3,
        )
        with server.client("admin-a") as admin:
            admin.put("/api/v1/agents/bot-a/verdict", json={"verdict": "robustly-aligned"})
        waiting = submit(server, decision_body(item_key="FC-REVIEW"))
        assert waiting["outcome"] == "queued"

        responses: list[tuple[dict[str, Any], int, dict[str, Any]]] = []
        progress = threading.Condition()

        def agent() -> None:
            with server.client("bot-a") as client:
                for index in range(36):
                    body = applicable(index)
                    response = client.post("/api/v1/decisions", json=body)
                    with progress:
                        responses.append((body, response.status_code, response.json()))
                        progress.notify_all()

        worker = threading.Thread(target=agent)
        worker.start()
        with progress:
            progress.wait_for(lambda: len(responses) >= 8, timeout=60)
        # The outage: another process holds the database's write lock.
        blocker = sqlite3.connect(server.settings.db, isolation_level=None, timeout=10)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with progress:
                before = len(responses)
                progress.wait_for(lambda: len(responses) >= before + 8, timeout=60)
            with server.client("alice") as alice:
                refused = alice.post(
                    f"/api/v1/reviews/{waiting['review_id']}/actions",
                    json={"action": "approve", "reason": "during the outage"},
                )
        finally:
            blocker.rollback()
            blocker.close()
        worker.join(timeout=120)
        assert not worker.is_alive()

        statuses = [code for _body, code, _json in responses]
        assert set(statuses) <= {200, 503}, statuses
        failed = [(b, j) for b, code, j in responses if code == 503]
        applied = [(b, j) for b, code, j in responses if code == 200]
        assert failed, "the outage did not reach the gate: nothing was refused"
        assert all(j["outcome"] in ("applied", "queued") for _b, j in applied)
        assert all("nothing was applied" in j["detail"] for _b, j in failed), failed[0]
        assert refused.status_code == 503

        wanted = {b["idempotency_key"] for b, j in applied if j["outcome"] == "applied"}
        wait_for(lambda: accepted_keys(receiver) >= wanted, seconds=60)
        time.sleep(0.5)
        # Delivery is at least once: an attempt whose outcome the store could not record during
        # the outage is made again, with the same delivery id, which the tracker deduplicates.
        attempted = {p["idempotency_key"] for p in receiver.attempts}
        assert attempted == wanted, "the tracker got a decision the gate reported as failed"
        assert accepted_keys(receiver) == wanted

        with server.client("bot-a") as client:
            for body, _json in failed:
                polled = client.get(f"/api/v1/decisions/{body['idempotency_key']}")
                assert polled.status_code == 404, "a refused decision was recorded after all"
            # Resubmitting with the same keys once the store is back applies each exactly once.
            for body, _json in failed:
                assert submit(server, body)["outcome"] == "applied"
                assert submit(server, body)["replayed"] is True
        with server.client("alice") as alice:
            review = alice.get(f"/api/v1/reviews/{waiting['review_id']}").json()
            assert review["state"] == "pending" and review["actions"] == []
            entries = alice.get("/api/v1/log/entries", params={"limit": 500}).json()
        resubmitted = wanted | {b["idempotency_key"] for b, _j in failed}
        wait_for(lambda: accepted_keys(receiver) >= resubmitted, seconds=60)
        time.sleep(0.5)
    assert {p["idempotency_key"] for p in receiver.attempts} == resubmitted
    assert accepted_keys(receiver) == resubmitted
    # Every refusal is in the Ethics Review Log too.
    outages = [e for e in entries if "store unavailable" in e["note"]]
    assert len(outages) >= len(failed)
