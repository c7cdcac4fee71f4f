"""Delivery of applied decisions to the tracker side: an HTTP POST per decision, signed.

The gate writes every decision that takes effect (applied by autonomy, approved or modified by
a reviewer) into its outbox in the same transaction as the decision itself; this hook is what
the outbox worker calls for each entry. A non-2xx answer or a network error raises, the gate
records the error and retries later with backoff; nothing is dropped. The receiver deduplicates
on ``X-Mesaguard-Delivery`` (stable across retries), so a retry after a lost answer is harmless.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx

from ..gate import ApplyRequest
from ._errors import ServerError

__all__ = ["DeliveryFailed", "WebhookApplier", "signature"]


class DeliveryFailed(ServerError):
    """The tracker side did not accept a decision; it stays in the outbox and is retried."""


def signature(secret: str, body: bytes) -> str:
    """The ``X-Mesaguard-Signature`` header value: ``sha256=<hex HMAC of the body>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookApplier:
    """POSTs each `ApplyRequest` as JSON to ``url``; raises `DeliveryFailed` unless 2xx."""

    def __init__(self, url: str, *, secret: str | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = secret
        self._client = httpx.Client(timeout=timeout)

    def __call__(self, request: ApplyRequest) -> None:
        """Deliver one decision."""
        body = request.model_dump_json().encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Mesaguard-Delivery": request.delivery_id,
        }
        if self.secret:
            headers["X-Mesaguard-Signature"] = signature(self.secret, body)
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryFailed(
                f"POST {self.url} failed: {type(error).__name__}: {error}"
            ) from error
        if not response.is_success:
            raise DeliveryFailed(
                f"POST {self.url} answered {response.status_code}: {response.text[:200]}"
            )

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()
