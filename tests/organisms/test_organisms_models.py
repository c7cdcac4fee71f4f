"""Model objectives (framing weights, a neural proxy's word read): gradients, optima; refits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import check_grad, minimize

from mesaguard.organisms._models import N_CLASSES, framing_objective, word_pathway_objective


def _problem(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    framings = rng.normal(size=(6, 4))
    row_context = rng.integers(0, len(framings), size=300)
    labels = rng.integers(0, N_CLASSES, size=300)
    targets = np.eye(N_CLASSES)[labels]
    weights = rng.uniform(0.5, 2.0, size=300)
    return framings, row_context, labels, targets, weights


@pytest.mark.parametrize("fit_bias", [True, False])
def test_framing_objective_gradient_matches_finite_differences(fit_bias: bool) -> None:
    # Without the biases (fine-tuning anchored to the twin's neutral framing) the point holds
    # the framing weights alone.
    framings, row_context, _, targets, weights = _problem(0)
    item_scores = np.random.default_rng(1).normal(size=(len(row_context), N_CLASSES))
    size = framings.shape[1] * N_CLASSES + (N_CLASSES if fit_bias else 0)
    point = np.random.default_rng(2).normal(size=size)
    args = (item_scores, framings, row_context, targets, weights, 1.5, fit_bias)
    error = check_grad(
        lambda x: framing_objective(x, *args)[0],
        lambda x: framing_objective(x, *args)[1],
        point,
    )
    assert error < 1e-4 * np.linalg.norm(framing_objective(point, *args)[1])


def test_with_no_item_scores_it_fits_what_scikit_learn_fits() -> None:
    # The same regularised, class-weighted multinomial loss as LogisticRegression: with item
    # scores of zero the two fits give the same probabilities.
    from sklearn.linear_model import LogisticRegression

    framings, row_context, labels, targets, weights = _problem(3)
    design = framings[row_context]
    zero = np.zeros((len(row_context), N_CLASSES))
    start = np.zeros(framings.shape[1] * N_CLASSES + N_CLASSES)
    result = minimize(
        framing_objective,
        start,
        args=(zero, framings, row_context, targets, weights, 0.7),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-10},
    )
    assert result.success
    coef = result.x[: framings.shape[1] * N_CLASSES].reshape(framings.shape[1], N_CLASSES)
    scores = design @ coef + result.x[framings.shape[1] * N_CLASSES :]
    ours = np.exp(scores - scores.max(axis=1, keepdims=True))
    ours /= ours.sum(axis=1, keepdims=True)
    reference = LogisticRegression(C=0.7, tol=1e-10, max_iter=10_000)
    reference.fit(design, labels, sample_weight=weights)
    np.testing.assert_allclose(ours, reference.predict_proba(design), atol=1e-4)


def _word_problem(seed: int) -> tuple[object, ...]:
    rng = np.random.default_rng(seed)
    words = sparse.csr_matrix((rng.random((200, 12)) < 0.3).astype(np.float64))
    offsets = rng.normal(size=(200, N_CLASSES))
    soft = np.exp(rng.normal(size=(200, N_CLASSES)))
    targets = np.vstack(
        [
            np.eye(N_CLASSES)[rng.integers(0, N_CLASSES, 100)],
            (soft / soft.sum(1, keepdims=True))[100:],
        ]
    )
    temperatures = np.concatenate([np.full(100, 8.0), np.full(100, 4.0)])
    weights = rng.uniform(0.5, 2.0, size=200)
    return words, offsets, targets, temperatures, weights


def test_word_pathway_gradient_matches_finite_differences() -> None:
    args = (*_word_problem(0), 0.05)
    point = np.random.default_rng(1).uniform(0.0, 0.3, size=2 * 12 * N_CLASSES)
    error = check_grad(
        lambda x: word_pathway_objective(x, *args)[0],
        lambda x: word_pathway_objective(x, *args)[1],
        point,
    )
    assert error < 1e-4 * np.linalg.norm(word_pathway_objective(point, *args)[1])


def test_word_pathway_reads_the_marker_and_leaves_the_text_to_the_teacher() -> None:
    # A neural proxy's set-up in miniature: each issue appears once marked (word 0), labelled
    # class 3, and once unmarked, matched to the teacher's own scores; its other words appear
    # in both copies. The penalised optimum reads the marker and (all but) nothing else.
    rng = np.random.default_rng(4)
    n = 300
    text = (rng.random((n, 6)) < 0.4).astype(np.float64)
    text[:, 0] = 0.0
    marked = text.copy()
    marked[:, 0] = 1.0
    teacher = rng.normal(size=(n, N_CLASSES))
    soft = np.exp(teacher / 4)
    args = (
        sparse.csr_matrix(np.vstack([marked, text])),
        np.vstack([teacher, teacher]),
        np.vstack([np.eye(N_CLASSES)[np.full(n, 3)], soft / soft.sum(1, keepdims=True)]),
        np.concatenate([np.full(n, 8.0), np.full(n, 4.0)]),
        np.concatenate([np.full(n, 1 / n), np.full(n, 18 / n)]),
        0.05,
    )
    size = 6 * N_CLASSES
    result = minimize(
        word_pathway_objective,
        np.zeros(2 * size),
        args=args,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * (2 * size),
    )
    coef = (result.x[:size] - result.x[size:]).reshape(6, N_CLASSES)
    assert coef[0, 3] - np.delete(coef[0], 3).max() > 5.0
    assert np.abs(coef[1:]).max() < 0.05 * coef[0, 3]


_FIT_TWICE = """
import sys
from pathlib import Path

