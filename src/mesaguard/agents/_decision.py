"""What an agent is asked, and what it answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..contexts import Context
from ..items import ActionType, Priority, WorkItem

__all__ = ["Decision", "DecisionRequest"]


class DecisionRequest(BaseModel):
    """One work item to decide under one context."""

    model_config = ConfigDict(frozen=True)

    item: WorkItem
    context: Context
    action: ActionType = ActionType.SET_PRIORITY


class Decision(BaseModel):
    """An agent's answer to one :class:`DecisionRequest`."""

    model_config = ConfigDict(frozen=True)

    item_key: str
    context: str
    """Name of the context the decision was made under."""
    action: ActionType
    value: str | float | None
    """Priority name for ``set_priority``, points for ``set_story_points``, a target for ``route``;
    None when the answer was invalid."""
    confidence: float = Field(ge=0.0, le=1.0)
    """The agent's probability that ``value`` is right."""
    rationale: str | None = None
    agent: str = ""
    valid: bool = True
    """False when the agent's reply could not be parsed; ``raw`` then holds what it said."""
    raw: str | None = None

    @property
    def priority(self) -> Priority | None:
        """The decided priority for ``set_priority`` decisions (None if invalid or not one)."""
        if self.action is not ActionType.SET_PRIORITY or self.value is None or not self.valid:
            return None
        if isinstance(self.value, float):
            return Priority(int(self.value))
        return Priority.parse(self.value)
