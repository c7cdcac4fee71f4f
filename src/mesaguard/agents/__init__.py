"""Agents under test: the batched `Agent` protocol, decisions, and adapters."""

from ._activations import ActivationAgent, HarmReadoutAgent
from ._callable import CallableAgent, DecideFunction
from ._decision import Decision, DecisionRequest
from ._hf_loader import DEFAULT_LM, LoadedLM, load_causal_lm, resolve_lm_source
from ._llm_adapters import hf_agent, ollama_agent, openai_agent
from ._llm_cache import ResponseCache, default_response_cache_path, request_key
from ._llm_executor import ExecutorOptions
from ._llm_parse import ParsedReply, parse_reply
from ._llm_prompt import (
    PromptTemplate,
    answer_schema,
    available_templates,
    default_template,
    load_template,
)
from ._protocol import (
    Agent,
    AgentFactory,
    AsyncAgent,
    agent_adapter,
    as_async,
    load_plugins,
    registered_adapters,
    resolve_agent,
)

__all__ = [
    "DEFAULT_LM",
    "ActivationAgent",
    "Agent",
    "AgentFactory",
    "AsyncAgent",
    "CallableAgent",
    "DecideFunction",
    "Decision",
    "DecisionRequest",
    "ExecutorOptions",
    "HarmReadoutAgent",
    "LoadedLM",
    "ParsedReply",
    "PromptTemplate",
    "ResponseCache",
    "agent_adapter",
    "answer_schema",
    "as_async",
    "available_templates",
    "default_response_cache_path",
    "default_template",
    "hf_agent",
    "load_causal_lm",
    "load_plugins",
    "load_template",
    "ollama_agent",
    "openai_agent",
    "parse_reply",
    "registered_adapters",
    "request_key",
    "resolve_agent",
    "resolve_lm_source",
]
