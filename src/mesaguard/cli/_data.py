"""`mesaguard data`: look at issue data the way mesaguard reads it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.table import Table

from ._common import console

data_app = typer.Typer(
    help="Read issue data: Jira CSV exports, story-point CSVs, JSON Lines.", no_args_is_help=True
)


@data_app.command("inspect")
def inspect(
    path: Annotated[
        Path | None, typer.Argument(help="Data file; omit for the bundled Hadoop data.")
    ] = None,
    data_format: Annotated[
        str, typer.Option("--format", help="auto, jira, storypoints or jsonl.")
    ] = "auto",
    skip_bad_rows: Annotated[
        bool,
        typer.Option(
            "--skip-bad-rows",
            help="Count and skip malformed rows instead of stopping at the first.",
        ),
    ] = False,
    project: Annotated[
        str | None, typer.Option(help="Project key for files whose keys carry none.")
    ] = None,
) -> None:
    """Load a data file and summarise it: rows, skipped rows, priorities, splits and data hash."""
    from ..items import bundled_hadoop, load_items, split_items
    from ..items._loaders import DataFormat

    if data_format not in ("auto", "jira", "storypoints", "jsonl"):
        raise typer.BadParameter(f"unknown format {data_format!r}", param_hint="--format")
    if path is None:
        loaded = bundled_hadoop()
    else:
        chosen = cast(DataFormat, data_format)
        loaded = load_items(path, data_format=chosen, strict=not skip_bad_rows, project=project)
    console.print(
        f"[bold]{loaded.source}[/]: {len(loaded.items)} items, {len(loaded.skipped)} rows skipped"
    )
    console.print(f"data hash: {loaded.data_hash}")
    for problem in loaded.skipped[:10]:
        where = f"row {problem.row}" + (f', column "{problem.column}"' if problem.column else "")
        console.print(f"  skipped {where}: {problem.message}")
    if len(loaded.skipped) > 10:
        console.print(f"  … and {len(loaded.skipped) - 10} more")
    priorities = Counter(str(i.priority) for i in loaded.items if i.priority is not None)
    if priorities:
        table = Table(title="Priorities")
        table.add_column("priority")
        table.add_column("items", justify="right")
        table.add_column("share", justify="right")
        total = sum(priorities.values())
        for name, count in priorities.most_common():
            table.add_row(name, str(count), f"{count / total:.1%}")
        console.print(table)
    points = [i.story_points for i in loaded.items if i.story_points is not None]
    if points:
        console.print(
            f"story points: {len(points)} items, "
            f"median {sorted(points)[len(points) // 2]:g}, max {max(points):g}"
        )
    splits = split_items(loaded.items)
    console.print(
        f"splits by key hash: train {len(splits.train)}, "
        f"calibration {len(splits.calibration)}, test {len(splits.test)}"
    )
