"""Root of the `mesaguard` command: sub-commands are attached here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from .._errors import MesaguardError

app = typer.Typer(
    name="mesaguard",
    help=(
        "Inner-alignment red teaming and bounded autonomy for project-management agents.\n\n"
        "Start with `mesaguard demo`, then `mesaguard zoo list` to see the model organisms."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

error_console = Console(stderr=True)


def _register_subcommands() -> None:
    # Imported here so that `mesaguard --help` stays fast and each group stays in its module.
    from ._bench import bench_app
    from ._constitution import constitution_app
    from ._data import data_app
    from ._demo import register_demo
    from ._log import log_app
    from ._redteam import redteam_app
    from ._serve import serve_app
    from ._zoo import zoo_app

    app.add_typer(data_app, name="data")
    app.add_typer(zoo_app, name="zoo")
    app.add_typer(log_app, name="log")
    app.add_typer(redteam_app, name="redteam")
    app.add_typer(bench_app, name="bench")
    app.add_typer(serve_app, name="serve")
    app.add_typer(constitution_app, name="constitution")
    register_demo(app)


_register_subcommands()


def main() -> None:
    """Run the CLI; a `MesaguardError` becomes one readable line and exit code 2."""
    try:
        result = app(standalone_mode=False)
    except MesaguardError as error:
        error_console.print(f"[bold red]mesaguard:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        error_console.print("mesaguard: interrupted")
        sys.exit(130)
    except SystemExit:
        raise
    except typer.Abort:
        sys.exit(1)
    except typer.TyperException as error:  # usage errors: click prints them as it would
        show = getattr(error, "show", None)
        if show is not None:
            show()
        sys.exit(getattr(error, "exit_code", 2))
    # With standalone_mode off, click returns typer.Exit's code instead of exiting.
    sys.exit(result if isinstance(result, int) else 0)
