"""Errors of the Ethics Review Log.

```
MesaguardError
└── LedgerError          the log cannot do what was asked (bad argument, storage problem)
    ├── EntryError       an entry is malformed: names the field; nothing is stored
    ├── NoteError        a signed note, checkpoint or key is malformed or does not verify
    └── TamperError      the stored log disagrees with itself or with a checkpoint:
                         names the first bad entry and the kind of tampering
```
"""

from __future__ import annotations

from enum import StrEnum

from .._errors import MesaguardError


class LedgerError(MesaguardError):
    """The Ethics Review Log cannot do what was asked."""


class EntryError(LedgerError):
    """An entry is malformed; the message names the field. Nothing was stored."""


class NoteError(LedgerError):
    """A signed note, checkpoint or key is malformed, or its signature does not verify."""


class TamperKind(StrEnum):
    """What is wrong with the first bad entry."""

    EDITED = "edited"
    """The entry's bytes no longer hash to the leaf recorded in the tree."""
    MISSING = "missing"
    """An index has no entry (deleted, possibly with later entries renumbered)."""
    REORDERED = "reordered"
    """An entry sits at the wrong index, or time runs backwards."""
    TRUNCATED = "truncated"
    """The log is shorter than a checkpoint or its own head says it was."""
    FORKED = "forked"
    """The entries hash to a tree that differs from a signed checkpoint of the same size."""
    TREE = "tree"
    """A stored subtree hash or the stored head disagrees with the entries."""
    SIGNATURE = "signature"
    """A checkpoint's signature is missing, unknown or invalid."""
    MALFORMED = "malformed"
    """An entry's stored bytes are not a valid entry."""


class TamperError(LedgerError):
    """The log failed verification; ``index`` is the first bad entry (``None`` if not one entry).

    ``kind`` says what is wrong, ``detail`` explains it in words.
    """

    def __init__(self, kind: TamperKind, index: int | None, detail: str) -> None:
        self.kind = kind
        self.index = index
        self.detail = detail
        where = f"entry {index}" if index is not None else "log"
        super().__init__(f"{where}: {kind.value}: {detail}")
