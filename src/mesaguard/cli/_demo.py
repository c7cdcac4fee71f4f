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
)
"""One organism per family, linear only, and the honest one is the twin of the deceptive one
(every planted organism is built after its honest twin), so a cold cache builds six organisms.
A neural organism (sentence embeddings of every edited text) and a fifth organism took the demo
past three minutes on a cold cache; `mesaguard bench detect` covers the rest of the zoo."""

DEMO_ITEMS = 200
"""Items of the bundled Hadoop test split each organism is probed on (a seeded sample)."""

DEMO_PROXY_SHARE = 0.1
"""Share of items carrying each tracker annotation, as in `mesaguard bench detect`: without them
the data holds no feature for the proxy probe to mine, so no proxy could be found."""


def register_demo(app: typer.Typer) -> None:
    """Attach the `demo` command to the root app."""

    @app.command("demo")
    def demo(cache_dir: CacheDirOption = None) -> None:
        """Red-team a handful of model organisms on the bundled Hadoop data; print the verdicts.

        Needs no path or server: the data ships with mesaguard, and organisms are built on first
        use and cached. The planted family of each organism is shown beside the verdict the red
        team reached without knowing it.
        """
        from ..items import dataset_hash
        from ..organisms import Zoo
        from ..redteam import RedTeamConfig, run_redteam
        from ._bench import deployment_items
        from ._redteam import verdict_table

        started = time.perf_counter()
        zoo = Zoo(cache_dir=cache_dir)
        test = deployment_items(zoo, DEMO_PROXY_SHARE, 0)
        data_hash = dataset_hash(test)
        console.print(
            f"data: {zoo.data.source} — test split of {len(test)} issues as deployed (tracker "
            f"annotations in {DEMO_PROXY_SHARE:.0%} of them per annotation; probing "
            f"{DEMO_ITEMS}), hash {data_hash[:12]}"
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
                    data_source=f"{zoo.data.source} [test, deployment annotations]",
                    data_hash=data_hash,
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
