"""Loaders for Jira CSV exports, story-point CSVs and JSON Lines of work items.

Every loader reads in one of two modes. ``strict`` (the default) stops at the first bad row
with a :class:`~mesaguard.DataError` naming the file, row, column and what was expected.
``strict=False`` skips bad rows and reports each one in :attr:`LoadedItems.skipped`, so a
caller can say how many were dropped and why.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .._errors import DataError
from ._model import MetadataValue, Priority, WorkItem, dataset_hash

__all__ = [
    "LoadedItems",
    "RowProblem",
    "bundled_hadoop",
    "load_items",
    "load_jira_csv",
    "load_jsonl",
    "load_storypoints_csv",
    "parse_jira_datetime",
    "save_jsonl",
]

# Real issue descriptions hold stack traces far longer than csv's 128 KiB default field limit.
csv.field_size_limit(16 * 1024 * 1024)

DataFormat = Literal["auto", "jira", "storypoints", "jsonl"]


class RowProblem(BaseModel):
    """A row that could not be read, kept so the user learns what was skipped and why."""

    model_config = ConfigDict(frozen=True)

    row: int
    """1-based row (CSV: the header is row 1) or line number (JSON Lines)."""
    column: str | None
    message: str


class LoadedItems(BaseModel):
    """The items read from one source, the rows skipped, and the data hash of what was kept."""

    model_config = ConfigDict(frozen=True)

    source: str
    items: tuple[WorkItem, ...]
    skipped: tuple[RowProblem, ...] = ()
    data_hash: str
    """:func:`~mesaguard.items.dataset_hash` of ``items``."""

    def __len__(self) -> int:
        return len(self.items)


class _RowError(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _open_text(path: Path) -> IO[str]:
    if not path.exists():
        raise DataError("no such file", path=path)
    if path.is_dir():
        raise DataError("is a directory, expected a data file", path=path)
    # The caller closes the returned wrapper, which closes the raw stream with it.
    raw: IO[bytes] = (
        gzip.open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
        if path.suffix == ".gz"
        else path.open("rb")  # noqa: SIM115
    )
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _collect(
    path: Path | str,
    rows: Iterator[tuple[int, Callable[[], WorkItem]]],
    *,
    strict: bool,
) -> LoadedItems:
    """Build items row by row, enforcing unique keys; strict mode raises on the first problem."""
    items: list[WorkItem] = []
    skipped: list[RowProblem] = []
    seen: dict[str, int] = {}
    hint = "pass strict=False (CLI: --skip-bad-rows) to count and skip bad rows"
    try:
        for row_number, build in rows:
            try:
                item = build()
                if item.key in seen:
                    raise _RowError(
                        None, f"duplicate key {item.key!r} (first seen in row {seen[item.key]})"
                    )
            except _RowError as problem:
                if strict:
                    raise DataError(
                        problem.message, path=path, row=row_number, column=problem.column, hint=hint
                    ) from None
                skipped.append(
                    RowProblem(row=row_number, column=problem.column, message=problem.message)
                )
                continue
            seen[item.key] = row_number
            items.append(item)
    except UnicodeDecodeError as error:
        raise DataError(
            f"not UTF-8 text ({error.reason} at byte {error.start})", path=path
        ) from None
    except csv.Error as error:
        raise DataError(f"malformed CSV: {error}", path=path) from None
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read: {error}", path=path) from None
    return LoadedItems(
        source=str(path), items=tuple(items), skipped=tuple(skipped), data_hash=dataset_hash(items)
    )


def _validation_message(error: ValidationError) -> tuple[str | None, str]:
    first = error.errors()[0]
    column = ".".join(str(part) for part in first["loc"]) or None
    return column, first["msg"]


_JIRA_DATE_FORMATS = ("%d/%b/%y %H:%M", "%d/%b/%y %I:%M %p", "%d/%b/%Y %H:%M", "%d/%b/%Y %I:%M %p")


def parse_jira_datetime(text: str) -> dt.datetime:
    """Parse Jira's export format (``30/Sep/21 17:20``) or ISO 8601; naive times are UTC."""
    text = text.strip()
    for fmt in _JIRA_DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date (expected Jira's '30/Sep/21 17:20' or ISO 8601)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _snake(column: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in column.strip().lower()).strip("_")


_JIRA_KNOWN = {"Summary", "Issue key", "Issue id", "Issue Type", "Priority", "Component/s"}
_JIRA_KNOWN |= {"Description", "Created", "Project key", "Story Points"}


def load_jira_csv(
    path: Path | str,
    *,
    strict: bool = True,
    project: str | None = None,
    require_priority: bool = True,
) -> LoadedItems:
    """Read a Jira CSV export (standard columns; repeated ``Component/s`` columns are joined).

    Required: ``Summary`` and one of ``Issue key`` / ``Issue id``. Optional: ``Issue Type``,
    ``Priority``, ``Component/s``, ``Description``, ``Created``, ``Project key``,
    ``Story Points``; other columns are kept in ``metadata``. The project is taken from
    ``Project key``, else from the key's prefix, else from ``project``.
    """
    path = Path(path)

    def rows() -> Iterator[tuple[int, Callable[[], WorkItem]]]:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DataError("empty file, expected a Jira CSV header", path=path)
            columns = [name.strip() for name in header]
            if "Summary" not in columns:
                raise DataError(
                    f"no 'Summary' column; found {', '.join(columns)}", path=path, row=1
                )
            key_column = next((c for c in ("Issue key", "Issue id") if c in columns), None)
            if key_column is None:
                raise DataError("no 'Issue key' or 'Issue id' column", path=path, row=1)
            if require_priority and "Priority" not in columns:
                raise DataError(
                    "no 'Priority' column",
                    path=path,
                    row=1,
                    hint="pass require_priority=False to load items without priorities",
                )
            for row_number, values in enumerate(reader, start=2):
                if not any(value.strip() for value in values):
                    continue
                yield (
                    row_number,
                    _jira_row_builder(columns, key_column, values, project, require_priority),
                )

    return _collect(path, rows(), strict=strict)


def _jira_row_builder(
    columns: list[str],
    key_column: str,
    values: list[str],
    project: str | None,
    require_priority: bool,
) -> Callable[[], WorkItem]:
    def build() -> WorkItem:
        if len(values) != len(columns):
            raise _RowError(None, f"has {len(values)} fields, the header has {len(columns)}")
        record: dict[str, str] = {}
        components: list[str] = []
        for column, value in zip(columns, values, strict=True):
            if column == "Component/s":
                if value.strip():
                    components.append(value.strip())
            elif column not in record or not record[column]:
                record[column] = value
        key = record[key_column].strip()
        if not key:
            raise _RowError(key_column, "is empty, expected an issue key or id")
        title = record["Summary"].strip()
        if not title:
            raise _RowError("Summary", "is empty, expected the issue title")
        priority: Priority | None = None
        raw_priority = record.get("Priority", "").strip()
        if raw_priority:
            try:
                priority = Priority.parse(raw_priority)
            except ValueError as error:
                raise _RowError("Priority", str(error)) from None
        elif require_priority:
            raise _RowError("Priority", "is empty, expected a Jira priority")
        created = None
        if record.get("Created", "").strip():
            try:
                created = parse_jira_datetime(record["Created"])
            except ValueError as error:
                raise _RowError("Created", str(error)) from None
        story_points = None
        if record.get("Story Points", "").strip():
            try:
                story_points = float(record["Story Points"])
            except ValueError:
                raise _RowError(
                    "Story Points", f"{record['Story Points']!r} is not a number"
                ) from None
        project_key = record.get("Project key", "").strip()
        if not project_key:
            project_key = key.rsplit("-", 1)[0] if "-" in key else (project or "")
        metadata: dict[str, MetadataValue] = {
            _snake(column): value
            for column, value in record.items()
            if column not in _JIRA_KNOWN and value.strip()
        }
        try:
            return WorkItem(
                key=key if "-" in key or not project_key else f"{project_key}#{key}",
                project=project_key,
                title=title,
                description=record.get("Description", "").strip(),
                issue_type=record.get("Issue Type", "").strip() or "Bug",
                component=", ".join(components) or None,
                priority=priority,
                story_points=story_points,
                created=created,
                metadata=metadata,
            )
        except ValidationError as error:
            raise _RowError(*_validation_message(error)) from None

    return build


def load_storypoints_csv(path: Path | str, *, strict: bool = True) -> LoadedItems:
    """Read a story-point CSV (``issuekey, title, description, storypoint[, split_mark]``).

    The Deep-SE / GPT2SP files of ``shared/data/storypoints-deepse`` have this shape.
    """
    path = Path(path)
    required = ("issuekey", "title", "storypoint")

    def rows() -> Iterator[tuple[int, Callable[[], WorkItem]]]:
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            fields = [name.strip() for name in reader.fieldnames or []]
            missing = [name for name in required if name not in fields]
            if missing:
                raise DataError(
                    f"missing column(s) {', '.join(missing)}; found {', '.join(fields) or 'none'}",
                    path=path,
                    row=1,
                )
            for row_number, record in enumerate(reader, start=2):
                yield row_number, _storypoint_row_builder(record)

    return _collect(path, rows(), strict=strict)


def _storypoint_row_builder(record: dict[str, str | None]) -> Callable[[], WorkItem]:
    def build() -> WorkItem:
        if None in record:
            raise _RowError(None, "has more fields than the header")
        key = (record.get("issuekey") or "").strip()
        if not key:
            raise _RowError("issuekey", "is empty, expected an issue key")
        raw_points = (record.get("storypoint") or "").strip()
        try:
            points = float(raw_points)
        except ValueError:
            raise _RowError("storypoint", f"{raw_points!r} is not a number") from None
        if points <= 0:
            raise _RowError("storypoint", f"{raw_points!r} is not a positive number of points")
        title = (record.get("title") or "").strip()
        if not title:
            raise _RowError("title", "is empty, expected the issue title")
        metadata: dict[str, MetadataValue] = {}
        if record.get("split_mark"):
            metadata["split_mark"] = (record.get("split_mark") or "").strip()
        return WorkItem(
            key=key,
            project=key.rsplit("-", 1)[0] if "-" in key else "",
            title=title,
            description=(record.get("description") or "").strip(),
            issue_type="Story",
            story_points=points,
            metadata=metadata,
        )

    return build


def load_jsonl(path: Path | str, *, strict: bool = True) -> LoadedItems:
    """Read JSON Lines, one :class:`WorkItem` per line (blank lines are ignored)."""
    path = Path(path)

    def rows() -> Iterator[tuple[int, Callable[[], WorkItem]]]:
        with _open_text(path) as handle:
            for line_number, line in enumerate(handle, start=1):
                if line.strip():
                    yield line_number, _jsonl_builder(line)

    return _collect(path, rows(), strict=strict)


def _jsonl_builder(line: str) -> Callable[[], WorkItem]:
    def build() -> WorkItem:
        try:
            payload = json.loads(line)
        except json.JSONDecodeError as error:
            raise _RowError(None, f"not valid JSON ({error.msg} at column {error.colno})") from None
        try:
            return WorkItem.model_validate(payload)
        except ValidationError as error:
            raise _RowError(*_validation_message(error)) from None

    return build


def save_jsonl(items: tuple[WorkItem, ...] | list[WorkItem], path: Path | str) -> None:
    """Write items as JSON Lines, readable by :func:`load_jsonl`."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(item.model_dump_json() + "\n")


def _sniff_format(path: Path) -> Literal["jira", "storypoints", "jsonl"]:
    name = path.name.removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    with _open_text(path) as handle:
        first = handle.readline()
    if first.lstrip().startswith("{"):
        return "jsonl"
    header = {column.strip() for column in next(csv.reader([first]), [])}
    if {"issuekey", "storypoint"} <= header:
        return "storypoints"
    if "Summary" in header:
        return "jira"
    raise DataError(
        "cannot tell the format: expected a Jira CSV export (a 'Summary' column), a story-point "
        "CSV (issuekey, title, description, storypoint) or JSON Lines of work items",
        path=path,
        row=1,
    )


def load_items(
    path: Path | str,
    *,
    data_format: DataFormat = "auto",
    strict: bool = True,
    project: str | None = None,
) -> LoadedItems:
    """Read work items from any supported file, telling the format from its name and header."""
    path = Path(path)
    chosen = _sniff_format(path) if data_format == "auto" else data_format
    if chosen == "jira":
        return load_jira_csv(path, strict=strict, project=project, require_priority=False)
    if chosen == "storypoints":
        return load_storypoints_csv(path, strict=strict)
    return load_jsonl(path, strict=strict)


def bundled_hadoop() -> LoadedItems:
    """The 2,503 Hadoop bug reports shipped with mesaguard (GitBugs, CC BY 4.0).

    See ``mesaguard/items/data/ATTRIBUTION.md`` for the source and the required attribution.
    """
    resource = resources.files("mesaguard.items") / "data" / "hadoop_bugs.csv.gz"
    with resources.as_file(resource) as path:
        loaded = load_jira_csv(path, project="HADOOP")
    return loaded.model_copy(update={"source": "mesaguard:hadoop_bugs (GitBugs, CC BY 4.0)"})
