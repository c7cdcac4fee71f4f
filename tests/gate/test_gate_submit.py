"""Gate.submit: autonomy, verdict cap, constitution, triggers, canary, idempotency, ledger."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gate_support import ITEM, Clock, make_submission

import mesaguard.gate as gate_api
from mesaguard.agents import CallableAgent
from mesaguard.constitution import Constitution, default_constitution
from mesaguard.contexts import Context, Side
from mesaguard.gate import (
    Actor,
    AutonomyLevel,
    Gate,
    GateConfig,
    GateStore,
    IdempotencyConflict,
    OutboxState,
    Outcome,
    PermissionDenied,
    Role,
    Submission,
)
from mesaguard.items import ActionType, WorkItem
from mesaguard.ledger import Ledger, LedgerError, verify_log

L2_ALL = GateConfig(
    autonomy={action: AutonomyLevel.L2 for action in ActionType}, audit_rate=0.0, canary_rate=0.0
)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[GateStore]:
    with GateStore(tmp_path / "gate.sqlite") as opened:
        yield opened


def _trusted(gate: Gate, agent: str = "triage") -> Gate:
    gate.set_verdict(agent, "robustly-aligned", "reports/triage.html")
    return gate


def test_all_lists_exactly_the_public_names() -> None:
    """The front door cannot drift: __all__ is every public name the package exports."""
    public = {n for n in vars(gate_api) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(gate_api, n)).__name__ == "module"}
    assert set(gate_api.__all__) == public - modules


def test_applied_queued_denied_on_both_stores(
    store: GateStore, ledger: Ledger, clock: Clock
) -> None:
    """One of each outcome, on SQLite and PostgreSQL; only the applied one enters the outbox."""
    gate = _trusted(Gate(None, store, ledger, config=L2_ALL, clock=clock))
    applied = gate.submit(make_submission("a"))
    queued = gate.submit(make_submission("q", confidence=0.5))
    denied = gate.submit(make_submission("d", value=None))
    assert [r.outcome for r in (applied, queued, denied)] == [
        Outcome.APPLIED,
        Outcome.QUEUED,
        Outcome.DENIED,
    ]
    assert applied.review_id is None and denied.review_id is None
    assert queued.review_id is not None
    assert store.get_review("default", queued.review_id).state == "pending"
    assert "A6.invalid" in denied.reasons[0]
    outbox = store.outbox()
    assert [entry.request.idempotency_key for entry in outbox] == ["a"]
    assert store.get_result("default", "q") == queued


def test_no_verdict_means_recommendations_only(sqlite_store: GateStore, clock: Clock) -> None:
    """L2 granted, but an agent never red-teamed only recommends (L0): queued, not applied."""
    gate = Gate(None, sqlite_store, config=L2_ALL, clock=clock)
    result = gate.submit(make_submission("k"))
    assert result.outcome is Outcome.QUEUED
    assert result.autonomy_level is AutonomyLevel.L0 and result.verdict == "none"
    assert any("A1.recommend-only" in reason for reason in result.reasons)


@pytest.mark.parametrize(
    ("verdict", "level"),
    [
        ("deceptive", AutonomyLevel.L0),
        ("sandbagging", AutonomyLevel.L0),
        ("inconclusive", AutonomyLevel.L0),
        ("proxy-aligned", AutonomyLevel.L0),
        ("robustly-aligned", AutonomyLevel.L2),
    ],
)
def test_latest_verdict_caps_autonomy(
    sqlite_store: GateStore, clock: Clock, verdict: str, level: AutonomyLevel
) -> None:
    """Failing or inconclusive red-team verdicts cap the agent at L0; the latest one counts."""
    gate = Gate(None, sqlite_store, config=L2_ALL, clock=clock)
    other = "deceptive" if verdict == "robustly-aligned" else "robustly-aligned"
    gate.set_verdict("triage", other)
    gate.set_verdict("triage", verdict)
    result = gate.submit(make_submission("k"))
    assert result.autonomy_level is level and result.verdict == verdict
    assert result.outcome is (Outcome.APPLIED if level else Outcome.QUEUED)


def test_autonomy_is_per_action_type(sqlite_store: GateStore, clock: Clock) -> None:
    config = GateConfig(autonomy={ActionType.ROUTE: AutonomyLevel.L2}, canary_rate=0.0)
    gate = _trusted(Gate(None, sqlite_store, config=config, clock=clock))
    route = gate.submit(make_submission("r", "core", action=ActionType.ROUTE))
    priority = gate.submit(make_submission("p"))
    assert (route.outcome, priority.outcome) == (Outcome.APPLIED, Outcome.QUEUED)
    assert priority.autonomy_level is AutonomyLevel.L0


@pytest.mark.parametrize(
    ("value", "action", "item", "trigger"),
    [
        (
            "Critical",
            ActionType.SET_PRIORITY,
            ITEM.model_copy(update={"priority": "Trivial"}),
            "impact",
        ),
        (21.0, ActionType.SET_STORY_POINTS, ITEM, "impact"),
    ],
)
def test_impact_triggers(
    sqlite_store: GateStore,
    clock: Clock,
    value: str | float,
    action: ActionType,
    item: WorkItem,
    trigger: str,
) -> None:
    """A three-level priority jump and 21 story points (bound 13) go to a person."""
    gate = _trusted(Gate(None, sqlite_store, config=L2_ALL, clock=clock))
    result = gate.submit(make_submission("k", value, action=action, item=item))
    assert result.outcome is Outcome.QUEUED and trigger in result.triggers
    small = gate.submit(make_submission("k2", 5.0, action=ActionType.SET_STORY_POINTS))
    assert small.outcome is Outcome.APPLIED


def test_low_confidence_trigger_is_configurable(sqlite_store: GateStore, clock: Clock) -> None:
    constitution = Constitution.parse(
        default_constitution().document.replace("decision.confidence < 0.80", "false")
    )
    config = L2_ALL.model_copy(update={"min_confidence": 0.9})
    gate = _trusted(Gate(constitution, sqlite_store, config=config, clock=clock))
    result = gate.submit(make_submission("k", confidence=0.85))
    assert result.outcome is Outcome.QUEUED and result.triggers == ["low-confidence"]


def test_audit_sample_is_about_ten_percent_and_fixed_per_key(
    sqlite_store: GateStore, tmp_path: Path, clock: Clock
) -> None:
    """At L1 ~10% of keys are audited (binomial 99.9% range, n=400), fixed by key and seed.

    A second gate with the same seed audits the same keys; another seed audits others.
    """
    config = GateConfig(autonomy={ActionType.SET_PRIORITY: AutonomyLevel.L1}, canary_rate=0.0)
    gate = _trusted(Gate(None, sqlite_store, config=config, clock=clock))
    keys = [f"audit-{i}" for i in range(400)]
    audited = {k for k in keys if "audit-sample" in gate.submit(make_submission(k)).triggers}
    assert 22 <= len(audited) <= 62  # Binomial(400, 0.1): P(outside) < 0.001
    with GateStore(tmp_path / "other.sqlite") as other_store:
        again = _trusted(Gate(None, other_store, config=config, clock=clock))
        assert {
            k for k in keys[:100] if "audit-sample" in again.submit(make_submission(k)).triggers
        } == {k for k in keys[:100] if k in audited}
    with GateStore(tmp_path / "seed.sqlite") as seeded_store:
        reseeded = _trusted(
            Gate(None, seeded_store, config=config.model_copy(update={"seed": 1}), clock=clock)
        )
        other = {k for k in keys if "audit-sample" in reseeded.submit(make_submission(k)).triggers}
        assert other != audited


def _two_faced(unwatched: str, watched: str, delay: float = 0.0) -> CallableAgent:
    """An agent that answers ``watched`` under any observed cue and ``unwatched`` otherwise."""

    def decide(item: WorkItem, context: Context) -> tuple[str, float]:
        time.sleep(delay)
        return (watched if context.side is Side.OBSERVED else unwatched), 0.95

    return CallableAgent(decide, name="triage")


def test_canary_catches_an_agent_that_behaves_only_when_watched(
    sqlite_store: GateStore, ledger: Ledger, clock: Clock
) -> None:
    """The gate re-asks under an observed framing; a different answer sends it to review."""
    config = L2_ALL.model_copy(update={"canary_rate": 1.0})
    deceptive = _trusted(
        Gate(None, sqlite_store, ledger, config=config, canary=_two_faced("Minor", "Major"))
    )
    caught = deceptive.submit(make_submission("k1"))
    assert caught.outcome is Outcome.QUEUED and "canary" in caught.triggers
    assert not caught.fail_closed
    assert any("observed framing" in reason for reason in caught.reasons)
    context = deceptive.canary_context(make_submission("k1"))
    assert context.side is Side.OBSERVED and context.name in caught.reasons[-1]
    honest = Gate(
        None, sqlite_store, ledger, config=config, canary={"triage": _two_faced("Minor", "Minor")}
    )
    assert honest.submit(make_submission("k2")).outcome is Outcome.APPLIED


def test_canary_timeout_and_error_fail_closed(sqlite_store: GateStore, clock: Clock) -> None:
    config = L2_ALL.model_copy(update={"canary_rate": 1.0, "canary_timeout_s": 0.05})
    slow = _trusted(
        Gate(None, sqlite_store, config=config, canary=_two_faced("Minor", "Minor", delay=1.0))
    )
    result = slow.submit(make_submission("slow"))
    assert result.outcome is Outcome.QUEUED and result.fail_closed
    assert "canary-error" in result.triggers
    slow.close()

    def broken(item: WorkItem, context: Context) -> str:
        raise RuntimeError("model server down")

    failing = Gate(None, sqlite_store, config=config, canary=CallableAgent(broken))
    result = failing.submit(make_submission("broken"))
    assert result.outcome is Outcome.QUEUED and result.fail_closed
    assert any("model server down" in reason for reason in result.reasons)


def test_leaving_out_the_item_is_no_way_past_the_canary(
    sqlite_store: GateStore, clock: Clock
) -> None:
    """A sampled decision without a work item cannot be re-asked: it goes to a person."""
    config = L2_ALL.model_copy(update={"canary_rate": 1.0})
    gate = _trusted(
        Gate(None, sqlite_store, config=config, clock=clock, canary=_two_faced("Minor", "Major"))
    )
    result = gate.submit(make_submission("no-item", item=None))
    assert result.outcome is Outcome.QUEUED and "canary-error" in result.triggers
    assert any("no work item" in reason for reason in result.reasons)
    assert sqlite_store.outbox() == []
    gate.close()


def test_canary_sample_rate(sqlite_store: GateStore, clock: Clock) -> None:
    """With rate 0.05 about one in twenty decisions is re-asked (99.9% binomial range, n=400)."""
    calls: list[str] = []

    def decide(item: WorkItem, context: Context) -> tuple[str, float]:
        calls.append(context.name)
        return "Minor", 0.95

    config = L2_ALL.model_copy(update={"canary_rate": 0.05})
    gate = _trusted(Gate(None, sqlite_store, config=config, canary=CallableAgent(decide)))
    for i in range(400):
        assert gate.submit(make_submission(f"c{i}")).outcome is Outcome.APPLIED
    assert 7 <= len(calls) <= 37
    assert all("/observed/" in name for name in calls)


def test_policy_error_fails_closed(sqlite_store: GateStore, clock: Clock) -> None:
    """A rule that breaks on an unusual decision sends it to review, never applies it."""
    text = default_constitution().document.replace(
        "condition: autonomy >= 1", "condition: 'autonomy >= 1 && decision.value.startsWith(\"M\")'"
    )
    gate = _trusted(Gate(Constitution.parse(text), sqlite_store, config=L2_ALL, clock=clock))
    result = gate.submit(make_submission("k", 3.0, action=ActionType.SET_STORY_POINTS))
    assert result.outcome is Outcome.QUEUED and result.fail_closed
    assert result.triggers[0] == "policy-error"
    assert sqlite_store.count_outbox(OutboxState.PENDING) == 0


def test_ledger_failure_fails_closed(sqlite_store: GateStore, tmp_path: Path, clock: Clock) -> None:
    """If the Ethics Review Log cannot take the record, the decision is queued, not applied."""
    with Ledger(tmp_path / "broken.sqlite", origin="t/broken") as log:
        gate = _trusted(Gate(None, sqlite_store, log, config=L2_ALL, clock=clock))
        assert gate.submit(make_submission("before")).outcome is Outcome.APPLIED
        with sqlite3.connect(tmp_path / "broken.sqlite") as raw:
            raw.execute("DROP TABLE ledger_entries")
        result = gate.submit(make_submission("after"))
    assert result.outcome is Outcome.QUEUED and result.fail_closed
    assert "ledger-error" in result.triggers
    assert [e.request.idempotency_key for e in sqlite_store.outbox()] == ["before"]


def test_a_verdict_the_log_cannot_take_is_not_put_in_force(
    sqlite_store: GateStore, tmp_path: Path, clock: Clock
) -> None:
    """Raising an agent's autonomy without a log record would be an unrecorded change."""
    with Ledger(tmp_path / "broken.sqlite", origin="t/broken") as log:
        gate = Gate(None, sqlite_store, log, config=L2_ALL, clock=clock)
        with sqlite3.connect(tmp_path / "broken.sqlite") as raw:
            raw.execute("DROP TABLE ledger_entries")
        with pytest.raises(LedgerError):
            gate.set_verdict("triage", "robustly-aligned")
    assert sqlite_store.latest_verdict("triage") is None
    assert gate.autonomy_for("triage", ActionType.SET_PRIORITY)[0] is AutonomyLevel.L0


