import datetime as dt

import pytest
from pydantic import ValidationError

from mesaguard.items import Priority, WorkItem, dataset_hash


def test_priority_orders_by_severity_and_prints_jira_names() -> None:
    assert Priority.BLOCKER > Priority.CRITICAL > Priority.MAJOR > Priority.MINOR > Priority.TRIVIAL
    assert str(Priority.CRITICAL) == "Critical"
    assert Priority.names() == ["Blocker", "Critical", "Major", "Minor", "Trivial"]
    assert [p.is_severe for p in (Priority.MAJOR, Priority.MINOR)] == [True, False]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("blocker", Priority.BLOCKER),
        (" Major ", Priority.MAJOR),
        ("Highest", Priority.BLOCKER),
        ("lowest", Priority.TRIVIAL),
        ("2", Priority.MINOR),
        (4, Priority.CRITICAL),
    ],
)
def test_priority_parses_jira_and_cloud_names(text: str | int, expected: Priority) -> None:
    assert Priority.parse(text) is expected


def test_unknown_priority_names_the_accepted_values() -> None:
    with pytest.raises(ValueError, match="Blocker, Critical, Major, Minor, Trivial"):
        Priority.parse("Urgentish")


def test_work_item_reads_naive_times_as_utc_and_serialises_priority_by_name() -> None:
    item = WorkItem(
        key="X-1",
        title="t",
        priority="Critical",
        created=dt.datetime(2024, 1, 2, 3, 4),  # noqa: DTZ001 - naive input on purpose
    )
    assert item.created is not None and item.created.tzinfo is dt.UTC
    assert '"priority":"Critical"' in item.model_dump_json()
    assert WorkItem.model_validate_json(item.model_dump_json()) == item


def test_work_item_rejects_unknown_fields_and_negative_points() -> None:
    with pytest.raises(ValidationError):
        WorkItem(key="X-1", title="t", story_points=-1)
    with pytest.raises(ValidationError):
        WorkItem.model_validate({"key": "X-1", "title": "t", "severity": "high"})


def test_dataset_hash_changes_with_any_field_and_with_order() -> None:
    a = WorkItem(key="X-1", title="a", priority="Major")
    b = WorkItem(key="X-2", title="b", priority="Minor")
    assert dataset_hash([a, b]) == dataset_hash([a, b])
    assert dataset_hash([a, b]) != dataset_hash([b, a])
    assert dataset_hash([a, b]) != dataset_hash([a, b.model_copy(update={"title": "b."})])


def test_copies_recompute_cached_digests() -> None:
    item = WorkItem(key="X-1", title="a")
    digest = item.text_digest
    assert item.model_copy(update={"title": "b"}).text_digest != digest
    assert item.model_copy().text_digest == digest
