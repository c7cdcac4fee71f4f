"""The `Ledger`: append, read, prove and checkpoint an Ethics Review Log."""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ._entries import RECORD_MODELS, Entry, canonical_json, parse_entry, parse_record
from ._errors import EntryError, LedgerError, NoteError
from ._merkle import (
    HASH_SIZE,
    Frontier,
    NodeKey,
    consistency_nodes,
    consistency_proof,
    inclusion_nodes,
    inclusion_proof,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from ._note import Checkpoint, Signer, VerifierKey, sign_note
from ._store import (
    AppendSession,
    CoreAppendSession,
    Durability,
    EntryRow,
    SqliteAppender,
    as_bytes,
    checkpoints_table,
    entries_table,
    head_table,
    keys_table,
    make_engine,
    migrate,
    now_text,
    read_head_for_update,
    read_subtree_rows,
)

DEFAULT_DATABASE = "mesaguard-log.sqlite"


@functools.lru_cache(maxsize=256)
def _canonical_actor(actor: str) -> bytes:
    """Canonical JSON of an actor string (a log has few actors and appends often)."""
    return canonical_json(actor)


class AppendedEntry(BaseModel):
    """What an append returns: where the entry went and its leaf hash."""

    model_config = ConfigDict(frozen=True)

    index: int
    timestamp: str
    leaf_hash: str
    """Hex SHA-256(0x00 || canonical entry bytes)."""


class InclusionProof(BaseModel):
    """An RFC 9162 inclusion proof, self-contained for a third-party verifier."""

    model_config = ConfigDict(frozen=True)

    leaf_index: int
    tree_size: int
    leaf_hash: str
    """Hex leaf hash of the entry."""
    root_hash: str
    """Hex root of the tree of ``tree_size`` leaves."""
    proof: tuple[str, ...]
    """Hex hashes, bottom-up, exactly as RFC 9162 PATH produces them."""

    def verify(self) -> bool:
        """Check the proof with the RFC 9162 §2.1.3.2 algorithm."""
        return verify_inclusion(
            self.leaf_index,
            self.tree_size,
            bytes.fromhex(self.leaf_hash),
            [bytes.fromhex(h) for h in self.proof],
            bytes.fromhex(self.root_hash),
        )


class ConsistencyProof(BaseModel):
    """An RFC 9162 consistency proof between two tree sizes."""

    model_config = ConfigDict(frozen=True)

    size1: int
    size2: int
    root1: str
    root2: str
    proof: tuple[str, ...]

    def verify(self) -> bool:
        """Check the proof with the RFC 9162 §2.1.4.2 algorithm."""
        return verify_consistency(
            self.size1,
            self.size2,
            bytes.fromhex(self.root1),
            bytes.fromhex(self.root2),
            [bytes.fromhex(h) for h in self.proof],
        )


class StoredCheckpoint(BaseModel):
    """A signed checkpoint as the log stored it."""

    model_config = ConfigDict(frozen=True)

    id: int
    tree_size: int
    note: str
    created_at: str


class KeyringEntry(BaseModel):
    """A verifier key that has signed checkpoints of this log."""

    model_config = ConfigDict(frozen=True)

    vkey: str
    added_at: str
    retired_at: str | None


class Ledger:
    """An append-only Ethics Review Log stored in SQLite (default) or PostgreSQL.

    ``target`` is a SQLAlchemy URL (``postgresql://...``) or a SQLite file path. ``origin`` names
    the log in its checkpoints; it is fixed when the log is created. ``schema`` puts the tables
    in a PostgreSQL schema. ``durability="full"`` makes every commit survive power loss on SQLite
    (``synchronous=FULL``); ``"normal"`` survives a crashed process but not a lost machine.
    Several processes may append to the same log at once: each append takes the write lock.
    """

    def __init__(
        self,
        target: str | Path = DEFAULT_DATABASE,
        *,
        origin: str | None = None,
        schema: str | None = None,
        durability: Durability = "full",
    ) -> None:
        self.target = str(target)
        self._engine: Engine = make_engine(target, schema=schema, durability=durability)
        try:
            self.origin: str = migrate(self._engine, origin)
        except SQLAlchemyError as error:
            self._engine.dispose()
            raise LedgerError(f"cannot open log {target}: {error}") from error
        self._frontier = Frontier()
        self._last_timestamp = ""
        self._writer: Connection | None = None
        self._write_lock = threading.Lock()
        # Appends to a plain SQLite file skip SQLAlchemy's per-statement cost (same schema).
        self._sqlite_appender = (
            SqliteAppender(self._engine)
            if self._engine.dialect.name == "sqlite" and schema is None
            else None
        )

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Release database connections."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._sqlite_appender is not None:
                self._sqlite_appender.close()
        self._engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """The held writer connection inside a locked write transaction (one per `Ledger`)."""
        with self._write_lock:
            if self._writer is None or self._writer.closed or self._writer.invalidated:
                self._writer = self._engine.connect().execution_options(ledger_write=True)
            writer = self._writer
            try:
                with writer.begin():
                    yield writer
            except SQLAlchemyError:
                writer.close()
                self._writer = None
                raise

    @contextmanager
    def _appending(self) -> Iterator[AppendSession]:
        """An append's statements inside a write transaction, committed when the block ends."""
        if self._sqlite_appender is None:
            with self._writing() as connection:
                yield CoreAppendSession(connection)
            return
        with self._write_lock, self._sqlite_appender.transaction() as session:
            yield session

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests)."""
        return self._engine

    # --- writing ---------------------------------------------------------------------------

    def append(self, actor: str, record: BaseModel | dict[str, Any]) -> AppendedEntry:
        """Append one record written by ``actor``; durable when this returns."""
        return self.append_many([(actor, record)])[0]

    def append_many(
        self, items: Iterable[tuple[str, BaseModel | dict[str, Any]]]
    ) -> list[AppendedEntry]:
        """Append records atomically in one transaction: all are stored or none.

        Every record is validated first; a malformed one raises `EntryError` naming its
        position and field, and nothing is stored.
        """
        prepared: list[tuple[bytes, bytes]] = []
        for position, (actor, record) in enumerate(items):
            where = f"item {position}"
            if not isinstance(actor, str) or not actor.strip() or len(actor) > 10_000:
                raise EntryError(f'{where}: field "actor" must be a non-empty string')
            model = (
                record if isinstance(record, RECORD_MODELS) else parse_record(record, where=where)
            )
            try:
                canonical_record = canonical_json(model.model_dump(mode="json"))
            except EntryError as error:
                raise EntryError(f"{where}: {error}") from error
            prepared.append((_canonical_actor(actor), canonical_record))
        if not prepared:
            return []
        try:
            with self._appending() as session:
                appended, frontier, timestamp = self._append_locked(session, prepared)
        except (SQLAlchemyError, sqlite3.Error) as error:
            self._frontier = Frontier()
            raise LedgerError(f"append to {self.target} failed; nothing stored: {error}") from error
        # The cache moves on only once the transaction has committed.
        self._frontier, self._last_timestamp = frontier, timestamp
        return appended

    def _append_locked(
        self, session: AppendSession, prepared: Sequence[tuple[bytes, bytes]]
    ) -> tuple[list[AppendedEntry], Frontier, str]:
        # Optimistic: build on the cached right edge and move the head only if no other writer
        # moved it since (one statement, which also takes the lock). Else read it and rebuild.
        seen = (self._frontier.size, self._last_timestamp)
        rows, appended, frontier, timestamp = _build(prepared, self._frontier.copy(), seen[1])
        if not session.move_head(seen, (frontier.size, frontier.root(), timestamp)):
            size, _root, last = session.lock_head()
            keys = Frontier.edge_nodes(size)
            nodes = _nodes_from_rows(keys, session.subtree_rows(_row_indices(keys)))
            rows, appended, frontier, timestamp = _build(
                prepared, Frontier(size, [nodes[key] for key in keys]), last
            )
            if not session.move_head((size, last), (frontier.size, frontier.root(), timestamp)):
                raise LedgerError(
                    f"the head of {self.target} moved while this writer held the lock"
                )
        session.insert_entries(rows)
        return appended, frontier, timestamp

    # --- reading ---------------------------------------------------------------------------

    def size(self) -> int:
        """The number of entries (the tree size recorded in the head)."""
        with self._engine.connect() as connection:
            return int(connection.execute(select(head_table.c.tree_size)).scalar_one())

    def root(self, size: int | None = None) -> bytes:
        """The Merkle root at ``size`` (default: now), from O(log n) stored subtrees."""
        with self._engine.connect() as connection, connection.begin():
            size = self._size_arg(connection, size)
            return root_at(size, lambda keys: self._read_nodes(connection, keys))

    def get(self, index: int) -> Entry:
        """The entry at ``index``, decoded; `LedgerError` if there is none."""
        with self._engine.connect() as connection:
            body = connection.execute(
                select(entries_table.c.body).where(entries_table.c.idx == index)
            ).scalar_one_or_none()
        if body is None:
            raise LedgerError(f"the log has no entry {index} (size {self.size()})")
        return parse_entry(bytes(body), index=index)

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """Decoded entries ``start <= index < stop``, streamed in index order."""
        for index, body, _leaf, _subtrees in self.rows(start, stop):
            yield parse_entry(body, index=index)

    def rows(
        self, start: int = 0, stop: int | None = None, *, chunk: int = 20_000
    ) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        """Raw stored rows ``(index, body, leaf_hash, subtrees)`` in index order, in chunks."""
        columns = (
            entries_table.c.idx,
            entries_table.c.body,
            entries_table.c.leaf_hash,
            entries_table.c.subtrees,
        )
        with self._engine.connect() as connection, connection.begin():
            position = start
            while True:
                query = select(*columns).where(entries_table.c.idx >= position)
                if stop is not None:
                    query = query.where(entries_table.c.idx < stop)
                batch = connection.execute(query.order_by(entries_table.c.idx).limit(chunk)).all()
                for index, body, leaf, subtrees in batch:
                    if type(body) is bytes and type(leaf) is bytes and type(subtrees) is bytes:
                        yield index, body, leaf, subtrees
                    else:  # PostgreSQL memoryviews, or a column rewritten with another type
                        yield int(index), as_bytes(body), as_bytes(leaf), as_bytes(subtrees)
                if len(batch) < chunk:
                    return
                position = batch[-1][0] + 1

    def head(self) -> tuple[int, bytes, str]:
        """The stored head: ``(tree_size, root_hash, last_timestamp)``."""
        with self._engine.connect() as connection:
            size, root, last = connection.execute(
                select(head_table.c.tree_size, head_table.c.root_hash, head_table.c.last_timestamp)
            ).one()
        return int(size), bytes(root), str(last)

    # --- proofs ----------------------------------------------------------------------------

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``size`` entries (default: now).

        One batched read of O(log n) stored subtree hashes.
        """
        with self._engine.connect() as connection, connection.begin():
            size = self._size_arg(connection, size)
            if not 0 <= index < size:
                raise LedgerError(f"entry {index} is not in a tree of size {size}")
            nodes = self._read_nodes(connection, inclusion_nodes(index, size))
        path = inclusion_proof(index, size, lambda _keys: nodes)
        return InclusionProof(
            leaf_index=index,
            tree_size=size,
            leaf_hash=nodes[(0, index)].hex(),
            root_hash=root_at(size, lambda _keys: nodes).hex(),
            proof=tuple(h.hex() for h in path),
        )

    def consistency_proof(self, size1: int, size2: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``size1`` entries is a prefix of the tree of ``size2``.

        One batched read of O(log n) stored subtree hashes.
        """
        with self._engine.connect() as connection, connection.begin():
            size2 = self._size_arg(connection, size2)
            if not 0 < size1 <= size2:
                raise LedgerError(f"no consistency proof from size {size1} to size {size2}")
            nodes = self._read_nodes(connection, consistency_nodes(size1, size2))
        path = consistency_proof(size1, size2, lambda _keys: nodes) if size1 < size2 else []
        return ConsistencyProof(
            size1=size1,
            size2=size2,
            root1=root_at(size1, lambda _keys: nodes).hex(),
            root2=root_at(size2, lambda _keys: nodes).hex(),
            proof=tuple(h.hex() for h in path),
        )

    def _size_arg(self, connection: Connection, size: int | None) -> int:
        current = int(connection.execute(select(head_table.c.tree_size)).scalar_one())
        if size is None:
            return current
        if not 0 <= size <= current:
            raise LedgerError(f"tree size {size} is outside 0..{current}")
        return size

    @staticmethod
    def _read_nodes(connection: Connection, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        return _nodes_from_rows(keys, read_subtree_rows(connection, _row_indices(keys)))

    # --- checkpoints and keys --------------------------------------------------------------

    def checkpoint(
        self, signers: Sequence[Signer], *, extensions: Sequence[str] = ()
    ) -> StoredCheckpoint:
        """Sign the current tree head with every signer and store the checkpoint.

        Each signer's public key is added to the log's keyring.
        """
        if not signers:
            raise NoteError("a checkpoint needs at least one signing key")
        for signer in signers:
            if signer.name != self.origin:
                raise NoteError(
                    f"key {signer.name!r} does not belong to this log (origin {self.origin!r})"
                )
        with self._writing() as connection:
            size, root, _last = read_head_for_update(connection)
            body = Checkpoint(
                origin=self.origin,
                tree_size=int(size),
                root_hash=bytes(root),
                extensions=tuple(extensions),
            ).body()
            note = sign_note(body, signers)
            created = now_text()
            known = set(connection.execute(select(keys_table.c.vkey)).scalars())
            for signer in signers:
                if str(signer.verifier) not in known:
                    connection.execute(
                        insert(keys_table),
                        {"vkey": str(signer.verifier), "added_at": created, "retired_at": None},
                    )
            new_id = connection.execute(
                insert(checkpoints_table)
                .values(tree_size=int(size), note=note, created_at=created)
                .returning(checkpoints_table.c.id)
            ).scalar_one()
        return StoredCheckpoint(id=int(new_id), tree_size=int(size), note=note, created_at=created)

    def checkpoints(self) -> list[StoredCheckpoint]:
        """All stored checkpoints, oldest first."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(
                    checkpoints_table.c.id,
                    checkpoints_table.c.tree_size,
                    checkpoints_table.c.note,
                    checkpoints_table.c.created_at,
                ).order_by(checkpoints_table.c.id)
            ).all()
        return [StoredCheckpoint(id=i, tree_size=s, note=n, created_at=c) for i, s, n, c in rows]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The most recent stored checkpoint, if any."""
        stored = self.checkpoints()
        return stored[-1] if stored else None

    def keyring(self) -> list[KeyringEntry]:
        """Verifier keys that have signed checkpoints of this log, oldest first."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(keys_table.c.vkey, keys_table.c.added_at, keys_table.c.retired_at).order_by(
                    keys_table.c.added_at
                )
            ).all()
        return [KeyringEntry(vkey=v, added_at=a, retired_at=r) for v, a, r in rows]

    def rotate_key(self, old: Signer, new: Signer) -> StoredCheckpoint:
        """Hand over from ``old`` to ``new``: a checkpoint signed by both, old key retired.

        The verifier trusts ``new`` because a key it already trusts co-signed it in.
        """
        stored = self.checkpoint([old, new])
        with self._writing() as connection:
            read_head_for_update(connection)
            connection.execute(
                update(keys_table)
                .where(keys_table.c.vkey == str(old.verifier))
                .values(retired_at=stored.created_at)
            )
        return stored

    def trusted_keys(self) -> list[VerifierKey]:
        """The keyring parsed as verifier keys (trust them only as far as you trust the DB)."""
        return [VerifierKey.parse(entry.vkey) for entry in self.keyring()]


