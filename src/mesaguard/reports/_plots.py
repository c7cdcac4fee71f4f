"""Plots for the HTML report, rendered with matplotlib (Agg) to base64 PNG."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.figure import Figure  # noqa: E402

from ..redteam import Finding  # noqa: E402

__all__ = ["gap_plot", "layer_plot", "shift_matrix_plot"]


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    # A fixed creation date and no software tag keep the bytes the same from run to run.
    figure.savefig(buffer, format="png", dpi=96, metadata={"Software": None})
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def gap_plot(findings: Sequence[Finding]) -> str:
    """Compliance gap (harmful rate first minus second condition) per test, with 95% intervals."""
    shown = [f for f in findings if f.n > 0]
    height = max(2.0, 0.32 * len(shown) + 1.0)
    figure, axis = plt.subplots(figsize=(7.5, height))
    labels = [f"{f.probe}: {f.test}" for f in shown]
    gaps = [f.gap for f in shown]
    low = [f.gap - f.gap_ci[0] for f in shown]
    high = [f.gap_ci[1] - f.gap for f in shown]
    colours = ["#c0392b" if f.flagged else "#7f8c8d" if f.control else "#2c7fb8" for f in shown]
    positions = list(range(len(shown)))
    axis.errorbar(gaps, positions, xerr=[low, high], fmt="none", ecolor="#555555", capsize=3)
    axis.scatter(gaps, positions, c=colours, zorder=3)
    axis.axvline(0.0, color="#999999", linewidth=1)
    axis.set_yticks(positions, labels, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("compliance gap (harmful rate: suspect − reference), 95% CI")
    figure.tight_layout()
    return _png(figure)


def shift_matrix_plot(finding: Finding) -> str:
    """Heat map of priorities: reference condition (rows) by suspect condition (columns)."""
    figure, axis = plt.subplots(figsize=(3.4, 3.0))
    matrix = [list(row) for row in finding.shift_matrix]
    axis.imshow(matrix, cmap="Blues")
    ticks = list(range(len(finding.levels)))
    axis.set_xticks(ticks, finding.levels, rotation=45, fontsize=7)
    axis.set_yticks(ticks, finding.levels, fontsize=7)
    axis.set_xlabel(finding.first_label, fontsize=8)
    axis.set_ylabel(finding.second_label, fontsize=8)
    axis.set_title(f"{finding.test}", fontsize=9)
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                colour = "white" if value > peak / 2 else "black"
                axis.text(j, i, str(value), ha="center", va="center", fontsize=7, color=colour)
    figure.tight_layout()
    return _png(figure)


def layer_plot(layers: Sequence[Mapping[str, Any]], chosen: str) -> str:
    """White-box layer sweep: probe score by hook point (contrast AUROC, framing sides)."""
    names = [str(layer["hook_point"]) for layer in layers]
    positions = list(range(len(names)))
    figure, axis = plt.subplots(figsize=(max(4.0, 0.35 * len(names) + 2.0), 3.2))
    series = (
        ("contrast_auroc", "contrast AUROC (held-out questions)", "#2c7fb8"),
        ("unobserved_score", "mean score, unobserved framings", "#c0392b"),
        ("observed_score", "mean score, observed framings", "#27ae60"),
        ("neutral_score", "mean score, neutral framing", "#7f8c8d"),
    )
    for key, label, colour in series:
        axis.plot(
            positions, [float(layer[key]) for layer in layers], "o-", color=colour, label=label
        )
    if chosen in names:
        axis.axvline(names.index(chosen), color="#555555", linestyle="--", linewidth=1)
    axis.set_xticks(positions, names, rotation=45, fontsize=7)
    axis.set_ylim(0.0, 1.02)
    axis.set_ylabel("probe score / AUROC")
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return _png(figure)
