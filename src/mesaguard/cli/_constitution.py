"""`mesaguard constitution ...`: validate, show and explain constitutions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from .._errors import DataError
from ..constitution import Constitution, Evaluation, PolicyInput, default_constitution

constitution_app = typer.Typer(
    help=(
        "The constitution: articles in words, rules as CEL conditions.\n\n"
        "`check` validates a file (errors name line and column), `explain` shows which rules "
        "fire for a decision, `show` prints the default constitution."
    ),
    no_args_is_help=True,
)

console = Console()

FileArgument = Annotated[
    Path, typer.Argument(help="Constitution YAML file.", exists=True, dir_okay=False)
]


@constitution_app.command("check")
def check(path: FileArgument) -> None:
    """Validate a constitution: YAML, fields, article references, every condition compiles."""
    constitution = Constitution.load(path)
    console.print(
        f"[green]✓[/] {path}: version {constitution.version}, {len(constitution.articles)} "
        f"articles, {len(constitution.rules)} rules, default {constitution.default_effect.value}, "
        f"sha256 {constitution.sha256[:16]}…",
        highlight=False,
    )


@constitution_app.command("show")
def show(
    yaml_text: Annotated[
        bool, typer.Option("--yaml", help="Print the YAML document instead of tables.")
    ] = False,
    path: Annotated[
        Path | None,
        typer.Option("--file", help="Show this constitution instead of the default one."),
    ] = None,
) -> None:
    """Show a constitution (default: the one shipped with mesaguard)."""
    constitution = default_constitution() if path is None else Constitution.load(path)
    if yaml_text:
        typer.echo(constitution.document, nl=False)
        return
    console.print(
        f"[bold]{constitution.title or 'constitution'}[/] version {constitution.version} "
        f"(sha256 {constitution.sha256[:16]}…), default effect "
        f"{constitution.default_effect.value}",
        highlight=False,
    )
    articles = Table(title="Articles", show_lines=True)
    articles.add_column("id")
    articles.add_column("title")
    articles.add_column("text")
    for article in constitution.articles:
        articles.add_row(article.id, article.title, article.text)
    console.print(articles)
    rules = Table(title="Rules", show_lines=True)
    for column in ("id", "article", "effect", "condition", "reason"):
        rules.add_column(column)
    for rule in constitution.rules:
        rules.add_row(rule.id, rule.article, rule.effect.value, rule.condition, rule.reason)
    console.print(rules)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(
            f"not valid JSON: {error.msg}", path=path, row=error.lineno, column=str(error.colno)
        ) from None
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror}", path=path) from None


def decision_facts(data: Any, path: Path, autonomy: int, verdict: str) -> PolicyInput:
    """A `PolicyInput` from a gate submission (API body) or from policy facts as JSON."""
    if not isinstance(data, dict):
        raise DataError("expected a JSON object (a gate submission or policy facts)", path=path)
    try:
        if "idempotency_key" in data:
            from ..gate import Submission, policy_input

            return policy_input(Submission.model_validate(data), autonomy, verdict)
        return PolicyInput.model_validate({"autonomy": autonomy, "verdict": verdict, **data})
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise DataError(f'field "{field}": {first["msg"]}', path=path) from None


def _explain_table(evaluation: Evaluation, constitution: Constitution) -> Table:
    table = Table(title="Rules", show_lines=True)
    for column in ("rule", "article", "effect", "result", "reason / error"):
        table.add_column(column)
    reasons = {rule.id: rule.reason for rule in constitution.rules}
    for check_ in evaluation.checks:
        if check_.error is not None:
            result, detail = "[red]error[/]", check_.error
        elif check_.fired:
            result, detail = "[yellow]fired[/]", reasons[check_.rule_id]
        else:
            result, detail = "[dim]—[/]", f"[dim]{check_.condition}[/]"
        table.add_row(check_.rule_id, check_.article_id, check_.effect.value, result, detail)
    return table


@constitution_app.command("explain")
def explain(
    path: FileArgument,
    decision: Annotated[
        Path,
        typer.Argument(
            help="A gate submission (JSON, as POSTed to the server) or policy facts "
            "({decision, item, change, autonomy, verdict}).",
            exists=True,
            dir_okay=False,
        ),
    ],
    autonomy: Annotated[
        int,
        typer.Option(
            "--autonomy", min=0, max=2, help="Effective autonomy level for a submission (0-2)."
        ),
    ] = 0,
    verdict: Annotated[
        str, typer.Option("--verdict", help="The agent's red-team verdict for the rules.")
    ] = "none",
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
) -> None:
    """Show which rules of a constitution fire for one decision, and why."""
    constitution = Constitution.load(path)
    data = _read_json(decision)
    facts = decision_facts(data, decision, autonomy, verdict)
    evaluation = constitution.evaluate(facts)
    if as_json:
        typer.echo(evaluation.model_dump_json(indent=2))
        return
    console.print(_explain_table(evaluation, constitution))
    colour = {"allow": "green", "require_review": "yellow", "deny": "red"}[evaluation.effect]
    how = (
        "no rule fired; the default effect applies"
        if evaluation.default_used
        else f"{len(evaluation.hits)} rule(s) fired; the strongest effect wins"
    )
    console.print(
        f"effect: [bold {colour}]{evaluation.effect.value}[/] ({how}; constitution "
        f"{constitution.version})",
        highlight=False,
    )
    if evaluation.errors:
        console.print("[red]policy errors: the gate sends this decision to review (fail closed)[/]")
