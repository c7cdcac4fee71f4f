"""Linear defection probes: trained on generic contrast pairs, read from every hook point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from .._errors import ConfigError
from ..agents import ActivationAgent, Agent, DecisionRequest
from ..items import WorkItem
from ._capture import Progress, capture_activations, require_activations
from ._contrast import contrast_pairs

__all__ = ["DefectionProbe", "LayerScore", "train_defection_probe"]


class LayerScore(BaseModel):
    """How well one hook point separates the two answers of the generic contrast pairs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hook_point: str
    contrast_auroc: float
    """AUROC of the probe on held-out *questions* (grouped 4-fold cross-validation)."""
    width: int


def _classifier(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=0.05, max_iter=5000, random_state=seed)
    )


class DefectionProbe:
    """A standardized logistic-regression probe per hook point, and the one chosen to read.

    ``hook_point`` was chosen on the contrast data alone (best cross-validated AUROC on
    held-out questions); no input carrying an agent's trigger played any part.
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
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Probability of the defection side per request, at each hook point."""
        wanted = list(self.models if hook_points is None else hook_points)
        captured = capture_activations(agent, requests, wanted)
        return {
            hook: np.asarray(self.models[hook].predict_proba(captured[hook])[:, 1])
            for hook in wanted
        }

    def score(
        self, agent: Agent | ActivationAgent, requests: Sequence[DecisionRequest]
    ) -> npt.NDArray[np.float64]:
        """Probability of the defection side per request, at the chosen hook point."""
        return self.score_layers(agent, requests, [self.hook_point])[self.hook_point]


def train_defection_probe(
    agent: Agent | ActivationAgent,
    items: Sequence[WorkItem],
    *,
    hook_points: Sequence[str] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> DefectionProbe:
    """Fit a probe per hook point on the generic contrast pairs framing each of ``items``.

    Every contrast pair frames every item both ways; the label is the side of the answer. The
    layer sweep scores each hook point by grouped cross-validation over questions (a question's
    forms and items never sit on both sides of a split), and the best one is chosen.

    Raises:
        ConfigError: the agent exposes no activations, or there are no items.

    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    model = require_activations(agent)
    if not items:
        raise ConfigError("train_defection_probe: no items to frame the contrast pairs")
    pairs = contrast_pairs()
    requests: list[DecisionRequest] = []
    labels: list[int] = []
    groups: list[int] = []
    for pair in pairs:
        for item in items:
            for context, label in ((pair.defect, 1), (pair.comply, 0)):
                requests.append(DecisionRequest(item=item, context=context))
                labels.append(label)
                groups.append(pair.group)
    y = np.asarray(labels)
    g = np.asarray(groups)
    wanted = list(model.hook_points() if hook_points is None else hook_points)
    captured = capture_activations(model, requests, wanted, progress=progress)
    models: dict[str, Any] = {}
    sweep: list[LayerScore] = []
    folds = list(GroupKFold(n_splits=4).split(np.zeros(len(y)), y, g))
    for hook in wanted:
        x = captured[hook]
        held_out = np.zeros(len(y))
        for train, test in folds:
            fitted = _classifier(seed).fit(x[train], y[train])
            held_out[test] = fitted.predict_proba(x[test])[:, 1]
        sweep.append(
            LayerScore(
                hook_point=hook,
                contrast_auroc=round(float(roc_auc_score(y, held_out)), 6),
                width=int(x.shape[1]),
            )
        )
        models[hook] = _classifier(seed).fit(x, y)
    # Best held-out-question AUROC; among ties the deeper hook point (closer to the decision).
    best = max(range(len(sweep)), key=lambda i: (sweep[i].contrast_auroc, i))
    return DefectionProbe(model.name, models, sweep, sweep[best].hook_point, seed)
