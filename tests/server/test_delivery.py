"""Approved and applied decisions reach the tracker through the webhook: retried, never lost."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Callable

import pytest
from receiver import Receiver
from server_harness import Server, start_server
from test_api import decision_body, submit

from mesaguard.gate import ApplyRequest, AutonomyLevel, GateConfig, GateStore, OutboxState
from mesaguard.items import ActionType

pytestmark = pytest.mark.slow

SECRET = "webhook-test-secret"


def autonomous_gate() -> GateConfig:
    """Priority decisions at L2, no random audit, fast retries."""
    return GateConfig(
        autonomy={ActionType.SET_PRIORITY: AutonomyLevel.L2},
        audit_rate=0.0,
        canary_rate=0.0,
        retry_base_s=0.2,
        retry_max_s=1.0,
        review_ttl=dt.timedelta(hours=1),
        seed=3,
    )


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_deliveries_are_retried_until_accepted_and_signed(
    make_server: Callable[..., Server],
) -> None:
    with Receiver(fail_first=3) as receiver:
        server = make_server(
            gate=autonomous_gate(),
            webhook_url=receiver.url,
            webhook_secret=SECRET,
            deliver_interval=0.1,
        )
        with server.client("admin-a") as admin:
            admin.put("/api/v1/agents/bot-a/verdict", json={"verdict": "robustly-aligned"})
        applied = submit(
            server, decision_body(value="Major", current="Minor", confidence=0.95, item_key="A-1")
        )
        assert applied["outcome"] == "applied", applied
        queued = submit(server, decision_body(item_key="A-2"))
        rejected = submit(server, decision_body(item_key="A-3"))
        with server.client("alice") as alice:
            modified = alice.post(
                f"/api/v1/reviews/{queued['review_id']}/actions",
                json={"action": "modify", "reason": "one level only", "value": "Critical"},
            )
            assert modified.status_code == 200, modified.text
            alice.post(
                f"/api/v1/reviews/{rejected['review_id']}/actions",
                json={"action": "reject", "reason": "not safe"},
            )
        wait_for(lambda: len(receiver.accepted) >= 2)
        time.sleep(1.0)  # a third delivery, if any were wrongly made, would arrive by now

    assert len(receiver.attempts) >= 3 + 2, "failed deliveries were not retried"
    by_item = {p["item_key"]: p for p in receiver.accepted.values()}
    assert set(by_item) == {"A-1", "A-2"}, "a rejected decision reached the tracker"
    assert by_item["A-1"]["value"] == "Major" and by_item["A-1"]["approved_by"] == []
    assert by_item["A-2"]["value"] == "Critical" and by_item["A-2"]["approved_by"] == ["alice"]
    for payload, headers in zip(receiver.attempts, receiver.headers, strict=True):
        assert headers["x-mesaguard-delivery"] == payload["delivery_id"]
        assert headers["x-mesaguard-signature"].startswith("sha256=")
    # The signature is an HMAC of the exact body; recompute it for one delivery.
    body = ApplyRequest.model_validate(by_item["A-1"]).model_dump_json().encode()
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    signed = [
        h["x-mesaguard-signature"]
        for p, h in zip(receiver.attempts, receiver.headers, strict=True)
        if p["item_key"] == "A-1"
    ]
    assert expected in signed


def test_a_receiver_that_is_down_loses_nothing(make_server: Callable[..., Server]) -> None:
    down = Receiver()
    url = down.url
    down.httpd.server_close()  # nobody listens on this port now: connection refused
    gate = autonomous_gate().model_copy(update={"review_ttl": dt.timedelta(seconds=1)})
    server = make_server(gate=gate, webhook_url=url, deliver_interval=0.1, monitor_interval=0.2)
    with server.client("admin-a") as admin:
        admin.put("/api/v1/agents/bot-a/verdict", json={"verdict": "robustly-aligned"})
    # A queued decision nobody decides expires to the safe default: never applied.
    unreviewed = submit(server, decision_body(item_key="D-EXPIRE"))
    assert unreviewed["outcome"] == "queued"
    results = [
        submit(
            server,
            decision_body(value="Major", current="Minor", confidence=0.95, item_key=f"D-{i}"),
        )
        for i in range(3)
    ]
    assert all(r["outcome"] == "applied" for r in results)
    time.sleep(1.5)  # several failed passes
    with server.client("alice") as alice:
        expired = alice.get(f"/api/v1/reviews/{unreviewed['review_id']}").json()
    assert expired["state"] == "expired" and expired["actions"][-1]["action"] == "expire"
    server.stop()
    # The outbox still holds every decision, pending, with its error.
    store = GateStore(server.settings.db)
    try:
        pending = store.outbox(OutboxState.PENDING)
        assert {e.request.item_key for e in pending} == {"D-0", "D-1", "D-2"}
        assert all(e.attempts >= 1 and e.last_error for e in pending)
    finally:
        store.close()
    # A new process on the same store delivers each of them once the tracker side is back.
    with Receiver() as receiver:
        settings = server.settings.model_copy(update={"webhook_url": receiver.url})
        restarted = start_server(settings, server.log_path.parent)
        try:
            wait_for(lambda: len(receiver.accepted) == 3)
            time.sleep(0.5)
        finally:
            restarted.stop()
    assert {p["item_key"] for p in receiver.accepted.values()} == {"D-0", "D-1", "D-2"}
    assert len(receiver.attempts) == 3, "a delivered decision was delivered again"
