"""What the Ollama and OpenAI-compatible adapters share: a batched, cached, concurrent chat agent.

``decide(batch)`` renders one chat request per decision request, chunk by chunk, answers what it
can from the reply cache, probes the endpoint once if anything is left to ask (so a dead endpoint
fails in seconds with a hint, not after a batch of timeouts), starts the remaining calls as soon
as their chunk is rendered (a :class:`CallRunner` bounds them all together), stores each reply
the moment it arrives, and parses every reply into a :class:`Decision`. A reply that cannot be
parsed becomes an invalid decision with its raw text; a call that fails for good becomes an
invalid decision too, unless more than ``fail_on_error`` of the batch failed, in which case the
batch raises :class:`AgentError` naming the endpoint, the model and the items.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from .._errors import AgentError, ConfigError
from ..items import ActionType
from ._decision import Decision, DecisionRequest
from ._llm_cache import (
    ResponseCache,
    canonical_json,
    default_response_cache_path,
    request_key,
)
from ._llm_executor import (
    CallFailure,
    CallRunner,
    ExecutorOptions,
    HTTPReply,
    RetryableError,
    check_response,
)
from ._llm_parse import (
    DEFAULT_CONFIDENCE,
    allowed_answers,
    logprob_confidence,
    parse_reply,
    tokens_from_openai,
)
from ._llm_prompt import (
    DESCRIPTION_CHARS,
    ChatMessage,
    PromptTemplate,
    default_template,
    load_template,
)

__all__ = ["CallStats", "GenerationOptions", "HTTPChatAgent", "open_cache", "templates_for"]

_RENDER_CHUNK = 8
"""Requests rendered (and looked up in the cache) at a time. Rendering is CPU work on the loop
that reads the replies, so it goes in small slices, at most two requests per connection ahead of
the calls: at 64 connections slices of 8 reached 88% of the ideal rate, of 64 83%, and the whole
batch rendered first 76% (``benchmarks/bench_llm.py``)."""


@dataclass
class CallStats:
    """What an adapter did so far (for reports and benchmarks)."""

    requests: int = 0
    """Decision requests answered."""
    calls: int = 0
    """HTTP calls that succeeded (each request at most once, thanks to the cache)."""
    cache_hits: int = 0
    failures: int = 0
    invalid: int = 0
    """Replies that could not be parsed."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: list[str] = field(default_factory=list)
    """The first few failure messages."""


