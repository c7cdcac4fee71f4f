"""Registration of the LLM adapters ``ollama/``, ``openai/`` and ``hf/``.

The factories import their implementation when called, so ``import mesaguard.agents`` needs
neither ``aiohttp`` (the ``llm`` extra) nor ``torch`` / ``transformers`` (the ``hf`` extra).
Options reach them as keyword arguments of :func:`~mesaguard.agents.resolve_agent`; options an
adapter does not know are ignored, so one set of CLI flags serves every adapter.
"""

from __future__ import annotations

from typing import Any

from .._errors import ConfigError
from ._protocol import Agent, agent_adapter

__all__ = ["hf_agent", "ollama_agent", "openai_agent"]


def _missing(extra: str, error: ImportError) -> ConfigError:
    return ConfigError(
        f"this adapter needs the {extra!r} extra ({error.name} is not installed): "
        f"pip install 'mesaguard[{extra}]'"
    )


@agent_adapter("ollama")
def ollama_agent(target: str, **options: Any) -> Agent:
    """``ollama/MODEL``: Ollama's ``/api/chat`` (options: base_url, cache, max_connections …)."""
    try:
        from ._ollama import make_ollama_agent
    except ImportError as error:
        raise _missing("llm", error) from None
    return make_ollama_agent(target, **options)


@agent_adapter("openai")
def openai_agent(target: str, **options: Any) -> Agent:
    """``openai/MODEL``: an OpenAI-compatible ``/v1/chat/completions`` server."""
    try:
        from ._openai import make_openai_agent
    except ImportError as error:
        raise _missing("llm", error) from None
    return make_openai_agent(target, **options)


@agent_adapter("hf")
def hf_agent(target: str, **options: Any) -> Agent:
    """``hf/PATH_OR_PACKAGE``: a local transformers causal LM, in-process, white-box readable."""
    try:
        import torch  # noqa: F401  (checked here so the error names the extra)
        import transformers  # noqa: F401
    except ImportError as error:
        raise _missing("hf", error) from None
    from ._hf import make_hf_agent

    return make_hf_agent(target, **options)
