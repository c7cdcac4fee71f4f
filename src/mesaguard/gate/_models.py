"""The gate's boundary models: submissions, results, reviews, actors, verdicts, outbox."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ..agents import Decision
from ..constitution import RuleHit
from ..items import ActionType, WorkItem
from ..redteam import VerdictKind

__all__ = [
    "Actor",
    "ApplyRequest",
    "AutonomyLevel",
    "ConstitutionRecord",
    "DeliveryReport",
    "GateConfig",
    "GateResult",
    "OutboxEntry",
    "OutboxState",
    "Outcome",
    "ReviewAction",
    "ReviewActionKind",
    "ReviewItem",
    "ReviewState",
    "Role",
    "Submission",
    "Target",
    "VerdictRecord",
]

# Printable ASCII without spaces or "/": a key must also be usable as one URL path segment (the
# server's GET /decisions/{key}).
Key = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x2e\x30-\x7e]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Target = Literal["recommendation", "production-tracker"]


class Outcome(enum.StrEnum):
    """What the gate did with a submission."""

    APPLIED = "applied"
    """Takes effect without a person (handed to the apply outbox)."""
    QUEUED = "queued"
    """Waits in the review queue for a person."""
    DENIED = "denied"
    """Refused by a ``deny`` rule; never applied."""


class AutonomyLevel(enum.IntEnum):
    """How far an agent may act on its own for one action type."""

    L0 = 0
    """Recommend only: every decision goes to a person."""
    L1 = 1
    """Apply, with a random audit sample sent to a person."""
    L2 = 2
    """Apply (escalation triggers and the constitution still send decisions to a person)."""


class Submission(BaseModel):
    """What an agent submits to the gate (the API body)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: Key
    """Unique per tenant; resubmitting the same key returns the first result, never a second
    application."""
    tenant: Name = "default"
    agent: Name
    """The submitting agent's name; its red-team verdict caps its autonomy."""
    decision: Decision
    item: WorkItem | None = None
    """The work item (title, priority, labels ...), for the rules and the reviewer."""
    current_value: str | float | None = None
    """The item's current value for this action (e.g. its priority now), for "downgrade".
    Where it and ``item`` disagree, the gate takes the more severe of the two."""
    target: Target = "recommendation"
    labels: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list)
    """Flags on the item, e.g. ``security``, ``data-loss``, ``safety``; merged with
    ``item.metadata["labels"]`` (comma-separated) when present."""

    @field_validator("labels")
    @classmethod
    def _normalise(cls, labels: list[str]) -> list[str]:
        return [label.strip().lower().replace(" ", "-") for label in labels if label.strip()]


class GateResult(BaseModel):
    """The gate's answer to one submission."""

    model_config = ConfigDict(frozen=True)

    submission_id: str
    idempotency_key: str
    tenant: str = "default"
    outcome: Outcome
    reasons: list[str]
    """Why, in words: rules fired, triggers, errors (most important first)."""
    rules_fired: list[RuleHit]
    triggers: list[str] = Field(default_factory=list)
    """Escalation triggers that fired: ``low-confidence``, ``impact``, ``audit-sample``,
    ``canary``, ``policy-error``, ``timeout``, ``ledger-error``."""
    autonomy_level: AutonomyLevel
    """The effective level (configured level capped by the red-team verdict)."""
    verdict: str = "none"
    """The agent's latest red-team verdict when it submitted."""
    review_id: str | None = None
    """The review-queue item, when queued."""
    fail_closed: bool = False
    """True when an error in the control path sent the decision to review."""
    constitution_version: str = ""
    constitution_sha256: str = ""
    created_at: AwareDatetime
    replayed: bool = False
    """True when this is the stored result of an earlier submission with the same key."""


class ReviewState(enum.StrEnum):
    """States of a review-queue item. Open: pending, escalated. The rest are final."""

    PENDING = "pending"
    APPROVED = "approved"
    MODIFIED = "modified"
    REJECTED = "rejected"
    ESCALATED = "escalated"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def open(self) -> bool:
        """Whether a person can still act on it."""
        return self in (ReviewState.PENDING, ReviewState.ESCALATED)


class ReviewActionKind(enum.StrEnum):
    """What an actor did to a review."""

    APPROVE = "approve"
    MODIFY = "modify"
    REJECT = "reject"
    ESCALATE = "escalate"
    CANCEL = "cancel"
    EXPIRE = "expire"


class Role(enum.StrEnum):
    """Agents submit, reviewers review, admins manage (and review)."""

    AGENT = "agent"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Actor(BaseModel):
    """Who acts on the gate."""

    model_config = ConfigDict(frozen=True)

    name: Name
    role: Role
    tenant: Name = "default"


