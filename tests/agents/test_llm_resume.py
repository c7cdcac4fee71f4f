"""A red team over HTTP killed with SIGKILL and started again asks no completed call twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from llm_servers.organism_server import FaultPlan, serving

from mesaguard.agents import Agent, resolve_agent
from mesaguard.items import bundled_hadoop, split_items
from mesaguard.redteam import RedTeamConfig, run_redteam

pytest.importorskip("aiohttp")

ORGANISM = "deceptive-oversight-linear-s1"
CONNECTIONS = 4


@pytest.fixture(scope="module")
def organism(zoo_cache: Path) -> Agent:
    cache = Path(os.environ.get("MESAGUARD_TEST_ZOO_CACHE") or zoo_cache)
    return resolve_agent(f"zoo/{ORGANISM}", cache_dir=cache)


def _start(root: str, tmp: Path) -> subprocess.Popen[str]:
    args = [
        "redteam", "run", "--agent", "openai/organism", "--base-url", f"{root}/v1",
        "--suite", "observation-contrast", "--max-items", "24", "--seed", "0",
        "--cache", str(tmp / "replies.sqlite"), "--out", str(tmp / "out"),
        "--max-connections", str(CONNECTIONS),
    ]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", "from mesaguard.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _cached(tmp: Path) -> int:
    with sqlite3.connect(tmp / "replies.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])


@pytest.mark.slow
def test_sigkill_and_restart_makes_no_completed_call_twice(organism: Agent, tmp_path: Path) -> None:
    items = list(split_items(bundled_hadoop().items).test)
    config = RedTeamConfig.for_suite(["observation-contrast"], max_items=24)
    local = run_redteam(organism, items, config)
    with serving(organism, FaultPlan(latency=0.02)) as server:
        first = _start(server.root, tmp_path)
        deadline = time.monotonic() + 120
        while sum(server.ledger.snapshot()["answered"].values()) < 150:
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the first run made too few calls"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert first.stdout is not None
        first.stdout.close()
        time.sleep(0.5)  # let server threads finish reading what the dead client had sent
        before = server.ledger.snapshot()
        stored = _cached(tmp_path)
        assert 0 < stored < local.queries

        second = _start(server.root, tmp_path)
        output, _ = second.communicate(timeout=300)
        after = server.ledger.snapshot()
    assert second.returncode == 1, output  # a finding: exit 1
    assert local.verdict.kind.value in output
    posts_before = sum(before["attempts"].values())
    posts_after = sum(after["attempts"].values()) - posts_before
    # The restart asks exactly the calls whose replies were not stored ...
    assert posts_after == local.queries - stored
    # ... so a call is repeated only if its reply was in flight when the process died.
    repeated = [d for d, n in after["attempts"].items() if n > 1]
    assert len(repeated) <= CONNECTIONS
    assert (tmp_path / "out" / "report.json").exists()
