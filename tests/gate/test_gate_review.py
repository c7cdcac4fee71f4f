"""The review queue: states, roles, tenants, four-eyes, expiry, and a stateful property test."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from gate_support import ITEM, Clock, make_submission
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesaguard.gate import (
    Actor,
    AutonomyLevel,
    Gate,
    GateConfig,
    GateError,
    GateStore,
    InvalidTransition,
    Outcome,
    PermissionDenied,
    ReviewNotFound,
    ReviewState,
    Role,
)
from mesaguard.items import ActionType
from mesaguard.ledger import Ledger

ANA = Actor(name="ana", role=Role.REVIEWER)
BEN = Actor(name="ben", role=Role.REVIEWER)
ROOT = Actor(name="root", role=Role.ADMIN)
BOT = Actor(name="triage", role=Role.AGENT)
CONFIG = GateConfig(
    autonomy={action: AutonomyLevel.L2 for action in ActionType}, audit_rate=0.0, canary_rate=0.0
)


@pytest.fixture
def gate(store: GateStore, ledger: Ledger, clock: Clock) -> Iterator[Gate]:
    opened = Gate(None, store, ledger, config=CONFIG, clock=clock)
    yield opened
    opened.close()


def _queue(gate: Gate, key: str, **fields: object) -> str:
    result = gate.submit(make_submission(key, confidence=0.5, **fields))  # type: ignore[arg-type]
    assert result.outcome is Outcome.QUEUED and result.review_id is not None
    return result.review_id


def test_approve_applies_the_agents_value(gate: Gate, store: GateStore, ledger: Ledger) -> None:
    review_id = _queue(gate, "k")
    item = gate.review(ANA, review_id, "approve", "fine")
    assert item.state is ReviewState.APPROVED and item.final_value == "Minor"
    [entry] = store.outbox()
    assert entry.request.value == "Minor" and entry.request.approved_by == ["ana"]
    assert entry.request.review_id == review_id
    last = ledger.get(ledger.size() - 1)
    assert (last.actor, last.record.kind) == ("ana", "review")


def test_modify_applies_the_reviewers_value(gate: Gate, store: GateStore) -> None:
    review_id = _queue(gate, "k")
    item = gate.review(ANA, review_id, "modify", "it is worse than that", "critical")
    assert item.state is ReviewState.MODIFIED and item.final_value == "Critical"
    assert store.outbox()[0].request.value == "Critical"
    with pytest.raises(GateError, match="names no priority"):
        gate.review(ANA, _queue(gate, "k2"), "modify", "x", "Urgentish")


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 1e300, True])
def test_a_modified_priority_that_names_none_is_refused(
    gate: Gate, store: GateStore, value: float
) -> None:
    """In-process callers are not behind the API's finite-number check: inf raised OverflowError."""
    review_id = _queue(gate, f"m-{value}")
    with pytest.raises(GateError, match="names no priority"):
        gate.review(ANA, review_id, "modify", "bad value", value)
    assert store.get_review("default", review_id).state is ReviewState.PENDING


def test_reject_needs_a_reason_and_applies_nothing(gate: Gate, store: GateStore) -> None:
    review_id = _queue(gate, "k")
    with pytest.raises(GateError, match="reason"):
        gate.review(ANA, review_id, "reject", "  ")
    item = gate.review(ANA, review_id, "reject", "the crash loses data")
    assert item.state is ReviewState.REJECTED and store.outbox() == []
    assert item.actions[-1].reason == "the crash loses data"
    with pytest.raises(InvalidTransition, match="rejected"):
        gate.review(BEN, review_id, "approve")


def test_an_agent_can_never_review(gate: Gate, store: GateStore) -> None:
    """Whatever the action, an agent's review is refused and changes nothing."""
    review_id = _queue(gate, "k")
    for action in ("approve", "modify", "reject", "escalate", "cancel"):
        with pytest.raises(PermissionDenied, match="agent"):
            gate.review(BOT, review_id, action, "self-approval", "Minor")
    assert store.get_review("default", review_id).state is ReviewState.PENDING
    posing = Actor(name="triage", role=Role.REVIEWER)  # the submitting agent's name
    with pytest.raises(PermissionDenied, match="submitted this decision"):
        gate.review(posing, review_id, "approve")


