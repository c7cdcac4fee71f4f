"""A content-addressed cache of LLM replies in SQLite (WAL), shared by every HTTP adapter.

The key is the SHA-256 of the canonical JSON (sorted keys) of everything that decides a reply:
the adapter, the base URL, the model, the messages and the generation options (the whole
request body). A reply is written, and committed, the moment it arrives, so a red team that is
killed (even with SIGKILL) and started again re-asks nothing that had been answered; a re-run
reads every reply back without a call. Only successful replies are stored: errors are retried
next time.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from .._paths import default_cache_dir

__all__ = ["ResponseCache", "default_response_cache_path", "request_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    adapter TEXT NOT NULL,
    model TEXT NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID
"""


def default_response_cache_path(cache_dir: Path | None = None) -> Path:
    """``<cache dir>/llm-replies.sqlite``."""
    return (cache_dir or default_cache_dir()) / "llm-replies.sqlite"


def canonical_json(body: Mapping[str, Any]) -> str:
    """A request body as canonical JSON text: sorted keys, no spaces, UTF-8 as is.

    Sorted keys and fixed separators make the text canonical for the JSON values request bodies
    hold; the C encoder costs a tenth of RFC 8785's pure-Python one per call.
    """
    return json.dumps(dict(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(
    adapter: str, base_url: str, body: Mapping[str, Any], *, body_json: str | None = None
) -> str:
    """The content address of one request: adapter, base URL and the whole request body.

    The SHA-256 of the canonical JSON of ``{"adapter", "base_url", "body"}``; pass the body's
    :func:`canonical_json` as ``body_json`` when it is at hand, to encode the body only once.
    """
    if body_json is None:
        body_json = canonical_json(body)
    # The wrapper's keys are already in sorted order, so this is the canonical text of the
    # whole payload, written around the body instead of encoding the body a second time.
    text = (
        '{"adapter":'
        + json.dumps(adapter, ensure_ascii=False)
        + ',"base_url":'
        + json.dumps(base_url.rstrip("/"), ensure_ascii=False)
        + ',"body":'
        + body_json
        + "}"
    )
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    """Replies by request key; safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (only a power cut can lose the
            # last commits); FULL would fsync every reply.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.Error as error:
            raise ConfigError(f"cannot open the LLM reply cache {self.path}: {error}") from None
        self.hits = 0
        self.stores = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cached replies of the keys that have one."""
        wanted = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, reply FROM replies WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for key, reply in rows:
                    out[key] = json.loads(reply)
        self.hits += len(out)
        return out

    def put(self, key: str, adapter: str, model: str, reply: Mapping[str, Any]) -> None:
        """Store one reply and commit at once."""
        text = json.dumps(reply, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)",
                (key, adapter, model, text, time.time()),
            )
            self._db.commit()
        self.stores += 1

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM replies").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()