def _build(
    prepared: Sequence[tuple[bytes, bytes]], frontier: Frontier, last: str
) -> tuple[list[EntryRow], list[AppendedEntry], Frontier, str]:
    """Entry rows for ``prepared`` on top of ``frontier`` (consumed), after timestamp ``last``."""
    size = frontier.size
    timestamp = max(now_text(), last)
    tail = b',"timestamp":' + canonical_json(timestamp) + b"}"
    rows: list[EntryRow] = []
    appended = []
    sha256 = hashlib.sha256
    push = frontier.push
    for offset, (actor, record) in enumerate(prepared):
        index = size + offset
        # RFC 8785 output of {"actor", "index", "record", "timestamp"}: keys already sorted,
        # and JCS is compositional, so the canonical parts can be joined.
        body = b'{"actor":%b,"index":%d,"record":%b%b' % (actor, index, record, tail)
        leaf = sha256(b"\x00" + body).digest()
        rows.append((index, body, leaf, b"".join(push(leaf))))
        appended.append(
            AppendedEntry.model_construct(index=index, timestamp=timestamp, leaf_hash=leaf.hex())
        )
    return rows, appended, frontier, timestamp


def _row_indices(keys: Sequence[NodeKey]) -> list[int]:
    """The rows that hold subtrees ``keys``: ``(level, k)`` is in row ``(k + 1) * 2**level - 1``."""
    return sorted({((k + 1) << level) - 1 for level, k in keys})


def _nodes_from_rows(
    keys: Sequence[NodeKey], rows: dict[int, tuple[bytes, bytes]]
) -> dict[NodeKey, bytes]:
    """The subtree hashes ``keys`` picked out of stored ``{idx: (leaf_hash, subtrees)}``."""
    nodes: dict[NodeKey, bytes] = {}
    for level, k in keys:
        row = rows.get(((k + 1) << level) - 1)
        start = (level - 1) * HASH_SIZE
        value = b"" if row is None else row[0] if level == 0 else row[1][start : start + 32]
        if len(value) != HASH_SIZE:
            raise LedgerError(
                f"stored tree is damaged: no hash for entries "
                f"{k << level}..{((k + 1) << level) - 1}; run `mesaguard log verify`"
            )
        nodes[(level, k)] = value
    return nodes