def test_other_tenants_reviews_are_invisible(gate: Gate, store: GateStore) -> None:
    review_id = _queue(gate, "k", tenant="acme")
    with pytest.raises(ReviewNotFound):
        gate.review(ANA, review_id, "approve")  # ana works for tenant "default"
    with pytest.raises(ReviewNotFound):
        store.get_review("default", review_id)
    assert store.list_reviews("default") == []
    acme = Actor(name="ana", role=Role.REVIEWER, tenant="acme")
    assert gate.review(acme, review_id, "approve").state is ReviewState.APPROVED


def test_escalated_reviews_are_for_admins(gate: Gate) -> None:
    review_id = _queue(gate, "k")
    assert gate.review(ANA, review_id, "escalate", "not sure").state is ReviewState.ESCALATED
    with pytest.raises(PermissionDenied, match="admin"):
        gate.review(BEN, review_id, "approve")
    assert gate.review(ROOT, review_id, "approve").state is ReviewState.APPROVED


def test_cancel_is_for_admins(gate: Gate, store: GateStore) -> None:
    review_id = _queue(gate, "k")
    with pytest.raises(PermissionDenied, match="cancel"):
        gate.review(ANA, review_id, "cancel")
    assert gate.review(ROOT, review_id, "cancel", "duplicate").state is ReviewState.CANCELLED
    assert store.outbox() == []


def test_four_eyes_for_critical_items(store: GateStore, clock: Clock) -> None:
    """With four-eyes on, a Blocker needs two different approvers; ordinary items one."""
    gate = Gate(None, store, config=CONFIG.model_copy(update={"four_eyes": True}), clock=clock)
    blocker = ITEM.model_copy(update={"priority": "Blocker"})
    critical_id = _queue(gate, "crit", item=blocker, value="Blocker")
    ordinary_id = _queue(gate, "ord")
    assert gate.review(ANA, ordinary_id, "approve").state is ReviewState.APPROVED
    first = gate.review(ANA, critical_id, "modify", "one level down", "Critical")
    assert first.state is ReviewState.PENDING and first.approvals_required == 2
    with pytest.raises(PermissionDenied, match="four-eyes"):
        gate.review(ANA, critical_id, "approve")
    second = gate.review(BEN, critical_id, "approve", "agreed")
    assert second.state is ReviewState.MODIFIED and second.final_value == "Critical"
    applied = [e.request for e in store.outbox() if e.request.review_id == critical_id]
    assert len(applied) == 1 and applied[0].approved_by == ["ana", "ben"]


def test_four_eyes_a_modification_needs_its_own_second_approver(
    store: GateStore, clock: Clock
) -> None:
    """Approving one value does not count as approving a later, different one.

    Ana approves the agent's Blocker, then Ben modifies it to Critical: Critical has been seen
    by one person only, so it waits for a second approver (not Ben again).
    """
    gate = Gate(None, store, config=CONFIG.model_copy(update={"four_eyes": True}), clock=clock)
    blocker = ITEM.model_copy(update={"priority": "Blocker"})
    review_id = _queue(gate, "crit", item=blocker, value="Blocker")
    assert gate.review(ANA, review_id, "approve", "keep it").state is ReviewState.PENDING
    modified = gate.review(BEN, review_id, "modify", "one level down", "Critical")
    assert modified.state is ReviewState.PENDING
    assert store.outbox() == []
    with pytest.raises(PermissionDenied, match="four-eyes"):
        gate.review(BEN, review_id, "approve")
    final = gate.review(ANA, review_id, "approve", "agreed")
    assert final.state is ReviewState.MODIFIED and final.final_value == "Critical"
    [entry] = store.outbox()
    assert entry.request.value == "Critical" and entry.request.approved_by == ["ben", "ana"]