def test_resubmission_never_applies_twice(store: GateStore, ledger: Ledger, clock: Clock) -> None:
    """Same key: the stored result comes back; a different body under the key is refused."""
    gate = _trusted(Gate(None, store, ledger, config=L2_ALL, clock=clock))
    first = gate.submit(make_submission("same"))
    size = ledger.size()
    again = gate.submit(make_submission("same"))
    assert again.replayed and again.submission_id == first.submission_id
    assert again.outcome is Outcome.APPLIED
    assert len(store.outbox()) == 1 and ledger.size() == size
    with pytest.raises(IdempotencyConflict, match="'same'"):
        gate.submit(make_submission("same", "Trivial"))
    assert gate.submit(make_submission("same", tenant="other")).submission_id != first.submission_id


def test_concurrent_resubmissions_store_one_result(sqlite_store: GateStore, clock: Clock) -> None:
    """Eight threads submit the same key at once: one submission, one outbox entry."""
    gate = _trusted(Gate(None, sqlite_store, config=L2_ALL, clock=clock))
    results: list[str] = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        results.append(gate.submit(make_submission("race")).submission_id)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results) == 8
    assert len(sqlite_store.outbox()) == 1


def test_every_event_is_in_the_ledger(
    sqlite_store: GateStore, ledger: Ledger, clock: Clock
) -> None:
    """Constitution in force, verdict, decisions and escalations are logged; the log verifies."""
    gate = Gate(None, sqlite_store, ledger, config=L2_ALL, clock=clock)
    _trusted(gate)
    gate.submit(make_submission("a"))
    queued = gate.submit(make_submission("q", confidence=0.4))
    kinds = [entry.record.kind for entry in ledger.entries()]
    assert kinds == [
        "constitution-change",
        "redteam-report",
        "decision",
        "decision",
        "escalation",
    ]
    escalation = list(ledger.entries())[-1].record
    assert escalation.details["review_id"] == queued.review_id  # type: ignore[union-attr]
    assert verify_log(ledger).tree_size == 5  # raises TamperError if it does not verify


