"""Errors of the constitution: where in the document, and what is wrong."""

from __future__ import annotations

from .._errors import ConfigError


class ConstitutionError(ConfigError):
    """A constitution document is invalid.

    ``source`` names the file (or ``<string>``); ``line`` and ``column`` are 1-based positions of
    the offending YAML node (for a condition that does not compile, of the place inside the
    expression); ``rule`` is the id of the rule concerned, when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "<string>",
        line: int | None = None,
        column: int | None = None,
        rule: str | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.rule = rule
        self.detail = message
        where = source
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        if rule is not None:
            where += f" (rule {rule!r})"
        super().__init__(f"{where}: {message}")
