"""Storage: one SQLAlchemy 2 schema for SQLite (default) and PostgreSQL, with migrations.

Tables (prefix ``ledger_``):

``entries``      one row per entry: ``idx`` (primary key, no gaps), ``body`` (the canonical JSON
                 bytes, i.e. the leaf data), ``leaf_hash`` and ``subtrees``: the hashes of the
                 complete subtrees this leaf completes, levels 1, 2, ... concatenated. Subtree
                 ``(level, k)`` therefore lives in row ``(k + 1) * 2**level - 1``, so a proof or
                 a root at any size is O(log n) primary-key reads and the verifier reads every
                 stored hash in the same pass as the entries.
``head``         a single row: tree size, root and last timestamp; writers lock it.
``checkpoints``  signed checkpoint notes, in the order they were made.
``keys``         verifier keys that have signed checkpoints (the keyring), with retirement time.
``meta``         schema version and the log's origin.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection

from ._errors import LedgerError
from ._merkle import EMPTY_ROOT

SCHEMA_VERSION = 1
Durability = Literal["full", "normal"]

metadata = MetaData()
_Index = BigInteger().with_variant(Integer(), "sqlite")  # INTEGER PRIMARY KEY is the rowid

meta_table = Table(
    "ledger_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
head_table = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("last_timestamp", String(32), nullable=False),
)
entries_table = Table(
    "ledger_entries",
    metadata,
    Column("idx", _Index, primary_key=True, autoincrement=False),
    Column("body", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("subtrees", LargeBinary, nullable=False),
)
checkpoints_table = Table(
    "ledger_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)
keys_table = Table(
    "ledger_keys",
    metadata,
    Column("vkey", String(512), primary_key=True),
    Column("added_at", String(32), nullable=False),
    Column("retired_at", String(32), nullable=True),
)


def now_text() -> str:
    """The current UTC time in the log's fixed-width format (``%Y-%m-%dT%H:%M:%S.%fZ``)."""
    # isoformat is several times cheaper than strftime on the single-append path.
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")[:26] + "Z"


