"""A faster ``TfidfVectorizer.transform`` for the linear organisms, identical in its output.

scikit-learn builds every word n-gram of every document as a Python string and looks it up in
the vocabulary one at a time; for a batch of new issues (a few hundred words each) that loop is
most of a linear organism's decision time. Here the batch is laid out as one array of code
points and a compiled kernel (numba) reads it through a table of each code point's lower case
(as ``str.lower`` gives it; the two characters whose lower case depends on more than
themselves send their document through ``str.lower`` first), finds the tokens of the default
pattern, looks each up by hash (then compares it character by character, so a collision cannot
change a count), pairs neighbours into bigrams and counts each document's columns; a large
batch is cut into runs of documents counted on one thread per CPU (the kernel releases the
GIL). Where numba is not available, the tokens are split in C (``str.translate`` and
``str.split``) and the columns found with array operations over the batch. Either way the
counts are integers, so the matrix is exactly the one scikit-learn counts; the fitted
vectorizer's own TF-IDF step then weights and normalises it, so :meth:`FastTfidf.transform` is
bit for bit what ``transform`` returns. :meth:`FastTfidf.scores` goes one step further for a
linear model: the kernel weights each document's counts and sums them into the document's
class scores as it goes, which is the matrix times the weights up to float rounding.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy import sparse

from .._system import usable_cpus

numba: Any
try:
    import numba
except ImportError:  # pragma: no cover - a dependency; without it the split path is used
    numba = None

__all__ = ["FastTfidf"]

_DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


_MAX_CODE_POINT = 0x10FFFF


@functools.cache
def _word_mask() -> np.ndarray:
    r"""``mask[c]``: whether code point ``c`` is a word character (``\w``) of Python's ``re``.

    Asked of the regex engine itself, over every code point at once (about 0.2 s, once per
    process), so both counting paths split exactly where the default token pattern does.
    """
    everything = "".join(map(chr, range(_MAX_CODE_POINT + 1)))
    words = [match.start() for match in re.finditer(r"\w", everything)]
    mask = np.zeros(_MAX_CODE_POINT + 1, dtype=np.bool_)
    mask[words] = True
    return mask


_CONTEXTUAL_LOWERING = ("\u0130", "\u03a3")
"""Characters whose lower case is not one code point of its own: capital I with dot (two code
points) and capital sigma (final or not, by its neighbours). A document with either is
lower-cased by Python before counting; in any other, lowering maps each code point alone."""


@functools.cache
def _folded_word_codes() -> np.ndarray:
    """``folded[c]``: the lower case of code point ``c`` if that is a word character, else -1.

    The compiled kernel reads documents through this table, so it lowers as it scans: the same
    characters, split at the same places, as ``str.lower`` and the token pattern (once per
    process, a few hundred milliseconds over every code point).
    """
    mask = _word_mask()
    lowered = np.fromiter(
        (
            ord(text) if len(text) == 1 else -1
            for text in map(str.lower, map(chr, range(_MAX_CODE_POINT + 1)))
        ),
        dtype=np.int32,
        count=_MAX_CODE_POINT + 1,
    )
    return np.where((lowered >= 0) & mask[np.maximum(lowered, 0)], lowered, -1).astype(np.int32)


def _lower_where_contextual(document: str) -> str:
    if document.isascii() or not any(c in document for c in _CONTEXTUAL_LOWERING):
        return document
    return document.lower()


class _WordCharacters(dict[int, int]):
    """``str.translate`` table keeping the word characters and turning the rest to spaces.

    The default pattern's tokens are the runs of two or more word characters, so after this
    table ``str.split`` yields the same runs. Translating in C is several times faster than
    ``re.findall``; entries are filled in on first sight.
    """

    def __missing__(self, code: int) -> int:
        self[code] = code if _word_mask()[code] else _SPACE
        return self[code]


_SPACE = ord(" ")
_WORD_CHARACTERS = _WordCharacters()


_EMPTY = -1
# FNV-1a over code points for words, Fibonacci hashing for (word, word) keys.
_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)
_FIBONACCI = np.uint64(11400714819323198485)


def _table_size(entries: int) -> int:
    """A power of two at least twice ``entries``: open addressing with short probe runs."""
    size = 8
    while size < 2 * entries:
        size *= 2
    return size


if numba is not None:

    @numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
    def _hash_run(codes: np.ndarray, start: int, end: int) -> np.uint64:
        # A hash only finds candidates; characters decide.
        value = _FNV_OFFSET
        for position in range(start, end):
            value = (value ^ np.uint64(codes[position])) * _FNV_PRIME
        return value

    @numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
    def _pair_slot(key: int, mask: int) -> int:
        return int(np.int64(np.uint64(key) * _FIBONACCI >> 20) & mask)

    @numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
    def _tally(column: int, tally: np.ndarray, touched: np.ndarray, found: int) -> int:
        # Count a column for the current document; returns how many distinct columns it has.
        if tally[column] == 0:
            touched[found] = column
            found += 1
        tally[column] += 1
        return found

    @numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
    def _build_tables(
        word_codes: np.ndarray,
        word_offsets: np.ndarray,
        word_size: int,
        pair_keys: np.ndarray,
        pair_columns: np.ndarray,
        pair_size: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        word_keys = np.zeros(word_size, dtype=np.uint64)
        word_ids = np.full(word_size, _EMPTY, dtype=np.int64)
        for word in range(len(word_offsets) - 1):
            value = _hash_run(word_codes, word_offsets[word], word_offsets[word + 1])
            slot = np.int64(value & np.uint64(word_size - 1))
            while word_ids[slot] != _EMPTY:
                slot = (slot + 1) & (word_size - 1)
            word_keys[slot], word_ids[slot] = value, word
        keys = np.zeros(pair_size, dtype=np.int64)
        columns = np.full(pair_size, _EMPTY, dtype=np.int64)
        for index in range(len(pair_keys)):
            slot = _pair_slot(pair_keys[index], pair_size - 1)
            while columns[slot] != _EMPTY:
                slot = (slot + 1) & (pair_size - 1)
            keys[slot], columns[slot] = pair_keys[index], pair_columns[index]
        return word_keys, word_ids, keys, columns

    @numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
    def _count_terms(
        codes: np.ndarray,
        document_starts: np.ndarray,
        folded: np.ndarray,
        word_keys: np.ndarray,
        word_ids: np.ndarray,
        word_codes: np.ndarray,
        word_offsets: np.ndarray,
        unigram_column: np.ndarray,
        pair_keys: np.ndarray,
        pair_columns: np.ndarray,
        n_columns: int,
        column_weights: np.ndarray,
        idf: np.ndarray,
        sublinear_tf: bool,
        l2_norm: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        # Two outputs from one scan. Without ``column_weights`` (no rows): the count matrix in
        # CSR parts, columns sorted as scikit-learn lays them out. With them (one row per
        # column): each document's TF-IDF row times the weights, summed in the order the
        # columns were seen; no sort and no matrix, so only float rounding differs.
        scoring = len(column_weights) > 0
        # 1 + log(count) for the counts a document has: a table, not a log per term.
        sublinear = np.log(np.maximum(np.arange(64), 1).astype(np.float64)) + 1.0
        scores = np.zeros((len(document_starts) - 1, column_weights.shape[1]), dtype=np.float64)
        n_documents = len(document_starts) - 1
        unknown = len(word_offsets) - 1
        word_mask = len(word_keys) - 1
        pair_mask = len(pair_keys) - 1
        indptr = np.zeros(n_documents + 1, dtype=np.int64)
        # Every token takes two characters and a separator, and yields at most two columns.
        bound = 2 * (len(codes) // 3) + 2
        indices = np.empty(bound, dtype=np.int64)
        counts = np.empty(bound, dtype=np.int64)
        # Per document: the count of each column so far, and the columns touched, in order seen.
        tally = np.zeros(n_columns, dtype=np.int64)
        touched = np.empty(bound, dtype=np.int64)
        filled = 0
        for document in range(n_documents):
            found = 0
            previous = unknown
            position = document_starts[document]
            end = document_starts[document + 1]
            while position < end:
                if folded[codes[position]] < 0:
                    position += 1
                    continue
                start = position
                value = _FNV_OFFSET  # _hash_run over the lowered codes, fused with the scan
                while position < end:
                    code = folded[codes[position]]
                    if code < 0:
                        break
                    value = (value ^ np.uint64(code)) * _FNV_PRIME
                    position += 1
                length = position - start
                if length < 2:  # single characters are not tokens at all
                    continue
                slot = np.int64(value & np.uint64(word_mask))
                word = unknown
                while word_ids[slot] != _EMPTY:
                    if word_keys[slot] == value:
                        candidate = word_ids[slot]
                        first = word_offsets[candidate]
                        if word_offsets[candidate + 1] - first == length:
                            same = True
                            for k in range(length):
                                if word_codes[first + k] != folded[codes[start + k]]:
                                    same = False
                                    break
                            if same:
                                word = candidate
                                break
                    slot = (slot + 1) & word_mask
                if word != unknown:
                    if unigram_column[word] >= 0:
                        found = _tally(unigram_column[word], tally, touched, found)
                    if previous != unknown:
                        key = previous * (unknown + 1) + word
                        at = _pair_slot(key, pair_mask)
                        while pair_columns[at] != _EMPTY:
                            if pair_keys[at] == key:
                                found = _tally(pair_columns[at], tally, touched, found)
                                break
                            at = (at + 1) & pair_mask
                previous = word
            if scoring:
                squares = 0.0
                for k in range(found):
                    column = touched[k]
                    count = tally[column]
                    if not sublinear_tf:
                        weight = float(count) * idf[column]
                    elif count < len(sublinear):
                        weight = sublinear[count] * idf[column]
                    else:
                        weight = (np.log(float(count)) + 1.0) * idf[column]
                    squares += weight * weight
                    for j in range(column_weights.shape[1]):
                        scores[document, j] += weight * column_weights[column, j]
                    tally[column] = 0
                if l2_norm and squares > 0.0:
                    scores[document] /= np.sqrt(squares)
                continue
            # A document touches a few dozen columns: insertion sort, in place, no allocation.
            for k in range(1, found):
                column = touched[k]
                j = k - 1
                while j >= 0 and touched[j] > column:
                    touched[j + 1] = touched[j]
                    j -= 1
                touched[j + 1] = column
            for k in range(found):
                column = touched[k]
                indices[filled] = column
                counts[filled] = tally[column]
                tally[column] = 0
                filled += 1
            indptr[document + 1] = filled
        return indptr, indices[:filled], counts[:filled], scores


_PARALLEL_CHARACTERS = 32_768
"""A batch is counted on several threads only from this many characters per thread on."""


_POOL_LOCK = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _counting_pool() -> ThreadPoolExecutor:
    """The threads that count large batches, made on first use (once, under a lock)."""
    global _pool
    with _POOL_LOCK:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_counting_threads(), thread_name_prefix="tfidf")
        return _pool


def _forget_pool() -> None:
    # The parent's lock may have been held by another thread at the fork: a fresh one.
    global _pool, _POOL_LOCK
    _pool = None
    _POOL_LOCK = threading.Lock()


# A forked child inherits the pool but not its threads: it would queue work nobody runs.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _counting_threads() -> int:
    return min(usable_cpus(), 8)


def _chunk_bounds(starts: np.ndarray, characters: int) -> list[tuple[int, int]]:
    """Runs of documents ``[first, last)`` with about equal characters, one per thread."""
    n_documents = len(starts) - 1
    threads = min(_counting_threads(), characters // _PARALLEL_CHARACTERS, n_documents)
    if threads <= 1:
        return [(0, n_documents)]
    cuts = np.searchsorted(starts, np.arange(1, threads) * (characters / threads))
    edges = [0, *sorted(set(int(c) for c in cuts) - {0, n_documents}), n_documents]
    return list(itertools.pairwise(edges))


class FastTfidf:
    """Transform documents as a fitted word-level ``TfidfVectorizer`` (n-grams up to 2) would.

    Use :meth:`for_vectorizer`, which returns ``None`` for configurations this shortcut does not
    reproduce (custom analyzers, tokenizers, preprocessors, stop words, accents, case, n-grams
    other than (1, 1) or (1, 2)); callers then use the vectorizer itself.
    """

    def __init__(self, vectorizer: Any) -> None:
        self._vectorizer = vectorizer
        vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._n_columns = len(vocabulary)
        words: dict[str, int] = {}
        for term in vocabulary:
            for word in term.split(" "):
                words.setdefault(word, len(words))
        self._words = words
        self._unigram_column = np.full(len(words) + 1, -1, dtype=np.int64)
        bigram_keys: list[int] = []
        bigram_columns: list[int] = []
        for term, column in vocabulary.items():
            first, _, second = term.partition(" ")
            if second:
                bigram_keys.append(self._pair_key(words[first], words[second]))
                bigram_columns.append(column)
            else:
                self._unigram_column[words[first]] = column
        order = np.argsort(np.asarray(bigram_keys, dtype=np.int64), kind="stable")
        self._bigram_keys = np.asarray(bigram_keys, dtype=np.int64)[order]
        self._bigram_columns = np.asarray(bigram_columns, dtype=np.int64)[order]
        self._compiled: tuple[Any, ...] | None = None
        if numba is not None:
            text = "".join(words)
            word_codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            word_offsets = np.zeros(len(words) + 1, dtype=np.int64)
            np.cumsum(np.fromiter(map(len, words), dtype=np.int64), out=word_offsets[1:])
            word_keys, word_ids, pair_keys, pair_columns = _build_tables(
                word_codes,
                word_offsets,
                _table_size(len(words)),
                self._bigram_keys,
                self._bigram_columns,
                _table_size(len(self._bigram_keys)),
            )
            self._compiled = (
                _folded_word_codes(),
                word_keys,
                word_ids,
                word_codes,
                word_offsets,
                self._unigram_column,
                pair_keys,
                pair_columns,
                self._n_columns,
            )

    @classmethod
    def for_vectorizer(cls, vectorizer: Any) -> FastTfidf | None:
        """The fast path for ``vectorizer``, or ``None`` where it would not give the same matrix."""
        params = vectorizer.get_params()
        supported = (
            params["input"] == "content"
            and params["analyzer"] == "word"
            and params["tokenizer"] is None
            and params["preprocessor"] is None
            and params["stop_words"] is None
            and params["strip_accents"] is None
            and params["lowercase"] is True
            and params["token_pattern"] == _DEFAULT_TOKEN_PATTERN
            and tuple(params["ngram_range"]) in {(1, 1), (1, 2)}
            and params["binary"] is False
            and hasattr(vectorizer, "vocabulary_")
            and hasattr(vectorizer, "_tfidf")
        )
        return cls(vectorizer) if supported else None

    def _pair_key(self, first: np.ndarray | int, second: np.ndarray | int) -> Any:
        return first * (len(self._words) + 1) + second

    def counts(self, documents: Sequence[str]) -> sparse.csr_matrix:
        """Term counts, shape ``(len(documents), vocabulary size)``, with sorted indices."""
        if self._compiled is not None:
            return self._compiled_counts(documents)
        return self._split_counts(documents)

    def _compiled_counts(self, documents: Sequence[str]) -> sparse.csr_matrix:
        parts = self._run_kernel(documents, np.zeros((0, 1)), np.zeros(0), False, False)
        offsets = np.cumsum([0] + [len(part[1]) for part in parts[:-1]])
        indptr = np.concatenate(
            [[0], *(part[0][1:] + offset for part, offset in zip(parts, offsets, strict=True))]
        )
        indices = np.concatenate([part[1] for part in parts])
        counts = np.concatenate([part[2] for part in parts])
        return sparse.csr_matrix(
            (counts.astype(self._vectorizer.dtype), indices, indptr),
            shape=(len(documents), self._n_columns),
        )

    def _run_kernel(
        self,
        documents: Sequence[str],
        column_weights: np.ndarray,
        idf: np.ndarray,
        sublinear_tf: bool,
        l2_norm: bool,
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The kernel's outputs for contiguous runs of documents, in order (one run per thread)."""
        compiled = self._compiled
        assert compiled is not None
        # The kernel lowers code point by code point as it reads (``_folded_word_codes``);
        # the rare document where lowering depends on neighbours is lowered here first. A space
        # (not a word character) ends every document, so no token spans two.
        lowered = [_lower_where_contextual(document) for document in documents]
        starts = np.zeros(len(lowered) + 1, dtype=np.int64)
        np.cumsum(
            np.fromiter(map(len, lowered), dtype=np.int64, count=len(lowered)) + 1, out=starts[1:]
        )
        text = " ".join(lowered) + " "
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        settings = (*compiled, column_weights, idf, sublinear_tf, l2_norm)
        chunks = _chunk_bounds(starts, len(codes))
        if len(chunks) == 1:
            return [_count_terms(codes, starts, *settings)]
        # The kernel releases the GIL and documents are independent, so contiguous runs of
        # documents are counted on threads and their outputs laid end to end.
        return list(
            _counting_pool().map(
                lambda bounds: _count_terms(codes, starts[bounds[0] : bounds[1] + 1], *settings),
                chunks,
            )
        )

    def _split_counts(self, documents: Sequence[str]) -> sparse.csr_matrix:
        """The same counts without numba: tokens split in C, columns found with numpy."""
        # Lower-case first, as scikit-learn does: lowering can change a string's length.
        runs = [document.lower().translate(_WORD_CHARACTERS).split() for document in documents]
        lengths = np.fromiter(map(len, runs), dtype=np.int64, count=len(runs))
        unknown = len(self._words)
        flat = list(itertools.chain.from_iterable(runs))
        ids = np.fromiter(
            map(self._words.get, flat, [unknown] * len(flat)), dtype=np.int64, count=len(flat)
        )
        row = np.repeat(np.arange(len(documents), dtype=np.int64), lengths)
        # Single characters are not tokens at all: dropping them makes their neighbours adjacent.
        is_token = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat)) > 1
        ids, row = ids[is_token], row[is_token]
        unigram = self._unigram_column[ids]
        known_pair = (row[:-1] == row[1:]) & (ids[:-1] != unknown) & (ids[1:] != unknown)
        keys = self._pair_key(ids[:-1], ids[1:])
        position = np.searchsorted(self._bigram_keys, keys)
        position = np.minimum(position, max(len(self._bigram_keys) - 1, 0))
        if len(self._bigram_keys):
            found = known_pair & (self._bigram_keys[position] == keys)
            bigram = np.where(found, self._bigram_columns[position], -1)
        else:
            bigram = np.full(len(keys), -1, dtype=np.int64)
        rows = np.concatenate([row, row[:-1]])
        columns = np.concatenate([unigram, bigram])
        kept = columns >= 0
        # One sort of (row, column) keys gives each row's columns in order with their counts.
        cells, count = np.unique(rows[kept] * self._n_columns + columns[kept], return_counts=True)
        indptr = np.searchsorted(cells // self._n_columns, np.arange(len(documents) + 1))
        return sparse.csr_matrix(
            (count.astype(self._vectorizer.dtype), cells % self._n_columns, indptr),
            shape=(len(documents), self._n_columns),
        )

    def transform(self, documents: Sequence[str]) -> sparse.csr_matrix:
        """The TF-IDF matrix ``vectorizer.transform(documents)`` returns."""
        if not documents:  # scikit-learn's TF-IDF step refuses a matrix without rows
            return sparse.csr_matrix((0, self._n_columns), dtype=self._vectorizer.dtype)
        from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

        # TfidfTransformer.transform's own steps, in its order and with its numpy operations (so
        # the same bits), without its input validation: on a cold batch of 1,024 issues that
        # validation cost about a tenth of the decision time, for a matrix built just above.
        weighting = self._vectorizer._tfidf
        matrix = self.counts(documents)
        if weighting.norm not in ("l2", None):
            return weighting.transform(matrix, copy=False)
        if weighting.sublinear_tf:
            np.log(matrix.data, matrix.data)
            matrix.data += 1.0
        if hasattr(weighting, "idf_"):
            matrix.data *= weighting.idf_[matrix.indices]
        if weighting.norm == "l2":
            inplace_csr_row_normalize_l2(matrix)
        return matrix

    def scores(self, documents: Sequence[str], column_weights: np.ndarray) -> np.ndarray:
        """``transform(documents) @ column_weights``, up to float rounding, as float64.

        With numba, one pass over the text: each document's weighted terms are summed straight
        into its scores (the order they were seen in, not column order; no matrix is built), so
        a cold batch of descriptions costs about two thirds of what transform and a product do.
        """
        weights = np.ascontiguousarray(column_weights, dtype=np.float64)
        if weights.shape[0] != self._n_columns:
            raise ValueError(
                f"{weights.shape[0]} weight rows for a vocabulary of {self._n_columns} columns"
            )
        weighting = self._vectorizer._tfidf
        if self._compiled is None or not documents or weighting.norm not in ("l2", None):
            return np.asarray(self.transform(documents) @ weights, dtype=np.float64)
        idf = getattr(weighting, "idf_", None)
        idf = np.ones(self._n_columns) if idf is None else np.asarray(idf, dtype=np.float64)
        parts = self._run_kernel(
            documents, weights, idf, bool(weighting.sublinear_tf), weighting.norm == "l2"
        )
        return np.concatenate([part[3] for part in parts])
