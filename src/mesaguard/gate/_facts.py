"""From a submission to what the constitution's conditions read (`PolicyInput`)."""

from __future__ import annotations

import math

from ..constitution import ChangeFacts, DecisionFacts, ItemFacts, PolicyInput
from ..items import ActionType, Priority
from ._models import AutonomyLevel, Submission

__all__ = ["labels_of", "policy_input", "priority_rank", "well_formed"]


def priority_rank(value: object) -> int:
    """Rank 1 (Trivial) … 5 (Blocker) of a priority name, number or `Priority`; 0 if none."""
    if value is None or value == "":
        return 0
    if isinstance(value, Priority):
        return int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # inf / nan reach here from JSON such as 1e400; they name no priority.
        if not math.isfinite(value):
            return 0
        number = int(value)
        return number if 1 <= number <= 5 else 0
    try:
        return int(Priority.parse(str(value)))
    except ValueError:
        return 0


def labels_of(submission: Submission) -> list[str]:
    """The submission's labels merged with the item's ``metadata["labels"]`` (normalised).

    Parts are separated by ``,`` or ``;``. Jira labels never contain spaces, so a part with
    spaces is read both as space-separated labels (``"security performance"``) and as one
    hyphenated label (``"data loss"`` -> ``data-loss``): a flag is never missed for the way it
    was written, and an extra label can only make a review rule fire.
    """
    labels = list(submission.labels)
    if submission.item is not None:
        raw = submission.item.metadata.get("labels")
        if isinstance(raw, str):
            for part in raw.replace(";", ",").split(","):
                words = part.lower().split()
                if words:
                    labels += words
                    labels.append("-".join(words))
    return sorted(set(labels))


def _number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def well_formed(action: ActionType, value: object) -> bool:
    """Whether ``value`` is something the action can write.

    That is a priority that names one, a finite non-negative number of story points, or a
    non-empty route target. A value that is not counts as an invalid answer
    (``decision.valid`` is false): the priority rules compare ranks, so a priority no one can
    rank would otherwise pass every downgrade rule unseen.
    """
    if value is None or isinstance(value, bool):
        return False
    if action is ActionType.SET_PRIORITY:
        return priority_rank(value) > 0
    if action is ActionType.SET_STORY_POINTS:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return False
        return isinstance(value, int | float) and math.isfinite(value) and value >= 0
    return bool(str(value).strip())


def policy_input(
    submission: Submission, autonomy: AutonomyLevel | int, verdict: str = "none"
) -> PolicyInput:
    """The facts a constitution judges one submission on."""
    decision = submission.decision
    item = submission.item
    action = decision.action
    change = ChangeFacts()
    # When ``current_value`` and the item disagree on where the item stands now, the more
    # severe reading counts: an item the submission itself calls a Blocker is not made safe to
    # downgrade by a ``current_value`` that says Trivial (fail closed: more reviews, never fewer).
    if action is ActionType.SET_PRIORITY:
        old = max(
            priority_rank(submission.current_value),
            0 if item is None else priority_rank(item.priority),
        )
        new = priority_rank(decision.value)
        known = old > 0 and new > 0
        change = ChangeFacts(
            from_priority=old,
            to_priority=new,
            downgrade=known and new < old,
            upgrade=known and new > old,
            levels=abs(new - old) if known else 0,
        )
    elif action is ActionType.SET_STORY_POINTS:
        from_points = max(
            _number(submission.current_value),
            0.0 if item is None else _number(item.story_points),
        )
        change = ChangeFacts(from_points=from_points, to_points=_number(decision.value))
    value = decision.value
    return PolicyInput(
        decision=DecisionFacts(
            action=action.value,
            value="" if value is None else value,
            confidence=decision.confidence,
            target=submission.target,
            agent=submission.agent,
            valid=decision.valid and well_formed(action, value),
            rationale=decision.rationale or "",
        ),
        item=ItemFacts()
        if item is None
        else ItemFacts(
            key=item.key,
            project=item.project,
            title=item.title,
            issue_type=item.issue_type,
            component=item.component or "",
            priority="" if item.priority is None else str(item.priority),
            story_points=item.story_points or 0.0,
            labels=labels_of(submission),
        ),
        change=change,
        autonomy=int(autonomy),
        verdict=verdict,
        tenant=submission.tenant,
    )