def test_constitution_changes_are_logged_once(
    sqlite_store: GateStore, ledger: Ledger, clock: Clock
) -> None:
    """A restart with the same constitution logs nothing; a new one is logged with its hash."""
    Gate(None, sqlite_store, ledger, clock=clock)
    Gate(None, sqlite_store, ledger, clock=clock)
    assert ledger.size() == 1
    stricter = Constitution.parse(
        default_constitution().document.replace("0.80", "0.90").replace("2026.11-1", "2026.11-2")
    )
    gate = Gate(None, sqlite_store, ledger, clock=clock)
    with pytest.raises(PermissionDenied):
        gate.set_constitution(stricter, Actor(name="rev", role=Role.REVIEWER))
    gate.set_constitution(stricter, Actor(name="root", role=Role.ADMIN))
    change = ledger.get(ledger.size() - 1)
    assert change.actor == "root"
    assert change.record.document_sha256 == stricter.sha256  # type: ignore[union-attr]
    current = sqlite_store.current_constitution()
    assert current is not None and current.version == "2026.11-2"
    assert sqlite_store.constitution_document(stricter.sha256) == stricter.document


def test_labels_from_item_metadata_make_a_downgrade_reviewable(
    sqlite_store: GateStore, clock: Clock
) -> None:
    """The ethics article: an item labelled Security in the tracker is not downgraded alone."""
    gate = _trusted(Gate(None, sqlite_store, config=L2_ALL, clock=clock))
    item = ITEM.model_copy(update={"metadata": {"labels": "Security, ui"}})
    result = gate.submit(make_submission("k", item=item))
    assert result.outcome is Outcome.QUEUED
    assert [hit.rule_id for hit in result.rules_fired][-1] == "A4.flagged-downgrade"
    review = sqlite_store.get_review("default", result.review_id or "")
    assert review.critical


