"""The REST API: agents submit and poll, reviewers act on the queue, admins manage verdicts."""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, ConfigDict

from .. import __version__
from ..gate import (
    Actor,
    GateError,
    GateResult,
    GateStore,
    IdempotencyConflict,
    InvalidTransition,
    PermissionDenied,
    ReviewItem,
    ReviewNotFound,
    ReviewState,
    Role,
    StoreUnavailable,
    Submission,
    VerdictRecord,
)
from ..items import ActionType
from ..redteam import VerdictKind
from ._auth import Principal
from ._logstatus import LogEntryView, LogStatus
from ._models import ErrorBody, Health, ReviewActionRequest, ValidationErrorBody, VerdictRequest
from ._security import api_principal, require_role
from ._state import ServerState

__all__ = ["DecisionStatus", "VerdictView", "api_router", "to_actor"]

logger = logging.getLogger("mesaguard.server")


NameParam = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^/\x00-\x1f]+$")]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error responses a route can give (all `ErrorBody`)."""
    words = {
        400: "Bad request",
        401: "No or invalid API token",
        403: "The caller's role or tenant does not allow this",
        404: "Not found in the caller's tenant",
        409: "Conflict with the current state",
        503: "A store is unavailable; nothing was applied",
    }
    entries: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorBody, "description": words[code]} for code in codes
    }
    entries[422] = {"model": ValidationErrorBody, "description": "The request is not valid"}
    return entries


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (a mistyped filter is not ignored)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ["query", name], "msg": "unknown parameter"}
                for name in unknown
            ]
        )


api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(reject_unknown_query)])


class DecisionStatus(BaseModel):
    """What became of a submitted decision, for an agent polling by idempotency key."""

    model_config = ConfigDict(frozen=True)

    result: GateResult
    review_state: ReviewState | None = None
    """The review's state when the decision was queued (None when it never was)."""


class VerdictView(BaseModel):
    """An agent's latest red-team verdict as the gate holds it."""

    model_config = ConfigDict(frozen=True)

    agent: str
    verdict: VerdictKind | None
    """None when no verdict is on record (the agent then has no autonomy)."""
    report_ref: str = ""
    """Where the full report is (an http(s) URL is linked from the UI)."""
    recorded_at: AwareDatetime | None = None

    @property
    def report_url(self) -> str | None:
        """``report_ref`` when it is a web address the UI can link to."""
        ref = self.report_ref
        return ref if ref.startswith(("https://", "http://", "/reports/")) else None


def state_of(request: Request) -> ServerState:
    """The process's open stores and gate."""
    state: ServerState = request.app.state.server
    return state


def caller(request: Request) -> Principal:
    """The authenticated API caller."""
    return api_principal(state_of(request).auth, request)


def to_actor(principal: Principal) -> Actor:
    """The gate's view of a server user."""
    return Actor(name=principal.name, role=principal.role, tenant=principal.tenant)


def gate_http_error(error: GateError) -> HTTPException:
    """Map a gate error onto an HTTP status."""
    code = status.HTTP_400_BAD_REQUEST
    if isinstance(error, PermissionDenied):
        code = status.HTTP_403_FORBIDDEN
    elif isinstance(error, ReviewNotFound):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(error, InvalidTransition | IdempotencyConflict):
        code = status.HTTP_409_CONFLICT
    elif isinstance(error, StoreUnavailable):
        return HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"nothing was applied: {error}; retry later with the same idempotency key",
            headers={"Retry-After": "1"},
        )
    return HTTPException(status_code=code, detail=str(error))


@api_router.get("/health", response_model=Health, responses=_errors(), tags=["server"])
async def health() -> Health:
    """Liveness check (no token needed)."""
    return Health(version=__version__)


@api_router.get("/whoami", response_model=Principal, responses=_errors(401), tags=["server"])
def whoami(request: Request) -> Principal:
    """The user the API token belongs to."""
    return caller(request)


