"""Fixtures for the gate tests: real SQLite and PostgreSQL stores, a ledger, submissions."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gate_support import Clock, make_submission
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from mesaguard.gate import GateStore, Submission
from mesaguard.ledger import Ledger

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    engine = create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        return f"PostgreSQL is not reachable at 127.0.0.1:5432 as postgres/test ({error.orig})"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def pg_admin() -> str:
    reason = pg_reason()
    if reason is not None:
        pytest.skip(reason)
    return PG_ADMIN


@pytest.fixture(scope="session")
def pg_session_database(pg_admin: str) -> Iterator[str]:
    """One fresh PostgreSQL database for the session's gate tests, dropped at the end."""
    name = f"gate_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def pg_database(pg_session_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    engine = create_engine(pg_session_database.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as connection:
            tables = connection.execute(
                text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'gate\\_%'")
            ).scalars()
            names = ", ".join(f'"{table}"' for table in tables)
            if names:
                connection.execute(text(f"TRUNCATE {names}"))
    finally:
        engine.dispose()
    return pg_session_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The gate store's URL: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "gate.sqlite")
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[GateStore]:
    with GateStore(store_url) as opened:
        yield opened


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "log.sqlite", origin="test.mesaguard/gate", durability="normal") as log:
        yield log


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def submission() -> Callable[..., Submission]:
    return make_submission
