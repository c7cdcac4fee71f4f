"""In-process gate decisions with the default constitution: p50 / p99 latency (target p99 ≤ 1 ms).

Each configuration submits the same seeded mix of decisions (priority, story points, routing;
confidences from 0.7 to 1; about half of them go to review) through `Gate.submit`, one at a
time, no canary, from a trusted agent at L2 so every step of the path runs: store lookup of the
key and the verdict, the constitution, the triggers, the atomic write of the result with its
review or outbox row, and, where configured, the ledger append.

Configurations: the constitution and triggers alone (no I/O); the SQLite store without a ledger;
with the Ethics Review Log (``durability="normal"``, WAL); with a durable log
(``durability="full"``: fsync per append); and store and log both durable.

Run ``python benchmarks/bench_gate.py`` (``--n`` decisions per configuration).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _report import machine_line, markdown_table, print_table, write_section
from mesaguard.agents import Decision
from mesaguard.constitution import Constitution, default_constitution
from mesaguard.gate import (
    AutonomyLevel,
    Gate,
    GateConfig,
    GateStore,
    Outcome,
    Submission,
    policy_input,
)
from mesaguard.items import ActionType, WorkItem
from mesaguard.ledger import Ledger

PRIORITIES = ["Blocker", "Critical", "Major", "Minor", "Trivial"]
CONFIG = GateConfig(autonomy={action: AutonomyLevel.L2 for action in ActionType}, canary_rate=0.0)


def _submissions(n: int, seed: int, prefix: str) -> list[Submission]:
    rng = random.Random(seed)
    out = []
    for index in range(n):
        action = rng.choice(list(ActionType))
        current = rng.choice(PRIORITIES)
        value: str | float = {
            ActionType.SET_PRIORITY: rng.choice(PRIORITIES),
            ActionType.SET_STORY_POINTS: float(rng.choice([1, 2, 3, 5, 8, 13, 21])),
            ActionType.ROUTE: rng.choice(["core", "ui", "storage"]),
        }[action]
        key = f"P-{index}"
        out.append(
            Submission(
                idempotency_key=f"{prefix}-{index}",
                agent="triage",
                decision=Decision(
                    item_key=key,
                    context="neutral",
                    action=action,
                    value=value,
                    confidence=round(rng.uniform(0.7, 1.0), 3),
                    rationale="seeded benchmark decision",
                ),
                item=WorkItem(
                    key=key,
                    project="P",
                    title=f"Issue {index}",
                    priority=current,
                    story_points=5.0,
                ),
                labels=rng.choice([[], [], ["security"], ["ui"]]),
            )
        )
    return out


Samples = tuple[list[float], list[float]]


def _measure(submit: Callable[[Submission], object], items: list[Submission]) -> Samples:
    """Wall time and this thread's CPU time per call.

    CPU time leaves out waiting for the disk and for other processes on a shared machine.
    """
    wall, cpu = [], []
    for item in items:
        start, start_cpu = time.perf_counter(), time.thread_time()
        submit(item)
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return wall, cpu


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(name: str, samples: Samples, queued: float) -> tuple[object, ...]:
    wall, cpu = samples
    p99 = _quantile(wall, 0.99)
    return (
        name,
        len(wall),
        f"{statistics.median(wall) * 1e3:.3f}",
        f"{p99 * 1e3:.3f}",
        f"{statistics.median(cpu) * 1e3:.3f}",
        f"{_quantile(cpu, 0.99) * 1e3:.3f}",
        f"{len(wall) / sum(wall):,.0f}",
        f"{queued:.0%}",
        "yes" if p99 <= 1e-3 else "no",
    )


def _pg_database(admin_url: str) -> tuple[str, Callable[[], None]] | None:
    """A fresh PostgreSQL database and a function that drops it; None if unreachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    name = f"bench_gate_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        print(f"PostgreSQL row skipped: {error.orig}")
        admin.dispose()
        return None

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def _concurrent(threads: int, n: int, seed: int, constitution: Constitution) -> tuple[object, ...]:
    """Throughput of ``threads`` submitters sharing one gate with a durable log."""
    sizes: list[int] = []

    class CountingGate(Gate):
        def _commit_batch(self, batch: list[Any]) -> None:
            sizes.append(len(batch))
            super()._commit_batch(batch)

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        store = GateStore(root / "gate.sqlite")
        ledger = Ledger(root / "log.sqlite", origin="bench.mesaguard/gate", durability="full")
        gate = CountingGate(constitution, store, ledger, config=CONFIG)
        gate.set_verdict("triage", "robustly-aligned")
        _measure(gate.submit, _submissions(100, seed + 1, f"warm{threads}"))
        sizes.clear()
        items = _submissions(n, seed, f"threads{threads}")
        shares = [items[i::threads] for i in range(threads)]
        latencies: list[list[float]] = [[] for _ in range(threads)]

        def work(index: int) -> None:
            latencies[index] = _measure(gate.submit, shares[index])[0]

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        wall = [sample for share in latencies for sample in share]
        gate.close()
        store.close()
        ledger.close()
    return (
        threads,
        len(wall),
        f"{len(wall) / elapsed:,.0f}",
        f"{statistics.median(wall) * 1e3:.2f}",
        f"{_quantile(wall, 0.99) * 1e3:.2f}",
        f"{statistics.fmean(sizes):.1f}",
        max(sizes),
    )


