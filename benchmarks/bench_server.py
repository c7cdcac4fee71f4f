"""Decisions per second over HTTP with durable logging: the review server under load.

A real server (`uvicorn mesaguard.server:app_from_env`, as `mesaguard serve` runs it) on
127.0.0.1 with a SQLite gate store and a durable Ethics Review Log (``durability="full"``:
every append is fsynced before the agent gets its answer). Several client connections
(keep-alive HTTP/1.1, a minimal asyncio client so the load generator costs little CPU) submit a
seeded mix of decisions from one agent at L2 with a robustly-aligned verdict: priority, story
points and routing, confidences 0.7 to 1, so some are applied and some queued by the default
constitution and the 10 % audit sample. Each request is one decision (no batching on the
wire). Reports decisions/s, p50 / p99 / max latency, status codes, outcomes, and checks the log
afterwards (`verify_log`: every entry hashed into the tree, size as expected).

``--cpus 0,1`` pins the server's processes to those cores with ``taskset`` (the 2-core target);
the client then runs on the remaining cores when there are any.

Run ``python benchmarks/bench_server.py`` (``--n`` decisions, ``--connections``,
``--workers``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import httpx

import mesaguard
from _report import machine_line, markdown_table, print_table, write_section
from mesaguard.agents import Decision
from mesaguard.gate import AutonomyLevel, GateConfig, Role, Submission
from mesaguard.items import ActionType, WorkItem
from mesaguard.ledger import Ledger, verify_log
from mesaguard.server import AuthStore, ServerSettings

PRIORITIES = ["Blocker", "Critical", "Major", "Minor", "Trivial"]
SEED = 20261127


def submissions(n: int, seed: int) -> list[Submission]:
    """A seeded mix of decisions by agent ``bench-bot`` in tenant ``bench``."""
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
        key = f"BENCH-{index}"
        out.append(
            Submission(
                idempotency_key=f"bench-{seed}-{index}",
                tenant="bench",
                agent="bench-bot",
                decision=Decision(
                    item_key=key,
                    context="deployed",
                    action=action,
                    value=value,
                    confidence=round(rng.uniform(0.7, 1.0), 3),
                    rationale="seeded benchmark decision",
                ),
                item=WorkItem(key=key, title=f"Benchmark issue {index}", priority=current),
                current_value=current if action is ActionType.SET_PRIORITY else None,
                labels=["security"] if rng.random() < 0.05 else [],
            )
        )
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    settings: ServerSettings, workdir: Path, workers: int, cpus: str | None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "mesaguard.server:app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if cpus and shutil.which("taskset"):
        command = ["taskset", "-c", cpus, *command]
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env={**os.environ, **settings.to_env()}, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((workdir / "server.log").read_text())
        try:
            if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a process and all its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in times.items():
        walk = pid
        while walk > 1 and walk != root:
            walk = parents.get(walk, 0)
        if walk == root:
            total += seconds
    return total


def encode(port: int, token: str, body: bytes) -> bytes:
    head = (
        "POST /api/v1/decisions HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def drive(
    port: int, requests: list[bytes], connections: int
) -> tuple[float, list[float], Counter[str]]:
    """Send every request over ``connections`` keep-alive connections; latencies in seconds."""
    latencies: list[float] = []
    tally: Counter[str] = Counter()
    position = 0

    async def worker() -> None:
        nonlocal position
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while position < len(requests):
                request = requests[position]
                position += 1
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                code = head[9:12].decode()
                if code == "200":
                    outcome = body.split(b'"outcome":"', 1)[1].split(b'"', 1)[0].decode()
                    tally[outcome] += 1
                else:
                    tally[f"HTTP {code}"] += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, latencies, tally


def run(n: int, connections: int, workers: int, cpus: str | None, warmup: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        workdir = Path(tmp)
        settings = ServerSettings(
            db=str(workdir / "gate.sqlite"),
            ledger=str(workdir / "log.sqlite"),
            log_origin="bench.mesaguard/log",
            gate=GateConfig(
                autonomy={action: AutonomyLevel.L2 for action in ActionType},
                canary_rate=0.0,
                seed=SEED,
            ),
            monitor_interval=3600,  # no verification passes during the run
        )
        auth = AuthStore(settings.db)
        auth.add_user("bench-bot", role=Role.AGENT, tenant="bench")
        auth.add_user("bench-admin", role=Role.ADMIN, tenant="bench")
        agent_token = auth.add_token("bench-bot").token
        admin_token = auth.add_token("bench-admin").token
        auth.close()
        process, url = start_server(settings, workdir, workers, cpus)
        try:
            httpx.put(
                url + "/api/v1/agents/bench-bot/verdict",
                json={"verdict": "robustly-aligned"},
                headers={"Authorization": f"Bearer {admin_token}"},
            ).raise_for_status()
            port = int(url.rsplit(":", 1)[1])
            bodies = [
                encode(port, agent_token, s.model_dump_json().encode())
                for s in submissions(n + warmup, SEED)
            ]
            asyncio.run(drive(port, bodies[:warmup], connections))
            server_cpu = tree_cpu_seconds(process.pid)
            client_cpu = time.process_time()
            seconds, latencies, tally = asyncio.run(drive(port, bodies[warmup:], connections))
            client_cpu = time.process_time() - client_cpu
            server_cpu = tree_cpu_seconds(process.pid) - server_cpu
        finally:
            process.terminate()
            process.wait(timeout=30)
        with Ledger(settings.ledger) as log:
            report = verify_log(log)
            size = log.size()
    ordered = sorted(latencies)
    return {
        "workers": workers,
        "connections": connections,
        "decisions": n,
        "seconds": seconds,
        "rate": n / seconds,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
        "max_ms": 1000 * ordered[-1],
        "outcomes": dict(sorted(tally.items())),
        "server_cpu_ms": 1000 * server_cpu / n,
        "client_cpu_ms": 1000 * client_cpu / n,
        "log_entries": size,
        "log_verified": report.tree_size == size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000, help="decisions per configuration")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--connections", type=int, nargs="+", default=[32])
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--cpus", default=None, help="pin the server to these cores (taskset)")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()

    results = [
        run(args.n, connections, workers, args.cpus, args.warmup)
        for workers in args.workers
        for connections in args.connections
    ]
    columns = [
        "workers",
        "connections",
        "decisions/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU ms / decision",
        "outcomes",
    ]
    rows = [
        [
            r["workers"],
            r["connections"],
            f"{r['rate']:,.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            f"{r['server_cpu_ms']:.2f}",
            ", ".join(f"{k} {v}" for k, v in r["outcomes"].items()),  # type: ignore[attr-defined]
        ]
        for r in results
    ]
    print_table("review server over HTTP, durable log", columns, rows)
    print(json.dumps(results, indent=2))
    if args.no_write:
        return
    pinned = f"server pinned to cores {args.cpus} with taskset" if args.cpus else "not pinned"
    body = "\n\n".join(
        [
            "## Review server over HTTP (`benchmarks/bench_server.py`)",
            f"Machine: {machine_line()}; {pinned}; mesaguard {mesaguard.__version__}, "
            f"uvicorn {version('uvicorn')}, FastAPI {version('fastapi')}; seed {SEED}.",
            "Each request submits one decision (`POST /api/v1/decisions`, bearer token, JSON "
            "body) to a real `uvicorn` server with a SQLite gate store and a durable Ethics "
            'Review Log (`durability="full"`: fsync before the answer). Agent at L2 with a '
            "robustly-aligned verdict, default constitution, 10 % audit sample, no canary. "
            f"{args.warmup} warm-up requests first. After the run the whole log is verified.",
            markdown_table(columns, rows),
            "Target (issue 6): at least 1,000 decisions/s on 2 cores with p50 / p99 reported.",
        ]
    )
    write_section("server", body)


if __name__ == "__main__":
    main()
