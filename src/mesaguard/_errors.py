"""The one exception hierarchy of mesaguard.

```
MesaguardError                 anything mesaguard raises on purpose; the CLI prints it, exit 2
├── DataError                  an input file is malformed: names the file, row and column
├── ConfigError                a spec, policy or option is invalid: names the field
├── AgentError                 an agent failed to decide: names the agent and the item
└── ArtifactError              a built artefact (zoo cache, model) is missing or corrupt
```
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["AgentError", "ArtifactError", "ConfigError", "DataError", "MesaguardError"]


class MesaguardError(Exception):
    """Root of every error mesaguard raises on purpose."""


class DataError(MesaguardError):
    """A data file or record is malformed.

    The message names the file, the row (1-based, counting the header as row 1 for CSV),
    the column and what was expected, so the user can find and fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.row = row
        self.column = column
        self.detail = message
        self.hint = hint
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f'column "{column}"')
        text = (", ".join(where) + ": " if where else "") + message
        if hint:
            text += f"; {hint}"
        super().__init__(text)


class ConfigError(MesaguardError):
    """A configuration document or option is invalid."""


class AgentError(MesaguardError):
    """An agent could not produce a decision."""


class ArtifactError(MesaguardError):
    """A built artefact is missing, stale or corrupt."""
