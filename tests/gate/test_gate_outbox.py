"""The apply outbox: retries with backoff, nothing lost, each decision delivered once."""

from __future__ import annotations

import pytest
from gate_support import Clock, make_submission

from mesaguard.gate import (
    Actor,
    ApplyRequest,
    AutonomyLevel,
    Gate,
    GateConfig,
    GateError,
    GateStore,
    OutboxState,
    Role,
)
from mesaguard.items import ActionType
from mesaguard.ledger import Ledger

CONFIG = GateConfig(
    autonomy={action: AutonomyLevel.L2 for action in ActionType},
    audit_rate=0.0,
    canary_rate=0.0,
    retry_base_s=2.0,
    retry_max_s=10.0,
)


class FlakyTracker:
    """A tracker that fails its first ``failures`` calls, then records what it applies."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.applied: dict[str, ApplyRequest] = {}

    def __call__(self, request: ApplyRequest) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"tracker unavailable (call {self.calls})")
        self.applied[request.delivery_id] = request


def test_failed_deliveries_are_retried_with_backoff_and_never_lost(
    store: GateStore, ledger: Ledger, clock: Clock
) -> None:
    tracker = FlakyTracker(failures=3)
    gate = Gate(None, store, ledger, config=CONFIG, clock=clock, applier=tracker)
    gate.set_verdict("triage", "robustly-aligned")
    result = gate.submit(make_submission("k"))
    report = gate.deliver()
    assert (report.delivered, report.failed, report.pending) == (0, 1, 1)
    [entry] = store.outbox()
    assert entry.attempts == 1 and "tracker unavailable" in (entry.last_error or "")
    assert gate.deliver().failed == 0  # not due yet: backoff 2 s
    delays = []
    for _ in range(3):
        waiting = store.outbox()[0].next_attempt_at - clock.now
        delays.append(waiting.total_seconds())
        clock.advance(seconds=waiting.total_seconds())
        gate.deliver()
    assert delays == [2.0, 4.0, 8.0]
    [entry] = store.outbox()
    assert entry.state is OutboxState.DELIVERED and entry.attempts == 4
    assert list(tracker.applied) == [result.submission_id]
    last = ledger.get(ledger.size() - 1)
    assert last.record.kind == "decision" and last.record.action == "apply"  # type: ignore[union-attr]
    clock.advance(hours=1)
    assert gate.deliver().delivered == 0 and tracker.calls == 4


def test_backoff_is_capped_and_delivery_never_gives_up(store: GateStore, clock: Clock) -> None:
    tracker = FlakyTracker(failures=8)
    gate = Gate(None, store, config=CONFIG, clock=clock, applier=tracker)
    gate.set_verdict("triage", "robustly-aligned")
    gate.submit(make_submission("k"))
    for _ in range(8):
        gate.deliver()
        entry = store.outbox()[0]
        assert (entry.next_attempt_at - clock.now).total_seconds() <= CONFIG.retry_max_s
        clock.advance(seconds=CONFIG.retry_max_s)
    assert gate.deliver().delivered == 1
    assert store.outbox()[0].attempts == 9


def test_approved_reviews_go_through_the_outbox(store: GateStore, clock: Clock) -> None:
    tracker = FlakyTracker(failures=0)
    gate = Gate(None, store, config=CONFIG, clock=clock)
    queued = gate.submit(make_submission("k", confidence=0.3))
    assert queued.review_id is not None
    with pytest.raises(GateError, match="no applier"):
        gate.deliver()
    gate.review(Actor(name="ana", role=Role.REVIEWER), queued.review_id, "modify", "x", "Trivial")
    assert gate.deliver(tracker).delivered == 1
    [request] = tracker.applied.values()
    assert (request.value, request.approved_by) == ("Trivial", ["ana"])


def test_a_claimed_entry_is_not_delivered_twice_concurrently(
    store: GateStore, clock: Clock
) -> None:
    """Two workers: the lease keeps the second from taking an entry the first holds."""
    import datetime as dt

    gate = Gate(None, store, config=CONFIG, clock=clock)
    gate.set_verdict("triage", "robustly-aligned")
    gate.submit(make_submission("k"))
    lease = dt.timedelta(seconds=60)
    first = store.claim_outbox(clock.now, lease, 10)
    assert len(first) == 1
    assert store.claim_outbox(clock.now, lease, 10) == []
    # The first worker died without finishing: after the lease the entry is claimable again.
    again = store.claim_outbox(clock.now + lease, lease, 10)
    assert [entry.id for entry in again] == [first[0].id] and again[0].attempts == 2