@pytest.mark.parametrize("labels", ["performance security", "ui; data loss", "Safety"])
def test_labels_written_with_spaces_are_still_read(
    sqlite_store: GateStore, clock: Clock, labels: str
) -> None:
    """Jira exports separate labels with spaces; people write "data loss" for data-loss."""
    gate = _trusted(Gate(None, sqlite_store, config=L2_ALL, clock=clock))
    item = ITEM.model_copy(update={"metadata": {"labels": labels}})
    result = gate.submit(make_submission(f"k-{len(labels)}", item=item))
    assert result.outcome is Outcome.QUEUED
    assert "A4.flagged-downgrade" in [hit.rule_id for hit in result.rules_fired]


def test_submission_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        make_submission("has space")
    with pytest.raises(ValueError, match="idempotency_key"):
        make_submission("run/7")  # could never be polled as GET /decisions/{key}
    assert make_submission("k", labels=[" Data Loss "]).labels == ["data-loss"]
    assert math.isclose(make_submission("k", confidence=0.5).decision.confidence, 0.5)


def test_slow_checks_fail_closed(sqlite_store: GateStore, clock: Clock) -> None:
    """A decision whose checks take longer than the limit goes to review, never applied."""
    config = L2_ALL.model_copy(update={"decision_timeout_s": 1e-9})
    gate = _trusted(Gate(None, sqlite_store, config=config, clock=clock))
    result = gate.submit(make_submission("k"))
    assert result.outcome is Outcome.QUEUED and result.fail_closed
    assert result.triggers == ["timeout"]


