"""A faster ``TfidfVectorizer.transform`` for the linear organisms, identical in its output.

scikit-learn builds every word n-gram of every document as a Python string and looks it up in
the vocabulary one at a time; for a batch of new issues (a few hundred words each) that loop is
most of a linear organism's decision time. Here the documents are tokenised with the same
pattern, each token becomes a word id in one C-level dictionary lookup, and unigram and bigram
columns are found with array operations over the whole batch. The counts are integers, so the
matrix is exactly the one scikit-learn counts; the fitted vectorizer's own TF-IDF step then
weights and normalises it, so the result is bit for bit what ``transform`` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
from scipy import sparse

__all__ = ["FastTfidf"]

_DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


class _WordCharacters(dict[int, int]):
    r"""``str.translate`` table keeping the regex word characters and turning the rest to spaces.

    The default pattern's tokens are the runs of two or more word characters (``\w``: what
    ``str.isalnum`` accepts, and the underscore), so after this table ``str.split`` yields the
    same runs. Translating in C is several times faster than ``re.findall``; entries outside
    ASCII are filled in on first sight.
    """

    def __missing__(self, code: int) -> int:
        character = chr(code)
        kept = character.isalnum() or character == "_"
        self[code] = code if kept else _SPACE
        return self[code]


_SPACE = ord(" ")
_WORD_CHARACTERS = _WordCharacters()
for _code in range(128):
    _WORD_CHARACTERS[_code]  # noqa: B018 - fills the ASCII part of the table up front


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
        # Lower-case first, as scikit-learn does: lowering can change a string's length.
        runs = [document.lower().translate(_WORD_CHARACTERS).split() for document in documents]
        lengths = np.fromiter(map(len, runs), dtype=np.int64, count=len(runs))
        unknown = len(self._words)
        flat = list(chain.from_iterable(runs))
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
        return self._vectorizer._tfidf.transform(self.counts(documents), copy=False)
