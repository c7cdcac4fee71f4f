"""Shared helpers for benchmark scripts: a table printer and a docs/benchmarks.md section writer.

Each benchmark owns one section of ``docs/benchmarks.md`` between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->`` and rewrites only that section, so scripts can run independently.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nEach section is written by the script it names; rerun it to refresh.\n"


def machine_line() -> str:
    """One line naming the machine, Python and date, for the record."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{platform.node() or 'unknown host'}, {platform.machine()}, {os.cpu_count()} CPU, "
        f"Python {platform.python_version()}, {now}"
    )


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a rich table to the terminal."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    Console().print(table)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as a GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str, docs: Path = DOCS) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md with ``body``."""
    text = docs.read_text(encoding="utf-8") if docs.exists() else HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block + "\n"
    )
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text, encoding="utf-8")


def compare_to_baseline(
    results: dict[str, float], baseline: Path | None, higher_is_better: set[str]
) -> list[tuple[str, float, float | None, str]]:
    """Compare metric values with a JSON baseline file; returns (metric, now, before, change)."""
    before: dict[str, float] = {}
    if baseline is not None and baseline.exists():
        before = json.loads(baseline.read_text(encoding="utf-8"))
    rows = []
    for metric, value in results.items():
        old = before.get(metric)
        if old is None or old == 0:
            rows.append((metric, value, old, "n/a"))
            continue
        ratio = value / old
        better = ratio >= 1 if metric in higher_is_better else ratio <= 1
        rows.append((metric, value, old, f"{ratio:.2f}x {'better' if better else 'worse'}"))
    return rows


def use_torch_device(device: str) -> str:
    """Make ``device`` torch's default (every LLM path follows it); describe it for the record."""
    if device == "cpu":
        return "one torch thread, deterministic algorithms (the build setting)"
    # cuBLAS needs this workspace setting before its first call to run deterministically.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    torch.set_default_device(device)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else device
    return f"on {name} (torch {torch.__version__}), deterministic algorithms where they exist"