def as_bytes(value: object) -> bytes:
    """Stored bytes as bytes, even if someone rewrote a column with another type."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if value is None:
        return b""
    return str(value).encode("utf-8", "surrogateescape")


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL for ``target``: a URL as is, anything else a SQLite file path."""
    text_target = str(target)
    if "://" not in text_target:
        return f"sqlite:///{Path(text_target).expanduser()}"
    url = make_url(text_target)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def make_engine(target: str | Path, *, schema: str | None, durability: Durability) -> Engine:
    """An engine configured for the log: WAL and explicit locking on SQLite."""
    url = database_url(target)
    is_sqlite = url.startswith("sqlite")
    try:
        if is_sqlite:
            engine = create_engine(url, connect_args={"timeout": 60})
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        raise LedgerError(f"cannot open log database {target}: {error}") from error
    if is_sqlite:
        synchronous = "FULL" if durability == "full" else "NORMAL"

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy issues BEGIN itself
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            write = connection.get_execution_options().get("ledger_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    if schema is not None:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the log's write lock until it commits.

    SQLite takes the lock with ``BEGIN IMMEDIATE``; PostgreSQL when the head row is read
    ``FOR UPDATE`` (see `read_head_for_update`).
    """
    with engine.connect() as connection:
        connection = connection.execution_options(ledger_write=True)
        with connection.begin():
            read_head_for_update(connection)
            yield connection


_HEAD_FOR_UPDATE = (
    select(head_table.c.tree_size, head_table.c.root_hash, head_table.c.last_timestamp)
    .where(head_table.c.id == 1)
    .with_for_update()
)
HEAD_UPDATE = (
    update(head_table)
    .where(head_table.c.id == 1)
    .values(
        tree_size=bindparam("new_size"),
        root_hash=bindparam("new_root"),
        last_timestamp=bindparam("new_time"),
    )
)
"""Move the head: parameters ``new_size``, ``new_root``, ``new_time``."""
_HEAD_MOVE = HEAD_UPDATE.where(
    head_table.c.tree_size == bindparam("old_size"),
    head_table.c.last_timestamp == bindparam("old_time"),
)
ENTRIES_INSERT = insert(entries_table)
_SUBTREE_ROWS = select(
    entries_table.c.idx, entries_table.c.leaf_hash, entries_table.c.subtrees
).where(entries_table.c.idx.in_(bindparam("indices", expanding=True)))

Head = tuple[int, bytes, str]
"""``(tree_size, root_hash, last_timestamp)``."""
EntryRow = tuple[int, bytes, bytes, bytes]
"""``(idx, body, leaf_hash, subtrees)``."""


def read_head_for_update(connection: Connection) -> Head:
    """Read ``(tree_size, root_hash, last_timestamp)``, locking the head row on PostgreSQL."""
    size, root, last = connection.execute(_HEAD_FOR_UPDATE).one()
    return int(size), bytes(root), str(last)


def read_subtree_rows(
    connection: Connection, indices: Sequence[int]
) -> dict[int, tuple[bytes, bytes]]:
    """``{idx: (leaf_hash, subtrees)}`` for the stored rows among ``indices``."""
    if not indices:
        return {}
    return {
        int(idx): (as_bytes(leaf), as_bytes(subtrees))
        for idx, leaf, subtrees in connection.execute(_SUBTREE_ROWS, {"indices": list(indices)})
    }


class AppendSession(Protocol):
    """The statements of one append, inside a transaction that may take the write lock.

    An append first moves the head *conditionally*, from the head its writer last saw to the
    new one; that statement also takes the write lock. Only when another writer moved the head
    in between (nothing changes then) does it read the head and the tree's right edge.
    """

    def move_head(self, seen: tuple[int, str], new: Head) -> bool:
        """Set the head to ``new`` if its size and last timestamp are still ``seen``."""
        ...

    def lock_head(self) -> Head:
        """Read the current head, holding the write lock until commit."""
        ...

    def subtree_rows(self, indices: Sequence[int]) -> dict[int, tuple[bytes, bytes]]:
        """``{idx: (leaf_hash, subtrees)}`` for the stored rows among ``indices``."""
        ...

    def insert_entries(self, rows: Sequence[EntryRow]) -> None:
        """Store new entry rows."""
        ...


class CoreAppendSession:
    """`AppendSession` through SQLAlchemy Core (PostgreSQL, or a SQLite log in a schema).

    On PostgreSQL the conditional UPDATE locks the head row; a writer that waited on it sees
    the moved head, changes nothing and then locks the row with ``SELECT ... FOR UPDATE``.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def move_head(self, seen: tuple[int, str], new: Head) -> bool:
        """Set the head to ``new`` if its size and last timestamp are still ``seen``."""
        result = self._connection.execute(
            _HEAD_MOVE,
            {
                "old_size": seen[0],
                "old_time": seen[1],
                "new_size": new[0],
                "new_root": new[1],
                "new_time": new[2],
            },
        )
        return result.rowcount == 1

    def lock_head(self) -> Head:
        """Read the current head, holding the write lock until commit."""
        return read_head_for_update(self._connection)

    def subtree_rows(self, indices: Sequence[int]) -> dict[int, tuple[bytes, bytes]]:
        """``{idx: (leaf_hash, subtrees)}`` for the stored rows among ``indices``."""
        return read_subtree_rows(self._connection, indices)

    def insert_entries(self, rows: Sequence[EntryRow]) -> None:
        """Store new entry rows."""
        self._connection.execute(
            ENTRIES_INSERT,
            [{"idx": i, "body": b, "leaf_hash": h, "subtrees": s} for i, b, h, s in rows],
        )


_SQLITE_HEAD_MOVE = (
    "UPDATE ledger_head SET tree_size = ?, root_hash = ?, last_timestamp = ? "
    "WHERE id = 1 AND tree_size = ? AND last_timestamp = ?"
)
_SQLITE_HEAD = "SELECT tree_size, root_hash, last_timestamp FROM ledger_head WHERE id = 1"
_SQLITE_INSERT = "INSERT INTO ledger_entries (idx, body, leaf_hash, subtrees) VALUES (?, ?, ?, ?)"


class SqliteAppendSession:
    """`AppendSession` on the sqlite3 connection itself, inside ``BEGIN IMMEDIATE``.

    The same schema and statements as `CoreAppendSession`, without SQLAlchemy's per-statement
    cost, which was a third of a durable single append (sqlite3 caches the prepared statements).
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def move_head(self, seen: tuple[int, str], new: Head) -> bool:
        """Set the head to ``new`` if its size and last timestamp are still ``seen``."""
        cursor = self._connection.execute(_SQLITE_HEAD_MOVE, (*new, *seen))
        return cursor.rowcount == 1

    def lock_head(self) -> Head:
        """Read the current head (``BEGIN IMMEDIATE`` already holds the write lock)."""
        size, root, last = self._connection.execute(_SQLITE_HEAD).fetchone()
        return int(size), as_bytes(root), str(last)

    def subtree_rows(self, indices: Sequence[int]) -> dict[int, tuple[bytes, bytes]]:
        """``{idx: (leaf_hash, subtrees)}`` for the stored rows among ``indices``."""
        if not indices:
            return {}
        query = (
            "SELECT idx, leaf_hash, subtrees FROM ledger_entries WHERE idx IN "
            f"({', '.join('?' * len(indices))})"
        )
        return {
            int(idx): (as_bytes(leaf), as_bytes(subtrees))
            for idx, leaf, subtrees in self._connection.execute(query, tuple(indices))
        }

    def insert_entries(self, rows: Sequence[EntryRow]) -> None:
        """Store new entry rows."""
        if len(rows) == 1:
            self._connection.execute(_SQLITE_INSERT, rows[0])
        else:
            self._connection.executemany(_SQLITE_INSERT, rows)


class SqliteAppender:
    """A held SQLite connection (from the engine's pool, so with its pragmas) for appends."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pooled: PoolProxiedConnection | None = None

    @contextmanager
    def transaction(self) -> Iterator[SqliteAppendSession]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back (and the connection dropped) on error."""
        if self._pooled is None:
            self._pooled = self._engine.raw_connection()
        connection = cast(sqlite3.Connection, self._pooled.driver_connection)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield SqliteAppendSession(connection)
            connection.execute("COMMIT")
        except BaseException:
            try:
                connection.rollback()
            finally:
                self.close()
            raise

    def close(self) -> None:
        """Give the connection back to the pool."""
        if self._pooled is not None:
            pooled, self._pooled = self._pooled, None
            pooled.close()


def migrate(engine: Engine, origin: str | None) -> str:
    """Create or upgrade the schema; returns the log's origin (set on creation)."""
    with engine.connect() as connection:
        connection = connection.execution_options(ledger_write=True)
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(7305662091)"))
            schema = connection.get_execution_options().get("schema_translate_map", {}).get(None)
            existing = set(inspect(connection).get_table_names(schema=schema))
            if meta_table.name not in existing:
                if origin is None:
                    origin = "mesaguard/ethics-review-log"
                metadata.create_all(connection)
                connection.execute(
                    insert(meta_table),
                    [
                        {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                        {"key": "origin", "value": origin},
                    ],
                )
                connection.execute(
                    insert(head_table),
                    {
                        "id": 1,
                        "tree_size": 0,
                        "root_hash": EMPTY_ROOT,
                        "last_timestamp": "",
                    },
                )
            meta = dict(connection.execute(select(meta_table.c.key, meta_table.c.value)).all())
            version = int(meta.get("schema_version", "0"))
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"log schema version {version} is newer than this mesaguard "
                    f"({SCHEMA_VERSION}); upgrade mesaguard"
                )
            # Future migrations go here: `if version < 2: ...; version = 2`.
            stored_origin = str(meta["origin"])
    if origin is not None and origin != stored_origin:
        raise LedgerError(f"the log's origin is {stored_origin!r}, not {origin!r}")
    return stored_origin
