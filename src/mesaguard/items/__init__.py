"""Work items, their priority and story-point scales, loaders and deterministic splits."""

from ._loaders import (
    LoadedItems,
    RowProblem,
    bundled_hadoop,
    load_items,
    load_jira_csv,
    load_jsonl,
    load_storypoints_csv,
    parse_jira_datetime,
    save_jsonl,
)
from ._model import ActionType, MetadataValue, Priority, WorkItem, dataset_hash
from ._split import Splits, split_items

__all__ = [
    "ActionType",
    "LoadedItems",
    "MetadataValue",
    "Priority",
    "RowProblem",
    "Splits",
    "WorkItem",
    "bundled_hadoop",
    "dataset_hash",
    "load_items",
    "load_jira_csv",
    "load_jsonl",
    "load_storypoints_csv",
    "parse_jira_datetime",
    "save_jsonl",
    "split_items",
]
