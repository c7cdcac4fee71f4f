"""The log's health as the server reports it: verification status and the latest checkpoint.

Verifying streams the whole log, so it is not done per request: `LogMonitor` verifies when the
log has grown and the last check is older than ``interval`` seconds, signs a checkpoint on the
same schedule when the server holds the log's key, and serves the last result in between.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..ledger import Ledger, LedgerError, Signer, StoredCheckpoint, verify_log

__all__ = ["LogEntryView", "LogMonitor", "LogStatus"]


class LogStatus(BaseModel):
    """Whether the Ethics Review Log verifies, and its latest signed checkpoint."""

    model_config = ConfigDict(frozen=True)

    origin: str
    tree_size: int
    """Entries in the log now."""
    root_hash: str
    """Hex Merkle root of the log now."""
    verified: bool
    """True when the last full verification found no problem."""
    verified_size: int
    """The log size that verification covered."""
    verified_at: dt.datetime
    error: str | None = None
    """What verification found wrong (or why it could not run)."""
    trust: str | None = None
    """Where the verifier's trust in the checkpoint keys came from."""
    checkpoint: StoredCheckpoint | None = None
    """The most recent signed checkpoint (a C2SP signed note), if any."""


class LogEntryView(BaseModel):
    """One log entry flattened for the log page and the API."""

    model_config = ConfigDict(frozen=True)

    index: int
    timestamp: dt.datetime
    actor: str
    kind: str
    subject: str
    outcome: str
    note: str


def entry_view(entry: Any) -> LogEntryView:
    """Flatten a ledger `Entry` of any record kind."""
    record = entry.record
    kind = str(record.kind)
    subject = str(getattr(record, "subject", "") or getattr(record, "version", "") or "")
    outcome = str(getattr(record, "outcome", "") or getattr(record, "verdict", "") or "")
    note = str(
        getattr(record, "reason", "")
        or getattr(record, "comment", "")
        or getattr(record, "rationale", "")
        or getattr(record, "summary", "")
        or ""
    )
    return LogEntryView(
        index=entry.index,
        timestamp=entry.timestamp,
        actor=entry.actor,
        kind=kind,
        subject=subject,
        outcome=outcome,
        note=note,
    )


class LogMonitor:
    """Cached verification of a ledger, and periodic checkpoints when a signer is given."""

    def __init__(
        self, ledger: Ledger, *, signer: Signer | None = None, interval: float = 5.0
    ) -> None:
        self.ledger = ledger
        self.signer = signer
        self.interval = interval
        self._lock = threading.Lock()
        self._status: LogStatus | None = None
        self._checked_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Check in the background every ``interval`` seconds until `stop`."""
        self._thread = threading.Thread(target=self._run, name="log-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the background checks."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # a failed check shows in status(); the monitor keeps checking
                continue

    def checkpoint(self) -> StoredCheckpoint | None:
        """Sign the current head now (None when the server has no key or nothing is new)."""
        if self.signer is None:
            return None
        latest = self.ledger.latest_checkpoint()
        if latest is not None and latest.tree_size == self.ledger.size():
            return latest
        return self.ledger.checkpoint([self.signer])

    def refresh(self, *, force: bool = False) -> LogStatus:
        """Sign a checkpoint if due, verify the log if it changed, and return the status."""
        with self._lock:
            now = time.monotonic()
            current = self._status
            try:
                size = self.ledger.size()
            except LedgerError as error:
                return self._failed(f"cannot read the log: {error}", current)
            if not force and current is not None:
                age = now - self._checked_at
                grew = current.verified_size != size or current.error is not None
                # Re-verify when the log grew, and now and then even if it did not (tampering
                # does not have to change the size); never more often than the interval.
                if age < self.interval or (not grew and age < 12 * self.interval):
                    return current
            try:
                self.checkpoint()
            except LedgerError as error:
                return self._failed(f"cannot sign a checkpoint: {error}", current)
            try:
                report = verify_log(self.ledger)
            except LedgerError as error:
                status = self._status_from(error=str(error), trust=None, verified_size=size)
            else:
                status = self._status_from(
                    error=None, trust=report.trust, verified_size=report.tree_size
                )
            self._status = status
            self._checked_at = now
            return status

    def status(self) -> LogStatus:
        """The last result, refreshed if the log grew and the last check is old enough."""
        return self.refresh()

    def _status_from(
        self, *, error: str | None, trust: str | None, verified_size: int
    ) -> LogStatus:
        size, root, _last = self.ledger.head()
        return LogStatus(
            origin=self.ledger.origin,
            tree_size=size,
            root_hash=root.hex(),
            verified=error is None,
            verified_size=verified_size,
            verified_at=dt.datetime.now(dt.UTC),
            error=error,
            trust=trust,
            checkpoint=self.ledger.latest_checkpoint(),
        )

    def _failed(self, error: str, current: LogStatus | None) -> LogStatus:
        return LogStatus(
            origin=self.ledger.origin,
            tree_size=current.tree_size if current else 0,
            root_hash=current.root_hash if current else "",
            verified=False,
            verified_size=current.verified_size if current else 0,
            verified_at=dt.datetime.now(dt.UTC),
            error=error,
            trust=None,
            checkpoint=current.checkpoint if current else None,
        )

    def recent(
        self, count: int = 50, *, tenant: str | None = None, scan: int = 5000
    ) -> list[LogEntryView]:
        """The newest ``count`` entries, newest first.

        With ``tenant``, only that tenant's entries and tenant-free system entries (constitution
        changes, checkpoint references) are shown, looking back at most ``scan`` entries: the log
        is shared, a tenant's reviewers see only their own part of it.
        """
        size = self.ledger.size()
        found: list[LogEntryView] = []
        stop = size
        while stop > 0 and len(found) < count and size - stop < scan:
            start = max(0, stop - 200)
            for entry in reversed(list(self.ledger.entries(start, stop))):
                if tenant is None or _visible(entry, tenant):
                    found.append(entry_view(entry))
                    if len(found) == count:
                        break
            stop = start
        return found


_SYSTEM_KINDS = frozenset({"constitution-change", "checkpoint-reference"})


def _visible(entry: Any, tenant: str) -> bool:
    """Whether a tenant's reviewers may see an entry."""
    owner = entry.record.details.get("tenant")
    if owner is None:
        return str(entry.record.kind) in _SYSTEM_KINDS
    return bool(owner == tenant)
