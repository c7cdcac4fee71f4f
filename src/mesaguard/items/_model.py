"""Work items and the scales they are judged on."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Annotated, Any, Self

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

__all__ = ["ActionType", "MetadataValue", "Priority", "WorkItem", "dataset_hash"]


class Priority(enum.IntEnum):
    """The Jira priority scale as an ordinal: Blocker > Critical > Major > Minor > Trivial.

    Comparisons follow severity (``Priority.BLOCKER > Priority.MAJOR``); ``str()`` gives the Jira
    name. Jira Cloud's default scheme (Highest … Lowest) is accepted by :meth:`parse` and mapped
    level for level.
    """

    TRIVIAL = 1
    MINOR = 2
    MAJOR = 3
    CRITICAL = 4
    BLOCKER = 5

    def __str__(self) -> str:
        return self.name.capitalize()

    @property
    def is_severe(self) -> bool:
        """Blocker, Critical and Major: the levels a PMO must not see silently downgraded."""
        return self >= Priority.MAJOR

    @classmethod
    def parse(cls, value: str | int | Priority) -> Priority:
        """Parse a Jira priority name (any case), a Highest…Lowest name, or a level 1..5.

        Raises:
            ValueError: the value names no priority; the message lists the accepted names.

        """
        if isinstance(value, Priority):
            return value
        if isinstance(value, int):
            return cls(value)
        text = value.strip().lower()
        if text.isdigit():
            return cls(int(text))
        found = _PRIORITY_NAMES.get(text)
        if found is None:
            raise ValueError(
                f"{value!r} is not a Jira priority (expected one of "
                "Blocker, Critical, Major, Minor, Trivial)"
            )
        return found

    @classmethod
    def names(cls) -> list[str]:
        """Jira names from most to least severe."""
        return [str(p) for p in sorted(cls, reverse=True)]


_PRIORITY_NAMES: dict[str, Priority] = {p.name.lower(): p for p in Priority} | {
    "highest": Priority.BLOCKER,
    "high": Priority.CRITICAL,
    "medium": Priority.MAJOR,
    "low": Priority.MINOR,
    "lowest": Priority.TRIVIAL,
}


class ActionType(enum.StrEnum):
    """What a project-management agent decides about a work item."""

    SET_PRIORITY = "set_priority"
    SET_STORY_POINTS = "set_story_points"
    ROUTE = "route"


MetadataValue = str | int | float | bool | None

_SerializedPriority = Annotated[
    Priority, PlainSerializer(lambda p: str(p), return_type=str, when_used="json")
]


class WorkItem(BaseModel):
    """One issue of a tracker, as an agent sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1)
    """Tracker key, e.g. ``HADOOP-17890``; unique within a data set."""
    project: str = ""
    """Project key, e.g. ``HADOOP``."""
    title: str
    """The issue summary line."""
    description: str = ""
    issue_type: str = "Bug"
    component: str | None = None
    """Jira "Component/s", several joined by ", "."""
    priority: _SerializedPriority | None = None
    """Ground-truth priority where the data has one."""
    story_points: float | None = Field(default=None, ge=0)
    """Ground-truth story points where the data has them."""
    created: dt.datetime | None = None
    """Creation time, timezone-aware (naive input is read as UTC)."""
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    """Anything else the source carried (status, resolution, versions, split marks …)."""

    @field_validator("priority", mode="before")
    @classmethod
    def _parse_priority(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if not isinstance(value, str | int):
            return value  # neither a name nor a level: the enum check below rejects it cleanly
        return Priority.parse(value)

    @field_validator("created")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    @property
    def text(self) -> str:
        """Title, component and description as one text, the way a model reads the item."""
        parts = [self.title]
        if self.component:
            parts.append(f"Component: {self.component}")
        if self.description:
            parts.append(self.description)
        return "\n".join(parts)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy with changes; cached digests are dropped so they follow the new content."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("text_digest", None)
        return copied

    @cached_property
    def text_digest(self) -> str:
        """SHA-1 of title, component and description: the key of per-text feature caches."""
        payload = "\x00".join((self.title, self.component or "", self.description))
        return hashlib.sha1(payload.encode(), usedforsecurity=False).hexdigest()

    def content_hash(self) -> str:
        """SHA-256 of the item's canonical JSON (RFC 8785): equal items, equal hash."""
        return hashlib.sha256(rfc8785.dumps(self.model_dump(mode="json"))).hexdigest()


def dataset_hash(items: Iterable[WorkItem]) -> str:
    """Order-sensitive SHA-256 over the items' canonical JSON; recorded with every run."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(rfc8785.dumps(item.model_dump(mode="json")))
        digest.update(b"\n")
    return digest.hexdigest()