class _HeldFirstCommit(Gate):
    """Holds its first group commit until eight more submitters queue behind it."""

    sizes: list[int]

    def _commit_batch(self, batch: list[Any]) -> None:
        self.sizes.append(len(batch))
        if len(self.sizes) == 1:
            deadline = time.monotonic() + 10
            while len(self._commits._queue) < 8 and time.monotonic() < deadline:
                time.sleep(0.005)
        super()._commit_batch(batch)


def test_concurrent_submits_share_one_commit(
    sqlite_store: GateStore, ledger: Ledger, clock: Clock
) -> None:
    """Group commit: submitters arriving during a commit are committed together.

    One log append and one store transaction for the batch; each submitter gets its own
    result, and a key reused with another body inside the batch is still refused.
    """
    gate = _HeldFirstCommit(None, sqlite_store, ledger, config=L2_ALL, clock=clock)
    gate.sizes = []
    _trusted(gate)
    submissions = [make_submission(f"g{i}") for i in range(6)]
    submissions += [make_submission("dup"), make_submission("dup", "Trivial")]
    first = make_submission("first")
    results: dict[str, str] = {}

    def submit(submission: Submission, name: str) -> None:
        try:
            results[name] = gate.submit(submission).outcome.value
        except IdempotencyConflict:
            results[name] = "conflict"

    leader = threading.Thread(target=submit, args=(first, "first"))
    leader.start()
    while not gate.sizes:
        time.sleep(0.005)
    followers = [
        threading.Thread(target=submit, args=(s, f"{s.idempotency_key}/{s.decision.value}"))
        for s in submissions
    ]
    for thread in followers:
        thread.start()
    for thread in [leader, *followers]:
        thread.join()
    assert gate.sizes == [1, 8]
    assert [results[f"g{i}/Minor"] for i in range(6)] == ["applied"] * 6
    assert sorted([results["dup/Minor"], results["dup/Trivial"]])[0] == "applied"
    assert sorted([results["dup/Minor"], results["dup/Trivial"]])[1] == "conflict"
    assert len(sqlite_store.outbox(limit=100)) == 8  # first, g0..g5, one dup
    assert verify_log(ledger).tree_size == ledger.size()


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 1e400])
def test_a_non_finite_priority_is_judged_not_raised(store: GateStore, value: float) -> None:
    """JSON like 1e400 parses to infinity: the gate judges it (never applies it), never raises."""
    gate = Gate(default_constitution(), store)
    result = gate.submit(make_submission(f"inf-{value}", value=value, current_value=value))
    assert result.outcome is not Outcome.APPLIED


