import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from mesaguard import AgentError, ConfigError
from mesaguard.agents import (
    Agent,
    CallableAgent,
    Decision,
    DecisionRequest,
    _protocol,
    agent_adapter,
    as_async,
    load_plugins,
    registered_adapters,
    resolve_agent,
)
from mesaguard.contexts import neutral_context
from mesaguard.items import ActionType, Priority, WorkItem

ITEM = WorkItem(key="P-1", title="Cluster down", priority="Blocker")


def request(action: ActionType = ActionType.SET_PRIORITY) -> DecisionRequest:
    return DecisionRequest(item=ITEM, context=neutral_context(), action=action)


def always_minor(item: WorkItem, context: object) -> Priority:
    return Priority.MINOR


def test_callable_agent_accepts_values_pairs_and_decisions() -> None:
    answers = iter(
        [
            Priority.MAJOR,
            ("Critical", 0.4),
            5,
            Decision(
                item_key="P-1",
                context="neutral",
                action=ActionType.SET_PRIORITY,
                value="Trivial",
                confidence=0.9,
            ),
        ]
    )
    agent = CallableAgent(lambda item, context: next(answers), name="scripted")
    decisions = agent.decide([request()] * 4)
    assert [d.priority for d in decisions] == [
        Priority.MAJOR,
        Priority.CRITICAL,
        Priority.BLOCKER,
        Priority.TRIVIAL,
    ]
    assert [d.confidence for d in decisions][:2] == [1.0, 0.4]
    assert decisions[0].agent == "scripted" and isinstance(agent, Agent)


def test_story_points_are_numbers() -> None:
    agent = CallableAgent(lambda item, context: 8)
    decision = agent.decide([request(ActionType.SET_STORY_POINTS)])[0]
    assert decision.value == 8.0 and decision.priority is None


def test_a_failing_function_names_agent_item_and_context() -> None:
    def broken(item: WorkItem, context: object) -> Priority:
        raise RuntimeError("model offline")

    with pytest.raises(AgentError, match=r"'broken'.*P-1.*'neutral'.*model offline"):
        CallableAgent(broken, name="broken").decide([request()])
    with pytest.raises(AgentError, match="expected a Decision"):
        CallableAgent(lambda i, c: object()).decide([request()])


def test_module_attribute_specs_resolve_to_callables() -> None:
    agent = resolve_agent(f"{__name__}:always_minor")
    assert agent.decide([request()])[0].priority is Priority.MINOR


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nowhere/model", "cannot resolve agent spec"),
        ("not_a_module_xyz:fn", "cannot import module"),
        (f"{__name__}:missing", "has no attribute"),
        (f"{__name__}:ITEM", "not a callable"),
    ],
)
def test_bad_specs_explain_themselves(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_agent(spec)


def test_async_view_of_a_sync_agent_gives_the_same_decisions() -> None:
    import asyncio

    agent = CallableAgent(always_minor)
    decisions = asyncio.run(as_async(agent).adecide([request()]))
    assert decisions == agent.decide([request()])


def test_registering_a_prefix_twice_is_refused() -> None:
    @agent_adapter("test-dup")
    def first(target: str) -> Agent:
        return CallableAgent(always_minor)

    with pytest.raises(ConfigError, match="already registered"):
        agent_adapter("test-dup")(lambda target: CallableAgent(always_minor))


def test_entry_point_plugins_register_adapters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third-party distribution on sys.path registers `echo/…` through the entry-point group."""
    (tmp_path / "mesaguard_echo_plugin.py").write_text(
        "from mesaguard.agents import CallableAgent, agent_adapter\n"
        "@agent_adapter('echo')\n"
        "def echo(target, **options):\n"
        "    return CallableAgent(lambda item, context: target, name='echo/' + target)\n"
    )
    dist = tmp_path / "mesaguard_echo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mesaguard-echo-plugin\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text("[mesaguard]\necho = mesaguard_echo_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_protocol, "_plugins_loaded", False)
    load_plugins()
    try:
        assert "echo" in registered_adapters()
        agent = resolve_agent("echo/Trivial")
        assert agent.decide([request()])[0].priority is Priority.TRIVIAL
    finally:
        _protocol._ADAPTERS.pop("echo", None)
        sys.modules.pop("mesaguard_echo_plugin", None)


def test_own_organisms_adapter_is_found_through_the_entry_point() -> None:
    assert "zoo" in registered_adapters()


class _Batch:
    name = "batch"

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        return []


BATCH = _Batch()


def test_objects_with_decide_are_used_as_they_are() -> None:
    assert resolve_agent(f"{__name__}:BATCH") is BATCH
