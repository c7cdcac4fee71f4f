"""What a rule's condition sees (`PolicyInput`), and what evaluating the rules yields.

Conditions are CEL expressions compiled once by ``common-expression-language`` (Rust) when the
constitution loads. Every field a condition can read has a value of a fixed type: unknown
numbers are ``0``, unknown strings ``""`` and lists empty, so conditions never meet ``null``.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChangeFacts",
    "DecisionFacts",
    "Effect",
    "Evaluation",
    "ItemFacts",
    "PolicyInput",
    "RuleCheck",
    "RuleHit",
    "combine",
]


class Effect(enum.StrEnum):
    """What a rule that fires asks for; ``deny`` beats ``require_review`` beats ``allow``."""

    ALLOW = "allow"
    REQUIRE_REVIEW = "require_review"
    DENY = "deny"


_RANK = {Effect.ALLOW: 0, Effect.REQUIRE_REVIEW: 1, Effect.DENY: 2}


def combine(effects: list[Effect], default: Effect) -> Effect:
    """The strongest effect of those that fired, or ``default`` when none did."""
    if not effects:
        return default
    return max(effects, key=_RANK.__getitem__)


class DecisionFacts(BaseModel):
    """The decision under judgement, as ``decision.*`` in a condition."""

    model_config = ConfigDict(frozen=True)

    action: str
    """``set_priority``, ``set_story_points`` or ``route``."""
    value: str | float = ""
    """The decided value: a priority name, a number of story points, a route target."""
    confidence: float = 0.0
    target: str = "recommendation"
    """Where the decision would be written: ``recommendation`` or ``production-tracker``."""
    agent: str = ""
    valid: bool = True
    """False when the agent's answer could not be parsed."""
    rationale: str = ""


class ItemFacts(BaseModel):
    """The work item, as ``item.*``."""

    model_config = ConfigDict(frozen=True)

    key: str = ""
    project: str = ""
    title: str = ""
    issue_type: str = ""
    component: str = ""
    priority: str = ""
    """The item's current priority name, ``""`` when unknown."""
    story_points: float = 0.0
    labels: list[str] = Field(default_factory=list)
    """Lower-case labels with spaces as hyphens, e.g. ``security``, ``data-loss``, ``safety``."""


class ChangeFacts(BaseModel):
    """What the decision would change, as ``change.*`` (priority ranks: Trivial 1 … Blocker 5)."""

    model_config = ConfigDict(frozen=True)

    from_priority: int = 0
    """Rank of the current priority, 0 when unknown or not a priority decision."""
    to_priority: int = 0
    """Rank of the decided priority, 0 when not a priority decision."""
    downgrade: bool = False
    upgrade: bool = False
    levels: int = 0
    """Size of the priority change in levels (absolute)."""
    from_points: float = 0.0
    to_points: float = 0.0
    """Decided story points, 0 when not a story-point decision."""


class PolicyInput(BaseModel):
    """Everything a condition can read: ``decision``, ``item``, ``change``, ``autonomy``, ...."""

    model_config = ConfigDict(frozen=True)

    decision: DecisionFacts
    item: ItemFacts = Field(default_factory=ItemFacts)
    change: ChangeFacts = Field(default_factory=ChangeFacts)
    autonomy: int = Field(default=0, ge=0, le=2)
    """The agent's effective autonomy level for this action (0, 1, 2), after the verdict cap."""
    verdict: str = "none"
    """The agent's latest red-team verdict, ``none`` when it has none."""
    tenant: str = "default"

    def variables(self) -> dict[str, Any]:
        """The CEL variables (plain Python values)."""
        return self.model_dump(mode="python")


class RuleHit(BaseModel):
    """A rule whose condition held for a decision."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    article_id: str
    effect: Effect
    reason: str
    """The rule's reason, shown to reviewers."""


class RuleCheck(BaseModel):
    """One rule's result for one decision (for ``explain``): fired, not fired, or error."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    article_id: str
    effect: Effect
    condition: str
    fired: bool
    error: str | None = None


class Evaluation(BaseModel):
    """The constitution's judgement of one decision."""

    model_config = ConfigDict(frozen=True)

    effect: Effect
    """The combined effect (strongest fired, else the constitution's default)."""
    hits: list[RuleHit]
    """Rules that fired, in document order."""
    checks: list[RuleCheck]
    """Every rule with its result (empty when evaluated with ``explain=False``)."""
    errors: list[str]
    """``rule-id: message`` for conditions that failed; the gate fails closed on any."""
    default_used: bool
    """True when no rule fired and the default effect decided."""
    constitution_version: str
    constitution_sha256: str
