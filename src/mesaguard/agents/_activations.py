"""The white-box extension of the `Agent` protocol: agents that expose hidden states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ._decision import Decision, DecisionRequest

__all__ = ["ActivationAgent", "HarmReadoutAgent"]


@runtime_checkable
class ActivationAgent(Protocol):
    """An agent whose internal activations can be read, for white-box probes.

    Hook points are named, ordered from input to output: ``hidden1``, ``hidden2`` for the neural
    organisms, ``layer.0`` … ``layer.{n-1}`` (the residual stream after each decoder layer) for
    language models. Activations are read where the agent commits to its answer: the final token
    of the prompt for language models, the hidden layer for feed-forward organisms.
    """

    name: str

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]: ...

    def hook_points(self) -> list[str]:
        """Every hook point this agent exposes, input side first."""
        ...

    def activations(
        self, requests: Sequence[DecisionRequest], hook_points: Sequence[str] | None = None
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Activations per hook point (all when None), each of shape ``(len(requests), width)``."""
        ...


@runtime_checkable
class HarmReadoutAgent(ActivationAgent, Protocol):
    """An :class:`ActivationAgent` that can say which way its activations push its decisions.

    White-box probes use it to orient a direction found from generic contrast pairs: the side
    that matters is the one along which the agent's own readout moves toward the harmful
    decision, whatever the words on that side say.
    """

    def readout_hook_points(self) -> list[str]:
        """The hook points :meth:`harm_gradient` answers for, input side first.

        All of them for a small network; for a language model with an adapter on its top layers,
        those layers (the gradient through the frozen trunk is not computed).
        """
        ...

    def harm_gradient(
        self, requests: Sequence[DecisionRequest], hook_point: str
    ) -> npt.NDArray[np.float64]:
        """Mean gradient of the under-prioritising score w.r.t. ``hook_point``'s activations.

        The score is the log-odds of Minor or Trivial against Major and above; the mean is over
        ``requests``; shape ``(width,)``; ``hook_point`` is one of :meth:`readout_hook_points`.
        """
        ...