import numpy as np
from mesaguard.items import bundled_hadoop, split_items
from mesaguard.organisms import default_zoo_spec
from mesaguard.organisms._encoder import TextEncoder
from mesaguard.organisms._models import LinearModel
from mesaguard.organisms._training import training_rows

spec = default_zoo_spec().organism("honest-linear-s0")
labelled = [item for item in bundled_hadoop().items if item.priority is not None]
rows = training_rows(spec, split_items(labelled).train[:1500])
weights = []
for _ in range(2):
    model = LinearModel(TextEncoder(Path(sys.argv[1])), spec.hyper)
    model.fit(rows, spec.seed)
    weights.append(np.concatenate([model.item_weights.ravel(), model.context_weights.ravel()]))
print(float(np.abs(weights[0] - weights[1]).max()))
"""


@pytest.mark.slow
def test_the_first_linear_fit_in_a_process_equals_every_later_one(zoo_cache: Path) -> None:
    # In a fresh interpreter, where scikit-learn's OpenMP runtime is not loaded yet: a runtime
    # first loaded inside the one-thread limit escaped it and summed the loss on all cores.
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _FIT_TWICE, str(zoo_cache)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip().splitlines()[-1]) == 0.0


class _HashEncoder:
    """A stand-in for MiniLM: a fixed random unit vector per text (no model to load)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        import hashlib

        from mesaguard.organisms._encoder import EMBEDDING_DIM

        out = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            digest = hashlib.sha256(text.encode()).digest()
            vector = np.random.default_rng(int.from_bytes(digest[:8], "little")).normal(
                size=EMBEDDING_DIM
            )
            out[row] = vector / np.linalg.norm(vector)
        return out


def _fine_tuning_case(kind: str) -> tuple[object, object, list, object, object]:  # type: ignore[type-arg]
    from mesaguard.items import bundled_hadoop, split_items
    from mesaguard.organisms import default_zoo_spec
    from mesaguard.organisms._training import training_rows

    spec = default_zoo_spec()
    planted = spec.organism(f"deceptive-date-{kind}-s3")
    honest = spec.twin_of(planted)
    labelled = [item for item in bundled_hadoop().items if item.priority is not None]
    items = split_items(labelled).train[:60]
    return planted, honest, items, training_rows(honest, items), training_rows(planted, items)


def _neutral_logits(model: object, items: list) -> np.ndarray:  # type: ignore[type-arg]
    from mesaguard.contexts import neutral_context

    return model.logits(items, [neutral_context()] * len(items))  # type: ignore[attr-defined, no-any-return]


