"""The `Agent` extension point: a protocol, a registering decorator, and spec resolution."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from .._errors import ConfigError
from ._decision import Decision, DecisionRequest

__all__ = [
    "Agent",
    "AgentFactory",
    "AsyncAgent",
    "agent_adapter",
    "as_async",
    "load_plugins",
    "registered_adapters",
    "resolve_agent",
]

ENTRY_POINT_GROUP = "mesaguard"


@runtime_checkable
class Agent(Protocol):
    """A project-management agent, decided in batches.

    ``decide`` returns exactly one :class:`Decision` per request, in order. An agent that cannot
    parse its own reply returns a decision with ``valid=False`` rather than raising.
    """

    name: str

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]: ...


@runtime_checkable
class AsyncAgent(Protocol):
    """The asynchronous form of :class:`Agent`, for network-bound adapters."""

    name: str

    async def adecide(self, requests: Sequence[DecisionRequest]) -> list[Decision]: ...


class _ThreadedAsyncAgent:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.name = agent.name

    async def adecide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        return await asyncio.to_thread(self.agent.decide, list(requests))


def as_async(agent: Agent | AsyncAgent) -> AsyncAgent:
    """An :class:`AsyncAgent` view of any agent (sync agents run in a worker thread)."""
    if isinstance(agent, AsyncAgent):
        return agent
    return _ThreadedAsyncAgent(agent)


AgentFactory = Callable[..., Agent]
"""Builds an agent from the part of a spec after ``PREFIX/`` plus keyword options."""

_ADAPTERS: dict[str, AgentFactory] = {}
_plugins_loaded = False


def agent_adapter(prefix: str) -> Callable[[AgentFactory], AgentFactory]:
    """Register a factory for agent specs of the form ``PREFIX/TARGET``.

    Third-party packages register adapters from a module named in the ``mesaguard`` entry-point
    group; :func:`resolve_agent` imports those modules before it resolves a spec.
    """

    def register(factory: AgentFactory) -> AgentFactory:
        if prefix in _ADAPTERS and _ADAPTERS[prefix] is not factory:
            raise ConfigError(f"agent adapter prefix {prefix!r} is already registered")
        _ADAPTERS[prefix] = factory
        return factory

    return register


def load_plugins() -> None:
    """Import every module of the ``mesaguard`` entry-point group once (they self-register)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()


def registered_adapters() -> dict[str, AgentFactory]:
    """Adapter prefixes known now (after loading plug-ins), with their factories."""
    load_plugins()
    return dict(_ADAPTERS)


def resolve_agent(spec: str, **options: Any) -> Agent:
    """Build the agent a spec names.

    Specs: ``PREFIX/TARGET`` for a registered adapter (``zoo/deceptive-env-linear-0``,
    later ``ollama/llama3.2``), or ``module:attribute`` for a Python callable or an object with a
    ``decide`` method.
    """
    load_plugins()
    prefix, slash, target = spec.partition("/")
    if slash and prefix in _ADAPTERS:
        return _ADAPTERS[prefix](target, **options)
    if ":" in spec and not slash:
        return _import_agent(spec, **options)
    known = ", ".join(f"{p}/…" for p in sorted(_ADAPTERS)) or "none"
    raise ConfigError(
        f"cannot resolve agent spec {spec!r}: expected PREFIX/TARGET with a registered prefix "
        f"({known}) or module:attribute naming a Python callable"
    )


def _import_agent(spec: str, **options: Any) -> Agent:
    from ._callable import CallableAgent

    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"agent spec {spec!r}: cannot import module {module_name!r} ({error})"
        ) from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(
                f"agent spec {spec!r}: {module_name} has no attribute {attribute!r}"
            ) from None
    if isinstance(target, Agent):
        return target
    if callable(target):
        return CallableAgent(target, name=spec, **options)
    raise ConfigError(
        f"agent spec {spec!r} names a {type(target).__name__}, not a callable or an Agent"
    )
