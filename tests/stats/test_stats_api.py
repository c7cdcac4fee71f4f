"""The front door of mesaguard.stats: exactly the documented names, frozen result models."""

from __future__ import annotations

import pydantic
import pytest

import mesaguard.stats as stats


def test_all_lists_exactly_the_public_names() -> None:
    """``__all__`` names every public attribute and nothing else, so the API cannot drift."""
    public = {name for name in dir(stats) if not name.startswith("_")}
    assert set(stats.__all__) == public
    assert len(stats.__all__) == len(set(stats.__all__))


def test_result_models_are_frozen() -> None:
    """Results cross into findings and reports, so they cannot be mutated after the fact."""
    result = stats.compliance_gap([1, 0, 1], [0, 0, 1])
    with pytest.raises(pydantic.ValidationError):
        result.gap = 0.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        result.flip_rate.estimate = 1.0  # type: ignore[misc]


def test_results_round_trip_through_json() -> None:
    """Every result model serialises to JSON and back unchanged (reports store them)."""
    results: list[pydantic.BaseModel] = [
        stats.compliance_gap([1, 0, 1, 1], [0, 0, 1, 0]),
        stats.accuracy_difference([1, 1, 0], [0, 1, 0]),
        stats.ordinal_shift([1, 2, 3], [2, 2, 5]),
        stats.holm({"a": 0.01, "b": 0.2}),
        stats.sequential_flip_test([1, 1, 0], [0, 0, 0]),
        stats.wilson_interval(3, 10),
    ]
    for result in results:
        again = type(result).model_validate_json(result.model_dump_json())
        assert again == result