@api_router.post(
    "/decisions",
    response_model=GateResult,
    responses=_errors(400, 401, 403, 409, 503),
    tags=["decisions"],
)
def submit_decision(submission: Submission, request: Request, response: Response) -> GateResult:
    """Submit an agent's decision to the gate: it is applied, queued for review or denied.

    Idempotent by ``idempotency_key``: a resubmission returns the first result and never applies
    twice. An agent submits only as itself and only in its own tenant.
    """
    principal = require_role(caller(request), Role.AGENT, Role.ADMIN)
    _reject_non_finite(submission.model_dump())
    if submission.tenant != principal.tenant:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{principal.name} belongs to tenant {principal.tenant!r}, not {submission.tenant!r}",
        )
    if principal.role is Role.AGENT and submission.agent != principal.name:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the token of {principal.name!r} cannot submit as agent {submission.agent!r}",
        )
    try:
        return state_of(request).gate.submit(submission)
    except GateError as error:
        raise gate_http_error(error) from error


def _reject_non_finite(value: Any, location: tuple[str | int, ...] = ("body",)) -> None:
    """Refuse infinities and NaN anywhere in a body (JSON such as ``1e400`` parses to inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestValidationError(
            [{"type": "finite_number", "loc": list(location), "msg": "must be a finite number"}]
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_non_finite(item, (*location, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_non_finite(item, (*location, index))


@api_router.get(
    "/decisions/{idempotency_key}",
    response_model=DecisionStatus,
    responses=_errors(401, 403, 404, 503),
    tags=["decisions"],
)
def poll_decision(idempotency_key: NameParam, request: Request) -> DecisionStatus:
    """The outcome of a submitted decision, and its review state if it was queued."""
    principal = caller(request)
    gate = state_of(request).gate
    try:
        result = gate.store.get_result(principal.tenant, idempotency_key)
        if result is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"no decision with idempotency key {idempotency_key!r} in tenant "
                f"{principal.tenant!r}",
            )
        review_state = None
        if result.review_id is not None:
            review_state = gate.store.get_review(principal.tenant, result.review_id).state
    except GateError as error:
        raise gate_http_error(error) from error
    return DecisionStatus(result=result, review_state=review_state)


@api_router.get(
    "/reviews",
    response_model=list[ReviewItem],
    responses=_errors(401, 403, 503),
    tags=["reviews"],
)
def list_reviews(
    request: Request,
    state: ReviewState | None = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    action: ActionType | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ReviewItem]:
    """The caller's tenant's review queue, oldest first, with optional filters."""
    principal = require_role(caller(request), Role.REVIEWER, Role.ADMIN)
    return find_reviews(
        state_of(request).gate.store,
        principal.tenant,
        state=state,
        agent=agent,
        action=action,
        limit=limit,
        offset=offset,
    )


def find_reviews(
    store: GateStore,
    tenant: str,
    *,
    state: ReviewState | None,
    agent: str | None,
    action: ActionType | None,
    limit: int,
    offset: int,
) -> list[ReviewItem]:
    """A page of a tenant's reviews; the action filter is applied here, page by page."""
    try:
        if action is None:
            return store.list_reviews(tenant, state, limit, offset, agent=agent)
        found: list[ReviewItem] = []
        skipped = 0
        position = 0
        while len(found) < limit:
            page = store.list_reviews(tenant, state, 500, position, agent=agent)
            for item in page:
                if item.submission.decision.action is not action:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(item)
                if len(found) == limit:
                    break
            if len(page) < 500:
                break
            position += 500
        return found
    except GateError as error:
        raise gate_http_error(error) from error


@api_router.get(
    "/reviews/{review_id}",
    response_model=ReviewItem,
    responses=_errors(401, 403, 404, 503),
    tags=["reviews"],
)
def get_review(review_id: NameParam, request: Request) -> ReviewItem:
    """One queued decision with its history."""
    principal = require_role(caller(request), Role.REVIEWER, Role.ADMIN)
    try:
        return state_of(request).gate.store.get_review(principal.tenant, review_id)
    except GateError as error:
        raise gate_http_error(error) from error