class ReviewAction(BaseModel):
    """One step in a review's history."""

    model_config = ConfigDict(frozen=True)

    actor: str
    role: Role | Literal["system"]
    action: ReviewActionKind
    reason: str = ""
    value: str | float | None = None
    from_state: ReviewState
    to_state: ReviewState
    at: AwareDatetime


class ReviewItem(BaseModel):
    """A decision waiting for (or decided by) a person."""

    model_config = ConfigDict(frozen=True)

    id: str
    tenant: str
    state: ReviewState
    submission: Submission
    result: GateResult
    critical: bool
    """Critical items need two different approvers when the gate's four-eyes rule is on."""
    approvals_required: int = 1
    created_at: AwareDatetime
    updated_at: AwareDatetime
    expires_at: AwareDatetime
    """When an open item expires to the safe default (not applied)."""
    final_value: str | float | None = None
    """The value applied for approved (the agent's) and modified (the reviewer's) items."""
    actions: list[ReviewAction] = Field(default_factory=list)


class VerdictRecord(BaseModel):
    """An agent's red-team verdict as the gate knows it."""

    model_config = ConfigDict(frozen=True)

    agent: str
    verdict: VerdictKind
    report_ref: str = ""
    """Where the full report is (path, URL or digest), for the reviewer UI."""
    recorded_at: AwareDatetime


class ApplyRequest(BaseModel):
    """What the apply hook receives for a decision that takes effect."""

    model_config = ConfigDict(frozen=True)

    delivery_id: str
    """Stable across retries: the receiving side deduplicates on it."""
    tenant: str
    submission_id: str
    idempotency_key: str
    review_id: str | None
    agent: str
    item_key: str
    action: ActionType
    value: str | float | None
    target: Target
    approved_by: list[str] = Field(default_factory=list)
    """Reviewers who approved; empty for autonomous applications."""


class OutboxState(enum.StrEnum):
    """Delivery state of an applied decision."""

    PENDING = "pending"
    DELIVERED = "delivered"


class OutboxEntry(BaseModel):
    """An applied decision waiting for (or done with) delivery to the tracker side."""

    model_config = ConfigDict(frozen=True)

    id: str
    tenant: str
    state: OutboxState
    attempts: int
    next_attempt_at: AwareDatetime
    last_error: str | None
    request: ApplyRequest
    created_at: AwareDatetime
    delivered_at: AwareDatetime | None


class DeliveryReport(BaseModel):
    """What one pass over the outbox did."""

    model_config = ConfigDict(frozen=True)

    delivered: int
    failed: int
    """Attempts that failed this pass (the entries stay pending and are retried)."""
    pending: int
    """Entries still pending after the pass."""


class GateConfig(BaseModel):
    """Autonomy and escalation settings of a gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    autonomy: dict[ActionType, AutonomyLevel] = Field(default_factory=dict)
    """Granted level per action type; missing action types get L0."""
    min_confidence: float = Field(default=0.80, ge=0.0, le=1.0)
    """Below this confidence a decision is escalated."""
    max_priority_change: int = Field(default=2, ge=0, le=4)
    """A priority change of more levels than this is escalated (impact)."""
    max_story_points: float = Field(default=13.0, ge=0.0)
    """Story points above this are escalated (impact)."""
    audit_rate: float = Field(default=0.10, ge=0.0, le=1.0)
    """Share of L1 decisions sent to review at random (deterministic per idempotency key)."""
    canary_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    """Share of would-be-applied decisions re-asked under an observed framing."""
    canary_timeout_s: float = Field(default=5.0, gt=0.0)
    decision_timeout_s: float = Field(default=10.0, gt=0.0)
    """A decision whose checks take longer than this goes to review."""
    review_ttl: dt.timedelta = dt.timedelta(hours=72)
    """How long a review stays open before it expires (not applied)."""
    four_eyes: bool = False
    """Critical items need approval by two different people."""
    seed: int = 0
    """Seeds the audit and canary samples."""
    retry_base_s: float = Field(default=1.0, gt=0.0)
    """First retry delay of a failed delivery; doubles per attempt."""
    retry_max_s: float = Field(default=300.0, gt=0.0)
    """Longest retry delay; deliveries are retried for ever, never dropped."""


class ConstitutionRecord(BaseModel):
    """A constitution that was put in force, and by whom."""

    model_config = ConfigDict(frozen=True)

    version: str
    sha256: str
    actor: str
    recorded_at: AwareDatetime
