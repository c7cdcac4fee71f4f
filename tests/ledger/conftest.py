"""Fixtures for the Ethics Review Log tests: vectors, SQLite and PostgreSQL logs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from mesaguard.ledger import Ledger, Signer

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "ledger-vectors" / "vectors.json"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ORIGIN = "test.mesaguard/ethics-log"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    """The published test vectors (../shared/ledger-vectors/vectors.json)."""
    if not VECTORS.exists():
        pytest.skip(f"test vectors not found at {VECTORS.resolve()} (../shared is absent)")
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "log.sqlite"


@pytest.fixture
def ledger(log_path: Path) -> Iterator[Ledger]:
    with Ledger(log_path, origin=ORIGIN) as log:
        yield log


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(scope="session")
def pg_available() -> str:
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error.orig})")
    finally:
        engine.dispose()
    return PG_URL


@pytest.fixture
def pg_schema(pg_available: str) -> Iterator[str]:
    """A uniquely named schema, dropped after the test."""
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(pg_available)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def pg_ledger(pg_available: str, pg_schema: str) -> Iterator[Ledger]:
    with Ledger(pg_available, origin=ORIGIN, schema=pg_schema) as log:
        yield log


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """The same test on SQLite and on PostgreSQL (in a throw-away schema)."""
    if request.param == "sqlite":
        with Ledger(tmp_path / "log.sqlite", origin=ORIGIN) as log:
            yield log
    else:
        url = request.getfixturevalue("pg_available")
        schema = request.getfixturevalue("pg_schema")
        with Ledger(url, origin=ORIGIN, schema=schema) as log:
            yield log
