"""Several writer processes, and writers killed with SIGKILL (slow tier)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mesaguard.ledger import Ledger, verify_log

pytestmark = pytest.mark.slow

WORKER = """
import sys
from mesaguard.ledger import Ledger, Review
target, schema, name, rounds = sys.argv[1], sys.argv[2] or None, sys.argv[3], int(sys.argv[4])
with Ledger(target, schema=schema) as log:
    i = 0
    while rounds < 0 or i < rounds:
        if i % 7 == 0:
            batch = [(name, Review(subject=f"{name}/{i}/{j}", outcome="ok")) for j in range(50)]
            acked = log.append_many(batch)
            for a, (_actor, record) in zip(acked, batch):
                print(a.index, record.subject, flush=True)
        a = log.append(name, Review(subject=f"{name}/{i}", outcome="ok"))
        print(a.index, f"{name}/{i}", flush=True)
        i += 1
"""


def _spawn(target: str, schema: str | None, name: str, rounds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, target, schema or "", name, str(rounds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check(log: Ledger, acked: dict[int, str]) -> None:
    """Every acknowledged entry is stored at its index, with no gap, duplicate or fork."""
    subjects = {entry.index: entry.record.subject for entry in log.entries()}  # type: ignore[union-attr]
    assert list(subjects) == list(range(len(subjects)))
    for index, subject in acked.items():
        assert subjects[index] == subject
    assert len(set(subjects.values())) == len(subjects)
    verify_log(log)


def _concurrent_writers(target: str, schema: str | None) -> None:
    with Ledger(target, origin="procs/log", schema=schema):
        pass
    workers = [_spawn(target, schema, f"w{k}", 40) for k in range(4)]
    acked: dict[int, str] = {}
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        for line in out.splitlines():
            index, subject = line.split(" ", 1)
            assert int(index) not in acked, "duplicate index"
            acked[int(index)] = subject
    with Ledger(target, schema=schema) as log:
        assert log.size() == len(acked) == 4 * (40 + 6 * 50)
        _check(log, acked)


def test_concurrent_writer_processes_sqlite(tmp_path: Path) -> None:
    """Four processes append singles and batches to one SQLite file at once."""
    _concurrent_writers(str(tmp_path / "log.sqlite"), None)


@pytest.mark.postgres
def test_concurrent_writer_processes_postgres(pg_available: str, pg_schema: str) -> None:
    """Four processes append singles and batches to one PostgreSQL log at once."""
    _concurrent_writers(pg_available, pg_schema)


def _killed_writer(target: str, schema: str | None) -> None:
    with Ledger(target, origin="kill/log", schema=schema):
        pass
    acked: dict[int, str] = {}
    for attempt in range(3):
        worker = _spawn(target, schema, f"k{attempt}", -1)
        assert worker.stdout is not None
        deadline = time.monotonic() + 60
        lines = 0
        while lines < 150 + 40 * attempt and time.monotonic() < deadline:
            line = worker.stdout.readline()
            if not line.endswith("\n"):
                break
            index, subject = line.split(" ", 1)
            acked[int(index)] = subject.strip()
            lines += 1
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        assert worker.stdout is not None
        # Complete lines printed before the kill landed were acknowledged too.
        for line in worker.stdout.read().split("\n")[:-1]:
            index, subject = line.split(" ", 1)
            acked[int(index)] = subject
        worker.stdout.close()
        assert worker.stderr is not None
        worker.stderr.close()
        assert lines > 0
        with Ledger(target, schema=schema) as log:
            _check(log, acked)


def test_sigkilled_writer_loses_no_acknowledged_entry_sqlite(tmp_path: Path) -> None:
    """A writer killed mid-append three times: every acknowledged entry survives, log verifies."""
    _killed_writer(str(tmp_path / "log.sqlite"), None)


@pytest.mark.postgres
def test_sigkilled_writer_loses_no_acknowledged_entry_postgres(
    pg_available: str, pg_schema: str
) -> None:
    _killed_writer(pg_available, pg_schema)