def test_expiry_goes_to_the_safe_default(
    gate: Gate, store: GateStore, ledger: Ledger, clock: Clock
) -> None:
    """Open reviews past their time expire, are not applied, and the expiry is logged."""
    old = _queue(gate, "old")
    clock.advance(hours=71)
    young = _queue(gate, "young")
    assert gate.expire_due() == 0
    clock.advance(hours=2)
    assert gate.expire_due() == 1
    assert store.get_review("default", old).state is ReviewState.EXPIRED
    assert store.get_review("default", young).state is ReviewState.PENDING
    assert store.outbox() == []
    last = ledger.get(ledger.size() - 1)
    assert last.record.kind == "review" and last.record.outcome == "expire"  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition):
        gate.review(ANA, old, "approve")
    assert gate.expire_due(clock.now + dt.timedelta(days=10)) == 1


def test_an_overlong_item_key_is_logged_clipped(
    gate: Gate, store: GateStore, ledger: Ledger, clock: Clock
) -> None:
    """An item key longer than the log allows is clipped in the log, not raised out of the gate.

    Submit, review and the expiry pass all log the key as the entry's subject; an invalid
    entry used to raise a ValidationError out of each (a 500 over HTTP, and an expiry pass
    stuck on the same item for ever).
    """
    long_key = "P-" + "9" * 10_100
    long_item = ITEM.model_copy(update={"key": long_key})
    approved = _queue(gate, "long-1", item=long_item)
    expiring = _queue(gate, "long-2", item=long_item)
    assert store.get_review("default", approved).submission.decision.item_key == long_key
    assert gate.review(ANA, approved, "approve", "fine").state is ReviewState.APPROVED
    clock.advance(hours=73)
    assert gate.expire_due() == 1
    assert store.get_review("default", expiring).state is ReviewState.EXPIRED
    subjects = {getattr(ledger.get(i).record, "subject", None) for i in range(ledger.size())}
    assert long_key[:10_000] in subjects


def test_an_overdue_review_cannot_be_approved_before_the_expiry_pass(
    gate: Gate, store: GateStore, ledger: Ledger, clock: Clock
) -> None:
    """Past ``expires_at`` the safe default holds even if ``expire_due`` has not run yet."""
    review_id = _queue(gate, "late")
    clock.advance(hours=72)
    with pytest.raises(InvalidTransition, match="expired"):
        gate.review(ANA, review_id, "approve", "sorry, late")
    assert store.get_review("default", review_id).state is ReviewState.EXPIRED
    assert store.outbox() == []
    last = ledger.get(ledger.size() - 1)
    assert last.record.kind == "review" and last.record.outcome == "expire"  # type: ignore[union-attr]


def test_list_filters_and_pages(gate: Gate, store: GateStore, clock: Clock) -> None:
    ids = []
    for i in range(5):
        ids.append(_queue(gate, f"k{i}"))
        clock.advance(seconds=1)
    gate.review(ANA, ids[0], "reject", "no")
    pending = store.list_reviews("default", ReviewState.PENDING)
    assert [r.id for r in pending] == ids[1:]
    assert [r.id for r in store.list_reviews("default", limit=2, offset=1)] == ids[1:3]
    assert store.count_reviews("default", ReviewState.REJECTED) == 1
    assert [r.id for r in store.list_reviews("default", agent="nobody")] == []


def test_concurrent_reviews_cannot_both_win(gate: Gate, store: GateStore) -> None:
    """Two reviewers act on the same version: the second transition is refused."""
    review_id = _queue(gate, "k")
    item, version = store.review_version("default", review_id)
    assert gate.review(ANA, review_id, "reject", "no").state is ReviewState.REJECTED
    from mesaguard.gate import ReviewAction, ReviewActionKind

    late = ReviewAction(
        actor="ben",
        role=Role.REVIEWER,
        action=ReviewActionKind.APPROVE,
        from_state=ReviewState.PENDING,
        to_state=ReviewState.APPROVED,
        at=item.created_at,
    )
    assert store.transition(review_id, version, late) is False
    assert store.get_review("default", review_id).state is ReviewState.REJECTED


