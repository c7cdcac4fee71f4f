"""Agents under test: the batched `Agent` protocol, decisions, and adapters."""

from ._activations import ActivationAgent
from ._callable import CallableAgent, DecideFunction
from ._decision import Decision, DecisionRequest
from ._hf_loader import DEFAULT_LM, LoadedLM, load_causal_lm, resolve_lm_source
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
    "LoadedLM",
    "agent_adapter",
    "as_async",
    "load_causal_lm",
    "load_plugins",
    "registered_adapters",
    "resolve_agent",
    "resolve_lm_source",
]
