"""What `mesaguard serve` is configured with; passed to worker processes as JSON."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..gate import GateConfig
from ..ledger import DEFAULT_DATABASE
from ._errors import ServerConfigError

__all__ = ["DEFAULT_GATE_DATABASE", "SETTINGS_ENV", "ServerSettings"]

DEFAULT_GATE_DATABASE = "mesaguard-gate.sqlite"
SETTINGS_ENV = "MESAGUARD_SERVER_SETTINGS"


class ServerSettings(BaseModel):
    """Options of the review server."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    db: str = DEFAULT_GATE_DATABASE
    """Gate store, review queue and users: a SQLite path or a ``postgresql://`` URL."""
    ledger: str = DEFAULT_DATABASE
    """The Ethics Review Log: a SQLite path or a ``postgresql://`` URL."""
    log_origin: str | None = None
    """Name of the log, fixed when it is created (default: the ledger's own default)."""
    log_key: Path | None = None
    """A signing key file (`mesaguard log key generate`); with it the server signs checkpoints."""
    constitution: Path | None = None
    """A constitution YAML; the shipped default when absent."""
    webhook_url: str | None = None
    """Where approved and applied decisions are POSTed for the tracker side; none: kept in the
    outbox for a pull client."""
    webhook_secret: str | None = None
    """Shared secret for the webhook's HMAC-SHA256 signature header."""
    session_ttl: float = Field(default=8 * 3600, gt=0)
    """Seconds a browser session lives from login."""
    idle_timeout: float = Field(default=30 * 60, gt=0)
    """Seconds a browser session lives without a request."""
    secure_cookies: bool = False
    """Mark cookies Secure (set it when the server is behind HTTPS)."""
    monitor_interval: float = Field(default=5.0, gt=0)
    """Seconds between log verifications / checkpoints and between queue expiry sweeps."""
    gate: GateConfig = Field(default_factory=GateConfig)
    """Autonomy levels per action, escalation thresholds, audit rate, review expiry, four-eyes."""
    canary_agent: str | None = None
    """Agent spec (as for `mesaguard redteam run --agent`) the gate re-asks under an observed
    framing for the runtime consistency canary; none: the canary is off."""
    store_timeout: float = Field(default=5.0, gt=0)
    """Seconds a gate-store statement may wait for a lock or connection before the store counts
    as unavailable (the decision is then reported as not applied, 503)."""
    deliver_interval: float = Field(default=0.5, gt=0)
    """Seconds between passes over the apply outbox (webhook deliveries and retries)."""
    delivery_lease: float = Field(default=60.0, gt=0)
    """Seconds a claimed outbox entry is reserved for one delivery attempt; if the process dies
    (or its store fails) mid-attempt, another pass retries it after this long."""

    def to_env(self) -> dict[str, str]:
        """The environment that hands these settings to a worker process."""
        return {SETTINGS_ENV: self.model_dump_json()}

    @classmethod
    def from_env(cls) -> ServerSettings:
        """Settings from ``$MESAGUARD_SERVER_SETTINGS`` (JSON), defaults when it is unset."""
        text = os.environ.get(SETTINGS_ENV)
        if not text:
            return cls()
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            raise ServerConfigError(f"${SETTINGS_ENV} is not valid: {error}") from error