class ReviewMachine(RuleBasedStateMachine):
    """Random actors take random actions on a few reviews; the invariants always hold."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory()
        self.store = GateStore(Path(self.directory.name) / "gate.sqlite")
        self.clock = Clock()
        self.gate = Gate(
            None,
            self.store,
            config=CONFIG.model_copy(update={"four_eyes": True}),
            clock=self.clock,
        )
        self.reviews: list[str] = []
        self.final: dict[str, ReviewState] = {}

    @rule(critical=st.booleans())
    def submit(self, critical: bool) -> None:
        item = ITEM.model_copy(update={"priority": "Blocker" if critical else "Major"})
        key = f"k{len(self.reviews)}"
        result = self.gate.submit(make_submission(key, "Major", confidence=0.5, item=item))
        assert result.review_id is not None
        self.reviews.append(result.review_id)

    @precondition(lambda self: bool(self.reviews))
    @rule(
        index=st.integers(min_value=0, max_value=20),
        actor=st.sampled_from([ANA, BEN, ROOT, BOT]),
        action=st.sampled_from(["approve", "modify", "reject", "escalate", "cancel"]),
    )
    def act(self, index: int, actor: Actor, action: str) -> None:
        review_id = self.reviews[index % len(self.reviews)]
        before = self.store.get_review("default", review_id)
        try:
            after = self.gate.review(actor, review_id, action, "because", "Minor")
        except (PermissionDenied, InvalidTransition, GateError):
            assert self.store.get_review("default", review_id).state is before.state
            return
        assert actor.role is not Role.AGENT
        assert before.state.open
        if not after.state.open:
            self.final[review_id] = after.state

    @rule(hours=st.integers(min_value=1, max_value=80))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours=hours)
        self.gate.expire_due()
        for item in self.store.list_reviews("default", ReviewState.EXPIRED, limit=1000):
            self.final.setdefault(item.id, ReviewState.EXPIRED)

    @invariant()
    def final_states_never_change_and_apply_once(self) -> None:
        applied: dict[str | None, int] = {}
        for entry in self.store.outbox(limit=1000):
            applied[entry.request.review_id] = applied.get(entry.request.review_id, 0) + 1
        for review_id in self.reviews:
            item = self.store.get_review("default", review_id)
            if review_id in self.final:
                assert item.state is self.final[review_id]
            expected = 1 if item.state in (ReviewState.APPROVED, ReviewState.MODIFIED) else 0
            assert applied.get(review_id, 0) == expected
            if expected and item.critical:
                approvers = {a.actor for a in item.actions if a.action in ("approve", "modify")}
                assert len(approvers) >= 2
            assert all(a.actor != BOT.name for a in item.actions)

    def teardown(self) -> None:
        self.gate.close()
        self.store.close()
        self.directory.cleanup()


ReviewMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_review_state_machine = ReviewMachine.TestCase


def test_two_reviewers_at_once_one_wins(gate: Gate, store: GateStore) -> None:
    """Approve and reject race: exactly one takes effect, the other is refused."""
    import threading

    review_id = _queue(gate, "k")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(actor: Actor, action: str) -> None:
        barrier.wait()
        try:
            gate.review(actor, review_id, action, "race")
            outcomes.append(action)
        except InvalidTransition:
            outcomes.append("refused")

    threads = [
        threading.Thread(target=act, args=(ANA, "approve")),
        threading.Thread(target=act, args=(BEN, "reject")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) in (["approve", "refused"], ["refused", "reject"])
    state = store.get_review("default", review_id).state
    assert state is (ReviewState.APPROVED if "approve" in outcomes else ReviewState.REJECTED)
    assert len(store.outbox()) == (1 if state is ReviewState.APPROVED else 0)
