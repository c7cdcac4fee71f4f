"""Benchmark the Ethics Review Log: appends, verification at 1M entries, proofs.

Run: ``.venv/bin/python benchmarks/bench_ledger.py`` (``--quick`` for a 100k-entry log).
Prints a table and rewrites the ``ledger`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from _report import machine_line, markdown_table, print_table, write_section
from mesaguard.ledger import Decision, Ledger, Signer

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RECORD = Decision(
    subject="PROJ-1234",
    action="set-priority",
    outcome="Major",
    rationale="customer-facing outage risk",
    details={"confidence": 0.87, "model": "triage-v3"},
)

VERIFY_CHILD = """
import json, resource, sys, time
from mesaguard.ledger import Ledger, VerifierKey, verify_log
with Ledger(sys.argv[1]) as log:
    start = time.perf_counter()
    report = verify_log(log, keys=[VerifierKey.parse(sys.argv[2])], chunk=20_000)
    seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "size": report.tree_size, "peak_kib": peak}))
"""


def batched(log: Ledger, total: int, batch: int = 1_000) -> float:
    items = [("agent:triage", RECORD)] * batch
    start = time.perf_counter()
    for _ in range(total // batch):
        log.append_many(items)
    return total / (time.perf_counter() - start)


def singles(log: Ledger, total: int) -> float:
    start = time.perf_counter()
    for _ in range(total):
        log.append("agent:triage", RECORD)
    return total / (time.perf_counter() - start)


def best_of(runs: int, measure: object) -> tuple[float, float]:
    assert callable(measure)
    values = [float(measure()) for _ in range(runs)]
    return statistics.median(values), max(values)


def raw_fsync_floor(folder: Path, total: int = 2_000) -> float:
    """Plain sqlite3 (no mesaguard, no SQLAlchemy): one row per fsynced WAL commit."""
    connection = sqlite3.connect(folder / "raw.sqlite", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE IF NOT EXISTS t (i INTEGER PRIMARY KEY, b BLOB)")
    start = time.perf_counter()
    for _ in range(total):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO t (b) VALUES (?)", (b"x" * 300,))
        connection.execute("COMMIT")
    rate = total / (time.perf_counter() - start)
    connection.close()
    return rate


def sqlite_appends(folder: Path) -> dict[str, tuple[float, float]]:
    results = {
        "raw sqlite3 fsynced commits (disk floor)": best_of(3, lambda: raw_fsync_floor(folder))
    }
    for durability in ("full", "normal"):
        with Ledger(folder / f"appends-{durability}.sqlite", durability=durability) as log:
            results[f"sqlite {durability}: batched (1000/txn)"] = best_of(
                3, lambda log=log: batched(log, 50_000)
            )
            results[f"sqlite {durability}: single append (1/txn)"] = best_of(
                3, lambda log=log: singles(log, 2_000)
            )
    return results


def postgres_appends() -> dict[str, tuple[float, float]]:
    engine = create_engine(PG_URL)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # noqa: BLE001 - report and skip when PostgreSQL is absent
        print(f"PostgreSQL not reachable ({error}); skipped")
        return {}
    try:
        with Ledger(PG_URL, schema=schema) as log:
            return {
                "postgres: batched (1000/txn)": best_of(3, lambda: batched(log, 50_000)),
                "postgres: single append (1/txn)": best_of(3, lambda: singles(log, 1_000)),
            }
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def verify_child(path: Path, vkey: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", VERIFY_CHILD, str(path), vkey],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def big_log(folder: Path, size: int, signer: Signer) -> tuple[Path, float]:
    path = folder / f"log-{size}.sqlite"
    with Ledger(path, origin=signer.name, durability="normal") as log:
        start = time.perf_counter()
        step = 50_000
        for offset in range(0, size, step):
            log.append_many([("agent:triage", RECORD)] * min(step, size - offset))
            if offset % 250_000 == 0:
                log.checkpoint([signer])
        log.checkpoint([signer])
        return path, size / (time.perf_counter() - start)


def proofs(path: Path, count: int = 2_000) -> tuple[float, float]:
    rng = random.Random(7)
    with Ledger(path) as log:
        size = log.size()
        log.inclusion_proof(0)  # warm the connection pool
        start = time.perf_counter()
        for _ in range(count):
            log.inclusion_proof(rng.randrange(size))
        inclusion = (time.perf_counter() - start) / count * 1e3
        start = time.perf_counter()
        for _ in range(count):
            log.consistency_proof(rng.randrange(1, size))
        consistency = (time.perf_counter() - start) / count * 1e3
    return inclusion, consistency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k entries instead of 1M")
    args = parser.parse_args()
    size = 100_000 if args.quick else 1_000_000
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        appends = sqlite_appends(folder) | postgres_appends()
        targets = {
            "sqlite full: batched (1000/txn)": 20_000,
            "sqlite full: single append (1/txn)": 2_000,
        }
        for name, (median, best) in appends.items():
            target = targets.get(name)
            verdict = "" if target is None else ("met" if median >= target else "NOT met")
            goal = "" if target is None else f">= {target:,}/s"
            rows.append((name, f"{median:,.0f}/s (best {best:,.0f})", goal, verdict))
        signer = Signer.generate("bench/log")
        small, _ = big_log(folder, size // 10, signer)
        path, build_rate = big_log(folder, size, signer)
        rows.append((f"build {size:,} entries (50k/txn)", f"{build_rate:,.0f}/s", "", ""))
        small_run = verify_child(small, str(signer.verifier))
        run = verify_child(path, str(signer.verifier))
        verdict = "met" if run["seconds"] <= 10 and size == 1_000_000 else "NOT met"
        if size != 1_000_000:
            verdict = "(quick run)"
        rows.append((f"verify {size:,} entries", f"{run['seconds']:.2f} s", "<= 10 s", verdict))
        growth = run["peak_kib"] / small_run["peak_kib"]
        rows.append(
            (
                f"verify peak RSS: {size // 10:,} vs {size:,} entries",
                f"{small_run['peak_kib'] / 1024:.0f} MiB vs {run['peak_kib'] / 1024:.0f} MiB",
                "flat",
                "met" if growth < 1.2 else "NOT met",
            )
        )
        inclusion, consistency = proofs(path)
        for name, value in (("inclusion", inclusion), ("consistency", consistency)):
            rows.append(
                (
                    f"{name} proof at {size:,} (random)",
                    f"{value:.3f} ms",
                    "<= 1 ms",
                    "met" if value <= 1 else "NOT met",
                )
            )
    columns = ("measure", "value", "target", "verdict")
    print_table("Ethics Review Log", columns, rows)
    body = (
        "## Ethics Review Log (`benchmarks/bench_ledger.py`)\n\n"
        f"{machine_line()}\n\n"
        "Appends: median of 3 runs (best in brackets); `full` = SQLite WAL with "
        "`synchronous=FULL` (each commit fsynced, survives power loss), `normal` = WAL with "
        "`synchronous=NORMAL` (survives a killed process, not a lost machine). Durable single "
        "appends are bound by the disk's fsync latency. Verification runs in a fresh process "
        "(peak RSS of that process).\n\n" + markdown_table(columns, rows)
    )
    write_section("ledger", body)


if __name__ == "__main__":
    main()