@dataclass(frozen=True)
class _Plan:
    key: str
    messages: list[ChatMessage]
    action: ActionType
    data: bytes
    """The request body, encoded."""
    level: int
    """Structured-output level ``data`` was built for."""
    logprobs: bool


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling options sent with every request (part of the cache key)."""

    temperature: float = 0.0
    seed: int = 42
    max_tokens: int = 64
    num_ctx: int | None = None
    """Ollama's context window; None leaves the model's default."""


class _Batch:
    """One ``decide`` call's bookkeeping: its requests, which call each waits on, its decisions.

    A request's decision is made as soon as its reply is known (from the cache, or when the call
    ends), so parsing overlaps the wait for the calls still in flight.
    """

    def __init__(self, agent: HTTPChatAgent, requests: Sequence[DecisionRequest]) -> None:
        self.agent = agent
        self.requests = requests
        self.keys: list[str] = []
        self.replies: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, CallFailure] = {}
        self._decisions: list[Decision | None] = [None] * len(requests)
        self._waiting: dict[str, list[int]] = {}

    def plan(self, index: int) -> _Plan:
        """Render request ``index`` (in order) and note that it waits on its call."""
        plan = self.agent._plan(self.requests[index])
        self.keys.append(plan.key)
        self._waiting.setdefault(plan.key, []).append(index)
        return plan

    def settle(self, key: str) -> None:
        """Decide every request waiting on ``key``, whose call has ended (or was cached)."""
        reply, failure = self.replies.get(key), self.failures.get(key)
        for index in self._waiting.pop(key, ()):
            self._decisions[index] = self.agent._decision(self.requests[index], reply, failure)

    def finished(self) -> list[Decision]:
        """Every decision, in request order (each call has ended)."""
        decisions = [d for d in self._decisions if d is not None]
        if len(decisions) != len(self.requests):
            raise AssertionError("a request was left without a decision")
        return decisions


def templates_for(
    template: str | Path | PromptTemplate | None, few_shot: bool
) -> dict[ActionType, PromptTemplate]:
    """One template per action: the named one for its action, defaults for the others."""
    chosen = {a: default_template(a, few_shot=few_shot) for a in ActionType}
    if template is not None:
        loaded = template if isinstance(template, PromptTemplate) else load_template(template)
        chosen[loaded.action] = loaded
    return chosen


def open_cache(cache: str | Path | bool | None, cache_dir: Path | None) -> ResponseCache | None:
    """The reply cache an adapter uses: a path, the default (True / None), or none (False/off)."""
    if cache is False or (isinstance(cache, str) and cache.lower() in ("off", "none", "no")):
        return None
    if cache is None or cache is True or (isinstance(cache, str) and cache.lower() == "on"):
        return ResponseCache(default_response_cache_path(cache_dir))
    return ResponseCache(Path(cache).expanduser())


class HTTPChatAgent:
    """Base of the HTTP chat adapters; subclasses say how to build and read a request."""

    adapter: ClassVar[str] = ""
    chat_path: ClassVar[str] = ""
    probe_path: ClassVar[str] = ""
    hint: ClassVar[str] = ""
    formats: ClassVar[tuple[str, ...]] = ("none",)
    """Structured-output modes, strongest first; a 400/422 steps down to the next one."""
    format_field: ClassVar[str] = ""
    """The request field of the structured-output mode, looked for in error bodies."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        executor: ExecutorOptions,
        templates: dict[ActionType, PromptTemplate],
        generation: GenerationOptions,
        cache: ResponseCache | None,
        routes: Sequence[str] = (),
        structured: str | None = None,
        logprobs: bool = True,
        headers: dict[str, str] | None = None,
        description_chars: int = DESCRIPTION_CHARS,
    ) -> None:
        if not model:
            raise ConfigError(f"agent spec {self.adapter}/MODEL needs a model name")
        self.model = model
        self.name: str = f"{self.adapter}/{model}"
        self.base_url = base_url.rstrip("/")
        self.executor = executor
        self.templates = templates
        self.generation = generation
        self.cache = cache
        self.routes = tuple(routes)
        self.logprobs = logprobs
        self._logprobs_now = logprobs
        self.description_chars = description_chars
        self.headers = dict(headers or {})
        if structured is None:
            structured = self.formats[0]
        if structured not in self.formats:
            raise ConfigError(
                f"{self.adapter}: structured output {structured!r} is not one of "
                f"{', '.join(self.formats)}"
            )
        self._initial_level = self.formats.index(structured)
        self._format_level = self._initial_level
        self._reachable = False
        self._ssl_context: ssl.SSLContext | None = None
        # Looked up once: aiohttp's trust_env looks the proxy up again in a worker thread for
        # every request, which cost more CPU than the rest of the request.
        self._proxy = environment_proxy(self.base_url)
        self.stats = CallStats()

    # -- what subclasses provide -------------------------------------------------------------

    def request_body(
        self, messages: list[ChatMessage], action: ActionType, structured: str, logprobs: bool
    ) -> dict[str, Any]:
        """The JSON body of one chat request in the given structured-output mode."""
        raise NotImplementedError

    def read_reply(self, data: Any) -> dict[str, Any]:
        """``{"text", "logprobs", "prompt_tokens", "completion_tokens"}`` from a response body.

        Raises :class:`RetryableError` when the body lacks what the API promises.
        """
        raise NotImplementedError

    # -- the batch ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The chat URL requests go to."""
        return self.base_url + self.chat_path

    def messages(self, request: DecisionRequest) -> list[ChatMessage]:
        """The chat messages of one decision request."""
        template = self.templates[request.action]
        return template.messages(
            request.item,
            request.context,
            routes=self.routes,
            description_chars=self.description_chars,
        )

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """Decide a batch, its calls running concurrently (see the module docstring)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.adecide(requests))
        # Called from inside an event loop (a notebook, an async harness): use a fresh thread.
        box: list[list[Decision]] = []
        failure: list[BaseException] = []

        def target() -> None:
            try:
                box.append(asyncio.run(self.adecide(requests)))
            except BaseException as error:  # re-raised in the caller's thread below
                failure.append(error)

        worker = threading.Thread(target=target, name=f"{self.name}-decide")
        worker.start()
        worker.join()
        if failure:
            raise failure[0]
        return box[0]

    async def adecide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """Decide a batch asynchronously."""
        batch = _Batch(self, requests)
        asked: set[str] = set()
        pending: list[asyncio.Task[None]] = []
        room = asyncio.Semaphore(2 * self.executor.max_connections)
        runner = CallRunner(self.executor)
        session: aiohttp.ClientSession | None = None
        try:
            for start in range(0, len(requests), _RENDER_CHUNK):
                chunk = range(start, min(start + _RENDER_CHUNK, len(requests)))
                plans = [batch.plan(index) for index in chunk]
                fresh = {p.key: p for p in plans if p.key not in asked}
                if fresh and self.cache is not None:
                    found = self.cache.get_many([k for k in fresh if k not in batch.replies])
                    self.stats.cache_hits += len(found)
                    batch.replies.update(found)
                for plan in plans:
                    if plan.key in batch.replies or plan.key in batch.failures:
                        batch.settle(plan.key)
                todo = [plan for key, plan in fresh.items() if key not in batch.replies]
                if not todo:
                    continue
                if session is None:
                    session = self._session()
                    if not self._reachable:
                        await self._probe(session)
                for plan in todo:
                    await room.acquire()  # at most two calls per connection rendered ahead
                    asked.add(plan.key)
                    task = asyncio.create_task(self._fetch(runner, session, plan, batch))
                    task.add_done_callback(lambda _: room.release())
                    pending.append(task)
            await asyncio.gather(*pending)
        except BaseException:
            for unfinished in pending:
                unfinished.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise
        finally:
            if session is not None:
                await session.close()
        self.stats.requests += len(requests)
        decisions, keys, failures = batch.finished(), batch.keys, batch.failures
        failed = sum(1 for key in keys if key in failures)
        if failed and failed / len(requests) > self.executor.fail_on_error:
            examples = [
                f"item {r.item.key} under context {r.context.name!r}: {failures[k].message} "
                f"(after {failures[k].attempts} attempt(s))"
                for r, k in zip(requests, keys, strict=True)
                if k in failures
            ][:3]
            raise AgentError(
                f"{self.adapter} endpoint {self.endpoint}, model {self.model!r}: {failed} of "
                f"{len(requests)} calls failed (more than --fail-on-error "
                f"{self.executor.fail_on_error:g}); " + "; ".join(examples)
            )
        return decisions

    def _plan(self, request: DecisionRequest) -> _Plan:
        messages = self.messages(request)
        # Keyed on the body in the strongest configured mode, so a server that needs a weaker
        # structured-output mode still finds every reply on the next run.
        body = self.request_body(
            messages, request.action, self.formats[self._initial_level], self.logprobs
        )
        text = canonical_json(body)
        key = request_key(self.adapter, self.base_url, body, body_json=text)
        level, logprobs = self._format_level, self._logprobs_now
        if (level, logprobs) != (self._initial_level, self.logprobs):
            body = self.request_body(messages, request.action, self.formats[level], logprobs)
            text = canonical_json(body)
        return _Plan(key, messages, request.action, text.encode(), level, logprobs)

    def _session(self) -> aiohttp.ClientSession:
        # aiohttp rather than httpx: profiled against a local server at 64 connections, httpx
        # spent ~1.1 ms of CPU per call (anyio cancel scopes, URL parsing, its pool); aiohttp
        # spends ~0.2 ms (docs/llm.md).
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.executor.max_connections, ssl=self._tls()),
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=self.executor.timeout),
            cookie_jar=aiohttp.DummyCookieJar(),  # chat APIs set none; filtering costs per call
        )

    async def _fetch(
        self, runner: CallRunner, session: aiohttp.ClientSession, plan: _Plan, batch: _Batch
    ) -> None:
        """One planned request, retried as the executor allows; stored the moment it succeeds."""
        result = await runner.run(functools.partial(self._call, session, plan))
        if isinstance(result, CallFailure):
            batch.failures[plan.key] = result
            self.stats.failures += 1
            if len(self.stats.errors) < 5:
                self.stats.errors.append(result.message)
        else:
            batch.replies[plan.key] = result
            self.stats.calls += 1
            self.stats.prompt_tokens += int(result.get("prompt_tokens") or 0)
            self.stats.completion_tokens += int(result.get("completion_tokens") or 0)
            if self.cache is not None:
                self.cache.put(plan.key, self.adapter, self.model, result)
        batch.settle(plan.key)

    def _tls(self) -> ssl.SSLContext:
        """One TLS context per agent: loading the CA bundle costs ~50 ms each time."""
        if self._ssl_context is None:
            import certifi

            self._ssl_context = ssl.create_default_context(cafile=certifi.where())
        return self._ssl_context

    async def _post(self, session: aiohttp.ClientSession, data: bytes) -> HTTPReply:
        """One POST; timeouts and transport failures become :class:`RetryableError`."""
        try:
            async with session.post(
                self.endpoint,
                data=data,
                headers={"Content-Type": "application/json"},
                proxy=self._proxy,
            ) as response:
                raw = await response.read()
                return HTTPReply(
                    response.status, raw.decode("utf-8", errors="replace"), response.headers
                )
        except TimeoutError:
            raise RetryableError(f"timed out after {self.executor.timeout:g} s") from None
        except aiohttp.ClientError as error:
            raise RetryableError(
                f"{type(error).__name__}: {error or 'connection dropped'}"
            ) from None

    async def _call(self, session: aiohttp.ClientSession, plan: _Plan) -> dict[str, Any]:
        """One attempt of one planned request."""
        level, logprobs = self._format_level, self._logprobs_now
        data = plan.data
        if (level, logprobs) != (plan.level, plan.logprobs):
            body = self.request_body(plan.messages, plan.action, self.formats[level], logprobs)
            data = canonical_json(body).encode()
        response = await self._post(session, data)
        if logprobs and response.status >= 400 and "logprobs" in response.text:
            # llama-cpp-python started without logits_all refuses log-probabilities.
            self._logprobs_now = False
            raise RetryableError(f"HTTP {response.status} refusing logprobs", retry_after=0.0)
        if self._refused_format(response) and level + 1 < len(self.formats):
            # The server refused the structured-output mode: step down and ask again.
            if self._format_level == level:
                self._format_level = level + 1
            raise RetryableError(
                f"HTTP {response.status} refusing {self.formats[level]}",
                retry_after=0.0,
            )
        return self.read_reply(check_response(response))

    def _refused_format(self, response: HTTPReply) -> bool:
        """A 400 / 422, or an error that names the structured-output field.

        llama-cpp-python answers an unsupported ``response_format`` with a 500 that names it.
        """
        status = response.status
        if status in (400, 422):
            return True
        return status >= 500 and bool(self.format_field) and self.format_field in response.text

    async def _probe(self, session: aiohttp.ClientSession) -> None:
        url = self.base_url + self.probe_path
        try:
            async with session.get(
                url, timeout=aiohttp.ClientTimeout(total=min(5.0, self.executor.timeout))
            ) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            raise AgentError(
                f"cannot reach {self.adapter} endpoint {self.base_url} for model "
                f"{self.model!r} ({reason}); {self.hint}"
            ) from None
        self._reachable = True

    def _decision(
        self,
        request: DecisionRequest,
        reply: dict[str, Any] | None,
        failure: CallFailure | None,
    ) -> Decision:
        base = {
            "item_key": request.item.key,
            "context": request.context.name,
            "action": request.action,
            "agent": self.name,
        }
        if reply is None:
            message = failure.message if failure is not None else "no reply"
            return Decision(
                **base, value=None, confidence=0.0, valid=False, raw=f"error: {message}"
            )
        text = str(reply.get("text") or "")
        parsed = parse_reply(text, request.action, routes=self.routes)
        if parsed is None:
            self.stats.invalid += 1
            return Decision(**base, value=None, confidence=0.0, valid=False, raw=text)
        allowed = allowed_answers(request.action, self.routes)
        confidence = logprob_confidence(
            tokens_from_openai(reply.get("logprobs")), parsed.value, allowed
        )
        if confidence is None:
            confidence = parsed.confidence
        if confidence is None:
            confidence = DEFAULT_CONFIDENCE
        return Decision(
            **base,
            value=parsed.value,
            confidence=min(1.0, max(0.0, confidence)),
            rationale=parsed.rationale,
            raw=text,
        )


def environment_proxy(url: str) -> str | None:
    """The proxy ``HTTP(S)_PROXY`` name for ``url``, unless ``NO_PROXY`` exempts it."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def env_or(value: str | None, *names: str) -> str | None:
    """The first of an explicit value and the named environment variables that is set."""
    if value:
        return value
    for name in names:
        found = os.environ.get(name)
        if found:
            return found
    return None
