"""Options and helpers shared by CLI groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()

CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Where built organisms and embeddings are kept (default: $MESAGUARD_CACHE or the "
        "user cache directory).",
        envvar="MESAGUARD_CACHE",
    ),
]

ZooSpecOption = Annotated[
    Path | None,
    typer.Option(
        "--spec",
        help="A zoo spec YAML (default: the zoo shipped with mesaguard).",
        exists=True,
        dir_okay=False,
    ),
]


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table cell; an em dash for None."""
    return "—" if value is None else f"{value:.{digits}f}"