@api_router.post(
    "/reviews/{review_id}/actions",
    response_model=ReviewItem,
    responses=_errors(400, 401, 403, 404, 409, 503),
    tags=["reviews"],
)
def act_on_review(review_id: NameParam, body: ReviewActionRequest, request: Request) -> ReviewItem:
    """Approve, modify, reject, escalate or (admins) cancel a queued decision, with a reason."""
    principal = require_role(caller(request), Role.REVIEWER, Role.ADMIN)
    try:
        return state_of(request).gate.review(
            to_actor(principal), review_id, body.action, body.reason, value=body.value
        )
    except GateError as error:
        raise gate_http_error(error) from error


@api_router.get(
    "/agents/{agent}/verdict",
    response_model=VerdictView,
    responses=_errors(401, 403, 503),
    tags=["agents"],
)
def get_verdict(agent: NameParam, request: Request) -> VerdictView:
    """An agent's latest red-team verdict (agents may read only their own)."""
    principal = caller(request)
    if principal.role is Role.AGENT and principal.name != agent:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an agent may read only its own verdict")
    _same_tenant(request, principal, agent)
    try:
        record = state_of(request).gate.store.latest_verdict(agent)
    except GateError as error:
        raise gate_http_error(error) from error
    return verdict_view(agent, record)


def _same_tenant(request: Request, principal: Principal, agent: str) -> None:
    """Refuse (403) when ``agent`` is a registered user of another tenant."""
    owner = state_of(request).auth.user(agent)
    if owner is not None and owner.tenant != principal.tenant:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"agent {agent!r} belongs to another tenant than {principal.name!r}",
        )


def verdict_view(agent: str, record: VerdictRecord | None) -> VerdictView:
    """A gate verdict record (or None) as the API shows it."""
    if record is None:
        return VerdictView(agent=agent, verdict=None)
    return VerdictView(
        agent=agent,
        verdict=record.verdict,
        report_ref=record.report_ref,
        recorded_at=record.recorded_at,
    )


@api_router.put(
    "/agents/{agent}/verdict",
    response_model=VerdictView,
    responses=_errors(401, 403, 503),
    tags=["agents"],
)
def put_verdict(agent: NameParam, body: VerdictRequest, request: Request) -> VerdictView:
    """Register an agent's latest red-team verdict (admins only); it caps the agent's autonomy."""
    principal = require_role(caller(request), Role.ADMIN)
    _same_tenant(request, principal, agent)
    state = state_of(request)
    report_ref, digest = body.report_ref, body.report_sha256 or ""
    if body.report is not None:
        digest = state.reports.put(agent, body.report_type, body.report.encode("utf-8"))
        report_ref = report_ref or f"/reports/{digest}"
    try:
        record = state.gate.set_verdict(agent, body.verdict, report_ref, sha256=digest)
    except GateError as error:
        raise gate_http_error(error) from error
    logger.info("%s registered verdict %s for %s", principal.name, body.verdict, agent)
    return verdict_view(agent, record)


@api_router.get("/log", response_model=LogStatus, responses=_errors(401, 503), tags=["log"])
def log_status(request: Request) -> LogStatus:
    """The Ethics Review Log: verification status and the latest signed checkpoint."""
    caller(request)
    return state_of(request).monitor.status()


@api_router.get(
    "/log/entries",
    response_model=list[LogEntryView],
    responses=_errors(401, 403, 503),
    tags=["log"],
)
def log_entries(
    request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[LogEntryView]:
    """The newest log entries of the caller's tenant, newest first (reviewers and admins)."""
    principal = require_role(caller(request), Role.REVIEWER, Role.ADMIN)
    return state_of(request).monitor.recent(limit, tenant=principal.tenant)


@api_router.post(
    "/log/checkpoint",
    response_model=LogStatus,
    responses=_errors(401, 403, 409, 503),
    tags=["log"],
)
def sign_checkpoint(request: Request) -> LogStatus:
    """Sign a checkpoint of the log now and verify (admins; needs the server's log key)."""
    require_role(caller(request), Role.ADMIN)
    monitor = state_of(request).monitor
    if monitor.signer is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the server has no log key (start it with --log-key)"
        )
    monitor.checkpoint()
    return monitor.refresh(force=True)
