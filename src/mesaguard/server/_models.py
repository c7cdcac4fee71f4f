"""Request and response bodies of the REST API that are the server's own (the gate's are reused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..redteam import VerdictKind

__all__ = [
    "ErrorBody",
    "Health",
    "ReviewActionRequest",
    "ValidationErrorBody",
    "VerdictRequest",
]

Reason = Annotated[str, Field(min_length=1, max_length=4000)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class ErrorBody(BaseModel):
    """Every error response: what went wrong, in words."""

    detail: str


class ValidationErrorBody(BaseModel):
    """A request that does not match the schema: one entry per problem, with its location."""

    detail: list[dict[str, Any]]


class Health(BaseModel):
    """Liveness: the process answers and its stores opened."""

    status: Literal["ok"] = "ok"
    version: str


class ReviewActionRequest(BaseModel):
    """A reviewer's action on a queued decision (``cancel``: admins only, nothing is applied)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "modify", "reject", "escalate", "cancel"]
    reason: Reason
    """Why; recorded in the Ethics Review Log with the reviewer's name."""
    value: Annotated[str, Field(max_length=200)] | FiniteFloat | None = None
    """The corrected value, required for ``modify`` (e.g. a priority name or story points)."""


class VerdictRequest(BaseModel):
    """An admin registers an agent's latest red-team verdict."""

    model_config = ConfigDict(extra="forbid")

    verdict: VerdictKind
    """The verdict of `mesaguard redteam run` for this agent."""
    report_ref: Annotated[str, Field(max_length=2000)] = ""
    """Where the full report is: an http(s) URL (linked from the UI) or a path / id."""
    report_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    """SHA-256 of the report document, recorded in the log with the verdict."""
    report: Annotated[str, Field(max_length=20_000_000)] | None = None
    """The report itself (the HTML or JSON `mesaguard redteam run` wrote): the server keeps it,
    links it from the decision page as ``/reports/<sha256>``, and logs its hash."""
    report_type: Literal["text/html", "application/json"] = "text/html"
