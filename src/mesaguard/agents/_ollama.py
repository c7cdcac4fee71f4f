"""``ollama/MODEL``: Ollama's native chat API (``/api/chat``).

The base URL comes from ``base_url`` / ``--base-url`` or ``OLLAMA_HOST`` (``host:port`` or a
URL, as Ollama itself reads it), default ``http://127.0.0.1:11434``. Structured output uses
Ollama's ``format`` field with the answer's JSON schema (plain ``"json"`` for servers that refuse
a schema); ``seed``, ``temperature``, ``num_ctx`` and ``num_predict`` go in ``options``.
Log-probabilities are asked for (Ollama 0.12.11+ returns them) and give the confidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..items import ActionType
from ._llm_executor import ExecutorOptions, RetryableError
from ._llm_http import GenerationOptions, HTTPChatAgent, env_or, open_cache, templates_for
from ._llm_prompt import DESCRIPTION_CHARS, ChatMessage, PromptTemplate, answer_schema
from ._protocol import Agent

__all__ = ["DEFAULT_OLLAMA_HOST", "OllamaAgent", "make_ollama_agent", "ollama_base_url"]

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


def ollama_base_url(host: str | None) -> str:
    """A base URL from an ``OLLAMA_HOST``-style value (scheme and port optional)."""
    if not host:
        return DEFAULT_OLLAMA_HOST
    text = host.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.port is None and parts.hostname is not None:
        netloc = parts.netloc + ":11434"
        text = f"{parts.scheme}://{netloc}{parts.path}"
    return text


class OllamaAgent(HTTPChatAgent):
    """A triage agent served by Ollama."""

    adapter = "ollama"
    chat_path = "/api/chat"
    probe_path = "/api/version"
    hint = "is Ollama running (`ollama serve`)? Pass --base-url or set OLLAMA_HOST"
    formats = ("schema", "json", "none")

    def request_body(
        self, messages: list[ChatMessage], action: ActionType, structured: str, logprobs: bool
    ) -> dict[str, Any]:
        """An ``/api/chat`` body, not streamed, with the answer schema as ``format``."""
        gen = self.generation
        options: dict[str, Any] = {
            "seed": gen.seed,
            "temperature": gen.temperature,
            "num_predict": gen.max_tokens,
        }
        if gen.num_ctx is not None:
            options["num_ctx"] = gen.num_ctx
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": False,
            "options": options,
        }
        if structured == "schema":
            body["format"] = answer_schema(action, self.routes)
        elif structured == "json":
            body["format"] = "json"
        if logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 5
        return body

    def read_reply(self, data: Any) -> dict[str, Any]:
        """Text, log-probabilities and token counts of a non-streamed chat reply."""
        try:
            text = data["message"].get("content") or ""
        except (KeyError, TypeError, AttributeError):
            raise RetryableError(f"reply without message.content: {str(data)[:200]}") from None
        return {
            "text": text,
            "logprobs": data.get("logprobs"),
            "prompt_tokens": data.get("prompt_eval_count"),
            "completion_tokens": data.get("eval_count"),
        }


def make_ollama_agent(
    target: str,
    *,
    base_url: str | None = None,
    cache: str | Path | bool | None = None,
    cache_dir: Path | None = None,
    template: str | Path | PromptTemplate | None = None,
    few_shot: bool = False,
    routes: tuple[str, ...] | list[str] = (),
    temperature: float = 0.0,
    seed: int = 42,
    max_tokens: int = 64,
    num_ctx: int | None = None,
    structured: str | None = None,
    logprobs: bool = True,
    max_connections: int = 16,
    rate_limit: float | None = None,
    timeout: float = 120.0,
    retries: int = 4,
    fail_on_error: float = 0.0,
    description_chars: int = DESCRIPTION_CHARS,
    **_: Any,
) -> Agent:
    """``ollama/MODEL``: see :class:`OllamaAgent`; unknown options are ignored."""
    return OllamaAgent(
        target,
        base_url=ollama_base_url(env_or(base_url, "OLLAMA_HOST")),
        executor=ExecutorOptions(
            max_connections=max_connections,
            rate_limit=rate_limit,
            timeout=timeout,
            retries=retries,
            fail_on_error=fail_on_error,
        ),
        templates=templates_for(template, few_shot),
        generation=GenerationOptions(
            temperature=temperature, seed=seed, max_tokens=max_tokens, num_ctx=num_ctx
        ),
        cache=open_cache(cache, cache_dir),
        routes=routes,
        structured=structured,
        logprobs=logprobs,
        description_chars=description_chars,
    )
