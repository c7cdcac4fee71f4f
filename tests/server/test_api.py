"""The REST API through httpx against a real server process on 127.0.0.1."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from server_harness import Server

from mesaguard.server import OPENAPI_PATH, openapi_schema

pytestmark = pytest.mark.slow


def decision_body(
    agent: str = "bot-a",
    tenant: str = "tenant-a",
    *,
    key: str | None = None,
    value: str = "Minor",
    current: str = "Blocker",
    confidence: float = 0.9,
    item_key: str = "PROJ-1",
) -> dict[str, Any]:
    return {
        "idempotency_key": key or f"k-{uuid.uuid4()}",
        "tenant": tenant,
        "agent": agent,
        "decision": {
            "item_key": item_key,
            "context": "deployed",
            "action": "set_priority",
            "value": value,
            "confidence": confidence,
            "rationale": "Reporter says a workaround exists.",
        },
        "item": {"key": item_key, "title": "Crash when saving a board", "priority": current},
        "current_value": current,
    }


def submit(server: Server, body: dict[str, Any], user: str = "bot-a") -> dict[str, Any]:
    with server.client(user) as client:
        response = client.post("/api/v1/decisions", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_health_needs_no_token_and_whoami_names_the_token_owner(server: Server) -> None:
    assert httpx.get(server.url + "/api/v1/health").json()["status"] == "ok"
    with server.client("alice") as client:
        assert client.get("/api/v1/whoami").json() == {
            "name": "alice",
            "role": "reviewer",
            "tenant": "tenant-a",
        }


@pytest.mark.parametrize(
    "header", [None, "Bearer mgt_0000_not-a-token", "Basic YWxpY2U6eA==", "Bearer"]
)
def test_missing_or_wrong_tokens_get_401(server: Server, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = httpx.get(server.url + "/api/v1/reviews", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_severe_downgrade_is_queued_with_the_rules_that_fired(server: Server) -> None:
    body = decision_body()
    result = submit(server, body)
    assert result["outcome"] == "queued"
    assert "A3.severe-downgrade" in {hit["rule_id"] for hit in result["rules_fired"]}
    with server.client("bot-a") as client:
        polled = client.get(f"/api/v1/decisions/{body['idempotency_key']}").json()
    assert polled["result"]["submission_id"] == result["submission_id"]
    assert polled["review_state"] == "pending"


def test_resubmission_is_idempotent_and_a_reused_key_conflicts(server: Server) -> None:
    body = decision_body()
    first = submit(server, body)
    again = submit(server, body)
    assert again["submission_id"] == first["submission_id"] and again["replayed"] is True
    with server.client("alice") as client:
        queued = client.get("/api/v1/reviews", params={"state": "pending", "limit": 500}).json()
    assert sum(r["result"]["submission_id"] == first["submission_id"] for r in queued) == 1
    changed = {**body, "decision": {**body["decision"], "value": "Trivial"}}
    with server.client("bot-a") as client:
        assert client.post("/api/v1/decisions", json=changed).status_code == 409


def test_an_agent_submits_only_as_itself_in_its_own_tenant(server: Server) -> None:
    with server.client("bot-a") as client:
        as_other = client.post("/api/v1/decisions", json=decision_body(agent="bot-b"))
        other_tenant = client.post("/api/v1/decisions", json=decision_body(tenant="tenant-b"))
    assert as_other.status_code == 403 and "cannot submit as agent" in as_other.text
    assert other_tenant.status_code == 403


def test_an_agent_token_cannot_review_or_read_the_queue(server: Server) -> None:
    result = submit(server, decision_body())
    review_id = result["review_id"]
    with server.client("bot-a") as client:
        acted = client.post(
            f"/api/v1/reviews/{review_id}/actions", json={"action": "approve", "reason": "mine"}
        )
        listed = client.get("/api/v1/reviews")
        one = client.get(f"/api/v1/reviews/{review_id}")
    assert acted.status_code == listed.status_code == one.status_code == 403
    with server.client("alice") as client:
        assert client.get(f"/api/v1/reviews/{review_id}").json()["state"] == "pending"


def test_a_reviewer_never_sees_or_acts_on_another_tenants_queue(server: Server) -> None:
    result = submit(server, decision_body())
    review_id = result["review_id"]
    with server.client("bob") as client:
        listed = client.get("/api/v1/reviews", params={"limit": 500}).json()
        one = client.get(f"/api/v1/reviews/{review_id}")
        acted = client.post(
            f"/api/v1/reviews/{review_id}/actions", json={"action": "approve", "reason": "x"}
        )
        polled = client.get(f"/api/v1/decisions/{result['idempotency_key']}")
    assert review_id not in {r["id"] for r in listed}
    assert all(r["tenant"] == "tenant-b" for r in listed)
    assert one.status_code == acted.status_code == polled.status_code == 404
    with server.client("alice") as client:
        assert client.get(f"/api/v1/reviews/{review_id}").json()["state"] == "pending"


def test_reviewers_approve_modify_reject_and_escalate_with_reasons(server: Server) -> None:
    ids = [submit(server, decision_body())["review_id"] for _ in range(5)]
    steps = [
        ({"action": "approve", "reason": "workaround confirmed"}, "approved"),
        ({"action": "modify", "reason": "one level only", "value": "Critical"}, "modified"),
        ({"action": "reject", "reason": "data loss reported"}, "rejected"),
        ({"action": "escalate", "reason": "needs the security lead"}, "escalated"),
    ]
    with server.client("alice") as client:
        for review_id, (body, state) in zip(ids[:4], steps, strict=True):
            response = client.post(f"/api/v1/reviews/{review_id}/actions", json=body)
            assert response.status_code == 200, response.text
            item = response.json()
            assert item["state"] == state
            assert item["actions"][-1]["actor"] == "alice"
            assert item["actions"][-1]["reason"] == body["reason"]
        assert client.get(f"/api/v1/reviews/{ids[1]}").json()["final_value"] == "Critical"
        again = client.post(
            f"/api/v1/reviews/{ids[0]}/actions", json={"action": "reject", "reason": "late"}
        )
        assert again.status_code == 409
        modify_without_value = client.post(
            f"/api/v1/reviews/{ids[4]}/actions", json={"action": "modify", "reason": "?"}
        )
        assert modify_without_value.status_code == 400
        on_escalated = client.post(
            f"/api/v1/reviews/{ids[3]}/actions", json={"action": "approve", "reason": "ok"}
        )
        assert on_escalated.status_code == 403, "a reviewer decided an escalated review"
    with server.client("admin-a") as client:
        decided = client.post(
            f"/api/v1/reviews/{ids[3]}/actions", json={"action": "reject", "reason": "security"}
        )
        assert decided.status_code == 200 and decided.json()["state"] == "rejected"


def test_only_an_admin_cancels_a_queued_decision(server: Server) -> None:
    review_id = submit(server, decision_body())["review_id"]
    body = {"action": "cancel", "reason": "the issue was deleted in the tracker"}
    with server.client("alice") as client:
        refused = client.post(f"/api/v1/reviews/{review_id}/actions", json=body)
        assert refused.status_code == 403, refused.text
    with server.client("admin-a") as client:
        cancelled = client.post(f"/api/v1/reviews/{review_id}/actions", json=body)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
        assert cancelled.json()["actions"][-1]["reason"] == body["reason"]


def test_queue_filters_by_state_agent_and_action(server: Server) -> None:
    submit(server, decision_body(item_key="FILTER-1"))
    with server.client("alice") as client:
        pending = client.get("/api/v1/reviews", params={"state": "pending", "limit": 500}).json()
        by_agent = client.get("/api/v1/reviews", params={"agent": "bot-a", "limit": 500}).json()
        nobody = client.get("/api/v1/reviews", params={"agent": "no-such-bot"}).json()
        points = client.get("/api/v1/reviews", params={"action": "set_story_points"}).json()
        prio = client.get("/api/v1/reviews", params={"action": "set_priority", "limit": 500})
    assert pending and all(r["state"] == "pending" for r in pending)
    assert by_agent and all(r["submission"]["agent"] == "bot-a" for r in by_agent)
    assert nobody == [] and points == []
    assert "FILTER-1" in {r["submission"]["decision"]["item_key"] for r in prio.json()}


def test_only_admins_register_verdicts_and_agents_read_only_their_own(server: Server) -> None:
    body = {"verdict": "deceptive", "report_ref": "https://reports.example/bot-a.html"}
    with server.client("alice") as client:
        assert client.put("/api/v1/agents/bot-a/verdict", json=body).status_code == 403
    with server.client("admin-a") as client:
        stored = client.put("/api/v1/agents/bot-a/verdict", json=body)
        assert stored.status_code == 200, stored.text
        assert stored.json()["verdict"] == "deceptive"
        foreign = client.put("/api/v1/agents/bot-b/verdict", json=body)
        assert foreign.status_code == 403, "an admin changed another tenant's agent"
    with server.client("bot-a") as client:
        assert client.get("/api/v1/agents/bot-a/verdict").json()["verdict"] == "deceptive"
        assert client.get("/api/v1/agents/bot-b/verdict").status_code == 403
    result = submit(server, decision_body(value="Blocker", current="Blocker", confidence=0.99))
    assert result["verdict"] == "deceptive" and result["autonomy_level"] == 0


def test_log_status_verifies_and_shows_a_signed_checkpoint(server: Server) -> None:
    submit(server, decision_body())
    deadline = time.monotonic() + 20
    status: dict[str, Any] = {}
    with server.client("alice") as client:
        while time.monotonic() < deadline:
            status = client.get("/api/v1/log").json()
            if status["checkpoint"] is not None and status["verified"]:
                break
            time.sleep(0.2)
        entries = client.get("/api/v1/log/entries", params={"limit": 5}).json()
    assert status["verified"] is True, status
    assert status["checkpoint"]["note"].startswith("test.mesaguard/server-log\n")
    assert status["tree_size"] >= status["checkpoint"]["tree_size"] > 0
    assert [e["index"] for e in entries] == sorted((e["index"] for e in entries), reverse=True)
    with server.client("bot-a") as client:
        assert client.get("/api/v1/log/entries").status_code == 403
    with server.client("admin-a") as client:
        signed = client.post("/api/v1/log/checkpoint").json()
    assert signed["checkpoint"]["tree_size"] == signed["tree_size"]


def test_the_checked_in_openapi_schema_matches_the_server() -> None:
    """Regenerate with `mesaguard serve openapi -o src/mesaguard/server/openapi.json`."""
    current = openapi_schema()
    stored = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    assert stored == current, (
        "the OpenAPI schema drifted from src/mesaguard/server/openapi.json; regenerate it with "
        "`mesaguard serve openapi -o src/mesaguard/server/openapi.json` and review the diff"
    )


def test_the_served_schema_is_the_checked_in_one(server: Server) -> None:
    served = httpx.get(server.url + "/api/v1/openapi.json").json()
    assert served == json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_infinite_numbers_are_refused_not_a_server_error(server: Server, number: str) -> None:
    """JSON like 1e400 parses to infinity; it is a 422, never a 500."""
    body = json.dumps(decision_body(item_key="INF-1")).replace('"Minor"', number, 1)
    with server.client("bot-a") as client:
        response = client.post(
            "/api/v1/decisions", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "decision", "value"]


def test_an_overlong_item_key_is_judged_not_a_server_error(server: Server) -> None:
    """An item key longer than the log allows in a subject is queued and reviewable, not a 500."""
    item_key = "LONG-" + "7" * 10_100
    result = submit(server, decision_body(item_key=item_key))
    assert result["outcome"] == "queued"
    with server.client("alice") as alice:
        response = alice.post(
            f"/api/v1/reviews/{result['review_id']}/actions",
            json={"action": "reject", "reason": "keeps its priority"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "rejected"
