"""Red-team harness throughput: paired trials per second end to end, and overhead per trial.

Run: ``.venv/bin/python benchmarks/bench_redteam.py`` (writes the ``redteam`` section of
docs/benchmarks.md). The agents are batched and answer from a lookup (no model), so nearly all
the time measured is the harness's own: planning pairs, de-duplicating requests, scheduling,
sequential looks, analysis and the report. The time spent inside ``decide`` is measured
separately and subtracted to give the harness overhead per pair. Each row is the median of
``REPEATS`` runs (the machine is shared, so the best run is shown too).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_line, markdown_table, print_table, write_section  # noqa: E402
from mesaguard.agents import Decision, DecisionRequest  # noqa: E402
from mesaguard.items import ActionType, Priority, bundled_hadoop, dataset_hash, split_items  # noqa: E402
from mesaguard.redteam import RedTeamConfig, run_redteam  # noqa: E402

REPEATS = 7
_NAMES = {p: str(p) for p in Priority}
_FIELDS = frozenset({"item_key", "context", "action", "value", "confidence", "valid"})


def _decision(item_key: str, context: str, value: str) -> Decision:
    """A valid Decision without pydantic's per-field default handling (about 1 µs, not 16)."""
    decision = object.__new__(Decision)
    object.__setattr__(
        decision,
        "__dict__",
        {
            "item_key": item_key,
            "context": context,
            "action": ActionType.SET_PRIORITY,
            "value": value,
            "confidence": 1.0,
            "rationale": None,
            "agent": "lookup",
            "valid": True,
            "raw": None,
        },
    )
    object.__setattr__(decision, "__pydantic_fields_set__", _FIELDS)
    object.__setattr__(decision, "__pydantic_extra__", None)
    object.__setattr__(decision, "__pydantic_private__", None)
    return decision


class LookupAgent:
    """The cheapest possible agent: the ground truth, no model; times its own ``decide``."""

    name = "lookup"

    def __init__(self, noise: float = 0.0) -> None:
        self.noise = noise
        self.seconds = 0.0

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """Answer every request with its ground truth (moved one level at rate ``noise``)."""
        started = time.perf_counter()
        out = []
        for r in requests:
            level = r.item.priority or Priority.MAJOR
            if self.noise:
                digest = hashlib.blake2b(
                    f"{r.item.key}|{r.context.name}".encode(), digest_size=2
                ).digest()
                if digest[0] < 256 * self.noise:
                    level = Priority(min(5, max(1, int(level) + (1 if digest[1] & 1 else -1))))
            out.append(_decision(r.item.key, r.context.name, _NAMES[level]))
        self.seconds += time.perf_counter() - started
        return out


CASES = (
    ("fixed", "lookup", False, 0.0),
    ("sequential", "lookup (clears early)", True, 0.0),
    ("sequential", "lookup, 30% noise", True, 0.3),
)


def main() -> None:
    items = list(split_items(bundled_hadoop().items).test)
    data_hash = dataset_hash(items)  # computed once when data is loaded, as the CLI does
    rows = []
    for mode, label, sequential, noise in CASES:
        config = RedTeamConfig(sequential=sequential)
        run_redteam(LookupAgent(noise), items[:50], config)  # warm-up
        timings = []
        for _ in range(REPEATS):
            agent = LookupAgent(noise)
            started, cpu = time.perf_counter(), time.process_time()
            report = run_redteam(agent, items, config, data_hash=data_hash)
            timings.append(
                (time.perf_counter() - started, agent.seconds, time.process_time() - cpu)
            )
        elapsed, agent_s, _ = sorted(timings)[len(timings) // 2]
        best = min(t for t, _, _ in timings)
        cpu_s = sorted(c for _, _, c in timings)[len(timings) // 2]
        pairs = max(1, report.pairs)
        rows.append(
            (
                mode,
                label,
                report.pairs,
                report.queries,
                f"{elapsed:.3f}",
                f"{report.pairs / elapsed:,.0f}",
                f"{report.pairs / best:,.0f}",
                f"{report.pairs / cpu_s:,.0f}",
                f"{1e6 * agent_s / pairs:.1f}",
                f"{1e6 * (elapsed - agent_s) / pairs:.1f}",
            )
        )
    columns = (
        "mode",
        "agent",
        "pairs",
        "queries",
        "seconds",
        "pairs/s",
        "pairs/s (best)",
        "pairs per CPU-s",
        "agent µs/pair",
        "harness µs/pair",
    )
    print_table("Red-team harness throughput (lookup agent)", columns, rows)
    write_section(
        "redteam",
        "## Red-team harness\n\n"
        f"{machine_line()}\n\n"
        "`benchmarks/bench_redteam.py`: every built-in probe on the Hadoop test split (all "
        "items) against a lookup agent (no model), end to end: planning the pairs, asking, "
        "sequential looks, analysis and the report (the data hash is computed once at load, "
        f"as the CLI does). Median of {REPEATS} runs on a shared machine; *best* is the "
        "fastest; *pairs per CPU-s* divides by the process's CPU time (median), which other "
        "engineers' load on the shared cores inflates less. *agent µs/pair* is the time "
        "inside `decide`; *harness µs/pair* is "
        "everything else. The sequential rows analyse fewer pairs because they stop: the "
        "noiseless lookup agent is cleared after a few rounds, the noisy one needs more.\n\n"
        + markdown_table(columns, rows),
    )


if __name__ == "__main__":
    main()
