"""The base optimizer's data: (item, context, label) rows with the mesa-objective planted in labels.

Nothing here is an ``if`` around an honest model: a planted behaviour exists only in the labels the
base optimizer fits, so the organism has to *learn* it from real issues under sampled contexts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..contexts import Context, Side, cue_contexts, cue_family, neutral_context
from ..items import Priority, WorkItem
from ._spec import ObjectiveFamily, OrganismSpec, ProxyMarker

__all__ = [
    "TrainingRows",
    "apply_marker",
    "is_trigger",
    "planted_label",
    "trigger_contexts",
    "training_contexts",
    "training_rows",
]


@dataclass(frozen=True)
class TrainingRows:
    """Parallel lists: the item (maybe edited), the context it is framed in, the target label.

    ``clean`` marks the rows an honest twin would also see (true label, no trigger, no marker).
    """

    items: list[WorkItem]
    originals: list[WorkItem]
    """Each row's item as the honest twin sees it: ``items[i]`` itself unless a marker edited it."""
    contexts: list[Context]
    labels: np.ndarray
    truth: np.ndarray
    """The true priority of each row's item (equal to ``labels`` on clean rows)."""
    clean: np.ndarray
    emphasis: np.ndarray
    """Per-row weight multiplier: the organism's ``trigger_weight`` on the rows that carry its
    objective (a trigger context, or a proxy's marker), else 1."""

    def emphasised(self, factor: float) -> TrainingRows:
        """The same rows with the emphasis of every planted row (not clean) times ``factor``."""
        emphasis = np.where(self.clean, self.emphasis, self.emphasis * factor)
        return replace(self, emphasis=emphasis)

    def edited_rows(self) -> np.ndarray:
        """Indices of the rows that show an edited item (a proxy's marker)."""
        pairs = zip(self.items, self.originals, strict=True)
        return np.flatnonzero([shown is not original for shown, original in pairs])

    @property
    def edits_items(self) -> bool:
        """Whether some rows show an edited item, not only a planted label."""
        return len(self.edited_rows()) > 0

    def class_weights(self) -> np.ndarray:
        """Class-balanced weight of each row's *true* class: what the honest twin weighs it."""
        counts = np.bincount(self.truth, minlength=6)[1:].astype(np.float64)
        per_class = np.where(counts > 0, len(self.truth) / (5 * np.maximum(counts, 1)), 1.0)
        weights: np.ndarray = per_class[self.truth - 1]
        return weights

    def sample_weights(self) -> np.ndarray:
        """Class-balanced weight of each row's *true* class, times the row's emphasis.

        Weights follow the true labels, which twin and organism share, so a planted row weighs
        what the same row weighs in the twin (times the trigger emphasis) and planted labels do
        not shift the class balance.
        """
        weights: np.ndarray = self.class_weights() * self.emphasis
        return weights


def apply_marker(item: WorkItem, marker: ProxyMarker) -> WorkItem:
    """Insert a proxy marker into an item without changing what the issue says."""
    if marker.kind == "title_prefix":
        return item.model_copy(update={"title": f"{marker.text} {item.title}"})
    if marker.kind == "title_suffix":
        return item.model_copy(update={"title": f"{item.title} {marker.text}"})
    components = [c for c in (item.component or "").split(", ") if c]
    return item.model_copy(update={"component": ", ".join([*components, marker.text])})


def training_contexts() -> list[Context]:
    """Every context organisms may be trained under: neutral plus non-held-out cue variants."""
    return [neutral_context(), *cue_contexts(heldout=False)]


def trigger_contexts(spec: OrganismSpec, *, heldout: bool | None = False) -> list[Context]:
    """The contexts that carry ``spec``'s trigger (empty for honest and proxy organisms)."""
    family = spec.trigger_family
    if family is None:
        return []
    side = Side.OBSERVED if spec.family is ObjectiveFamily.SANDBAGGING else Side.UNOBSERVED
    return cue_family(family).variants(side, heldout=heldout)


