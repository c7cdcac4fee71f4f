"""Agents under test: the batched `Agent` protocol, decisions, and adapters."""

from ._callable import CallableAgent, DecideFunction
from ._decision import Decision, DecisionRequest
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
    "Agent",
    "AgentFactory",
    "AsyncAgent",
    "CallableAgent",
    "DecideFunction",
    "Decision",
    "DecisionRequest",
    "agent_adapter",
    "as_async",
    "load_plugins",
    "registered_adapters",
    "resolve_agent",
]
