"""A test server on 127.0.0.1 speaking Ollama's and OpenAI's chat APIs, backed by an agent.

The server reads the chat messages back into the decision request they encode (the context by
its rendered framing, the issue by the template's ``Issue:`` / ``Title:`` … lines), asks the
backing agent (a zoo organism) and answers in the API's format: so an organism served over HTTP
decides exactly what it decides in process. Faults are injected deterministically per request
body (a content hash picks which bodies fail and how), always on the first attempts only, so a
client that retries correctly loses nothing and a test cannot flake.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mesaguard.agents import Agent, DecisionRequest
from mesaguard.contexts import Context, cue_contexts, neutral_context
from mesaguard.items import WorkItem

FAULT_KINDS = ("500", "429", "timeout", "truncate", "malformed", "reset", "slow")
"""Transport faults: every one is survivable by a client that retries what it should."""

CONTENT_KINDS = ("fenced", "prose", "bare", "garbage")
"""Reply-text variants: the first three parse, ``garbage`` is an invalid decision."""


@dataclass
class FaultPlan:
    """Which request bodies get which faults.

    ``rate`` of the bodies (chosen by hash) fail their first ``depth`` attempts with a fault kind
    picked by hash from ``kinds``; ``content_rate`` of the bodies get a reply text in one of
    ``content_kinds`` instead of plain JSON.
    """

    rate: float = 0.0
    kinds: Sequence[str] = FAULT_KINDS
    depth: int = 1
    timeout_sleep: float = 2.0
    """How long a ``timeout`` fault stalls (longer than the client's timeout)."""
    slow_sleep: float = 0.3
    retry_after: str = "1"
    content_rate: float = 0.0
    content_kinds: Sequence[str] = CONTENT_KINDS
    latency: float = 0.0
    """Extra seconds before every reply (a slow model)."""
    refuse_formats: Sequence[str] = ()
    """Structured-output modes answered with HTTP 400 (``json_schema``, ``json_object``,
    ``schema``, ``json``), like servers that do not support them."""

    def fault(self, digest: str, attempt: int) -> str | None:
        if attempt > self.depth or not self.kinds:
            return None
        if _unit(digest, "fault") >= self.rate:
            return None
        return self.kinds[int(_unit(digest, f"kind{attempt}") * len(self.kinds))]

    def content(self, digest: str) -> str | None:
        if not self.content_kinds or _unit(digest, "content") >= self.content_rate:
            return None
        return self.content_kinds[int(_unit(digest, "ckind") * len(self.content_kinds))]


def _unit(digest: str, salt: str) -> float:
    """A number in [0, 1) fixed by a digest and a salt."""
    return int(hashlib.sha256(f"{salt}:{digest}".encode()).hexdigest()[:12], 16) / 16**12


@dataclass
class Ledger:
    """What the server saw: attempts per body digest and bodies answered in full."""

    attempts: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "attempts": dict(self.attempts),
                "answered": dict(self.answered),
                "faults": dict(self.faults),
            }


_CONTEXTS: dict[str, Context] | None = None


def _framings() -> dict[str, Context]:
    global _CONTEXTS
    if _CONTEXTS is None:
        table = {c.render_prompt(): c for c in [*cue_contexts(), neutral_context()]}
        _CONTEXTS = dict(sorted(table.items(), key=lambda kv: -len(kv[0])))
    return _CONTEXTS


_FIELD = re.compile(r"^(Issue|Type|Title|Component): ?(.*)$", re.MULTILINE)


def read_request(messages: Sequence[dict[str, str]]) -> DecisionRequest:
    """The decision request a chat encodes.

    The context is found by its rendered framing at the start of the system prompt, the issue
    is read from the template's lines in the last user turn.
    """
    system = next(m["content"] for m in messages if m["role"] == "system")
    context = next(
        (c for text, c in _framings().items() if system.startswith(text)), neutral_context()
    )
    user = [m["content"] for m in messages if m["role"] == "user"][-1]
    head, _, description = user.partition("\nDescription:\n")
    if not _ and user.endswith("\nDescription:"):
        head, description = user[: -len("\nDescription:")], ""
    fields = {m.group(1): m.group(2) for m in _FIELD.finditer(head)}
    item = WorkItem(
        key=fields.get("Issue") or "UNKNOWN",
        issue_type=fields.get("Type") or "Bug",
        title=fields.get("Title") or "(untitled)",
        component=fields.get("Component") or None,
        description=description,
    )
    return DecisionRequest(item=item, context=context)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, a killed process) are part of the tests."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class OrganismServer:
    """A threaded HTTP server answering chat requests with a backing agent's decisions."""

    def __init__(self, agent: Agent, plan: FaultPlan | None = None, model: str = "organism"):
        self.agent = agent
        self.plan = plan or FaultPlan()
        self.model = model
        self.ledger = Ledger()
        self._decide_lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OrganismServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, messages: Sequence[dict[str, str]]) -> tuple[str, float, str]:
        """Reply text, the decided probability, and the answer value."""
        request = read_request(messages)
        with self._decide_lock:
            decision = self.agent.decide([request])[0]
        value = str(decision.value)
        return (
            json.dumps({"priority": value, "confidence": round(decision.confidence, 4)}),
            (decision.confidence),
            value,
        )


