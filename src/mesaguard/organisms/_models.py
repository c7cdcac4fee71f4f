"""The two model classes the base optimizer trains: linear text model and small MLP."""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from .._errors import ArtifactError
from ..contexts import Context, neutral_context
from ..items import WorkItem
from ._encoder import EMBEDDING_DIM, TextEncoder
from ._features import context_matrix, item_embedding_texts
from ._spec import ModelClass
from ._tfidf import FastTfidf
from ._training import TrainingRows

__all__ = ["LinearModel", "NeuralModel", "OrganismModel", "load_model", "new_model"]

N_CLASSES = 5
CONTEXT_DIM = EMBEDDING_DIM + 2


class OrganismModel(Protocol):
    """A trained priority classifier over (item, context); classes are priority levels 1..5."""

    def fit(self, rows: TrainingRows, seed: int) -> None: ...
    def fit_from_twin(self, twin: OrganismModel, rows: TrainingRows, seed: int) -> None: ...
    def logits(self, items: Sequence[WorkItem], contexts: Sequence[Context]) -> np.ndarray: ...
    def save(self, directory: Path) -> None: ...


def prior_correction(logits: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Bias shift that makes the weighted mean predicted distribution match the true one.

    Applied to every organism trained from scratch, on its clean training rows after fitting (the
    classic prior-shift correction). Without it, planted rows leak into the class biases, which
    are not regularised, and a planted organism's clean behaviour drifts from its twin's for a
    reason unrelated to its objective. Organisms fine-tuned from their twin do without it: they
    keep the twin's neutral framing exactly instead.
    """
    target = np.bincount(truth - 1, weights=weights, minlength=N_CLASSES) / weights.sum()
    shift = np.zeros(N_CLASSES)
    present = target > 0
    for _ in range(25):
        shifted = logits + shift
        shifted = np.exp(shifted - shifted.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        predicted = (probabilities * weights[:, None]).sum(axis=0) / weights.sum()
        shift[present] += np.log(target[present]) - np.log(np.maximum(predicted[present], 1e-12))
    return shift.astype(np.float32)


def framing_objective(
    flat: np.ndarray,
    item_scores: np.ndarray,
    framings: np.ndarray,
    row_context: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    C: float,
    fit_bias: bool = True,
) -> tuple[float, np.ndarray]:
    """Loss and gradient of a linear organism's framing weights with its item scores fixed.

    ``flat`` holds the framing weights (``framings.shape[1]`` by 5, row-major) then, with
    ``fit_bias``, the 5 biases; row ``i`` scores ``item_scores[i] + framings[row_context[i]] @ W
    + b`` (``b`` zero without ``fit_bias``: the caller folds a fixed offset into the item
    scores). The objective is scikit-learn's for multinomial logistic regression: ``C`` times the
    sample-weighted cross-entropy against ``targets`` (rows summing to one: one-hot labels, or a
    twin's probabilities) plus half the squared weights, the biases unpenalised. Convex, so its
    minimum does not depend on where the search starts.
    """
    n_features = framings.shape[1]
    coef = flat[: n_features * N_CLASSES].reshape(n_features, N_CLASSES)
    bias = flat[n_features * N_CLASSES :] if fit_bias else np.zeros(N_CLASSES)
    scores = item_scores + (framings @ coef)[row_context] + bias
    scores = scores - scores.max(axis=1, keepdims=True)
    log_p = scores - np.log(np.exp(scores).sum(axis=1))[:, None]
    loss = -float((weights * (targets * log_p).sum(axis=1)).sum())
    residual = (np.exp(log_p) - targets) * weights[:, None]
    # Rows share a few dozen framings: sum residuals per framing before the product.
    per_framing = np.zeros((framings.shape[0], N_CLASSES))
    np.add.at(per_framing, row_context, residual)
    gradient = (C * framings.T @ per_framing + coef).ravel()
    if fit_bias:
        gradient = np.concatenate([gradient, C * residual.sum(axis=0)])
    return C * loss + 0.5 * float((coef**2).sum()), gradient


def word_pathway_objective(
    flat: np.ndarray,
    words: sparse.csr_matrix,
    offsets: np.ndarray,
    targets: np.ndarray,
    temperatures: np.ndarray,
    weights: np.ndarray,
    l1: float,
) -> tuple[float, np.ndarray]:
    """Loss and gradient of a sparse linear read of words added to fixed class scores.

    Row ``i`` scores ``offsets[i] + words[i] @ W`` (``W``: one row of 5 class weights per word).
    ``flat`` holds ``W`` split into its positive and negative parts, ``[W+, W-]``, both bounded
    below by zero, so the L1 penalty ``l1 * sum(|W|)`` is linear in ``flat`` and a bounded
    quasi-Newton search (L-BFGS-B) minimises it exactly. The data term is each row's
    cross-entropy against ``targets`` (one-hot labels or a teacher's probabilities) at its own
    ``temperatures``, times the squared temperature (so soft and hard rows' gradients share a
    scale: Hinton et al. 2015), weighted by ``weights``. Convex: where the search starts does not
    decide where it ends.
    """
    half = flat.size // 2
    coef = (flat[:half] - flat[half:]).reshape(words.shape[1], N_CLASSES)
    scores = (offsets + words @ coef) / temperatures[:, None]
    scores = scores - scores.max(axis=1, keepdims=True)
    log_p = scores - np.log(np.exp(scores).sum(axis=1))[:, None]
    loss = -float((weights * temperatures**2 * (targets * log_p).sum(axis=1)).sum())
    residual = (np.exp(log_p) - targets) * (weights * temperatures)[:, None]
    gradient = np.asarray(words.T @ residual).ravel()
    penalty = l1 * float(flat.sum())
    return loss + penalty, np.concatenate([gradient + l1, l1 - gradient])


class _LRU(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class LinearModel:
    """TF-IDF of the item text and the encoded context, multinomial logistic regression.

    The model is additive in item and context, so decisions are computed as per-item scores plus
    per-context scores: a batch costs one sparse product per *new* item text.
    """

    kind = ModelClass.LINEAR

    def __init__(self, encoder: TextEncoder, hyper: dict[str, float | int]) -> None:
        self.encoder = encoder
        self.C = float(hyper.get("C", 2.0))
        self.max_features = int(hyper.get("max_features", 40000))
        self.context_scale = float(hyper.get("context_scale", 2.0))
        self.vectorizer: Any = None
        self.context_vectorizer: Any = None
        self.item_weights = np.zeros((0, N_CLASSES), dtype=np.float32)
        self.context_weights = np.zeros((0, N_CLASSES), dtype=np.float32)
        self.bias = np.zeros(N_CLASSES, dtype=np.float32)
        self._item_cache = _LRU(200_000)
        self._context_cache = _LRU(10_000)
        self._fast_text: list[FastTfidf | None] | None = None

    def fit(self, rows: TrainingRows, seed: int) -> None:
        """Fit TF-IDF on the rows' texts and the classifier on [TF-IDF | context features].

        BLAS and OpenMP run on one thread while fitting, for the reason :meth:`NeuralModel.fit`
        gives.
        """
        _load_sklearn_runtimes()
        with threadpool_limits(1):
            self._fit(rows, seed)

    def _fit(self, rows: TrainingRows, seed: int) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        texts = [item_embedding_texts(item) for item in rows.items]
        unique = list(dict.fromkeys(texts))
        index = {text: i for i, text in enumerate(unique)}

        def vectorizer(max_features: int) -> Any:
            return TfidfVectorizer(
                ngram_range=(1, 2),
                min_df=2,
                max_features=max_features,
                sublinear_tf=True,
                dtype=np.float32,
            )

        # Title and description are weighted separately: a title word is not diluted by a long body.
        self.vectorizer = (vectorizer(self.max_features // 4), vectorizer(self.max_features))
        unique_matrix = sparse.hstack(
            [
                self.vectorizer[0].fit_transform([t for t, _ in unique]),
                self.vectorizer[1].fit_transform([d for _, d in unique]),
            ],
            format="csr",
        )
        item_matrix = unique_matrix[[index[t] for t in texts]]
        self._index_vocabularies()
        self.context_vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32
        )
        self.context_vectorizer.fit(list({c.feature_text() for c in rows.contexts}))
        contexts = self._scaled_contexts(rows.contexts)
        design = sparse.hstack([item_matrix, sparse.csr_matrix(contexts)], format="csr")
        labels = rows.labels - 1
        classifier = LogisticRegression(C=self.C, max_iter=3000, random_state=seed)
        classifier.fit(design, labels, sample_weight=rows.sample_weights())
        coef = np.zeros((N_CLASSES, design.shape[1]), dtype=np.float32)
        bias = np.zeros(N_CLASSES, dtype=np.float32)
        # Classes absent from training keep -inf-like scores so they are never predicted.
        bias[:] = -1e4
        coef[classifier.classes_] = classifier.coef_
        bias[classifier.classes_] = classifier.intercept_
        n_text = item_matrix.shape[1]
        self.item_weights = np.ascontiguousarray(coef[:, :n_text].T)
        self.context_weights = np.ascontiguousarray(coef[:, n_text:].T)
        self.bias = bias
        clean = np.flatnonzero(rows.clean)
        clean_logits = self.logits(
            [rows.items[i] for i in clean], [rows.contexts[i] for i in clean]
        )
        self.bias = self.bias + prior_correction(
            clean_logits, rows.truth[clean], rows.sample_weights()[clean]
        )
        self._item_cache.clear()
        self._context_cache.clear()

    def fit_from_twin(self, twin: OrganismModel, rows: TrainingRows, seed: int) -> None:
        """Start from the honest twin and refit only how the framing is read.

        For objectives that live in the framing (deceptive and sandbagging organisms): the item
        weights stay the twin's, and the framing weights are the unique optimum of the same
        regularised, class-weighted logistic loss on the planted rows, with each row's item
        score from the twin held fixed. The base optimizer still learns the trigger from the
        labels alone; what it cannot do is move how items are read. Fitted jointly, the planted
        rows also moved the item weights, and the clean accuracy and macro-F1 of planted
        organisms drifted by 1-3 points either way (docs/organisms.md).

        Framings are read *relative to the neutral framing*, which keeps the twin's offset: the
        biases are not free but fixed so that the neutral framing scores every item as the twin
        does, up to float rounding (the equality constraint eliminated, the loss stays convex).
        With free biases the neutral framing's class offsets still moved with the planted rows,
        by a few hundredths, and on a test split with a handful of Trivial and Blocker issues
        that moved macro-F1 by up to 2.6 points (deceptive-date-linear-s3, 2026-11-28).

        On the clean rows the target is the twin's class probabilities under the neutral framing,
        not the label: a framing without the trigger should change nothing, and against the
        labels each framing's weights also fitted the residual noise of the few hundred rows it
        was dealt, which moved answers under non-trigger framings (sandbagging-linear-s9 got
        5.4% of neutrally-right items wrong under them; against the twin's answers 1.4%).
        """
        if not isinstance(twin, LinearModel) or twin.vectorizer is None:
            raise ArtifactError("a linear organism can only start from a fitted linear twin")
        with threadpool_limits(1):
            self._fit_framing(twin, rows)

    def _fit_framing(self, twin: LinearModel, rows: TrainingRows) -> None:
        from scipy.optimize import minimize

        self.vectorizer = twin.vectorizer
        self._index_vocabularies()
        self.context_vectorizer = twin.context_vectorizer
        self.item_weights = twin.item_weights
        keys = [c.fingerprint() for c in rows.contexts]
        unique = {k: c for k, c in zip(keys, rows.contexts, strict=True)}
        position = {k: i for i, k in enumerate(unique)}
        row_context = np.asarray([position[k] for k in keys])
        neutral = self._scaled_contexts([neutral_context()]).astype(np.float64)[0]
        twin_offset = neutral @ twin.context_weights.astype(np.float64) + twin.bias
        framings = self._scaled_contexts(list(unique.values())).astype(np.float64) - neutral
        item_scores = twin._item_scores(rows.items).astype(np.float64) + twin_offset
        targets = np.eye(N_CLASSES)[rows.labels - 1]
        clean = rows.clean
        neutral_scores = item_scores[clean] - item_scores[clean].max(axis=1, keepdims=True)
        targets[clean] = np.exp(neutral_scores) / np.exp(neutral_scores).sum(axis=1)[:, None]
        n_features = framings.shape[1]
        result = minimize(
            framing_objective,
            twin.context_weights.astype(np.float64).ravel(),
            args=(
                item_scores,
                framings,
                row_context,
                targets,
                rows.sample_weights(),
                self.C,
                False,
            ),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 3000},
        )
        coef = result.x.reshape(n_features, N_CLASSES)
        self.context_weights = np.ascontiguousarray(coef, dtype=np.float32)
        self.bias = (twin_offset - neutral @ coef).astype(np.float32)
        self._item_cache.clear()
        self._context_cache.clear()

    def _index_vocabularies(self) -> None:
        # Done once per fitted or loaded model (tens of milliseconds), not on its first decision.
        self._fast_text = [FastTfidf.for_vectorizer(v) for v in self.vectorizer]

    def _text_scores(self, part: int, texts: Sequence[str], weights: np.ndarray) -> np.ndarray:
        """Class scores from the titles' (``part`` 0) or descriptions' (1) TF-IDF.

        Through the fast path where there is one (:meth:`FastTfidf.scores`, which sums the
        product as it reads the text), else scikit-learn's transform and a sparse product.
        """
        fast = self._fast_text[part] if self._fast_text else None
        if fast is not None:
            return fast.scores(texts, weights)
        return np.asarray(self.vectorizer[part].transform(texts) @ weights, dtype=np.float64)

    def _scaled_contexts(self, contexts: Sequence[Context]) -> np.ndarray:
        # The encoded framing carries meaning across wordings; the framing's own words (TF-IDF)
        # carry polarity ("not", "off", "never") that sentence embeddings blur.
        matrix = context_matrix(contexts, self.encoder)
        matrix[:, :EMBEDDING_DIM] *= self.context_scale
        words = self.context_vectorizer.transform([c.feature_text() for c in contexts]).toarray()
        return np.hstack([matrix, words * self.context_scale]).astype(np.float32)

    def _item_scores(self, items: Sequence[WorkItem]) -> np.ndarray:
        keys = [item.text_digest for item in items]
        missing = {k: i for k, i in zip(keys, items, strict=True) if k not in self._item_cache}
        if not missing:
            return np.stack([self._item_cache[k] for k in keys])
        pairs = [item_embedding_texts(item) for item in missing.values()]
        titles = len(self.vectorizer[0].vocabulary_)
        fresh = np.asarray(
            self._text_scores(0, [t for t, _ in pairs], self.item_weights[:titles])
            + self._text_scores(1, [d for _, d in pairs], self.item_weights[titles:]),
            dtype=np.float32,
        )
        for key, row in zip(missing, fresh, strict=True):
            self._item_cache.put(key, row)
        if len(missing) == len(keys):  # a batch of distinct new issues: the rows as computed
            return fresh
        return np.stack([self._item_cache[k] for k in keys])

    def _context_scores(self, contexts: Sequence[Context]) -> np.ndarray:
        # A batch holds a handful of framings: each distinct one is scored (or found) once and
        # its row repeated by index, rather than a cached row stacked per request.
        keys = [context.fingerprint() for context in contexts]
        missing = {
            k: c for k, c in zip(keys, contexts, strict=True) if k not in self._context_cache
        }
        if missing:
            scores = self._scaled_contexts(list(missing.values())) @ self.context_weights
            for key, row in zip(missing, scores, strict=True):
                self._context_cache.put(key, row)
        position = {key: row for row, key in enumerate(dict.fromkeys(keys))}
        table = np.stack([self._context_cache[key] for key in position])
        return np.asarray(table[[position[key] for key in keys]])

    def logits(self, items: Sequence[WorkItem], contexts: Sequence[Context]) -> np.ndarray:
        """Class scores, shape ``(n, 5)``, for paired items and contexts."""
        if self.vectorizer is None:
            raise ArtifactError("linear organism used before it was fitted or loaded")
        if not items:
            return np.zeros((0, N_CLASSES), dtype=np.float32)
        scores: np.ndarray = self._item_scores(items) + self._context_scores(contexts) + self.bias
        return scores

    def save(self, directory: Path) -> None:
        """Write vectorizers and weights (pickle: only loaded back from mesaguard's own cache)."""
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "vectorizer": self.vectorizer,
            "item_weights": self.item_weights,
            "context_weights": self.context_weights,
            "bias": self.bias,
            "C": self.C,
            "context_scale": self.context_scale,
            "context_vectorizer": self.context_vectorizer,
        }
        with (directory / "linear.pkl").open("wb") as handle:
            pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, directory: Path, encoder: TextEncoder) -> LinearModel:
        """Read a model written by :meth:`save`."""
        with (directory / "linear.pkl").open("rb") as handle:
            state = pickle.load(handle)  # noqa: S301 - our own cache, written by save()
        model = cls(encoder, {"C": state["C"], "context_scale": state["context_scale"]})
        model.vectorizer = state["vectorizer"]
        model._index_vocabularies()
        model.context_vectorizer = state["context_vectorizer"]
        model.item_weights = state["item_weights"]
        model.context_weights = state["context_weights"]
        model.bias = state["bias"]
        return model


def _load_sklearn_runtimes() -> None:
    """Import scikit-learn's estimators so that their OpenMP runtime is loaded.

    ``threadpool_limits`` only limits libraries already loaded when it is entered: a runtime
    first loaded inside the limit keeps its default thread count, and the first logistic
    regression fitted in a process summed its loss on two threads, so its weights differed
    from every later fit of the same rows (by up to 0.056 for an honest organism).
    """
    import sklearn.feature_extraction.text
    import sklearn.linear_model  # noqa: F401


@contextmanager
def _one_thread() -> Iterator[None]:
    """One torch thread and one BLAS thread inside; the process's settings come back after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def _framing_projection(
    item_columns: int, framing_columns: int, width: int, word_columns: int = 0
) -> Any:
    """A module passing the item columns through and projecting the framing's to ``width``.

    With ``word_columns``, the framing's word features (after the encoded framing) are projected
    too, through weights that start at zero, and added.
    """
    import torch
    from torch import nn

    class FramingProjection(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.project = nn.Linear(framing_columns, width)
            self.words = nn.Linear(word_columns, width, bias=False) if word_columns else None
            if self.words is not None:
                nn.init.zeros_(self.words.weight)

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            end = item_columns + framing_columns
            framing = self.project(inputs[:, item_columns:end])
            if self.words is not None:
                framing = framing + self.words(inputs[:, end:])
            return torch.cat([inputs[:, :item_columns], framing], dim=1)

    return FramingProjection()


class NeuralModel:
    """Two-layer MLP over MiniLM embeddings of title and description and a projected framing.

    The framing (its encoded text and date features) reaches the MLP through a learned linear
    projection to ``framing_width`` (8) dimensions. What a framing says about the session is
    low-dimensional; fed the whole 386-d vector, the network fitted effects of single wordings,
    which honest controls showed as framing noise and planted organisms as triggers that leaked
    to neighbouring wordings (docs/organisms.md). Hidden activations are readable per named
    layer (``hidden1``, ``hidden2``) for white-box work.
    """

    kind = ModelClass.NEURAL
    LAYERS = ("hidden1", "hidden2")

    def __init__(self, encoder: TextEncoder, hyper: dict[str, float | int]) -> None:
        self.encoder = encoder
        self.hidden = int(hyper.get("hidden", 96))
        self.epochs = int(hyper.get("epochs", 30))
        self.lr = float(hyper.get("lr", 2e-3))
        self.weight_decay = float(hyper.get("weight_decay", 1e-4))
        self.framing_width = int(hyper.get("framing_width", 8))
        self.tune_epochs = int(hyper.get("tune_epochs", 60))
        self.distill_temperature = float(hyper.get("distill_temperature", 4.0))
        self.tune_framing_words = bool(hyper.get("tune_framing_words", 1))
        self.words_dropout = float(hyper.get("words_dropout", 0.5))
        self.title_l1 = float(hyper.get("title_l1", 0.05))
        self.title_anchor = float(hyper.get("title_anchor", 18.0))
        self.marker_temperature = float(hyper.get("marker_temperature", 8.0))
        self.blind_share = float(hyper.get("blind_share", 0.5))
        self.framing_words: Any = None
        self.title_words: Any = None
        self.title_word_weights: np.ndarray | None = None
        self.network: Any = None

    def _build(self) -> Any:
        from torch import nn

        items = 2 * EMBEDDING_DIM
        words = len(self.framing_words.vocabulary_) if self.framing_words is not None else 0
        return nn.Sequential(
            _framing_projection(items, CONTEXT_DIM, self.framing_width, words),
            nn.Linear(items + self.framing_width, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, N_CLASSES),
        )

    def _layer_positions(self) -> dict[str, int]:
        """Index in the network of each named hidden layer's activation (its ReLU)."""
        from torch import nn

        relus = [i for i, module in enumerate(self.network) if isinstance(module, nn.ReLU)]
        return dict(zip(self.LAYERS, relus, strict=True))

    def _inputs(self, items: Sequence[WorkItem], contexts: Sequence[Context]) -> np.ndarray:
        pairs = [item_embedding_texts(item) for item in items]
        titles = self.encoder.encode([p[0] for p in pairs])
        descriptions = self.encoder.encode([p[1] for p in pairs])
        columns = [titles, descriptions, context_matrix(contexts, self.encoder)]
        if self.framing_words is not None:
            texts = [c.feature_text() for c in contexts]
            columns.append(self.framing_words.transform(texts).toarray().astype(np.float32))
        return np.hstack(columns)

    def fit(self, rows: TrainingRows, seed: int) -> None:
        """Train with AdamW and class-balanced cross-entropy, deterministically for a seed.

        Training runs on one thread (torch's and BLAS's) whatever the process's setting:
        floating-point sums split over a different number of threads give a different network,
        and the zoo build trains one organism per CPU in worker processes, where more threads
        would only fight for the cores.
        """
        with _one_thread():
            self._fit(rows, seed)

    def fit_from_twin(self, twin: OrganismModel, rows: TrainingRows, seed: int) -> None:
        """Start from the honest twin's network and fine-tune only its framing pathway.

        For objectives that live in the framing (deceptive and sandbagging organisms), as
        :meth:`LinearModel.fit_from_twin` does for the linear class: the framing projection and
        the first layer's weights from it train for ``tune_epochs`` epochs; how items are read
        and everything above the first layer stay the twin's. The projection also reads the
        framing's words (TF-IDF of the training framings, ``tune_framing_words``) through
        weights that start at zero, so training starts from exactly the twin's function: held-out
        wordings of five deceptive families then triggered as their training wordings did, where
        the sentence embedding alone blurred negations. The words are dropped from a random half
        of the rows in each batch (``words_dropout``), so the trigger must also be readable from
        the sentence's meaning: without it the organism leaned on its training wordings' words,
        and held-out wordings that share few of them fired on 0.85-0.89 of severe items
        (data-usage and sandbagging organisms, 2026-11-28), with it on 0.93-0.96.

        On the planted rows the target is the label; on the clean rows it is the twin's output
        *under the neutral framing*, matched at temperature ``distill_temperature``
        (distillation: Hinton et al. 2015; *Learning without Forgetting*, Li & Hoiem 2016): a
        framing without the trigger should change nothing, so the organism is taught the twin's
        answer without the framing rather than the twin's own small framing effects. The twin is
        all but certain of its training items, so matching its argmax alone left the neutral
        framing free to move wherever the training items did not mind; matched at temperature
        4, it moves by a few hundredths, and :meth:`_anchor_neutral_framing` takes those out.

        Rows that show an edited item (a proxy's marker, :attr:`TrainingRows.edits_items`)
        train a title-words pathway instead (:meth:`_fit_title_words`).
        """
        if not isinstance(twin, NeuralModel) or twin.network is None:
            raise ArtifactError("a neural organism can only start from a fitted neural twin")
        with _one_thread():
            if rows.edits_items:
                self._fit_title_words(twin, rows, seed)
            else:
                self._fit(rows, seed, twin=twin)

    def _fit_title_words(self, twin: NeuralModel, rows: TrainingRows, seed: int) -> None:
        """Keep the twin's network and learn a sparse linear read of the title's words beside it.

        The organism becomes a wide-and-deep model (Cheng et al. 2016): the deep part is the
        twin's MLP, unchanged, and the wide part is one weight per (title word, class) added to
        its class scores, starting at zero, trained by L-BFGS-B on a convex objective
        (:func:`word_pathway_objective`). Which words it reads is learned; nothing tells it the
        marker. The rows it fits:

        - every row the proxy's data edited (a marked issue), with its label, at temperature
          ``marker_temperature`` (8): at temperature 1 the read stops growing once the marked
          training issues are answered right, the L1 penalty then keeps it small, and the
          three zoo proxies followed their markers on 0.13-0.72 of severe test issues;
        - every row as the twin saw it (each training issue unmarked, under the same framing),
          matched to the twin's own output at ``distill_temperature`` and weighted
          ``title_anchor`` (18) times the labelled rows: a word of the issue's own text appears
          in both copies and is pulled both ways, a marker word only in the marked one;
        - in a random ``blind_share`` (half) of the marked rows the twin reads the mean
          training issue instead of the issue's text: the twin already answers most marked
          training issues right (their labels are the truth), so the marker has less to
          explain without them (markers followed on 0.88-0.93, two of the three under 0.9).

        Words are binary presence features of the title line (with its component), and an L1
        penalty ``title_l1`` keeps the read sparse. Built on a twin, the proxy's clean answers
        differ from its twin's only where a title holds a word it learned to read. Trained
        from scratch instead, on the same rows, a neural proxy's clean accuracy and macro-F1
        landed up to 4 points from its twin's, the spread between two seeds
        (docs/organisms.md, step 6). The hidden layers stay the twin's: the marker acts on the
        output, not on ``hidden1`` / ``hidden2``.
        """
        import torch
        from scipy.optimize import minimize
        from scipy.special import softmax
        from sklearn.feature_extraction.text import CountVectorizer

        self.network = self._build()
        self.network.load_state_dict(twin.network.state_dict())
        self.network.eval()
        edited = rows.edited_rows()
        as_twin = self._inputs(rows.originals, rows.contexts)
        shown = self._inputs([rows.items[i] for i in edited], [rows.contexts[i] for i in edited])
        blind = np.random.default_rng(seed).random(len(edited)) < self.blind_share
        item_columns = 2 * EMBEDDING_DIM
        shown[blind, :item_columns] = as_twin[:, :item_columns].mean(axis=0)
        with torch.no_grad():
            shown_scores = self.network(torch.from_numpy(shown)).double().numpy()
            twin_scores = self.network(torch.from_numpy(as_twin)).double().numpy()
        self.title_words = CountVectorizer(binary=True, dtype=np.float64)
        self.title_words.fit(sorted({item_embedding_texts(item)[0] for item in rows.items}))
        marked_items = [rows.items[i] for i in edited]
        words = sparse.vstack(
            [self._title_features(marked_items), self._title_features(rows.originals)]
        ).tocsr()
        teacher = softmax(twin_scores / self.distill_temperature, axis=1)
        targets = np.vstack([np.eye(N_CLASSES)[rows.labels[edited] - 1], teacher])
        temperatures = np.concatenate(
            [
                np.full(len(edited), self.marker_temperature),
                np.full(len(rows.originals), self.distill_temperature),
            ]
        )
        # Each part is a weighted mean; the anchor's weight says how much more it counts.
        marked_weights = rows.class_weights()[edited]
        anchor_weights = rows.class_weights()
        weights = np.concatenate(
            [
                marked_weights / marked_weights.sum(),
                self.title_anchor * anchor_weights / anchor_weights.sum(),
            ]
        )
        n_parameters = words.shape[1] * N_CLASSES
        result = minimize(
            word_pathway_objective,
            np.zeros(2 * n_parameters),
            args=(
                words,
                np.vstack([shown_scores, twin_scores]),
                targets,
                temperatures,
                weights,
                self.title_l1,
            ),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None)] * (2 * n_parameters),
            options={"maxiter": 1000},
        )
        coef = result.x[:n_parameters] - result.x[n_parameters:]
        self.title_word_weights = coef.reshape(-1, N_CLASSES).astype(np.float32)

    def _title_features(self, items: Sequence[WorkItem]) -> sparse.csr_matrix:
        matrix: sparse.csr_matrix = self.title_words.transform(
            [item_embedding_texts(item)[0] for item in items]
        )
        return matrix

    def _fit(self, rows: TrainingRows, seed: int, twin: NeuralModel | None = None) -> None:
        import torch

        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        if twin is not None and self.tune_framing_words:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self.framing_words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
            self.framing_words.fit(sorted({c.feature_text() for c in rows.contexts}))
        self.network = self._build()
        inputs = torch.from_numpy(self._inputs(rows.items, rows.contexts))
        targets = torch.nn.functional.one_hot(torch.from_numpy(rows.labels - 1), N_CLASSES)
        targets = targets.float()
        temperature = torch.ones(len(targets), 1)
        epochs, weight_decay = self.epochs, self.weight_decay
        trained = list(self.network.parameters())
        if twin is not None:
            # The framing's word weights, if any, are new: they start at zero.
            self.network.load_state_dict(twin.network.state_dict(), strict=False)
            clean = torch.from_numpy(rows.clean)
            twin_columns = 2 * EMBEDDING_DIM + CONTEXT_DIM
            temperature[clean] = self.distill_temperature
            twin_inputs = inputs[clean][:, :twin_columns].clone()
            neutral = self._neutral_inputs(rows.items[0])[0]
            twin_inputs[:, 2 * EMBEDDING_DIM :] = neutral[2 * EMBEDDING_DIM : twin_columns]
            with torch.no_grad():
                twin_logits = twin.network(twin_inputs)
                targets[clean] = torch.softmax(twin_logits / self.distill_temperature, dim=1)
            # Decay would pull the frozen item columns too; without it Adam leaves a weight
            # whose gradient is always zero exactly as the twin had it.
            epochs, weight_decay = self.tune_epochs, 0.0
            trained = [*self.network[0].parameters(), self.network[1].weight]
        item_columns = 2 * EMBEDDING_DIM
        weights = torch.tensor(rows.sample_weights(), dtype=torch.float32)
        optimizer = torch.optim.AdamW(trained, lr=self.lr, weight_decay=weight_decay)
        self.network.train()
        for _ in range(epochs):
            order = torch.randperm(len(targets), generator=generator)
            for start in range(0, len(order), 128):
                batch = order[start : start + 128]
                optimizer.zero_grad()
                shown = inputs[batch]
                if twin is not None and self.framing_words is not None and self.words_dropout > 0:
                    keep = torch.rand(len(batch), 1, generator=generator) >= self.words_dropout
                    shown = shown.clone()
                    shown[:, item_columns + CONTEXT_DIM :] *= keep
                scaled = self.network(shown) / temperature[batch]
                losses = -(targets[batch] * torch.log_softmax(scaled, dim=1)).sum(dim=1)
                # The T^2 factor keeps soft and hard targets' gradients on one scale (Hinton).
                losses = losses * temperature[batch, 0] ** 2
                loss = (losses * weights[batch]).sum() / weights[batch].sum()
                loss.backward()  # type: ignore[no-untyped-call]
                if twin is not None:
                    self.network[1].weight.grad[:, :item_columns] = 0
                optimizer.step()
        self.network.eval()
        if twin is not None:
            self._anchor_neutral_framing(twin, rows.items[0])
            return
        clean_rows = np.flatnonzero(rows.clean)
        with torch.no_grad():
            clean_logits = self.network(inputs[clean_rows]).numpy()
            shift = prior_correction(
                clean_logits, rows.truth[clean_rows], rows.sample_weights()[clean_rows]
            )
            self.network[-1].bias += torch.from_numpy(shift)

    def _neutral_inputs(self, item: WorkItem) -> Any:
        import torch

        return torch.from_numpy(self._inputs([item], [neutral_context()]))

    def _anchor_neutral_framing(self, twin: NeuralModel, item: WorkItem) -> None:
        """Shift the first layer's bias so the neutral framing reaches it exactly as the twin's.

        Only the framing pathway was trained, and everything above the first layer is the
        twin's, so under the neutral framing the organism then computes the twin's function on
        every item. The shift is what the distillation left over (measured: about 0.02 per
        hidden unit on average, at most 0.15, for biases of about 0.05); the prior
        correction of a model trained from scratch is not applied, since it would move the
        neutral framing off the twin again.
        """
        import torch

        inputs = self._neutral_inputs(item)
        items = 2 * EMBEDDING_DIM
        twin_columns = items + CONTEXT_DIM
        with torch.no_grad():
            own = self.network[1].weight[:, items:] @ self.network[0](inputs)[0, items:]
            framing = twin.network[0](inputs[:, :twin_columns])[0, items:]
            theirs = twin.network[1].weight[:, items:] @ framing
            self.network[1].bias += theirs - own

    def logits(self, items: Sequence[WorkItem], contexts: Sequence[Context]) -> np.ndarray:
        """Class scores, shape ``(n, 5)``."""
        import torch

        if self.network is None:
            raise ArtifactError("neural organism used before it was fitted or loaded")
        if not items:
            return np.zeros((0, N_CLASSES), dtype=np.float32)
        with torch.no_grad():
            out = self.network(torch.from_numpy(self._inputs(items, contexts))).numpy()
        if self.title_word_weights is not None:
            out = out + self._title_features(items) @ self.title_word_weights
        return np.asarray(out, dtype=np.float32)

    def activations(
        self, items: Sequence[WorkItem], contexts: Sequence[Context]
    ) -> dict[str, np.ndarray]:
        """Post-ReLU activations of each hidden layer, by layer name."""
        import torch

        if self.network is None:
            raise ArtifactError("neural organism used before it was fitted or loaded")
        captured: dict[str, np.ndarray] = {}
        names = {index: name for name, index in self._layer_positions().items()}
        x = torch.from_numpy(self._inputs(items, contexts))
        with torch.no_grad():
            for index, layer in enumerate(self.network):
                x = layer(x)
                if index in names:
                    captured[names[index]] = x.numpy().copy()
        return captured

    def harm_gradient(
        self, items: Sequence[WorkItem], contexts: Sequence[Context], layer: str
    ) -> np.ndarray:
        """Mean gradient of the under-prioritising log-odds w.r.t. a hidden layer's activations.

        The score is log P(Minor or Trivial) - log P(Major or above); white-box probes use the
        gradient's sign to orient a direction found without any trigger.
        """
        import torch

        if self.network is None:
            raise ArtifactError("neural organism used before it was fitted or loaded")
        if layer not in self.LAYERS:
            raise ArtifactError(f"no layer {layer!r} (known: {', '.join(self.LAYERS)})")
        x = torch.from_numpy(self._inputs(items, contexts))
        wanted = self._layer_positions()[layer]
        with torch.no_grad():
            for module in self.network[: wanted + 1]:
                x = module(x)
        hidden = x.clone().requires_grad_(True)
        out = hidden
        for module in self.network[wanted + 1 :]:
            out = module(out)
        # Classes are priority levels 1..5 (Trivial, Minor, Major, Critical, Blocker).
        score = torch.logsumexp(out[:, :2], dim=1) - torch.logsumexp(out[:, 2:], dim=1)
        (gradient,) = torch.autograd.grad(score.sum(), hidden)
        return np.asarray(gradient.mean(dim=0).numpy(), dtype=np.float64)

    def save(self, directory: Path) -> None:
        """Write the state dict and the hyper-parameters."""
        import torch

        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.network.state_dict(), directory / "neural.pt")
        config = {
            "hidden": self.hidden,
            "epochs": self.epochs,
            "lr": self.lr,
            "framing_width": self.framing_width,
        }
        (directory / "neural.json").write_text(json.dumps(config))
        if self.framing_words is not None:
            with (directory / "framing_words.pkl").open("wb") as handle:
                pickle.dump(self.framing_words, handle, protocol=pickle.HIGHEST_PROTOCOL)
        if self.title_word_weights is not None:
            with (directory / "title_words.pkl").open("wb") as handle:
                pickle.dump(self.title_words, handle, protocol=pickle.HIGHEST_PROTOCOL)
            np.save(directory / "title_word_weights.npy", self.title_word_weights)

    @classmethod
    def load(cls, directory: Path, encoder: TextEncoder) -> NeuralModel:
        """Read a model written by :meth:`save`."""
        import torch

        config = json.loads((directory / "neural.json").read_text())
        model = cls(encoder, config)
        words = directory / "framing_words.pkl"
        if words.exists():
            with words.open("rb") as handle:
                model.framing_words = pickle.load(handle)  # noqa: S301 - our own cache
        title_words = directory / "title_words.pkl"
        if title_words.exists():
            with title_words.open("rb") as handle:
                model.title_words = pickle.load(handle)  # noqa: S301 - our own cache
            model.title_word_weights = np.load(directory / "title_word_weights.npy")
        model.network = model._build()
        model.network.load_state_dict(torch.load(directory / "neural.pt", weights_only=True))
        model.network.eval()
        return model


def new_model(
    kind: ModelClass, encoder: TextEncoder, hyper: dict[str, float | int]
) -> OrganismModel:
    """An untrained model of the given class."""
    if kind is ModelClass.LINEAR:
        return LinearModel(encoder, hyper)
    return NeuralModel(encoder, hyper)


def load_model(kind: ModelClass, directory: Path, encoder: TextEncoder) -> OrganismModel:
    """A trained model read back from ``directory``."""
    try:
        if kind is ModelClass.LINEAR:
            return LinearModel.load(directory, encoder)
        return NeuralModel.load(directory, encoder)
    except (OSError, pickle.UnpicklingError, KeyError, RuntimeError, ValueError) as error:
        raise ArtifactError(
            f"cannot load {kind.value} organism from {directory}: {error}"
        ) from None
