"""Fail closed: the store goes down mid-run; nothing is applied, every decision is reported.

Every decision ends up queued, applied before the outage, or reported with `StoreUnavailable`,
and a resubmission after the outage records it exactly once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from gate_support import Clock, make_submission
from sqlalchemy import create_engine, text

from mesaguard.gate import (
    Actor,
    AutonomyLevel,
    Gate,
    GateConfig,
    GateResult,
    GateStore,
    Outcome,
    ReviewState,
    Role,
    StoreUnavailable,
)
from mesaguard.items import ActionType
from mesaguard.ledger import Ledger

CONFIG = GateConfig(
    autonomy={action: AutonomyLevel.L2 for action in ActionType}, audit_rate=0.0, canary_rate=0.0
)


def _run(
    gate: Gate, keys: list[str], outage: range, start: object, stop: object
) -> tuple[dict[str, GateResult], dict[str, str]]:
    """Submit every key; the store goes down before ``outage.start`` and back after it."""
    results: dict[str, GateResult] = {}
    reported: dict[str, str] = {}
    for index, key in enumerate(keys):
        if index == outage.start:
            start()  # type: ignore[operator]
        if index == outage.stop:
            stop()  # type: ignore[operator]
        confidence = 0.5 if index % 3 == 0 else 0.95  # a mix of applied and queued
        try:
            results[key] = gate.submit(make_submission(key, confidence=confidence))
        except StoreUnavailable as error:
            reported[key] = str(error)
    return results, reported


def _check(
    store: GateStore,
    ledger: Ledger,
    gate: Gate,
    keys: list[str],
    results: dict[str, GateResult],
    reported: dict[str, str],
    outage: range,
) -> None:
    assert set(results) | set(reported) == set(keys)  # every decision queued/applied or reported
    assert set(reported) == {keys[i] for i in outage}
    outbox_keys = [entry.request.idempotency_key for entry in store.outbox(limit=1000)]
    assert set(outbox_keys) == {k for k, r in results.items() if r.outcome is Outcome.APPLIED}
    assert not set(outbox_keys) & set(reported)  # nothing applied on the error path
    escalations = [
        entry.record
        for entry in ledger.entries()
        if entry.record.kind == "escalation" and "store unavailable" in entry.record.reason  # type: ignore[union-attr]
    ]
    assert len(escalations) == len(reported)
    # Resubmitting after the outage records each missing decision once; replays change nothing.
    for index, key in enumerate(keys):
        confidence = 0.5 if index % 3 == 0 else 0.95
        again = gate.submit(make_submission(key, confidence=confidence))
        assert again.replayed == (key in results)
    outbox_keys = [entry.request.idempotency_key for entry in store.outbox(limit=1000)]
    assert len(outbox_keys) == len(set(outbox_keys))


def test_sqlite_store_locked_mid_run(tmp_path: Path, ledger: Ledger, clock: Clock) -> None:
    """Another process holds an exclusive lock for part of the run (the store times out)."""
    path = tmp_path / "gate.sqlite"
    keys = [f"k{i}" for i in range(18)]
    outage = range(8, 12)
    with GateStore(path, timeout_s=0.1) as store:
        gate = Gate(None, store, ledger, config=CONFIG, clock=clock)
        gate.set_verdict("triage", "robustly-aligned")
        blocker = sqlite3.connect(path, isolation_level=None)
        results, reported = _run(
            gate,
            keys,
            outage,
            lambda: blocker.execute("BEGIN EXCLUSIVE"),
            lambda: blocker.execute("ROLLBACK"),
        )
        blocker.close()
        assert all("failed" in message for message in reported.values())
        _check(store, ledger, gate, keys, results, reported, outage)


@pytest.mark.postgres
def test_postgres_refuses_connections_mid_run(
    pg_database: str, ledger: Ledger, clock: Clock, pg_admin: str
) -> None:
    """The database stops accepting connections and drops the gate's sessions mid-run."""
    name = pg_database.rsplit("/", 1)[1]
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")

    def down() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )

    def up() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

    keys = [f"k{i}" for i in range(15)]
    outage = range(6, 10)
    try:
        with GateStore(pg_database, timeout_s=2.0) as store:
            gate = Gate(None, store, ledger, config=CONFIG, clock=clock)
            gate.set_verdict("triage", "robustly-aligned")
            results, reported = _run(gate, keys, outage, down, up)
            _check(store, ledger, gate, keys, results, reported, outage)
    finally:
        up()
        admin.dispose()


@pytest.fixture
def missing_store(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "no" / "such" / "dir" / "gate.sqlite"


def test_a_store_that_cannot_open_is_reported(missing_store: Path) -> None:
    with pytest.raises(StoreUnavailable, match="cannot open"):
        GateStore(missing_store)


def test_reviewers_can_read_the_queue_while_a_writer_holds_the_lock(
    tmp_path: Path, clock: Clock
) -> None:
    """Reads never take the write lock: the queue stays readable while submits fail closed."""
    path = tmp_path / "gate.sqlite"
    with GateStore(path, timeout_s=0.1) as store:
        gate = Gate(None, store, config=CONFIG, clock=clock)
        queued = gate.submit(make_submission("q", confidence=0.3))
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            assert [r.id for r in store.list_reviews("default")] == [queued.review_id]
            assert store.count_reviews("default") == 1
            with pytest.raises(StoreUnavailable):
                gate.submit(make_submission("blocked"))
            with pytest.raises(StoreUnavailable):
                store.set_verdict("triage", "deceptive")
        finally:
            writer.execute("ROLLBACK")
            writer.close()


def test_a_review_the_store_refuses_is_logged_as_not_taken(
    tmp_path: Path, ledger: Ledger, clock: Clock
) -> None:
    """The log gets the approval first; when the store then fails, the log says it did not count.

    Without the second entry the log would show an approval that never took effect.
    """
    path = tmp_path / "gate.sqlite"
    with GateStore(path, timeout_s=0.1) as store:
        gate = Gate(None, store, ledger, config=CONFIG, clock=clock)
        queued = gate.submit(make_submission("q", confidence=0.3))
        assert queued.review_id is not None
        reviewer = Actor(name="ana", role=Role.REVIEWER)
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable):
                gate.review(reviewer, queued.review_id, "approve", "fine")
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert store.get_review("default", queued.review_id).state is ReviewState.PENDING
        assert store.outbox() == []
        approve, note = (ledger.get(ledger.size() - i).record for i in (2, 1))
        assert approve.kind == "review" and approve.outcome == "approve"  # type: ignore[union-attr]
        assert note.kind == "review" and note.outcome == "superseded"  # type: ignore[union-attr]
        assert "unavailable" in note.comment  # type: ignore[union-attr]
