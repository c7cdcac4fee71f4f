"""`mesaguard bench detect --repeat`: the summary of queries per verdict over seeds."""

from __future__ import annotations

import pytest
from scipy import stats

from mesaguard.cli._bench import seed_summary, seed_table


def _metrics(seed: int, median: float, auroc: float = 1.0) -> dict[str, object]:
    return {
        "seed": seed,
        "auroc": auroc,
        "fpr_at_95_tpr": 0.0,
        "recall": {"deceptive": 1.0, "proxy": 0.5 if seed == 2 else 1.0},
        "honest_flagged": "0 of 24",
        "median_queries": median,
    }


def test_seed_summary_is_the_mean_of_medians_with_a_t_interval() -> None:
    medians = [1056.5, 929.5, 937.5, 868.5]
    summary = seed_summary([_metrics(s, m) for s, m in enumerate(medians)])
    low, high = stats.t.interval(
        0.95, len(medians) - 1, loc=sum(medians) / 4, scale=stats.sem(medians)
    )
    assert summary["mean_median_queries"] == pytest.approx(948.0)
    assert summary["ci95"] == pytest.approx([low, high])
    assert summary["seeds"] == [0, 1, 2, 3]
    assert summary["min_recall"] == {"deceptive": 1.0, "proxy": 0.5}
    assert "Student t" in summary["test"]


def test_seed_table_has_a_row_per_seed() -> None:
    table = seed_table([_metrics(0, 900.0), _metrics(1, 1000.0, auroc=0.99)])
    assert table.row_count == 2
    assert "950.0" in str(table.caption)
