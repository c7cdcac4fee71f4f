"""The linear class: the framing objective (its gradient; it is scikit-learn's), repeatable fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import check_grad, minimize

from mesaguard.organisms._models import N_CLASSES, framing_objective


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
