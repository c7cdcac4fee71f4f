"""Red-team reports uploaded with a verdict, kept by content hash so reviewers can open them."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import Column, Engine, Float, LargeBinary, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

__all__ = ["REPORT_TYPES", "ReportStore"]

REPORT_TYPES = ("text/html", "application/json")
"""What `mesaguard redteam run` writes and the server will keep."""

metadata = MetaData()

reports_table = Table(
    "server_reports",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("agent", String(200), nullable=False),
    Column("content_type", String(40), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("uploaded_at", Float, nullable=False),
)


class ReportStore:
    """Report documents by SHA-256, in the server's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        metadata.create_all(engine)

    def put(self, agent: str, content_type: str, body: bytes) -> str:
        """Keep a report; returns its SHA-256 (the same document is stored once)."""
        digest = hashlib.sha256(body).hexdigest()
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(reports_table),
                    {
                        "sha256": digest,
                        "agent": agent,
                        "content_type": content_type,
                        "body": body,
                        "uploaded_at": time.time(),
                    },
                )
        except IntegrityError:
            pass  # already stored: content-addressed
        return digest

    def get(self, digest: str) -> tuple[str, str, bytes] | None:
        """``(agent, content_type, body)`` of a stored report, or None."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(
                    reports_table.c.agent, reports_table.c.content_type, reports_table.c.body
                ).where(reports_table.c.sha256 == digest)
            ).one_or_none()
        return None if row is None else (str(row[0]), str(row[1]), bytes(row[2]))
