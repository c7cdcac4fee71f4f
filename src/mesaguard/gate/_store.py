"""`GateStore`: submissions, the review queue, verdicts, the apply outbox (SQLAlchemy 2).

Tables (prefix ``gate_``):

``submissions``    one row per (tenant, idempotency key), unique: the submission and the result.
``reviews``        the review queue; ``version`` moves on every transition, so two reviewers
                   acting at once cannot both win (optimistic concurrency, portable).
``review_actions`` every step of every review, in order.
``verdicts``       red-team verdicts per agent; the latest counts.
``outbox``         applied decisions waiting for delivery; rows leave ``pending`` only when the
                   apply hook succeeded, so a decision is never lost.
``constitutions``  the constitution in force over time.

A submission, its review and its outbox row are written in one transaction: after a crash either
all of them exist or none does, and the unique key makes a resubmission find them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..redteam import VerdictKind
from ._errors import ReviewNotFound, StoreUnavailable
from ._models import (
    ApplyRequest,
    ConstitutionRecord,
    GateResult,
    OutboxEntry,
    OutboxState,
    ReviewAction,
    ReviewItem,
    ReviewState,
    Submission,
    VerdictRecord,
)

__all__ = ["GateStore", "NewSubmission"]

Durability = Literal["full", "normal"]

metadata = MetaData()

submissions_table = Table(
    "gate_submissions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(200), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("agent", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("result", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("tenant", "idempotency_key", name="gate_submissions_key"),
)
reviews_table = Table(
    "gate_reviews",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(200), nullable=False),
    Column("submission_id", String(36), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("critical", Boolean, nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("final_value", Text, nullable=True),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Index("gate_reviews_queue", "tenant", "state", "created_at"),
    Index("gate_reviews_expiry", "state", "expires_at"),
)
actions_table = Table(
    "gate_review_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("review_id", String(36), nullable=False, index=True),
    Column("body", Text, nullable=False),
)
verdicts_table = Table(
    "gate_verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agent", String(200), nullable=False),
    Column("verdict", String(32), nullable=False),
    Column("report_ref", Text, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Index("gate_verdicts_agent", "agent", "id"),
)
outbox_table = Table(
    "gate_outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(32), nullable=False),
    Column("claimed_until", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("delivered_at", String(32), nullable=True),
    Index("gate_outbox_due", "state", "next_attempt_at"),
)
constitutions_table = Table(
    "gate_constitutions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("document", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("recorded_at", String(32), nullable=False),
)


def time_text(moment: dt.datetime) -> str:
    """Fixed-width UTC text (``%Y-%m-%dT%H:%M:%S.%fZ``): sorts like the time it names."""
    # isoformat is several times cheaper than strftime, and submit writes several of these.
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")[:26] + "Z"


def parse_time(text: str) -> dt.datetime:
    """Inverse of `time_text`."""
    return dt.datetime.fromisoformat(text)


def _database_url(target: str | Path) -> str:
    text = str(target)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser()}"
    url = make_url(text)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """A judged submission on its way into the store."""

    submission: Submission
    digest: str
    """SHA-256 of ``body``: a resubmission with another body under the same key is a conflict."""
    body: str
    """The submission as JSON."""
    result: GateResult
    review: dict[str, Any] | None
    """The review-queue row, for a queued result."""
    outbox: tuple[str, ApplyRequest, dt.datetime] | None
    """``(id, request, time)`` of the outbox row, for an applied result."""


class _KeyTaken(Exception):
    """An idempotency key in the batch is already stored (nothing of the batch was written)."""


def _named_insert(table: Table) -> str:
    names = [column.name for column in table.columns]
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"VALUES ({', '.join(':' + name for name in names)})"
    )


_INSERT_SUBMISSION = _named_insert(submissions_table)
_INSERT_REVIEW = _named_insert(reviews_table)
_INSERT_OUTBOX = _named_insert(outbox_table)


def _outbox_row(outbox_id: str, request: ApplyRequest, at: dt.datetime) -> dict[str, Any]:
    return {
        "id": outbox_id,
        "tenant": request.tenant,
        "state": OutboxState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": time_text(at),
        "claimed_until": None,
        "last_error": None,
        "body": request.model_dump_json(),
        "created_at": time_text(at),
        "delivered_at": None,
    }


class GateStore:
    """The gate's durable state in SQLite (default) or PostgreSQL.

    ``url`` is a SQLAlchemy URL (``postgresql://...``, ``sqlite:///path``) or a SQLite file path.
    ``durability="full"`` makes every SQLite commit survive power loss (``synchronous=FULL``);
    ``"normal"`` (default, WAL) survives a crashed process. ``timeout_s`` bounds how long a
    statement waits for a lock or a connection before the store reports itself unavailable.
    On SQLite a background thread checkpoints the write-ahead log every
    ``checkpoint_interval_s`` seconds, so no decision pays for a checkpoint.
    """

    def __init__(
        self,
        url: str | Path = "mesaguard-gate.sqlite",
        *,
        durability: Durability = "normal",
        timeout_s: float = 5.0,
        checkpoint_interval_s: float = 0.5,
    ) -> None:
        self.url = _database_url(url)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        try:
            if self.dialect == "sqlite":
                self._engine: Engine = create_engine(
                    self.url, connect_args={"timeout": timeout_s, "check_same_thread": False}
                )
                synchronous = "FULL" if durability == "full" else "NORMAL"
                busy_ms = int(timeout_s * 1000)

                @event.listens_for(self._engine, "connect")
                def _connect(dbapi_connection: Any, _record: Any) -> None:
                    dbapi_connection.isolation_level = None  # SQLAlchemy issues BEGIN itself
                    cursor = dbapi_connection.cursor()
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute(f"PRAGMA synchronous={synchronous}")
                    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
                    # Checkpoints run in the store's background thread, not inside a commit.
                    cursor.execute("PRAGMA wal_autocheckpoint=0")
                    cursor.close()

                @event.listens_for(self._engine, "begin")
                def _begin(connection: Connection) -> None:
                    # Writers take the lock up front (no deadlock between two upgrading
                    # readers); readers stay deferred so they never wait for a writer (WAL).
                    write = connection.get_execution_options().get("gate_write", False)
                    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            else:
                self._engine = create_engine(
                    self.url,
                    # No pre-ping: it costs a round trip per checkout. A connection the server
                    # dropped fails its statement (reported as StoreUnavailable, fail closed)
                    # and SQLAlchemy then replaces the whole pool.
                    connect_args={
                        "connect_timeout": max(1, int(timeout_s)),
                        "options": f"-c statement_timeout={int(timeout_s * 1000)}",
                    },
                )
            metadata.create_all(self._engine)
        except (SQLAlchemyError, ImportError, ValueError) as error:
            raise StoreUnavailable(
                f"cannot open the gate store {self._safe_url()}: {error}"
            ) from error

        # The hot path (submit) on a SQLite file uses the driver directly: SQLAlchemy's
        # per-statement cost is most of a decision's budget. Same schema, same transactions.
        self._timeout_s = timeout_s
        self._synchronous = "FULL" if durability == "full" else "NORMAL"
        database = make_url(self.url).database if self.dialect == "sqlite" else None
        self._sqlite_path = database if database and database != ":memory:" else None
        self._local = threading.local()
        self._raw_connections: list[sqlite3.Connection] = []
        self._raw_lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if self._sqlite_path is not None:
            # An automatic WAL checkpoint inside a commit copies the log into the database and
            # syncs it: a few ms in one decision out of a few hundred, most of the gate's p99.
            # A background thread checkpoints instead, without blocking writers (PASSIVE).
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop,
                args=(checkpoint_interval_s,),
                name="mesaguard-gate-checkpoint",
                daemon=True,
            )
            self._checkpointer.start()

    def _checkpoint_loop(self, interval_s: float) -> None:
        assert self._sqlite_path is not None
        try:
            connection = sqlite3.connect(
                self._sqlite_path, timeout=self._timeout_s, isolation_level=None
            )
        except sqlite3.Error:
            return  # without a checkpointer SQLite still checkpoints when the file is reopened
        try:
            while not self._stop.wait(interval_s):
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()

    def _raw(self) -> sqlite3.Connection | None:
        """A direct SQLite connection for the calling thread (None unless a SQLite file)."""
        if self._sqlite_path is None:
            return None
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(
                    self._sqlite_path,
                    timeout=self._timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
                connection.execute(f"PRAGMA synchronous={self._synchronous}")
                connection.execute(f"PRAGMA busy_timeout={int(self._timeout_s * 1000)}")
                connection.execute("PRAGMA wal_autocheckpoint=0")
            except sqlite3.Error as error:
                raise StoreUnavailable(f"gate store {self._sqlite_path}: {error}") from error
            self._local.connection = connection
            with self._raw_lock:
                self._raw_connections.append(connection)
        return connection

    def _raw_failed(self, what: str, error: sqlite3.Error) -> StoreUnavailable:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._local.connection = None
            with self._raw_lock:
                if connection in self._raw_connections:
                    self._raw_connections.remove(connection)
            connection.close()
        return StoreUnavailable(
            f"gate store {self._sqlite_path}: {what} failed: {type(error).__name__}: {error}"
        )

    def _safe_url(self) -> str:
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 — only for an error message
            return "<url>"

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the checkpoint thread and release database connections."""
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=self._timeout_s + 1)
            self._checkpointer = None
        with self._raw_lock:
            connections, self._raw_connections = self._raw_connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()
        self._engine.dispose()

    def __enter__(self) -> GateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests)."""
        return self._engine

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Connection]:
        try:
            with (
                self._engine.connect().execution_options(gate_write=True) as connection,
                connection.begin(),
            ):
                yield connection
        except IntegrityError:
            raise
        except SQLAlchemyError as error:
            raise StoreUnavailable(
                f"gate store {self._safe_url()}: {what} failed: {type(error).__name__}: "
                f"{str(error).splitlines()[0]}"
            ) from error

    @contextmanager
    def _reading(self, what: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as connection:
                yield connection
        except SQLAlchemyError as error:
            raise StoreUnavailable(
                f"gate store {self._safe_url()}: {what} failed: {type(error).__name__}: "
                f"{str(error).splitlines()[0]}"
            ) from error

    # --- submissions -----------------------------------------------------------------------

    def find_submission(self, tenant: str, key: str) -> tuple[str, GateResult] | None:
        """``(digest, result)`` stored for this key, or None."""
        raw = self._raw()
        if raw is not None:
            try:
                found = raw.execute(
                    "SELECT digest, result FROM gate_submissions "
                    "WHERE tenant = ? AND idempotency_key = ?",
                    (tenant, key),
                ).fetchone()
            except sqlite3.Error as error:
                raise self._raw_failed("reading a submission", error) from error
            if found is None:
                return None
            return str(found[0]), GateResult.model_validate_json(found[1])
        with self._reading("reading a submission") as connection:
            return self._find(connection, tenant, key)

    @staticmethod
    def _find(connection: Connection, tenant: str, key: str) -> tuple[str, GateResult] | None:
        row = connection.execute(
            select(submissions_table.c.digest, submissions_table.c.result).where(
                submissions_table.c.tenant == tenant,
                submissions_table.c.idempotency_key == key,
            )
        ).first()
        if row is None:
            return None
        return row.digest, GateResult.model_validate_json(row.result)

    def lookup(
        self, tenant: str, key: str, agent: str
    ) -> tuple[tuple[str, GateResult] | None, VerdictRecord | None]:
        """The stored ``(digest, result)`` of a key (or None) and the agent's latest verdict.

        One connection and one transaction: what every submission reads first.
        """
        if self._raw() is not None:
            return self.find_submission(tenant, key), self.latest_verdict(agent)
        with self._reading("reading a submission and a verdict") as connection:
            return self._find(connection, tenant, key), self._verdict(connection, agent)

    def get_result(self, tenant: str, idempotency_key: str) -> GateResult | None:
        """The result stored for a key in a tenant, or None."""
        found = self.find_submission(tenant, idempotency_key)
        return None if found is None else found[1]

    def get_submission(self, tenant: str, submission_id: str) -> tuple[Submission, GateResult]:
        """A stored submission and its result by id; `ReviewNotFound` if not in this tenant."""
        with self._reading("reading a submission") as connection:
            row = connection.execute(
                select(submissions_table.c.body, submissions_table.c.result).where(
                    submissions_table.c.id == submission_id,
                    submissions_table.c.tenant == tenant,
                )
            ).first()
        if row is None:
            raise ReviewNotFound(f"no submission {submission_id!r} in tenant {tenant!r}")
        return Submission.model_validate_json(row.body), GateResult.model_validate_json(row.result)

    def record_many(self, records: Sequence[NewSubmission]) -> list[tuple[str, GateResult]]:
        """Store submissions with their review or outbox rows in one transaction (one commit).

        Returns ``(digest, result)`` per record: its own, or, when its key was already taken
        (a resubmission racing this one, or the same key twice in ``records``), the stored
        digest and result with ``replayed=True``. A taken key makes the batch fall back to one
        transaction per record, so the other records are still stored.
        """
        if not records:
            return []
        try:
            self._write(records)
            return [(record.digest, record.result) for record in records]
        except _KeyTaken:
            pass
        out: list[tuple[str, GateResult]] = []
        for record in records:
            try:
                self._write([record])
                out.append((record.digest, record.result))
            except _KeyTaken:
                submission = record.submission
                found = self.find_submission(submission.tenant, submission.idempotency_key)
                if found is None:
                    raise StoreUnavailable(
                        f"gate store: submission {submission.idempotency_key!r} conflicts with "
                        "a row that cannot be read back"
                    ) from None
                out.append((found[0], found[1].model_copy(update={"replayed": True})))
        return out

    @staticmethod
    def _submission_row(record: NewSubmission) -> dict[str, Any]:
        result = record.result
        return {
            "id": result.submission_id,
            "tenant": record.submission.tenant,
            "idempotency_key": record.submission.idempotency_key,
            "digest": record.digest,
            "agent": record.submission.agent,
            "outcome": result.outcome.value,
            "body": record.body,
            "result": result.model_dump_json(),
            "created_at": time_text(result.created_at),
        }

    def _write(self, records: Sequence[NewSubmission]) -> None:
        """One transaction for all records; `_KeyTaken` (nothing stored) if a key exists."""
        raw = self._raw()
        if raw is not None:
            try:
                raw.execute("BEGIN IMMEDIATE")
                try:
                    for record in records:
                        raw.execute(_INSERT_SUBMISSION, self._submission_row(record))
                        if record.review is not None:
                            raw.execute(_INSERT_REVIEW, record.review)
                        if record.outbox is not None:
                            raw.execute(_INSERT_OUTBOX, _outbox_row(*record.outbox))
                    raw.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        raw.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError:
                raise _KeyTaken from None
            except sqlite3.Error as error:
                raise self._raw_failed("recording a submission", error) from error
            return
        try:
            with self._transaction("recording a submission") as connection:
                for record in records:
                    connection.execute(insert(submissions_table), self._submission_row(record))
                    if record.review is not None:
                        connection.execute(insert(reviews_table), record.review)
                    if record.outbox is not None:
                        self._insert_outbox(connection, *record.outbox)
        except IntegrityError:
            raise _KeyTaken from None

    @staticmethod
    def _insert_outbox(
        connection: Connection, outbox_id: str, request: ApplyRequest, at: dt.datetime
    ) -> None:
        connection.execute(insert(outbox_table), _outbox_row(outbox_id, request, at))

    # --- reviews ---------------------------------------------------------------------------

    def _review_rows(self, connection: Connection, rows: Sequence[Any]) -> list[ReviewItem]:
        if not rows:
            return []
        ids = [row.id for row in rows]
        submission_ids = [row.submission_id for row in rows]
        bodies = {
            r.id: (r.body, r.result)
            for r in connection.execute(
                select(
                    submissions_table.c.id, submissions_table.c.body, submissions_table.c.result
                ).where(submissions_table.c.id.in_(submission_ids))
            )
        }
        history: dict[str, list[ReviewAction]] = {review_id: [] for review_id in ids}
        for action in connection.execute(
            select(actions_table.c.review_id, actions_table.c.body)
            .where(actions_table.c.review_id.in_(ids))
            .order_by(actions_table.c.id)
        ):
            history[action.review_id].append(ReviewAction.model_validate_json(action.body))
        items = []
        for row in rows:
            body, result = bodies[row.submission_id]
            items.append(
                ReviewItem(
                    id=row.id,
                    tenant=row.tenant,
                    state=ReviewState(row.state),
                    submission=Submission.model_validate_json(body),
                    result=GateResult.model_validate_json(result),
                    critical=bool(row.critical),
                    approvals_required=row.approvals_required,
                    created_at=parse_time(row.created_at),
                    updated_at=parse_time(row.updated_at),
                    expires_at=parse_time(row.expires_at),
                    final_value=None if row.final_value is None else json.loads(row.final_value),
                    actions=history[row.id],
                )
            )
        return items

    def get_review(self, tenant: str, review_id: str) -> ReviewItem:
        """One review; `ReviewNotFound` when it does not exist in ``tenant``."""
        with self._reading("reading a review") as connection:
            rows = connection.execute(
                select(reviews_table).where(
                    reviews_table.c.id == review_id, reviews_table.c.tenant == tenant
                )
            ).all()
            items = self._review_rows(connection, rows)
        if not items:
            raise ReviewNotFound(f"no review {review_id!r} in tenant {tenant!r}")
        return items[0]

    def review_version(self, tenant: str, review_id: str) -> tuple[ReviewItem, int]:
        """A review with its concurrency version."""
        with self._reading("reading a review") as connection:
            rows = connection.execute(
                select(reviews_table).where(
                    reviews_table.c.id == review_id, reviews_table.c.tenant == tenant
                )
            ).all()
            items = self._review_rows(connection, rows)
        if not items:
            raise ReviewNotFound(f"no review {review_id!r} in tenant {tenant!r}")
        return items[0], int(rows[0].version)

    def list_reviews(
        self,
        tenant: str,
        state: ReviewState | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        agent: str | None = None,
    ) -> list[ReviewItem]:
        """Reviews of a tenant, oldest first, optionally of one state or agent."""
        query = select(reviews_table).where(reviews_table.c.tenant == tenant)
        if state is not None:
            query = query.where(reviews_table.c.state == ReviewState(state).value)
        if agent is not None:
            query = query.join(
                submissions_table, submissions_table.c.id == reviews_table.c.submission_id
            ).where(submissions_table.c.agent == agent)
        query = query.order_by(reviews_table.c.created_at, reviews_table.c.id)
        query = query.limit(max(0, min(limit, 1000))).offset(max(0, offset))
        with self._reading("listing reviews") as connection:
            return self._review_rows(connection, connection.execute(query).all())

    def count_reviews(self, tenant: str, state: ReviewState | None = None) -> int:
        """How many reviews a tenant has (of one state)."""
        query = select(func.count()).select_from(reviews_table)
        query = query.where(reviews_table.c.tenant == tenant)
        if state is not None:
            query = query.where(reviews_table.c.state == ReviewState(state).value)
        with self._reading("counting reviews") as connection:
            return int(connection.execute(query).scalar_one())

    def transition(
        self,
        review_id: str,
        version: int,
        action: ReviewAction,
        *,
        final_value: str | float | None = None,
        outbox: tuple[str, ApplyRequest, dt.datetime] | None = None,
    ) -> bool:
        """Record an action and move the state if nobody moved it since ``version``.

        Returns False (and changes nothing) when the review changed concurrently.
        """
        with self._transaction("recording a review action") as connection:
            moved = connection.execute(
                update(reviews_table)
                .where(reviews_table.c.id == review_id, reviews_table.c.version == version)
                .values(
                    state=action.to_state.value,
                    version=version + 1,
                    updated_at=time_text(action.at),
                    final_value=None if final_value is None else json.dumps(final_value),
                )
            )
            if moved.rowcount != 1:
                return False
            connection.execute(
                insert(actions_table),
                {"review_id": review_id, "body": action.model_dump_json()},
            )
            if outbox is not None:
                self._insert_outbox(connection, *outbox)
        return True

    def due_reviews(self, now: dt.datetime, limit: int = 500) -> list[tuple[str, str, int]]:
        """``(tenant, id, version)`` of open reviews whose time is up."""
        query = (
            select(reviews_table.c.tenant, reviews_table.c.id, reviews_table.c.version)
            .where(
                reviews_table.c.state.in_([ReviewState.PENDING.value, ReviewState.ESCALATED.value]),
                reviews_table.c.expires_at <= time_text(now),
            )
            .order_by(reviews_table.c.expires_at)
            .limit(limit)
        )
        with self._reading("finding expired reviews") as connection:
            return [(row.tenant, row.id, int(row.version)) for row in connection.execute(query)]

    # --- verdicts --------------------------------------------------------------------------

    def set_verdict(
        self,
        agent: str,
        verdict: VerdictKind | str,
        report_ref: str = "",
        *,
        at: dt.datetime | None = None,
    ) -> VerdictRecord:
        """Record an agent's latest red-team verdict."""
        record = VerdictRecord(
            agent=agent,
            verdict=VerdictKind(verdict),
            report_ref=report_ref,
            recorded_at=at or dt.datetime.now(dt.UTC),
        )
        with self._transaction("recording a verdict") as connection:
            connection.execute(
                insert(verdicts_table),
                {
                    "agent": agent,
                    "verdict": record.verdict.value,
                    "report_ref": report_ref,
                    "recorded_at": time_text(record.recorded_at),
                },
            )
        return record

    def latest_verdict(self, agent: str) -> VerdictRecord | None:
        """The agent's most recent verdict, or None when it has never been red-teamed."""
        raw = self._raw()
        if raw is not None:
            try:
                found = raw.execute(
                    "SELECT agent, verdict, report_ref, recorded_at FROM gate_verdicts "
                    "WHERE agent = ? ORDER BY id DESC LIMIT 1",
                    (agent,),
                ).fetchone()
            except sqlite3.Error as error:
                raise self._raw_failed("reading a verdict", error) from error
            if found is None:
                return None
            return VerdictRecord(
                agent=found[0],
                verdict=VerdictKind(found[1]),
                report_ref=found[2],
                recorded_at=parse_time(found[3]),
            )
        with self._reading("reading a verdict") as connection:
            return self._verdict(connection, agent)

    @staticmethod
    def _verdict(connection: Connection, agent: str) -> VerdictRecord | None:
        row = connection.execute(
            select(verdicts_table)
            .where(verdicts_table.c.agent == agent)
            .order_by(verdicts_table.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return VerdictRecord(
            agent=row.agent,
            verdict=VerdictKind(row.verdict),
            report_ref=row.report_ref,
            recorded_at=parse_time(row.recorded_at),
        )

    # --- outbox ----------------------------------------------------------------------------

    @staticmethod
    def _outbox_entry(row: Any) -> OutboxEntry:
        return OutboxEntry(
            id=row.id,
            tenant=row.tenant,
            state=OutboxState(row.state),
            attempts=row.attempts,
            next_attempt_at=parse_time(row.next_attempt_at),
            last_error=row.last_error,
            request=ApplyRequest.model_validate_json(row.body),
            created_at=parse_time(row.created_at),
            delivered_at=None if row.delivered_at is None else parse_time(row.delivered_at),
        )

    def outbox(
        self, state: OutboxState | None = None, *, tenant: str | None = None, limit: int = 100
    ) -> list[OutboxEntry]:
        """Outbox entries, oldest first."""
        query = select(outbox_table)
        if state is not None:
            query = query.where(outbox_table.c.state == OutboxState(state).value)
        if tenant is not None:
            query = query.where(outbox_table.c.tenant == tenant)
        query = query.order_by(outbox_table.c.created_at, outbox_table.c.id).limit(limit)
        with self._reading("reading the outbox") as connection:
            return [self._outbox_entry(row) for row in connection.execute(query)]

    def claim_outbox(self, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[OutboxEntry]:
        """Claim due pending entries for one delivery attempt each (a lease, not a lock)."""
        now_text = time_text(now)
        query = (
            select(outbox_table.c.id)
            .where(
                outbox_table.c.state == OutboxState.PENDING.value,
                outbox_table.c.next_attempt_at <= now_text,
                (outbox_table.c.claimed_until.is_(None))
                | (outbox_table.c.claimed_until <= now_text),
            )
            .order_by(outbox_table.c.next_attempt_at)
            .limit(limit)
        )
        claimed: list[OutboxEntry] = []
        with self._transaction("claiming outbox entries") as connection:
            for (entry_id,) in connection.execute(query).all():
                moved = connection.execute(
                    update(outbox_table)
                    .where(
                        outbox_table.c.id == entry_id,
                        outbox_table.c.state == OutboxState.PENDING.value,
                        (outbox_table.c.claimed_until.is_(None))
                        | (outbox_table.c.claimed_until <= now_text),
                    )
                    .values(
                        claimed_until=time_text(now + lease),
                        attempts=outbox_table.c.attempts + 1,
                    )
                )
                if moved.rowcount == 1:
                    row = connection.execute(
                        select(outbox_table).where(outbox_table.c.id == entry_id)
                    ).one()
                    claimed.append(self._outbox_entry(row))
        return claimed

    def finish_delivery(
        self, entry_id: str, *, at: dt.datetime, error: str | None, retry_at: dt.datetime
    ) -> None:
        """Mark a claimed entry delivered, or record the error and when to retry."""
        values: dict[str, Any]
        if error is None:
            values = {
                "state": OutboxState.DELIVERED.value,
                "delivered_at": time_text(at),
                "claimed_until": None,
                "last_error": None,
            }
        else:
            values = {
                "next_attempt_at": time_text(retry_at),
                "claimed_until": None,
                "last_error": error[:2000],
            }
        with self._transaction("recording a delivery") as connection:
            connection.execute(
                update(outbox_table).where(outbox_table.c.id == entry_id).values(**values)
            )

    def count_outbox(self, state: OutboxState) -> int:
        """How many outbox entries are in a state."""
        with self._reading("counting the outbox") as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(outbox_table)
                    .where(outbox_table.c.state == OutboxState(state).value)
                ).scalar_one()
            )

    # --- constitutions ---------------------------------------------------------------------

    def current_constitution(self) -> ConstitutionRecord | None:
        """The constitution most recently put in force, or None."""
        with self._reading("reading the constitution") as connection:
            row = connection.execute(
                select(constitutions_table).order_by(constitutions_table.c.id.desc()).limit(1)
            ).first()
        if row is None:
            return None
        return ConstitutionRecord(
            version=row.version,
            sha256=row.sha256,
            actor=row.actor,
            recorded_at=parse_time(row.recorded_at),
        )

    def constitution_document(self, sha256: str) -> str | None:
        """The YAML text of a constitution that was in force, by its hash."""
        with self._reading("reading the constitution") as connection:
            row = connection.execute(
                select(constitutions_table.c.document)
                .where(constitutions_table.c.sha256 == sha256)
                .limit(1)
            ).first()
        return None if row is None else str(row.document)

    def record_constitution(
        self, version: str, sha256: str, document: str, actor: str, at: dt.datetime
    ) -> None:
        """Record that a constitution was put in force."""
        with self._transaction("recording the constitution") as connection:
            connection.execute(
                insert(constitutions_table),
                {
                    "version": version,
                    "sha256": sha256,
                    "document": document,
                    "actor": actor,
                    "recorded_at": time_text(at),
                },
            )
