"""Typed entries of the Ethics Review Log and their canonical (RFC 8785) encoding.

The log is generic: it stores *records* of a few kinds (decision, escalation, review, red-team
report, constitution change, checkpoint reference) and knows nothing about who writes them.
An `Entry` wraps one record with the index, timestamp and actor the log assigns on append.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import rfc8785
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_serializer,
    field_validator,
)

from ._errors import EntryError

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

NonEmpty = Annotated[str, Field(min_length=1, max_length=10_000)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    details: dict[str, JsonValue] = Field(default_factory=dict)
    """Free-form JSON the writer wants kept with the record (no floats that are NaN/inf)."""


class Decision(_Record):
    """A decision some actor took (or proposed) about a subject."""

    kind: Literal["decision"] = "decision"
    subject: NonEmpty
    """What the decision is about, e.g. a work-item key."""
    action: NonEmpty
    """What was decided, e.g. ``set-priority``."""
    outcome: str = ""
    """The decided value, e.g. ``Major``."""
    rationale: str = ""


class Escalation(_Record):
    """A decision sent to a person instead of taking effect."""

    kind: Literal["escalation"] = "escalation"
    subject: NonEmpty
    reason: NonEmpty
    """Which trigger fired and why."""
    assignee: str = ""
    """Who is asked to review, if known."""


class Review(_Record):
    """A person's review of an escalated decision."""

    kind: Literal["review"] = "review"
    subject: NonEmpty
    outcome: NonEmpty
    """E.g. approve, modify, reject, escalate, expire."""
    comment: str = ""


class RedTeamReport(_Record):
    """The summary of a red-team run, with a digest of the full report."""

    kind: Literal["redteam-report"] = "redteam-report"
    subject: NonEmpty
    """The agent that was tested."""
    verdict: NonEmpty
    report_sha256: Sha256Hex | None = None
    """SHA-256 (hex) of the full report document kept elsewhere."""


class ConstitutionChange(_Record):
    """A new version of a policy document took effect."""

    kind: Literal["constitution-change"] = "constitution-change"
    version: NonEmpty
    document_sha256: Sha256Hex
    """SHA-256 (hex) of the new document."""
    summary: str = ""


class CheckpointReference(_Record):
    """A reference to a signed checkpoint (of this log or another one)."""

    kind: Literal["checkpoint-reference"] = "checkpoint-reference"
    origin: NonEmpty
    tree_size: Annotated[int, Field(ge=0, lt=2**63)]
    root_hash: Sha256Hex
    note: str = ""
    """The signed note, if it is to be kept in the log itself."""


Record = Annotated[
    Decision | Escalation | Review | RedTeamReport | ConstitutionChange | CheckpointReference,
    Field(discriminator="kind"),
]
"""Any record kind; ``kind`` selects the model."""

RECORD_MODELS = (
    Decision,
    Escalation,
    Review,
    RedTeamReport,
    ConstitutionChange,
    CheckpointReference,
)
"""The record model classes, in the order of their kinds."""

RECORD_KINDS: dict[str, type[BaseModel]] = {
    "decision": Decision,
    "escalation": Escalation,
    "review": Review,
    "redteam-report": RedTeamReport,
    "constitution-change": ConstitutionChange,
    "checkpoint-reference": CheckpointReference,
}


class Entry(BaseModel):
    """One entry of the log: a record with the index, time and actor assigned on append."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: Annotated[int, Field(ge=0, lt=2**53)]
    """Position in the log, 0-based, without gaps."""
    timestamp: AwareDatetime
    """When the log accepted the entry; never decreases along the log."""
    actor: NonEmpty
    """Who wrote the record (agent id, person, service)."""
    record: Record

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)

    @field_serializer("timestamp")
    def _fixed_width_time(self, value: dt.datetime) -> str:
        return value.astimezone(dt.UTC).strftime(_TIME_FORMAT)

    def canonical(self) -> bytes:
        """The RFC 8785 canonical JSON bytes that the log hashes and stores."""
        return canonical_json(self.model_dump(mode="json"))


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON; raises `EntryError` for values JCS cannot represent."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, ValueError, TypeError) as error:
        raise EntryError(f"cannot canonicalize: {error}") from error


def _describe(error: ValidationError, prefix: str) -> str:
    problems = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item["loc"]) or "(root)"
        problems.append(f'field "{prefix}{where}": {item["msg"]}')
    more = len(error.errors()) - 3
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def parse_record(data: Any, *, where: str = "record") -> BaseModel:
    """Validate a record given as a dict (``kind`` selects the model); `EntryError` if bad."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    if not isinstance(data, dict):
        raise EntryError(f"{where}: expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    model = RECORD_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        kinds = ", ".join(RECORD_KINDS)
        raise EntryError(f'{where}: field "kind" is {kind!r}; expected one of {kinds}')
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise EntryError(f"{where} ({kind}): {_describe(error, '')}") from error


def parse_entry(data: bytes, *, index: int | None = None) -> Entry:
    """Decode stored entry bytes; `EntryError` names the index and the field if malformed."""
    where = f"entry {index}" if index is not None else "entry"
    try:
        return Entry.model_validate_json(data)
    except ValidationError as error:
        raise EntryError(f"{where}: {_describe(error, '')}") from error