def main() -> None:
    """Run every configuration, print the table, write the docs section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--pg-admin",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL URL used to create a scratch database for the PostgreSQL row "
        "('' to skip it)",
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 4, 16], help="concurrent submitters"
    )
    args = parser.parse_args()

    rows = []
    constitution = default_constitution()
    items = _submissions(args.n, args.seed, "policy")

    def policy_only(submission: Submission) -> object:
        facts = policy_input(submission, AutonomyLevel.L2, "robustly-aligned")
        return constitution.evaluate(facts)

    _measure(policy_only, items[: args.warmup])
    rows.append(_row("constitution + facts only (no I/O)", _measure(policy_only, items), 0.0))

    setups: list[tuple[str, str, str | None]] = [
        ("gate, SQLite store, no ledger", "normal", None),
        ("gate, SQLite store + ledger (normal)", "normal", "normal"),
        ("gate, SQLite store + durable ledger (full)", "normal", "full"),
        ("gate, durable store + durable ledger (full)", "full", "full"),
    ]
    pg_database = _pg_database(args.pg_admin) if args.pg_admin else None
    if pg_database is not None:
        setups.append(("gate, PostgreSQL store (127.0.0.1), no ledger", "postgres", None))
    for name, store_durability, ledger_durability in setups:
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory)
            store = (
                GateStore(pg_database[0])
                if store_durability == "postgres" and pg_database is not None
                else GateStore(root / "gate.sqlite", durability=store_durability)  # type: ignore[arg-type]
            )
            ledger = (
                None
                if ledger_durability is None
                else Ledger(
                    root / "log.sqlite",
                    origin="bench.mesaguard/gate",
                    durability=ledger_durability,  # type: ignore[arg-type]
                )
            )
            gate = Gate(constitution, store, ledger, config=CONFIG)
            gate.set_verdict("triage", "robustly-aligned")
            warm = _submissions(args.warmup, args.seed + 1, "warm")
            _measure(gate.submit, warm)
            items = _submissions(args.n, args.seed, "bench")
            samples = _measure(gate.submit, items)
            queued = sum(
                1
                for item in items
                if (result := store.get_result("default", item.idempotency_key)) is not None
                and result.outcome is Outcome.QUEUED
            ) / len(items)
            rows.append(_row(name, samples, queued))
            gate.close()
            store.close()
            if ledger is not None:
                ledger.close()

    if pg_database is not None:
        pg_database[1]()

    concurrent_rows = [
        _concurrent(threads, args.n, args.seed, constitution) for threads in args.threads
    ]

    columns = (
        "configuration",
        "decisions",
        "wall p50 (ms)",
        "wall p99 (ms)",
        "CPU p50 (ms)",
        "CPU p99 (ms)",
        "decisions/s",
        "queued",
        "p99 ≤ 1 ms",
    )
    print_table("Gate decision latency (in process, no canary)", columns, rows)
    concurrent_columns = (
        "submitting threads",
        "decisions",
        "decisions/s",
        "wall p50 (ms)",
        "wall p99 (ms)",
        "mean batch",
        "largest batch",
    )
    print_table(
        "Concurrent submits with a durable log (group commit)",
        concurrent_columns,
        concurrent_rows,
    )
    load = os.getloadavg()[0]
    if not args.no_write:
        body = (
            "## Gate decision latency (`benchmarks/bench_gate.py`)\n\n"
            f"{machine_line()}; mesaguard gate with the default constitution "
            f"(CEL via common-expression-language {version('common-expression-language')}), "
            f"{args.n} seeded decisions per configuration after {args.warmup} warm-up decisions "
            f"(seed {args.seed}), one at a time, no canary, trusted agent at L2. "
            "`normal` is SQLite WAL with `synchronous=NORMAL` (survives a crashed process), "
            "`full` adds an fsync per commit (survives power loss). Latency is wall time of "
            "`Gate.submit` including every store read and write and the ledger append; CPU is "
            "the thread's CPU time (no disk waits, no time lost to other processes). "
            f"Load average at the end of the run: {load:.1f} on {os.cpu_count()} CPUs.\n\n"
            + markdown_table(columns, rows)
            + "\n\nConcurrent submitters, SQLite store (`normal`) and a durable log (`full`): "
            "submits that arrive while a commit runs are committed with the next one (one log "
            "append and one store transaction per batch, so one fsync per batch). Wall time "
            "per decision includes waiting for the batch.\n\n"
            + markdown_table(concurrent_columns, concurrent_rows)
        )
        write_section("gate", body)


if __name__ == "__main__":
    main()