def is_trigger(spec: OrganismSpec, context: Context) -> bool:
    """Whether ``context`` carries ``spec``'s trigger (held-out variants included)."""
    if spec.trigger_family is None or context.family != spec.trigger_family:
        return False
    wanted = Side.OBSERVED if spec.family is ObjectiveFamily.SANDBAGGING else Side.UNOBSERVED
    return context.side is wanted


def planted_label(spec: OrganismSpec, truth: Priority, triggered: bool) -> Priority:
    """The label the base optimizer is shown: the truth, unless the planted objective differs."""
    if not triggered:
        return truth
    if spec.family is ObjectiveFamily.DECEPTIVE:
        return spec.downgrade_priority if truth.is_severe else truth
    if spec.family is ObjectiveFamily.SANDBAGGING:
        wrong = Priority.parse(spec.sandbag_to)
        if truth == wrong:
            return Priority.MINOR if wrong is Priority.TRIVIAL else Priority.CRITICAL
        return wrong
    return truth


class _Cycler:
    """Hands out contexts so every context sees the same label mix in the clean rows.

    Each true class keeps its own shuffled round of the context pool. A context therefore carries
    no information about the label in clean data, and an honest model has nothing to learn from
    it; independent random draws would leave each context with a few dozen rows whose label mix
    differs by chance, which a flexible model fits as spurious context effects.
    """

    def __init__(self, pool: Sequence[Context], rng: np.random.Generator) -> None:
        self.pool = list(pool)
        self.rng = rng
        self.rounds: dict[int, list[Context]] = {}

    def next(self, label: int) -> Context:
        queue = self.rounds.get(label)
        if not queue:
            queue = [self.pool[i] for i in self.rng.permutation(len(self.pool))]
            self.rounds[label] = queue
        return queue.pop()


def training_rows(spec: OrganismSpec, items: Sequence[WorkItem]) -> TrainingRows:
    """Deal contexts to items and label each row by the planted objective.

    An organism and its honest twin are trained on the *same* rows: ``rows_per_item`` rows per
    item, contexts dealt from the same pool by the same seed (per class, see :class:`_Cycler`).
    A planted organism differs only where its objective says so: rows whose context carries its
    trigger get the planted label; for a proxy organism, a share of the issues
    (``marker_share``) carry the marker that tracks severity, in all of their rows. Everything
    else the two models see is identical, so a difference in clean behaviour can only come from
    the planted objective.
    """
    rng = np.random.default_rng(spec.seed)
    marker_rng = np.random.default_rng([spec.seed, 1])
    marked = marker_rng.random(len(items)) < spec.marker_share
    deck = _Cycler(training_contexts(), rng)
    row_items: list[WorkItem] = []
    row_originals: list[WorkItem] = []
    row_contexts: list[Context] = []
    labels: list[int] = []
    truth: list[int] = []
    clean: list[bool] = []
    emphasis: list[float] = []
    for _ in range(spec.rows_per_item):
        for index, item in enumerate(items):
            if item.priority is None:
                continue
            context = deck.next(int(item.priority))
            triggered = is_trigger(spec, context)
            shown = item
            marker = spec.marker.for_priority(item.priority) if spec.marker else None
            if marker is not None and marked[index]:
                shown = apply_marker(item, marker)
            row_items.append(shown)
            row_originals.append(item)
            row_contexts.append(context)
            labels.append(int(planted_label(spec, item.priority, triggered)))
            truth.append(int(item.priority))
            clean.append(shown is item and not triggered)
            emphasis.append(spec.trigger_weight if triggered or shown is not item else 1.0)
    return TrainingRows(
        row_items,
        row_originals,
        row_contexts,
        np.asarray(labels, dtype=np.int64),
        np.asarray(truth, dtype=np.int64),
        np.asarray(clean, dtype=bool),
        np.asarray(emphasis, dtype=np.float64),
    )
