import collections
import gzip
from pathlib import Path

import pytest

from mesaguard import DataError
from mesaguard.items import (
    Priority,
    WorkItem,
    bundled_hadoop,
    load_items,
    load_jira_csv,
    load_jsonl,
    load_storypoints_csv,
    save_jsonl,
)

HEADER = "Summary,Issue key,Issue Type,Priority,Component/s,Component/s,Description,Created\n"


def write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_real_hadoop_file_loads_every_row_with_the_documented_priorities(shared_data: Path) -> None:
    loaded = load_jira_csv(
        shared_data / "jira-priority-hadoop" / "hadoop_bugs.csv", project="HADOOP"
    )
    counts = collections.Counter(str(item.priority) for item in loaded.items)
    assert len(loaded.items) == 2503 and not loaded.skipped
    assert counts == {"Major": 1738, "Minor": 539, "Critical": 86, "Blocker": 76, "Trivial": 64}
    assert sum(1 for item in loaded.items if not item.description) == 143
    assert all(
        item.created is not None and item.created.tzinfo is not None for item in loaded.items
    )


def test_bundled_hadoop_is_the_shared_file(shared_data: Path) -> None:
    shared = load_jira_csv(
        shared_data / "jira-priority-hadoop" / "hadoop_bugs.csv", project="HADOOP"
    )
    assert bundled_hadoop().data_hash == shared.data_hash


def test_real_storypoint_file_loads(shared_data: Path) -> None:
    loaded = load_storypoints_csv(shared_data / "storypoints-deepse" / "mesos.csv")
    assert len(loaded.items) == 1680 and not loaded.skipped
    first = loaded.items[0]
    assert first.key == "MESOS-313" and first.project == "MESOS" and first.story_points == 2
    assert first.metadata["split_mark"] == "train"
    assert (
        load_items(shared_data / "storypoints-deepse" / "mesos.csv").data_hash == loaded.data_hash
    )


def test_standard_jira_export_columns_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER
        + 'Crash on start,PROJ-7,Bug,Critical,core,ui,"Line one\nline two",2024-05-01T10:00:00\n',
    )
    item = load_jira_csv(path).items[0]
    assert (item.key, item.project, item.priority, item.component) == (
        "PROJ-7",
        "PROJ",
        Priority.CRITICAL,
        "core, ui",
    )
    assert item.description == "Line one\nline two" and item.created is not None


def test_strict_mode_names_file_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "ok,P-1,Bug,Major,,,d,\nbad,P-2,Bug,Urgentish,,,d,\n")
    with pytest.raises(DataError) as caught:
        load_jira_csv(path)
    message = str(caught.value)
    assert str(path) in message and "row 3" in message and 'column "Priority"' in message
    assert "'Urgentish' is not a Jira priority" in message and "skip" in message


def test_skip_mode_counts_and_reports_every_bad_row(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER
        + "ok,P-1,Bug,Major,,,d,\n"
        + "bad priority,P-2,Bug,Urgentish,,,d,\n"
        + "bad date,P-3,Bug,Minor,,,d,yesterday-ish\n"
        + ",P-4,Bug,Minor,,,d,\n"
        + "dup,P-1,Bug,Minor,,,d,\n"
        + "short,P-5\n",
    )
    loaded = load_jira_csv(path, strict=False)
    assert [item.key for item in loaded.items] == ["P-1"]
    assert [(p.row, p.column) for p in loaded.skipped] == [
        (3, "Priority"),
        (4, "Created"),
        (5, "Summary"),
        (6, None),
        (7, None),
    ]
    assert "duplicate key 'P-1'" in loaded.skipped[3].message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty file"),
        ("Title,Key\nx,y\n", "no 'Summary' column"),
        ("Summary,Priority\nx,Major\n", "no 'Issue key' or 'Issue id' column"),
        ("Summary,Issue key\nx,P-1\n", "no 'Priority' column"),
    ],
)
def test_broken_headers_fail_with_the_reason(tmp_path: Path, content: str, expected: str) -> None:
    with pytest.raises(DataError, match=expected):
        load_jira_csv(write(tmp_path, content))


def test_missing_and_binary_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_items(tmp_path / "absent.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"Summary,Issue key,Priority\n\xff\xfe,P-1,Major\n")
    with pytest.raises(DataError, match="not UTF-8"):
        load_jira_csv(binary)


def test_gzip_files_are_read_transparently(tmp_path: Path) -> None:
    path = tmp_path / "export.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(HEADER + "x,P-1,Bug,Minor,,,d,\n")
    assert load_items(path).items[0].priority is Priority.MINOR


def test_storypoint_rows_need_a_positive_number(tmp_path: Path) -> None:
    path = write(
        tmp_path, "issuekey,title,description,storypoint\nA-1,t,d,3\nA-2,t,d,lots\nA-3,t,d,0\n"
    )
    with pytest.raises(DataError, match="row 3, column \"storypoint\": 'lots' is not a number"):
        load_storypoints_csv(path)
    loaded = load_storypoints_csv(path, strict=False)
    assert len(loaded.items) == 1 and [p.row for p in loaded.skipped] == [3, 4]


def test_jsonl_round_trip_and_line_numbered_errors(tmp_path: Path) -> None:
    items = [
        WorkItem(key="J-1", title="a", priority="Blocker"),
        WorkItem(key="J-2", title="b", story_points=5),
    ]
    path = tmp_path / "items.jsonl"
    save_jsonl(items, path)
    assert list(load_items(path).items) == items
    path.write_text(path.read_text() + '\n{"key": "J-3"}\nnot json\n')
    with pytest.raises(DataError, match='row 4, column "title": Field required'):
        load_jsonl(path)
    loaded = load_jsonl(path, strict=False)
    assert len(loaded.items) == 2 and [p.row for p in loaded.skipped] == [4, 5]
    assert "not valid JSON" in loaded.skipped[1].message


def test_unknown_format_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot tell the format"):
        load_items(write(tmp_path, "a,b\n1,2\n"))
