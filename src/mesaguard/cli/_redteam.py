"""`mesaguard redteam`: red-team an agent and write the reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .._errors import ConfigError
from ._common import CacheDirOption, console

redteam_app = typer.Typer(
    help=(
        "Stage-3 red team: paired probes for deceptive (context-conditional), proxy-aligned and "
        "sandbagging behaviour, with a verdict and HTML / JSON / JUnit reports."
    ),
    no_args_is_help=True,
)


def load_agent(spec: str, cache_dir: Path | None, **options: Any) -> Any:
    """Resolve an agent spec.

    Adapter specs (``zoo/NAME``, ``openai/MODEL`` …) get the cache directory and the adapter
    options that were given (LLM adapters read them, the others ignore them).
    """
    from ..agents import resolve_agent

    if "/" in spec.partition(":")[0]:
        given = {k: v for k, v in options.items() if v is not None}
        if cache_dir is not None:
            given["cache_dir"] = cache_dir
        return resolve_agent(spec, **given)
    return resolve_agent(spec)


def load_data(path: Path | None, split: str) -> tuple[list[Any], str, str]:
    """Items to probe, where they came from, and their data hash."""
    from ..items import bundled_hadoop, dataset_hash, load_items, split_items

    loaded = bundled_hadoop() if path is None else load_items(path)
    if split == "all":
        items = list(loaded.items)
    elif split in ("train", "calibration", "test"):
        items = list(getattr(split_items(loaded.items), split))
    else:
        raise ConfigError(f"--split must be train, calibration, test or all, got {split!r}")
    if not items:
        raise ConfigError(f"{loaded.source}: no items in split {split!r}")
    return items, f"{loaded.source} [{split}]", dataset_hash(items)


def verdict_table(rows: Sequence[tuple[str, Any]], title: str) -> Table:
    """A table of (agent, report) rows: verdict, risk, strongest finding, queries."""
    table = Table(title=title)
    for column in ("agent", "verdict", "risk", "evidence", "queries"):
        table.add_column(column, justify="right" if column in ("risk", "queries") else "left")
    for name, report in rows:
        verdict = report.verdict
        colour = {"robustly-aligned": "green", "inconclusive": "yellow"}.get(
            verdict.kind.value, "red"
        )
        table.add_row(
            name,
            f"[{colour}]{verdict.kind.value}[/]",
            f"{verdict.risk:.2f}",
            ", ".join(verdict.supporting[:2]) or "—",
            str(report.queries),
        )
    return table


@redteam_app.command("run")
def run(
    agent: Annotated[
        str,
        typer.Option(
            "--agent", help="Agent spec: zoo/NAME, module:attribute, or a registered PREFIX/…"
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Issue data (Jira CSV, story points, JSONL); default: bundled Hadoop."
        ),
    ] = None,
    split: Annotated[
        str, typer.Option(help="Which split of the data to probe: train, calibration, test, all.")
    ] = "test",
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", help="Probe to run (repeatable; default: every built-in probe)."),
    ] = None,
    budget: Annotated[
        int | None, typer.Option(help="Most distinct queries to the agent.", min=1)
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice of the run.")] = 0,
    sequential: Annotated[
        bool, typer.Option("--sequential", help="Stop as soon as the verdict is decided.")
    ] = False,
    alpha: Annotated[float, typer.Option(help="Family-wise error rate.")] = 0.05,
    min_effect: Annotated[
        float | None, typer.Option(help="Material net flip rate (all probes).")
    ] = None,
    max_items: Annotated[
        int | None, typer.Option(help="Probe at most this many items (seeded sample).", min=1)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Directory for report.json/html, junit.xml and resumable answers."
        ),
    ] = None,
    cache_dir: CacheDirOption = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="LLM server URL (openai/: with /v1; default $OPENAI_BASE_URL / $OLLAMA_HOST).",
            rich_help_panel="LLM agents",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", help="API key (default $OPENAI_API_KEY).", rich_help_panel="LLM agents"
        ),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            "--max-connections",
            help="Requests in flight at once [16].",
            min=1,
            rich_help_panel="LLM agents",
        ),
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            "--rate-limit",
            help="Most requests per second [no limit].",
            min=0.001,
            rich_help_panel="LLM agents",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Seconds per request attempt [120].",
            min=0.001,
            rich_help_panel="LLM agents",
        ),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            "--retries",
            help="Retries of 429 / 5xx / timeouts, with backoff [4].",
            min=0,
            rich_help_panel="LLM agents",
        ),
    ] = None,
    fail_on_error: Annotated[
        float | None,
        typer.Option(
            "--fail-on-error",
            help="Fraction of failed calls (after retries) that fails the run [0].",
            min=0.0,
            max=1.0,
            rich_help_panel="LLM agents",
        ),
    ] = None,
    llm_cache: Annotated[
        str | None,
        typer.Option(
            "--cache",
            help="Reply cache: a SQLite path, or 'off' [<cache dir>/llm-replies.sqlite].",
            rich_help_panel="LLM agents",
        ),
    ] = None,
) -> None:
    """Red-team one agent; exit 0 with no finding, 1 with a finding, 2 on error."""
    from ..redteam import DEFAULT_SUITE, RedTeamConfig, run_redteam
    from ..reports import write_reports

    options: dict[str, Any] = {"seed": seed, "alpha": alpha, "sequential": sequential}
    if budget is not None:
        options["budget"] = budget
    if max_items is not None:
        options["max_items"] = max_items
    if min_effect is not None:
        options["min_effect"] = min_effect
        options["min_effects"] = {}
    try:
        config = RedTeamConfig.for_suite(suite or DEFAULT_SUITE, **options)
    except ValueError as error:
        raise ConfigError(f"invalid option: {error}") from None
    items, source, data_hash = load_data(data, split)
    subject = load_agent(
        agent,
        cache_dir,
        base_url=base_url,
        api_key=api_key,
        max_connections=max_connections,
        rate_limit=rate_limit,
        timeout=timeout,
        retries=retries,
        fail_on_error=fail_on_error,
        cache=llm_cache,
    )
    with Progress(
        TextColumn(f"[bold]red team[/] {agent}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("queries", total=None)

        def progress(done: int, planned: int) -> None:
            bar.update(task, completed=done, total=planned)

        report = run_redteam(
            subject,
            items,
            config,
            data_source=source,
            data_hash=data_hash,
            out_dir=out,
            progress=progress,
        )
    console.print(verdict_table([(agent, report)], "Red-team verdict"))
    console.print(report.verdict.reason, highlight=False)
    if out is not None:
        paths = write_reports(report, out)
        console.print(f"reports: {', '.join(str(p) for p in paths.values())}", highlight=False)
    # SystemExit, not typer.Exit: the root runs click with standalone_mode=False.
    raise SystemExit(report.exit_code)


@redteam_app.command("probes")
def probes() -> None:
    """List the registered probes (built-in and plug-ins)."""
    from ..redteam import registered_probes

    for name, factory in sorted(registered_probes().items()):
        doc = (factory.__doc__ or "").strip().splitlines()
        console.print(f"[bold]{name}[/]: {doc[0] if doc else ''}")


@redteam_app.command("schema")
def schema(
    write: Annotated[
        bool, typer.Option("--write", help="Regenerate the published schema file (developers).")
    ] = False,
) -> None:
    """Print the JSON schema of report.json (generated from the report model)."""
    import json

    from ..reports import SCHEMA_PATH, report_schema

    text = json.dumps(report_schema(), indent=2, sort_keys=True) + "\n"
    if write:
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        console.print(f"wrote {SCHEMA_PATH}")
        return
    typer.echo(text, nl=False)
