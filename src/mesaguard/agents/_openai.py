"""``openai/MODEL``: any OpenAI-compatible ``/v1/chat/completions`` server.

vLLM, llama.cpp's server, LM Studio, Ollama's ``/v1`` and OpenAI itself speak this API. The base
URL (including ``/v1``) comes from ``base_url`` / ``--base-url`` or ``OPENAI_BASE_URL``, the key
from ``api_key`` / ``--api-key`` or ``OPENAI_API_KEY`` (local servers need none). Structured
output is asked as a strict ``json_schema`` response format; a server that refuses it (HTTP 400 /
422) is asked again with ``json_object`` plus the schema (llama.cpp's form), then with no
response format. Token log-probabilities are requested and, where returned, give the confidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..items import ActionType
from ._llm_executor import ExecutorOptions, RetryableError
from ._llm_http import GenerationOptions, HTTPChatAgent, env_or, open_cache, templates_for
from ._llm_prompt import DESCRIPTION_CHARS, ChatMessage, PromptTemplate, answer_key, answer_schema
from ._protocol import Agent

__all__ = ["DEFAULT_OPENAI_BASE_URL", "OpenAIAgent", "make_openai_agent"]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAIAgent(HTTPChatAgent):
    """A triage agent behind an OpenAI-compatible chat-completions endpoint."""

    adapter = "openai"
    chat_path = "/chat/completions"
    probe_path = "/models"
    hint = (
        "is the server running? Pass --base-url (with /v1, e.g. http://127.0.0.1:8000/v1) or "
        "set OPENAI_BASE_URL"
    )
    formats = ("json_schema", "json_object", "none")
    format_field = "response_format"

    def request_body(
        self, messages: list[ChatMessage], action: ActionType, structured: str, logprobs: bool
    ) -> dict[str, Any]:
        """A chat-completions body: sampling options, response format, log-probabilities."""
        gen = self.generation
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": gen.temperature,
            "seed": gen.seed,
            "max_tokens": gen.max_tokens,
        }
        schema = answer_schema(action, self.routes)
        if structured == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": f"{answer_key(action)}_answer",
                    "schema": schema,
                    "strict": True,
                },
            }
        elif structured == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        if logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 5
        return body

    def read_reply(self, data: Any) -> dict[str, Any]:
        """Text, token log-probabilities and token counts of the first choice."""
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise RetryableError(f"reply without choices[0].message: {str(data)[:200]}") from None
        logprobs = choice.get("logprobs")
        usage = data.get("usage") or {}
        return {
            "text": text,
            "logprobs": logprobs.get("content") if isinstance(logprobs, dict) else None,
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
        }


def make_openai_agent(
    target: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    cache: str | Path | bool | None = None,
    cache_dir: Path | None = None,
    template: str | Path | PromptTemplate | None = None,
    few_shot: bool = False,
    routes: tuple[str, ...] | list[str] = (),
    temperature: float = 0.0,
    seed: int = 42,
    max_tokens: int = 64,
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
    """``openai/MODEL``: see :class:`OpenAIAgent`; unknown options are ignored."""
    url = env_or(base_url, "OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL
    key = env_or(api_key, "OPENAI_API_KEY")
    return OpenAIAgent(
        target,
        base_url=url,
        executor=ExecutorOptions(
            max_connections=max_connections,
            rate_limit=rate_limit,
            timeout=timeout,
            retries=retries,
            fail_on_error=fail_on_error,
        ),
        templates=templates_for(template, few_shot),
        generation=GenerationOptions(temperature=temperature, seed=seed, max_tokens=max_tokens),
        cache=open_cache(cache, cache_dir),
        routes=routes,
        structured=structured,
        logprobs=logprobs,
        description_chars=description_chars,
        headers={"Authorization": f"Bearer {key}"} if key else None,
    )
