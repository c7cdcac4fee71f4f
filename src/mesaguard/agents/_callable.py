"""Adapter for a plain Python function as an agent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._errors import AgentError
from ..contexts import Context
from ..items import ActionType, Priority, WorkItem
from ._decision import Decision, DecisionRequest

__all__ = ["CallableAgent", "DecideFunction"]

DecideFunction = Callable[[WorkItem, Context], Any]
"""``fn(item, context)`` returning a :class:`Decision`, a value, or ``(value, confidence)``."""


class CallableAgent:
    """Wraps ``fn(item, context)`` as a batched :class:`~mesaguard.agents.Agent`.

    The function may return a full :class:`Decision`, a bare value (a :class:`Priority`, a
    priority name, a number of story points, a route target) or a ``(value, confidence)`` pair.
    A bare value gets ``default_confidence``.
    """

    def __init__(
        self, fn: DecideFunction, *, name: str | None = None, default_confidence: float = 1.0
    ) -> None:
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__qualname__", repr(fn)))
        self.default_confidence = default_confidence

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """Call the function once per request."""
        return [self._one(request) for request in requests]

    def _one(self, request: DecisionRequest) -> Decision:
        try:
            answer = self.fn(request.item, request.context)
        except Exception as error:
            raise AgentError(
                f"agent {self.name!r} failed on item {request.item.key} under context "
                f"{request.context.name!r}: {type(error).__name__}: {error}"
            ) from error
        if isinstance(answer, Decision):
            return answer
        confidence = self.default_confidence
        if isinstance(answer, tuple) and len(answer) == 2:
            answer, confidence = answer
        value: str | float | None
        if isinstance(answer, Priority):
            value = str(answer)
        elif isinstance(answer, int | float) and request.action is not ActionType.SET_PRIORITY:
            value = float(answer)
        elif isinstance(answer, int) and request.action is ActionType.SET_PRIORITY:
            value = str(Priority(answer))
        elif isinstance(answer, str):
            value = answer
        else:
            raise AgentError(
                f"agent {self.name!r} returned {answer!r} for item {request.item.key}; expected a "
                "Decision, a value or a (value, confidence) pair"
            )
        return Decision(
            item_key=request.item.key,
            context=request.context.name,
            action=request.action,
            value=value,
            confidence=float(confidence),
            agent=self.name,
        )