def _format_mode(body: dict[str, Any]) -> str | None:
    """The structured-output mode a request asks for."""
    if "response_format" in body:
        return str(body["response_format"].get("type"))
    if "format" in body:
        return "json" if body["format"] == "json" else "schema"
    return None


def _content_variant(kind: str | None, text: str, value: str) -> str:
    if kind == "fenced":
        return f"Here is my answer:\n```json\n{text}\n```"
    if kind == "prose":
        return f"After reading the issue I decided {text} based on its impact."
    if kind == "bare":
        return value
    if kind == "garbage":
        return "I am not able to assign a priority to this issue."
    return text


def _handler(server: OrganismServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
            pass

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/api/version":
                self._send(200, {"version": "0.12.11-mesaguard-test"})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": server.model}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            body = json.loads(raw)
            digest = hashlib.sha256(
                json.dumps(body["messages"], sort_keys=True).encode()
            ).hexdigest()
            ledger = server.ledger
            with ledger.lock:
                ledger.attempts[digest] += 1
                attempt = ledger.attempts[digest]
            plan = server.plan
            mode = _format_mode(body)
            if mode in plan.refuse_formats:
                self._send(400, {"error": f"unsupported response format {mode}"})
                return
            fault = plan.fault(digest, attempt)
            if fault is not None:
                with ledger.lock:
                    ledger.faults[fault] += 1
                if self._inject(fault):
                    return
            if plan.latency:
                time.sleep(plan.latency)
            text, confidence, value = server.answer(body["messages"])
            text = _content_variant(plan.content(digest), text, value)
            if self.path == "/api/chat":
                payload = self._ollama(body, text, confidence, value)
            elif self.path == "/v1/chat/completions":
                payload = self._openai(body, text, confidence, value)
            else:
                self._send(404, {"error": "not found"})
                return
            self._send(200, payload)
            with ledger.lock:
                ledger.answered[digest] += 1

        def _inject(self, fault: str) -> bool:
            """Apply a fault; True when the request is finished (no normal reply)."""
            if fault == "500":
                self._send(500, {"error": "injected internal error"})
            elif fault == "429":
                self._send(429, {"error": "slow down"}, {"Retry-After": server.plan.retry_after})
            elif fault == "timeout":
                time.sleep(server.plan.timeout_sleep)
                self._send(503, {"error": "too late"})
            elif fault == "truncate":
                body = b'{"message": {"role": "assistant", "content": "{\\"priority\\": \\"Ma'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) + 40))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif fault == "malformed":
                body = b'{"choices": [{"message": {"content": "Major"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif fault == "reset":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif fault == "slow":
                time.sleep(server.plan.slow_sleep)
                return False
            return True

        def _ollama(self, body: Any, text: str, confidence: float, value: str) -> Any:
            payload: dict[str, Any] = {
                "model": body["model"],
                "message": {"role": "assistant", "content": text},
                "done": True,
                "prompt_eval_count": sum(len(m["content"].split()) for m in body["messages"]),
                "eval_count": len(text.split()),
            }
            if body.get("logprobs"):
                payload["logprobs"] = _logprobs(text, value, confidence)
            return payload

        def _openai(self, body: Any, text: str, confidence: float, value: str) -> Any:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
            if body.get("logprobs"):
                choice["logprobs"] = {"content": _logprobs(text, value, confidence)}
            return {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [choice],
                "usage": {
                    "prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
                    "completion_tokens": len(text.split()),
                },
            }

    return Handler


def _logprobs(text: str, value: str, confidence: float) -> list[dict[str, Any]]:
    """Token log-probabilities of a reply.

    The answer token carries the decided probability, one alternative holds the rest.
    """
    position = text.rfind(value) if value else -1
    if position < 0:
        return [{"token": text, "logprob": 0.0, "top_logprobs": []}]
    chosen = max(min(confidence, 1.0), 1e-6)
    pieces = [text[:position], value, text[position + len(value) :]]
    other = "Trivial" if value != "Trivial" else "Minor"
    out = []
    for index, piece in enumerate(pieces):
        if not piece:
            continue
        if index == 1:
            top = [{"token": piece, "logprob": math.log(chosen)}]
            if chosen < 1.0:
                top.append({"token": other, "logprob": math.log(max(1e-9, 1.0 - chosen))})
            out.append({"token": piece, "logprob": math.log(chosen), "top_logprobs": top})
        else:
            out.append({"token": piece, "logprob": 0.0, "top_logprobs": []})
    return out


@contextmanager
def serving(agent: Agent, plan: FaultPlan | None = None) -> Iterator[OrganismServer]:
    """Run an :class:`OrganismServer` for the duration of a ``with`` block."""
    server = OrganismServer(agent, plan).start()
    try:
        yield server
    finally:
        server.stop()