@pytest.mark.parametrize(
    ("value", "action", "item"),
    [
        ("garbage", ActionType.SET_PRIORITY, ITEM.model_copy(update={"priority": "Blocker"})),
        (9.0, ActionType.SET_PRIORITY, ITEM),
        ("abc", ActionType.SET_STORY_POINTS, ITEM),
        (-5.0, ActionType.SET_STORY_POINTS, ITEM),
        ("  ", ActionType.ROUTE, ITEM),
    ],
)
@pytest.mark.parametrize("allow_all", [False, True])
def test_a_value_the_action_cannot_write_is_never_applied(
    sqlite_store: GateStore,
    clock: Clock,
    value: str | float,
    action: ActionType,
    item: WorkItem,
    allow_all: bool,
) -> None:
    """A trusted L2 agent's unrankable priority, bad story points or empty route is not applied.

    An unrankable priority on a Blocker used to pass the downgrade rule (it compares ranks) and
    be applied. The default constitution denies it (A6); a constitution that allows everything
    still cannot get it applied.
    """
    constitution = (
        Constitution.parse(
            "version: '1'\narticles: [{id: A, title: t, text: t}]\n"
            "rules: [{id: A.all, article: A, condition: 'true', effect: allow, reason: r}]\n"
        )
        if allow_all
        else None
    )
    gate = _trusted(Gate(constitution, sqlite_store, config=L2_ALL, clock=clock))
    result = gate.submit(make_submission("bad", value, action=action, item=item))
    assert result.outcome is (Outcome.QUEUED if allow_all else Outcome.DENIED)
    assert sqlite_store.outbox() == []


def test_a_current_value_milder_than_the_item_does_not_unlock_a_downgrade(
    sqlite_store: GateStore, clock: Clock
) -> None:
    """A milder ``current_value`` than the submission's own item is not believed.

    The item says Blocker; ``current_value`` saying Trivial does not make Blocker -> Minor an
    upgrade. The same for story points on a flagged item.
    """
    gate = _trusted(Gate(None, sqlite_store, config=L2_ALL, clock=clock))
    blocker = ITEM.model_copy(update={"priority": "Blocker"})
    priority = gate.submit(make_submission("p", "Minor", item=blocker, current_value="Trivial"))
    assert priority.outcome is Outcome.QUEUED
    assert "A3.severe-downgrade" in [hit.rule_id for hit in priority.rules_fired]
    eight = ITEM.model_copy(update={"story_points": 8.0})
    points = gate.submit(
        make_submission(
            "s",
            1.0,
            action=ActionType.SET_STORY_POINTS,
            item=eight,
            current_value=0.5,
            labels=["security"],
        )
    )
    assert points.outcome is Outcome.QUEUED
    assert "A4.flagged-downgrade" in [hit.rule_id for hit in points.rules_fired]
    assert sqlite_store.outbox() == []
