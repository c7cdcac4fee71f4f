"""The asynchronous call executor behind the HTTP adapters: concurrency, pacing, retries.

Every request of a batch runs concurrently, at most ``max_connections`` at a time, paced by a
token bucket (``rate_limit`` requests per second), each attempt bounded by ``timeout`` seconds.
Only failures that can succeed on a second try are retried: HTTP 429 (after the server's
``Retry-After`` when it sends one), 5xx, timeouts, dropped or reset connections, and a reply
body that is cut short or is not the JSON the API promises. Retries back off exponentially with
full jitter, ``retries`` times at most. Anything else (400, 401, 404 …) fails the call at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CallFailure",
    "CallRunner",
    "ExecutorOptions",
    "HTTPReply",
    "RetryableError",
    "TokenBucket",
]

T = TypeVar("T")


class ExecutorOptions(BaseModel):
    """How an HTTP adapter talks to its server; every field has a CLI flag."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_connections: int = Field(16, ge=1, le=4096)
    """Requests in flight at once (``--max-connections``)."""
    rate_limit: float | None = Field(None, gt=0)
    """Most requests started per second, or None for no limit (``--rate-limit``)."""
    timeout: float = Field(120.0, gt=0)
    """Seconds one attempt may take, connect to last byte (``--timeout``)."""
    retries: int = Field(4, ge=0, le=20)
    """Further attempts after the first, for retryable failures only (``--retries``)."""
    backoff: float = Field(0.5, ge=0)
    """Base delay of the exponential backoff, seconds (attempt n waits up to backoff·2ⁿ)."""
    max_backoff: float = Field(30.0, ge=0)
    """Longest single wait, Retry-After included."""
    fail_on_error: float = Field(0.0, ge=0, le=1)
    """Largest fraction of a batch allowed to fail (after retries) without failing the run
    (``--fail-on-error``); failed calls become invalid decisions."""


class RetryableError(Exception):
    """A failure that may succeed when tried again (429, 5xx, timeout, cut-off body)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class HTTPReply:
    """What the executor needs of an HTTP response, whichever client fetched it."""

    status: int
    text: str
    headers: Mapping[str, str]
    """Case-insensitive (the client's own header mapping)."""


@dataclass(frozen=True)
class CallFailure:
    """A call that failed for good: why, and after how many attempts."""

    message: str
    attempts: int


class TokenBucket:
    """Paces starts to ``rate`` per second, allowing bursts of ``burst`` (async, one loop)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else min(rate, 64.0))
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a start is allowed, then take it."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def check_response(response: HTTPReply) -> Any:
    """The JSON body of a successful response; retryable or final errors otherwise."""
    status = response.status
    if status == 429 or status >= 500:
        raise RetryableError(
            f"HTTP {status}: {_snippet(response.text)}",
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )
    if status >= 400:
        raise FinalError(f"HTTP {status}: {_snippet(response.text)}", status=status)
    try:
        return json.loads(response.text)
    except ValueError:
        # A 200 whose body is not JSON was cut short or garbled on the way: ask again.
        raise RetryableError(f"malformed JSON body: {_snippet(response.text)}") from None


class FinalError(Exception):
    """A failure that asking again will not fix (4xx other than 429)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def backoff_delay(attempt: int, options: ExecutorOptions, retry_after: float | None) -> float:
    """Wait before attempt ``attempt + 1``: Retry-After when given, else full-jitter backoff."""
    if retry_after is not None:
        return min(options.max_backoff, retry_after)
    ceiling = min(options.max_backoff, options.backoff * (2.0**attempt))
    return random.uniform(ceiling / 2.0, ceiling)


class CallRunner:
    """Runs calls under one set of limits: a shared concurrency gate and start pacing.

    Calls may be submitted at any time (an adapter starts sending before it has rendered the
    whole batch); every call, whenever submitted, shares the same ``max_connections`` and
    ``rate_limit``.
    """

    def __init__(self, options: ExecutorOptions) -> None:
        self.options = options
        self._gate = asyncio.Semaphore(options.max_connections)
        self._bucket = TokenBucket(options.rate_limit) if options.rate_limit else None

    async def run(self, call: Callable[[], Awaitable[T]]) -> T | CallFailure:
        """One call with its retries; a failure for good is returned, not raised.

        The call raises :class:`RetryableError` to be tried again (the adapter turns timeouts
        and transport errors into it), :class:`FinalError` to fail at once; anything else
        propagates.
        """
        options = self.options
        last = "no attempt"
        for attempt in range(options.retries + 1):
            if self._bucket is not None:
                await self._bucket.acquire()
            retry_after: float | None = None
            try:
                async with self._gate:
                    return await call()
            except RetryableError as error:
                last, retry_after = str(error), error.retry_after
            except FinalError as error:
                return CallFailure(str(error), attempt + 1)
            if attempt < options.retries:
                await asyncio.sleep(backoff_delay(attempt, options, retry_after))
        return CallFailure(last, options.retries + 1)
