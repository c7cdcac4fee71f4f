"""The linear organisms' fast TF-IDF path gives scikit-learn's matrix exactly."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from mesaguard.items import bundled_hadoop, split_items
from mesaguard.organisms import _tfidf
from mesaguard.organisms._features import item_embedding_texts
from mesaguard.organisms._tfidf import FastTfidf

# Words the default pattern treats in ways a naive tokenizer would not: one-letter words between
# two others (dropped, so their neighbours form a bigram), underscores and digits (word
# characters), letters outside ASCII, a capital whose lower-case form is two code points (the
# second of them, a combining dot, is not a word character), and apostrophes.
AWKWARD = [
    "",
    "a b c",
    "NullPointerException in FSNamesystem x when y the namenode restarts",
    "dfs_client_retry 42 times; the 2nd time it's fine",
    "İstanbul Straße ΣΑΣ naïve café — “quoted” résumé",
    # Capitals outside ASCII lowered one by one, one of them (the Kelvin sign) to ASCII.
    "ÉCOLE ÜBER ÀLA \u212aelvin ǅungla ΩMEGA",
    "job tracker\u00a0web\tui\nlost\u2028its   state",
    "mapred mapred mapred",
    "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 letters and an emoji 🚀 between words, a lone \ud800 surrogate",
]


@pytest.fixture(scope="module")
def texts() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    splits = split_items(bundled_hadoop().items)
    train = [item_embedding_texts(item) for item in splits.train]
    new = [item_embedding_texts(item) for item in splits.test]
    return train, new


@pytest.mark.parametrize("ngrams", [(1, 1), (1, 2)])
@pytest.mark.parametrize("part", [0, 1], ids=["title", "description"])
def test_fast_path_equals_scikit_learn_on_real_issues(
    texts: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    ngrams: tuple[int, int],
    part: int,
) -> None:
    train, new = texts
    vectorizer = TfidfVectorizer(
        ngram_range=ngrams, min_df=2, max_features=20000, sublinear_tf=True, dtype=np.float32
    )
    vectorizer.fit([pair[part] for pair in train] + AWKWARD)
    fast = FastTfidf.for_vectorizer(vectorizer)
    assert fast is not None
    documents = [pair[part] for pair in new] + AWKWARD
    expected = vectorizer.transform(documents)
    # Both ways of counting: the compiled kernel and the one used where numba is missing.
    assert fast._compiled is not None
    compiled = fast.transform(documents)
    fast._compiled = None
    split = fast.transform(documents)
    for got in (compiled, split):
        assert got.shape == expected.shape
        assert got.dtype == expected.dtype
        assert (got != expected).nnz == 0
    assert expected.nnz > 0


@pytest.mark.parametrize(
    "weighting",
    [
        {"norm": None},
        {"norm": "l1"},
        {"use_idf": False},
        {"sublinear_tf": False},
        {"smooth_idf": False, "dtype": np.float64},
    ],
    ids=["no-norm", "l1", "no-idf", "raw-tf", "float64"],
)
def test_every_weighting_gives_scikit_learns_matrix(
    texts: tuple[list[tuple[str, str]], list[tuple[str, str]]], weighting: dict[str, object]
) -> None:
    """The fast path applies the TF-IDF weighting itself, so each setting of it is checked."""
    train, new = texts
    options: dict[str, object] = {"ngram_range": (1, 2), "sublinear_tf": True, "dtype": np.float32}
    vectorizer = TfidfVectorizer(**(options | weighting))  # type: ignore[arg-type]
    vectorizer.fit([title for title, _ in train])
    fast = FastTfidf.for_vectorizer(vectorizer)
    assert fast is not None
    documents = [title for title, _ in new] + AWKWARD
    expected = vectorizer.transform(documents)
    got = fast.transform(documents)
    assert got.dtype == expected.dtype
    assert (got != expected).nnz == 0
    assert expected.nnz > 0


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_counting_on_threads_gives_the_same_matrix(
    texts: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
    threads: int,
) -> None:
    train, new = texts
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32)
    vectorizer.fit([description for _, description in train])
    fast = FastTfidf.for_vectorizer(vectorizer)
    assert fast is not None and fast._compiled is not None
    # Short and empty documents among long ones, empty ones at both ends.
    documents = ["", *AWKWARD, *(description for _, description in new[:300]), "", ""]
    monkeypatch.setattr(_tfidf, "_PARALLEL_CHARACTERS", 1000)
    monkeypatch.setattr(_tfidf, "_counting_threads", lambda: threads)
    _tfidf._forget_pool()
    try:
        starts = np.cumsum([0, *(len(d.lower()) + 1 for d in documents)])
        bounds = _tfidf._chunk_bounds(starts, int(starts[-1]))
        assert len(bounds) == threads
        assert [first for first, _ in bounds[1:]] == [last for _, last in bounds[:-1]]
        got = fast.transform(documents)
    finally:
        _tfidf._forget_pool()
    expected = vectorizer.transform(documents)
    assert got.shape == expected.shape
    assert (got != expected).nnz == 0
    assert got.has_sorted_indices


@pytest.mark.parametrize(
    "weighting",
    [{}, {"norm": None}, {"sublinear_tf": False}, {"use_idf": False}, {"norm": "l1"}],
    ids=["default", "no-norm", "raw-tf", "no-idf", "l1-falls-back"],
)
@pytest.mark.parametrize("threads", [1, 3])
def test_scores_are_the_matrix_times_the_weights(
    texts: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
    weighting: dict[str, object],
    threads: int,
) -> None:
    """``scores`` sums the weighted terms as it reads; only float rounding may differ."""
    train, new = texts
    options: dict[str, object] = {"ngram_range": (1, 2), "sublinear_tf": True, "dtype": np.float32}
    vectorizer = TfidfVectorizer(**(options | weighting))  # type: ignore[arg-type]
    vectorizer.fit([description for _, description in train[:600]])
    fast = FastTfidf.for_vectorizer(vectorizer)
    assert fast is not None
    weights = np.random.default_rng(0).normal(size=(len(vectorizer.vocabulary_), 5))
    documents = ["", *AWKWARD, *(description for _, description in new[:200]), ""]
    monkeypatch.setattr(_tfidf, "_PARALLEL_CHARACTERS", 1000)
    monkeypatch.setattr(_tfidf, "_counting_threads", lambda: threads)
    _tfidf._forget_pool()
    try:
        got = fast.scores(documents, weights.astype(np.float32))
    finally:
        _tfidf._forget_pool()
    matrix = vectorizer.transform(documents).astype(np.float64)
    expected = matrix @ weights.astype(np.float32).astype(np.float64)
    # The matrix holds float32 values where the kernel weights in float64, and sums in another
    # order: the totals differ by float32 rounding, far under a millionth of the largest.
    tolerance = 1e-6 * np.abs(expected).max()
    assert got.shape == (len(documents), 5)
    assert tolerance > 0
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=tolerance)
    fast._compiled = None  # without numba: the matrix and a product
    np.testing.assert_allclose(fast.scores(documents, weights), matrix @ weights, atol=tolerance)


def test_scores_refuse_weights_for_another_vocabulary() -> None:
    vectorizer = TfidfVectorizer().fit(["namenode restarts", "datanode restarts"])
    fast = FastTfidf.for_vectorizer(vectorizer)
    assert fast is not None
    with pytest.raises(ValueError, match="4 weight rows for a vocabulary of 3 columns"):
        fast.scores(["restarts"], np.zeros((4, 5)))


def _count_in_child(fast: FastTfidf, documents: list[str], queue: object) -> None:
    queue.put(fast.counts(documents).nnz)  # type: ignore[attr-defined]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_forked_process_counts_on_threads_of_its_own(
    texts: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The parent's pool has no threads in a forked child; the child makes its own."""
    import multiprocessing

    train, new = texts
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, dtype=np.float32)
    vectorizer.fit([description for _, description in train])
    fast = FastTfidf.for_vectorizer(vectorizer)
    assert fast is not None and fast._compiled is not None
    documents = [description for _, description in new[:200]]
    monkeypatch.setattr(_tfidf, "_PARALLEL_CHARACTERS", 1000)
    monkeypatch.setattr(_tfidf, "_counting_threads", lambda: 2)
    _tfidf._forget_pool()
    try:
        expected = fast.counts(documents).nnz  # the parent's pool now has live threads
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_count_in_child, args=(fast, documents, queue))
        child.start()
        child.join(timeout=60)
        hung = child.is_alive()
        if hung:
            child.kill()
        assert not hung, "the forked child waited on the parent's pool"
        assert queue.get(timeout=5) == expected
    finally:
        _tfidf._forget_pool()


def test_no_documents_gives_an_empty_matrix() -> None:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2)).fit(["job tracker lost", "job tracker"])
    fast = FastTfidf.for_vectorizer(vectorizer)
    assert fast is not None
    assert fast.transform([]).shape == (0, len(vectorizer.vocabulary_))


@pytest.mark.parametrize(
    "options",
    [
        {"analyzer": "char"},
        {"stop_words": "english"},
        {"lowercase": False},
        {"token_pattern": r"\b\w+\b"},
        {"ngram_range": (1, 3)},
        {"strip_accents": "unicode"},
        {"binary": True},
    ],
)
def test_configurations_it_cannot_reproduce_fall_back(options: dict[str, object]) -> None:
    vectorizer = TfidfVectorizer(**options).fit(["job tracker lost", "job tracker"])  # type: ignore[arg-type]
    assert FastTfidf.for_vectorizer(vectorizer) is None
