"""Everything one server process holds open: stores, the gate, the log and its background jobs."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ..constitution import Constitution, default_constitution
from ..gate import Gate, GateStore
from ..ledger import Ledger, Signer
from ._auth import AuthStore
from ._logstatus import LogMonitor
from ._reports import ReportStore
from ._settings import ServerSettings
from ._webhook import WebhookApplier

__all__ = ["ServerState"]

logger = logging.getLogger("mesaguard.server")


def _read_signer(path: Path) -> Signer:
    from ._errors import ServerConfigError

    try:
        return Signer.parse(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ServerConfigError(
            f"--log-key {path}: cannot read the signing key ({error.strerror}); "
            "create one with `mesaguard log key generate`"
        ) from error


class ServerState:
    """Open stores and the gate for one process; `close` releases them."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.auth = AuthStore(
            settings.db, session_ttl=settings.session_ttl, idle_timeout=settings.idle_timeout
        )
        self.reports = ReportStore(self.auth.engine)
        self.constitution: Constitution = (
            default_constitution()
            if settings.constitution is None
            else Constitution.load(settings.constitution)
        )
        self.ledger = Ledger(settings.ledger, origin=settings.log_origin)
        signer = None if settings.log_key is None else _read_signer(settings.log_key)
        self.monitor = LogMonitor(self.ledger, signer=signer, interval=settings.monitor_interval)
        self.store = GateStore(settings.db, timeout_s=settings.store_timeout)
        self.webhook = (
            None
            if settings.webhook_url is None
            else WebhookApplier(settings.webhook_url, secret=settings.webhook_secret)
        )
        canary = None
        if settings.canary_agent is not None:
            from ..agents import resolve_agent

            canary = resolve_agent(settings.canary_agent)
        self.gate = Gate(
            self.constitution,
            self.store,
            ledger=self.ledger,
            config=settings.gate,
            canary=canary,
            applier=self.webhook,
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the background jobs: log checks and checkpoints, queue expiry, deliveries."""
        self.monitor.start()
        jobs = [("queue-expiry", self._expire, self.settings.monitor_interval)]
        if self.webhook is not None:
            jobs.append(("outbox-delivery", self._deliver, self.settings.deliver_interval))
        for name, job, interval in jobs:
            thread = threading.Thread(
                target=self._every, args=(job, interval), name=name, daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _every(self, job: Callable[[], object], interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                job()
            except Exception:  # the next pass retries; nothing is applied on an error path
                logger.exception("background job %s failed", threading.current_thread().name)

    def _expire(self) -> None:
        self.gate.expire_due()

    def _deliver(self) -> None:
        # Several processes may share the outbox: claims are leases, so each entry is handed
        # to one worker per attempt.
        lease = dt.timedelta(seconds=self.settings.delivery_lease)
        while self.gate.deliver(limit=20, lease=lease).delivered and not self._stop.is_set():
            pass

    def close(self) -> None:
        """Stop background jobs and release every store."""
        self._stop.set()
        self.monitor.stop()
        for thread in self._threads:
            thread.join(timeout=15)
        self.gate.close()
        if self.webhook is not None:
            self.webhook.close()
        self.store.close()
        self.ledger.close()
        self.auth.close()
