"""The reviewer web UI: server-rendered pages, forms with CSRF tokens, no JavaScript needed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..gate import GateError, ReviewState, Role
from ..items import ActionType
from ._api import find_reviews, gate_http_error, state_of, to_actor, verdict_view
from ._auth import Session
from ._errors import AuthError
from ._security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginCsrf,
    check_csrf,
    set_cookie,
    ui_session,
)

__all__ = ["templates", "ui_router"]

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
ui_router = APIRouter(include_in_schema=False)

# Security headers on every page: no framing, no third-party content, no MIME sniffing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

FLASHES = {
    "approve": ("ok", "Approved; recorded in the log."),
    "modify": ("ok", "Modified; recorded in the log."),
    "reject": ("ok", "Rejected; recorded in the log."),
    "escalate": ("ok", "Escalated; recorded in the log."),
}


def _page(request: Request, name: str, context: dict[str, Any], code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=code)
    response.headers.update(PAGE_HEADERS)
    return response


def _session(request: Request) -> Session:
    return ui_session(state_of(request).auth, request)


def _base(session: Session, page: str) -> dict[str, Any]:
    return {"principal": session.principal, "csrf_token": session.csrf_token, "page": page}


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login would be a phishing aid.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target


def _login_csrf(request: Request) -> LoginCsrf:
    cached = getattr(request.app.state, "login_csrf", None)
    if cached is None:
        cached = LoginCsrf(state_of(request).auth.secret())
        request.app.state.login_csrf = cached
    login: LoginCsrf = cached
    return login


def _login_page(
    request: Request,
    *,
    next_url: str,
    username: str = "",
    error: str | None = None,
    code: int = 200,
) -> HTMLResponse:
    nonce, token = _login_csrf(request).issue(request)
    response = _page(
        request,
        "login.html",
        {
            "principal": None,
            "login_csrf": token,
            "next": _safe_next(next_url),
            "username": username,
            "error": error,
        },
        code,
    )
    secure = state_of(request).settings.secure_cookies
    set_cookie(response, LOGIN_COOKIE, nonce, max_age=3600, secure=secure)
    return response


@ui_router.get("/login", name="ui_login_page")
def login_page(
    request: Request, next_url: Annotated[str, Query(alias="next", max_length=2000)] = "/queue"
) -> HTMLResponse:
    """The login form."""
    return _login_page(request, next_url=next_url)


@ui_router.post("/login", name="ui_login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=500)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "/queue",
) -> Response:
    """Check the password and start a session (reviewers and admins only)."""
    _login_csrf(request).check(request, csrf_token)
    state = state_of(request)
    try:
        principal = state.auth.check_password(username, password)
        if principal.role is Role.AGENT:
            raise AuthError("agents use API tokens, not the web UI")
    except AuthError as error:
        return _login_page(
            request, next_url=next_url, username=username, error=str(error), code=401
        )
    raw, session = state.auth.create_session(principal)
    response = RedirectResponse(_safe_next(next_url), status_code=status.HTTP_303_SEE_OTHER)
    set_cookie(
        response,
        SESSION_COOKIE,
        raw,
        max_age=int(session.expires_at - time.time()),
        secure=state.settings.secure_cookies,
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@ui_router.post("/logout", name="ui_logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=500)] = "") -> Response:
    """End the session."""
    session = _session(request)
    check_csrf(session, csrf_token)
    state_of(request).auth.end_session(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@ui_router.get("/", name="ui_home")
def home() -> RedirectResponse:
    """The queue is the home page."""
    return RedirectResponse("/queue", status_code=status.HTTP_303_SEE_OTHER)


@ui_router.get("/queue", name="ui_queue")
def queue(
    request: Request,
    state: Annotated[str, Query(max_length=20)] = "pending",
    agent: Annotated[str, Query(max_length=200)] = "",
    action: Annotated[str, Query(max_length=40)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    """The tenant's queue with filters on state, agent and action."""
    session = _session(request)
    try:
        state_filter = ReviewState(state) if state else None
        action_filter = ActionType(action) if action else None
    except ValueError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"bad filter: {error}") from error
    limit = 50
    items = find_reviews(
        state_of(request).gate.store,
        session.principal.tenant,
        state=state_filter,
        agent=agent or None,
        action=action_filter,
        limit=limit,
        offset=offset,
    )
    filters = {"state": state, "agent": agent, "action": action}

    def page_url(new_offset: int) -> str:
        return "/queue?" + urlencode({**filters, "offset": max(0, new_offset)})

    return _page(
        request,
        "queue.html",
        {
            **_base(session, "queue"),
            "items": items,
            "filters": filters,
            "states": [str(s) for s in ReviewState],
            "actions": [str(a) for a in ActionType],
            "offset": offset,
            "limit": limit,
            "page_url": page_url,
        },
    )


@ui_router.get("/reviews/{review_id}", name="ui_review")
def review_page(request: Request, review_id: str, done: str = "") -> HTMLResponse:
    """One queued decision: the work item, rationale, rules fired, verdict, and the form."""
    session = _session(request)
    gate = state_of(request).gate
    try:
        item = gate.store.get_review(session.principal.tenant, review_id)
        verdict = verdict_view(
            item.submission.agent, gate.store.latest_verdict(item.submission.agent)
        )
    except GateError as error:
        raise gate_http_error(error) from error
    flash = FLASHES.get(done)
    return _page(
        request,
        "review.html",
        {
            **_base(session, "queue"),
            "item": item,
            "verdict": verdict if verdict.verdict is not None else None,
            "can_act": item.state is ReviewState.PENDING
            or (item.state is ReviewState.ESCALATED and session.principal.role is Role.ADMIN),
            "flash": None if flash is None else {"kind": flash[0], "text": flash[1]},
        },
    )


@ui_router.post("/reviews/{review_id}", name="ui_review_act")
def review_act(
    request: Request,
    review_id: str,
    action: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
    value: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Approve, modify, reject or escalate from the decision page."""
    session = _session(request)
    check_csrf(session, csrf_token)
    if action not in FLASHES:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown action {action!r}")
    if not reason.strip():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "a reason is required")
    try:
        state_of(request).gate.review(
            to_actor(session.principal),
            review_id,
            action,
            reason.strip(),
            value=value.strip() or None,
        )
    except GateError as error:
        raise gate_http_error(error) from error
    return RedirectResponse(
        f"/reviews/{review_id}?done={action}", status_code=status.HTTP_303_SEE_OTHER
    )


@ui_router.get("/reports/{digest}", name="ui_report")
def report(request: Request, digest: str) -> Response:
    """A red-team report uploaded with a verdict, for reviewers of the agent's tenant."""
    session = _session(request)
    state = state_of(request)
    found = state.reports.get(digest) if len(digest) == 64 else None
    owner = None if found is None else state.auth.user(found[0])
    if found is None or (owner is not None and owner.tenant != session.principal.tenant):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {digest}")
    _agent, content_type, body = found
    # The report is a document from elsewhere: sandboxed, so its scripts (if any) cannot act
    # on this site with the reviewer's session.
    return Response(
        body,
        media_type=content_type,
        headers={
            "Content-Security-Policy": "sandbox",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@ui_router.get("/log", name="ui_log")
def log_page(request: Request) -> HTMLResponse:
    """The log's verification status, latest checkpoint and newest entries."""
    session = _session(request)
    monitor = state_of(request).monitor
    return _page(
        request,
        "log.html",
        {
            **_base(session, "log"),
            "status": monitor.status(),
            "entries": monitor.recent(50, tenant=session.principal.tenant),
        },
    )
