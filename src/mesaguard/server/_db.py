"""Database URLs and engines for the server's own tables (users, tokens, sessions, outbox)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ._errors import ServerConfigError

__all__ = ["database_url", "make_engine"]


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL for ``target``: a URL as is, anything else a SQLite file path."""
    text = str(target)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser()}"
    try:
        url = make_url(text)
    except ArgumentError as error:
        raise ServerConfigError(f"--db {text!r} is not a database URL: {error}") from error
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def make_engine(target: str | Path) -> Engine:
    """An engine with WAL and a generous busy timeout on SQLite, pre-ping on PostgreSQL."""
    url = database_url(target)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        raise ServerConfigError(f"cannot open database {target}: {error}") from error
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine
