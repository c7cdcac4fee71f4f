"""Crash and resume: a gate process killed mid-run and started again applies nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mesaguard.gate import GateStore, OutboxState, Outcome
from mesaguard.ledger import Ledger, verify_log

WORKER = Path(__file__).with_name("crash_worker.py")
COUNT = 40


def _start(directory: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(WORKER.parent)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(directory), str(COUNT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_killed_worker_resumes_without_applying_twice(tmp_path: Path) -> None:
    """SIGKILL part-way, run again: one result per key, every applied decision delivered.

    The tracker sees each delivery id once, or at most one repeat: the delivery in flight at
    the kill, which carries the same id for the tracker to deduplicate.
    """
    seen = 0
    with _start(tmp_path) as worker:
        assert worker.stdout is not None
        for _line in worker.stdout:
            seen += 1
            if seen >= COUNT // 3:
                worker.send_signal(signal.SIGKILL)
                break
        worker.wait(timeout=60)
    assert worker.returncode == -signal.SIGKILL
    with _start(tmp_path) as again:
        out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    lines = out.split()
    replayed = [lines[i + 2] for i in range(0, len(lines), 3)]
    assert replayed.count("True") >= seen  # everything the first run finished is replayed

    with GateStore(tmp_path / "gate.sqlite") as store:
        results = [store.get_result("default", f"key-{i}") for i in range(COUNT)]
        assert all(result is not None for result in results)
        applied = {r.submission_id for r in results if r and r.outcome is Outcome.APPLIED}
        queued = [r for r in results if r and r.outcome is Outcome.QUEUED]
        assert applied and queued
        outbox = store.outbox(limit=1000)
        assert {entry.request.submission_id for entry in outbox} == applied
        assert len(outbox) == len(applied)
        assert all(entry.state is OutboxState.DELIVERED for entry in outbox)
    tracker = [
        json.loads(line)["delivery_id"]
        for line in (tmp_path / "tracker.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert set(tracker) == applied
    assert len(tracker) - len(set(tracker)) <= 1
    with Ledger(tmp_path / "log.sqlite") as ledger:
        verify_log(ledger)
        decisions = [
            e.record.details["idempotency_key"]  # type: ignore[union-attr]
            for e in ledger.entries()
            if e.record.kind == "decision" and e.record.action != "apply"  # type: ignore[union-attr]
        ]
    # The log holds every key; a key whose store commit the kill prevented may appear twice
    # (logged before the store commit, then logged again when resubmitted).
    assert set(decisions) == {f"key-{i}" for i in range(COUNT)}
    assert len(decisions) - COUNT <= 1
