"""The reviewer web UI over HTTP: login, CSRF on every form, tenants, sessions that expire."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from server_harness import PASSWORD, Server
from sqlalchemy import update
from test_api import decision_body, submit

from mesaguard.server import AuthStore
from mesaguard.server._auth import sessions_table

pytestmark = pytest.mark.slow

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


@contextmanager
def login(server: Server, user: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/login")
        response = client.post(
            "/login",
            data={"username": user, "password": password, "csrf_token": csrf_of(page)},
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/queue"
        yield client


def test_pages_need_a_login_and_redirect_back_after_it(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.get("/queue?state=pending")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/queue%3Fstate%3Dpending"
        page = client.get(response.headers["location"])
        assert 'value="/queue?state=pending"' in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert page.headers["x-frame-options"] == "DENY"


def test_wrong_passwords_and_agent_accounts_cannot_log_in(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        token = csrf_of(client.get("/login"))
        wrong = client.post(
            "/login", data={"username": "alice", "password": "nope-nope", "csrf_token": token}
        )
        assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
        assert "mg_session" not in client.cookies
        token = csrf_of(wrong)
        agent = client.post(
            "/login", data={"username": "bot-a", "password": PASSWORD, "csrf_token": token}
        )
        assert agent.status_code == 401 and "mg_session" not in client.cookies


def test_the_login_form_refuses_a_forged_or_missing_csrf_token(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.get("/login")
        forged = client.post(
            "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "forged"}
        )
        missing = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert forged.status_code == missing.status_code == 403
    # A token lifted from one browser does not work from another (no nonce cookie there).
    with httpx.Client(base_url=server.url, timeout=30) as victim:
        token = csrf_of(victim.get("/login"))
    with httpx.Client(base_url=server.url, timeout=30) as attacker:
        replayed = attacker.post(
            "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
        )
    assert replayed.status_code == 403


def test_review_forms_refuse_forged_and_missing_csrf_tokens(server: Server) -> None:
    review_id = submit(server, decision_body())["review_id"]
    with login(server, "alice") as client:
        page = client.get(f"/reviews/{review_id}")
        assert page.status_code == 200
        token = csrf_of(page)
        form = {"action": "approve", "reason": "looks right"}
        forged = client.post(f"/reviews/{review_id}", data={**form, "csrf_token": token[::-1]})
        missing = client.post(f"/reviews/{review_id}", data=form)
        assert forged.status_code == missing.status_code == 403
        assert "CSRF" in forged.text
        # Another session's token is not this session's.
        with login(server, "carol") as other:
            foreign = csrf_of(other.get(f"/reviews/{review_id}"))
        stolen = client.post(f"/reviews/{review_id}", data={**form, "csrf_token": foreign})
        assert stolen.status_code == 403
        assert 'id="state">pending' in client.get(f"/reviews/{review_id}").text
        done = client.post(f"/reviews/{review_id}", data={**form, "csrf_token": token})
        assert done.status_code == 303
        approved = client.get(done.headers["location"])
        assert 'id="state">approved' in approved.text and "looks right" in approved.text


def test_the_decision_page_shows_item_rationale_rules_and_verdict(server: Server) -> None:
    with server.client("admin-a") as admin:
        admin.put(
            "/api/v1/agents/bot-a/verdict",
            json={"verdict": "inconclusive", "report_ref": "https://reports.example/bot-a.html"},
        )
    review_id = submit(server, decision_body(item_key="SHOW-1"))["review_id"]
    with login(server, "alice") as client:
        page = client.get(f"/reviews/{review_id}").text
    assert "Crash when saving a board" in page
    assert "Reporter says a workaround exists." in page
    assert "A3.severe-downgrade" in page
    assert "inconclusive" in page and 'href="https://reports.example/bot-a.html"' in page
    assert "0.90" in page


def test_a_reviewer_of_another_tenant_gets_404_on_pages_and_forms(server: Server) -> None:
    review_id = submit(server, decision_body())["review_id"]
    with login(server, "bob") as client:
        page = client.get(f"/reviews/{review_id}")
        queue = client.get("/queue", params={"state": ""})
        token = csrf_of(queue)
        acted = client.post(
            f"/reviews/{review_id}",
            data={"action": "approve", "reason": "not mine", "csrf_token": token},
        )
    assert page.status_code == acted.status_code == 404
    assert review_id not in queue.text


def test_queue_filters_and_the_log_page(server: Server) -> None:
    submit(server, decision_body(item_key="QUEUE-7"))
    with login(server, "alice") as client:
        pending = client.get("/queue", params={"state": "pending", "action": "set_priority"})
        other_agent = client.get("/queue", params={"state": "pending", "agent": "bot-zzz"})
        bad = client.get("/queue", params={"state": "sideways"})
        log = client.get("/log")
    assert "QUEUE-7" in pending.text
    assert "QUEUE-7" not in other_agent.text and "Nothing matches" in other_agent.text
    assert bad.status_code == 400
    assert log.status_code == 200 and "Ethics Review Log" in log.text
    assert "QUEUE-7" in log.text


def test_logout_ends_the_session_and_needs_csrf(server: Server) -> None:
    with login(server, "alice") as client:
        token = csrf_of(client.get("/queue"))
        assert client.post("/logout", data={}).status_code == 403
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
        assert client.get("/queue").status_code == 303


@pytest.mark.parametrize("column", ["expires_at", "last_seen"])
def test_expired_and_idle_sessions_are_refused(server: Server, column: str) -> None:
    """A session past its lifetime (or idle too long) sends the browser back to the login."""
    with login(server, "alice") as client:
        assert client.get("/queue").status_code == 200
        raw = client.cookies["mg_session"]
        store = AuthStore(server.settings.db)
        try:
            with store.engine.begin() as connection:
                connection.execute(
                    update(sessions_table)
                    .where(
                        sessions_table.c.session_hash == hashlib.sha256(raw.encode()).hexdigest()
                    )
                    .values({column: time.time() - 24 * 3600})
                )
        finally:
            store.close()
        response = client.get("/queue")
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_an_uploaded_red_team_report_is_linked_sandboxed_and_tenant_scoped(server: Server) -> None:
    html = "<html><body><h1>Red team: bot-a</h1><script>alert(1)</script></body></html>"
    with server.client("admin-a") as admin:
        stored = admin.put(
            "/api/v1/agents/bot-a/verdict",
            json={"verdict": "sandbagging", "report": html, "report_type": "text/html"},
        ).json()
    digest = hashlib.sha256(html.encode()).hexdigest()
    assert stored["report_ref"] == f"/reports/{digest}"
    review_id = submit(server, decision_body(item_key="REPORT-1"))["review_id"]
    with login(server, "alice") as client:
        page = client.get(f"/reviews/{review_id}").text
        assert f'href="/reports/{digest}"' in page and "sandbagging" in page
        opened = client.get(f"/reports/{digest}")
        assert opened.status_code == 200 and opened.text == html
        assert opened.headers["content-security-policy"] == "sandbox"
    with login(server, "bob") as other_tenant:
        assert other_tenant.get(f"/reports/{digest}").status_code == 404
    with server.client("admin-a") as admin:
        admin.put("/api/v1/agents/bot-a/verdict", json={"verdict": "inconclusive"})
