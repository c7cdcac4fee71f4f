"""Activation capture: hidden states of any :class:`~mesaguard.agents.ActivationAgent`, batched."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from .._errors import AgentError, ConfigError
from ..agents import ActivationAgent, Agent, DecisionRequest

__all__ = ["Activations", "capture_activations", "require_activations"]

Activations = dict[str, npt.NDArray[np.float32]]
"""Activations by hook point, each of shape ``(n_requests, width)``."""

Progress = Callable[[int, int], None]
"""``progress(requests_done, requests_total)``."""


def require_activations(agent: Agent | ActivationAgent) -> ActivationAgent:
    """The agent as an :class:`ActivationAgent`, or a clear error when it exposes no states."""
    if not isinstance(agent, ActivationAgent):
        raise ConfigError(
            f"agent {getattr(agent, 'name', agent)!r} does not expose activations "
            "(white-box probes need an ActivationAgent: hook_points() and activations())"
        )
    return agent


def capture_activations(
    agent: Agent | ActivationAgent,
    requests: Sequence[DecisionRequest],
    hook_points: Sequence[str] | None = None,
    *,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> Activations:
    """Activations of ``requests`` at ``hook_points`` (all when None), in request order.

    Raises:
        ConfigError: the agent is not an ActivationAgent, or a hook point is unknown.
        AgentError: the agent returned arrays of the wrong shape.

    """
    model = require_activations(agent)
    known = model.hook_points()
    wanted = list(known if hook_points is None else hook_points)
    unknown = [h for h in wanted if h not in known]
    if unknown:
        raise ConfigError(
            f"agent {model.name!r} has no hook point {unknown[0]!r} (known: {', '.join(known)})"
        )
    parts: dict[str, list[npt.NDArray[np.float32]]] = {h: [] for h in wanted}
    for start in range(0, len(requests), batch_size):
        batch = list(requests[start : start + batch_size])
        captured = model.activations(batch, wanted)
        for hook in wanted:
            array = np.asarray(captured.get(hook), dtype=np.float32)
            if array.ndim != 2 or array.shape[0] != len(batch):
                raise AgentError(
                    f"agent {model.name!r} returned activations of shape {array.shape} at "
                    f"{hook!r} for {len(batch)} requests (expected (n, width))"
                )
            parts[hook].append(array)
        if progress is not None:
            progress(min(start + batch_size, len(requests)), len(requests))
    return {
        hook: np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)
        for hook, chunks in parts.items()
    }