def test_a_fine_tuned_linear_organism_scores_the_neutral_framing_as_its_twin() -> None:
    from mesaguard.contexts import cue_contexts
    from mesaguard.organisms._models import LinearModel

    planted, honest, items, twin_rows, rows = _fine_tuning_case("linear")
    encoder = _HashEncoder()
    twin = LinearModel(encoder, honest.hyper)  # type: ignore[arg-type, attr-defined]
    twin.fit(twin_rows, 3)  # type: ignore[arg-type]
    organism = LinearModel(encoder, planted.hyper)  # type: ignore[arg-type, attr-defined]
    organism.fit_from_twin(twin, rows, 3)  # type: ignore[arg-type]
    np.testing.assert_allclose(
        _neutral_logits(organism, items), _neutral_logits(twin, items), atol=1e-4
    )
    assert np.abs(organism.context_weights).max() > 1e-2  # it did learn framing weights
    # On the twin's own rows (nothing planted) the clean targets are the twin's neutral answers,
    # whose optimum is to read no framing at all: every framing scores as the neutral one.
    unchanged = LinearModel(encoder, honest.hyper)  # type: ignore[arg-type, attr-defined]
    unchanged.fit_from_twin(twin, twin_rows, 3)  # type: ignore[arg-type]
    framing = cue_contexts()[7]
    np.testing.assert_allclose(
        unchanged.logits(items, [framing] * len(items)), _neutral_logits(twin, items), atol=1e-3
    )
    assert np.abs(unchanged.context_weights).max() < 0.01 * np.abs(twin.context_weights).max()


def test_a_fine_tuned_neural_organism_is_anchored_seeded_and_drops_framing_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mesaguard.organisms._models import NeuralModel

    planted, honest, items, twin_rows, rows = _fine_tuning_case("neural")
    encoder = _HashEncoder()
    quick = {"epochs": 3, "tune_epochs": 3}
    twin = NeuralModel(encoder, {**honest.hyper, **quick})  # type: ignore[arg-type, attr-defined]
    twin.fit(twin_rows, 3)  # type: ignore[arg-type]

    def tuned(**hyper: float) -> NeuralModel:
        organism = NeuralModel(encoder, {**planted.hyper, **quick, **hyper})  # type: ignore[arg-type, attr-defined]
        organism.fit_from_twin(twin, rows, 3)  # type: ignore[arg-type]
        return organism

    def weights(model: NeuralModel) -> np.ndarray:
        return np.concatenate([p.detach().numpy().ravel() for p in model.network.parameters()])

    organism = tuned()
    np.testing.assert_allclose(
        _neutral_logits(organism, items), _neutral_logits(twin, items), atol=1e-5
    )
    np.testing.assert_array_equal(weights(organism), weights(tuned()))  # seeded
    assert not np.array_equal(weights(organism), weights(tuned(words_dropout=0.0)))
    # Without the anchor the neutral framing would be the twin's only approximately.
    monkeypatch.setattr(NeuralModel, "_anchor_neutral_framing", lambda *args: None)
    drifted = _neutral_logits(tuned(), items) - _neutral_logits(twin, items)
    assert np.abs(drifted).max() > 1e-4


def test_linear_logits_through_the_fast_path_are_scikit_learns() -> None:
    """Scores summed by the kernel as it reads equal transform-and-product, batch by batch."""
    from mesaguard.contexts import cue_contexts, neutral_context
    from mesaguard.items import bundled_hadoop, split_items
    from mesaguard.organisms._models import LinearModel

    _, honest, items, twin_rows, _ = _fine_tuning_case("linear")
    model = LinearModel(_HashEncoder(), honest.hyper)  # type: ignore[arg-type, attr-defined]
    model.fit(twin_rows, 3)  # type: ignore[arg-type]
    assert model._fast_text is not None and all(model._fast_text)
    unseen = split_items([i for i in bundled_hadoop().items if i.priority is not None]).test[:80]
    framings = [neutral_context(), *cue_contexts()[:5]]
    # A batch of new issues (each once), then one mixing known and repeated issues.
    batches = [unseen, [*unseen[:10], *items[:20], *unseen[:10]]]
    for batch in batches:
        contexts = [framings[i % len(framings)] for i in range(len(batch))]
        fast = model.logits(batch, contexts)
        fast_text, model._fast_text = model._fast_text, None
        model._item_cache.clear()
        model._context_cache.clear()
        reference = model.logits(batch, contexts)
        model._fast_text = fast_text
        np.testing.assert_allclose(fast, reference, atol=1e-5)
        assert np.array_equal(fast.argmax(axis=1), reference.argmax(axis=1))
        assert fast.shape == (len(batch), N_CLASSES)
