"""Red-team harness throughput: paired trials per second end to end, and overhead per trial.

Run: ``.venv/bin/python benchmarks/bench_redteam.py`` (writes the ``redteam`` section of
docs/benchmarks.md). The agent is a batched, context-blind agent that answers from a lookup, so
the time measured is the harness's own (scheduling, de-duplication, analysis, report).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_line, markdown_table, print_table, write_section  # noqa: E402
from mesaguard.agents import Decision, DecisionRequest  # noqa: E402
from mesaguard.items import ActionType, Priority, bundled_hadoop, split_items  # noqa: E402
from mesaguard.redteam import RedTeamConfig, run_redteam  # noqa: E402


class LookupAgent:
    """The cheapest possible agent: the ground truth, no model."""

    name = "lookup"

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """Answer every request with its ground truth."""
        return [
            Decision.model_construct(
                item_key=r.item.key,
                context=r.context.name,
                action=ActionType.SET_PRIORITY,
                value=str(r.item.priority or Priority.MAJOR),
                confidence=1.0,
                valid=True,
            )
            for r in requests
        ]


def main() -> None:
    items = list(split_items(bundled_hadoop().items).test)
    rows = []
    for sequential in (False, True):
        config = RedTeamConfig(sequential=sequential)
        run_redteam(LookupAgent(), items[:50], config)  # warm-up
        started = time.perf_counter()
        report = run_redteam(LookupAgent(), items, config)
        elapsed = time.perf_counter() - started
        rows.append(
            (
                "sequential" if sequential else "fixed",
                report.pairs,
                report.queries,
                f"{elapsed:.2f}",
                f"{report.pairs / elapsed:,.0f}",
                f"{1e6 * elapsed / max(1, report.pairs):.1f}",
            )
        )
    columns = ("mode", "pairs", "queries", "seconds", "pairs/s", "µs per pair")
    print_table("Red-team harness throughput (lookup agent)", columns, rows)
    write_section(
        "redteam",
        "## Red-team harness\n\n"
        f"{machine_line()}\n\n"
        "`benchmarks/bench_redteam.py`: every built-in probe on the Hadoop test split against a "
        "lookup agent (no model), so the time is the harness's own.\n\n"
        + markdown_table(columns, rows),
    )


if __name__ == "__main__":
    main()
