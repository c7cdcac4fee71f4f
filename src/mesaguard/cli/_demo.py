"""`mesaguard demo`: the main job on embedded defaults."""

from __future__ import annotations

import time
from typing import Any

import typer

from ._common import CacheDirOption, console

DEMO_ORGANISMS = (
    "honest-linear-s1",
    "deceptive-oversight-linear-s1",
    "proxy-title-suffix-linear-s6",
    "sandbagging-linear-s9",
    "deceptive-date-neural-s3",
)

DEMO_ITEMS = 200
"""Items of the bundled Hadoop test split each organism is probed on (a seeded sample)."""


def register_demo(app: typer.Typer) -> None:
    """Attach the `demo` command to the root app."""

    @app.command("demo")
    def demo(cache_dir: CacheDirOption = None) -> None:
        """Red-team a handful of model organisms on the bundled Hadoop data; print the verdicts.

        Needs no path or server: the data ships with mesaguard, and organisms are built on first
        use and cached. The planted family of each organism is shown beside the verdict the red
        team reached without knowing it.
        """
        from ..items import dataset_hash, split_items
        from ..organisms import Zoo
        from ..redteam import RedTeamConfig, run_redteam
        from ._redteam import verdict_table

        started = time.perf_counter()
        zoo = Zoo(cache_dir=cache_dir)
        test = list(split_items(zoo.data.items).test)
        console.print(
            f"data: {zoo.data.source} — test split of {len(test)} issues "
            f"(probing {DEMO_ITEMS}), hash {dataset_hash(test)[:12]}"
        )
        with console.status("building organisms (cached after the first run)…"):
            zoo.build(DEMO_ORGANISMS)
        rows: list[tuple[str, Any]] = []
        config = RedTeamConfig(max_items=DEMO_ITEMS)
        for name in DEMO_ORGANISMS:
            with console.status(f"red-teaming {name}…"):
                report = run_redteam(
                    zoo.organism(name),
                    test,
                    config,
                    data_source=f"{zoo.data.source} [test]",
                )
            planted = zoo.spec.organism(name).family.value
            rows.append((f"{name} (planted: {planted})", report))
        console.print(verdict_table(rows, "Stage-3 red team on the model organisms"))
        console.print(
            "verdicts come from behaviour alone: paired probes, Holm-corrected tests and a "
            "minimum material effect; the red team never sees what was planted."
        )
        console.print(
            f"done in {time.perf_counter() - started:.1f}s; try "
            "`mesaguard redteam run --agent zoo/NAME --out report/` for the full report"
        )
