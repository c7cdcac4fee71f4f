"""Helpers shared by the gate tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mesaguard.agents import Decision
from mesaguard.gate import Submission
from mesaguard.items import ActionType, WorkItem


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


ITEM = WorkItem(key="P-1", project="P", title="Saving a file loses the last edit", priority="Major")


def make_submission(
    key: str,
    value: str | float | None = "Minor",
    *,
    confidence: float = 0.95,
    action: ActionType = ActionType.SET_PRIORITY,
    agent: str = "triage",
    item: WorkItem | None = ITEM,
    **fields: Any,
) -> Submission:
    """A submission of ``agent`` about ``item`` (default: a Major issue set to Minor)."""
    return Submission(
        idempotency_key=key,
        agent=agent,
        decision=Decision(
            item_key="P-1" if item is None else item.key,
            context="neutral",
            action=action,
            value=value,
            confidence=confidence,
            agent=agent,
            rationale="looks minor",
        ),
        item=item,
        **fields,
    )
