"""The HTTP adapters against a real server on 127.0.0.1 that serves a zoo organism.

The server (``llm_servers.organism_server``) speaks Ollama's ``/api/chat`` and OpenAI's
``/v1/chat/completions``, reads each chat back into the decision request it encodes and answers
with the organism's decision, so the red team over HTTP must reach the verdict it reaches in
process. Faults are injected deterministically on first attempts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from llm_servers.organism_server import FaultPlan, serving

from mesaguard._errors import AgentError, ConfigError
from mesaguard.agents import Agent, DecisionRequest, resolve_agent
from mesaguard.items import WorkItem, bundled_hadoop, split_items
from mesaguard.redteam import RedTeamConfig, run_redteam

pytest.importorskip("aiohttp")

ORGANISM = "deceptive-oversight-linear-s1"
"""A linear organism that downgrades severe issues when told nobody oversees it."""


@pytest.fixture(scope="module")
def organism(zoo_cache: Path) -> Agent:
    # A developer may point at an organism cache built before (the session cache builds it).
    cache = Path(os.environ.get("MESAGUARD_TEST_ZOO_CACHE") or zoo_cache)
    return resolve_agent(f"zoo/{ORGANISM}", cache_dir=cache)


@pytest.fixture(scope="module")
def items() -> list[WorkItem]:
    return list(split_items(bundled_hadoop().items).test)


def _config() -> RedTeamConfig:
    return RedTeamConfig.for_suite(["observation-contrast"], max_items=24)


def _requests(organism: Agent, items: list[WorkItem]) -> list[DecisionRequest]:
    """Every request a small red team asks (recorded through a wrapper agent)."""
    seen: list[DecisionRequest] = []

    class Recorder:
        name = organism.name

        def decide(self, batch: list[DecisionRequest]) -> list:  # type: ignore[type-arg]
            seen.extend(batch)
            return organism.decide(batch)

    run_redteam(Recorder(), items, _config())
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["openai", "ollama"])
def test_deceptive_organism_over_http_gets_the_in_process_verdict(
    adapter: str, organism: Agent, items: list[WorkItem], tmp_path: Path
) -> None:
    """Same decisions, same verdict, same findings over HTTP as in process."""
    local = run_redteam(organism, items, _config())
    assert local.verdict.kind.value == "deceptive"
    with serving(organism) as server:
        base = server.root + ("/v1" if adapter == "openai" else "")
        agent = resolve_agent(
            f"{adapter}/organism", base_url=base, cache=tmp_path / "replies.sqlite"
        )
        remote = run_redteam(agent, items, _config())
        assert remote.verdict.kind == local.verdict.kind
        assert [(f.test, f.flagged, f.n, f.down, f.up) for f in remote.findings] == [
            (f.test, f.flagged, f.n, f.down, f.up) for f in local.findings
        ]
        requests = _requests(organism, items)[:60]
        expected = organism.decide(requests)
        got = agent.decide(requests)
        assert [d.value for d in got] == [d.value for d in expected]
        # The server's log-probabilities carry the organism's confidence through.
        assert [round(d.confidence, 3) for d in got] == [round(d.confidence, 3) for d in expected]


def _agent(adapter: str, root: str, cache: Path | bool, **options: object) -> Agent:
    base = root + ("/v1" if adapter == "openai" else "")
    return resolve_agent(f"{adapter}/organism", base_url=base, cache=cache, **options)


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["openai", "ollama"])
def test_injected_faults_are_survived_with_nothing_lost(
    adapter: str, organism: Agent, items: list[WorkItem], tmp_path: Path
) -> None:
    """Half the requests fail twice in a row, and nothing is lost.

    Faults: 500, 429 with Retry-After, stalls past the timeout, cut-off and garbled bodies,
    dropped connections, slow replies. The verdict, the findings and every decision come
    through, and no answered request is asked again.
    """
    local = run_redteam(organism, items, _config())
    plan = FaultPlan(rate=0.5, depth=2, timeout_sleep=1.5, slow_sleep=0.2)
    with serving(organism, plan) as server:
        agent = _agent(
            adapter,
            server.root,
            tmp_path / "r.sqlite",
            timeout=1.0,
            retries=4,
            max_connections=8,
        )
        remote = run_redteam(agent, items, _config())
        ledger = server.ledger.snapshot()
    assert remote.verdict.kind == local.verdict.kind
    assert [(f.test, f.n, f.down, f.up, f.invalid) for f in remote.findings] == [
        (f.test, f.n, f.down, f.up, f.invalid) for f in local.findings
    ]
    assert set(ledger["faults"]) == {
        "500",
        "429",
        "timeout",
        "truncate",
        "malformed",
        "reset",
        "slow",
    }
    assert all(count == 1 for count in ledger["answered"].values())
    assert len(ledger["answered"]) == remote.queries


@pytest.mark.slow
def test_unparseable_replies_are_invalid_decisions_with_their_raw_text(
    organism: Agent, items: list[WorkItem], tmp_path: Path
) -> None:
    """Replies in odd shapes are read; a reply with no answer is an invalid decision.

    Fenced JSON, JSON inside prose and a bare priority word are read; a reply with no answer
    becomes ``valid=False`` with its text, is counted, and the run completes.
    """
    requests = _requests(organism, items)[:120]
    expected = organism.decide(requests)
    plan = FaultPlan(content_rate=0.6)
    with serving(organism, plan) as server:
        agent = _agent("openai", server.root, False)
        got = agent.decide(requests)
        report = run_redteam(_agent("ollama", server.root, False), items, _config())
    garbage = [d for d in got if not d.valid]
    assert garbage and all(d.raw and "not able" in d.raw for d in garbage)
    assert all(d.value is None for d in garbage)
    assert agent.stats.invalid == len(garbage)
    readable = [(g.value, e.value) for g, e in zip(got, expected, strict=True) if g.valid]
    assert len(readable) > len(garbage) and all(a == b for a, b in readable)
    assert sum(f.invalid for f in report.findings) > 0


def test_unreachable_endpoint_fails_fast_with_a_hint(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = DecisionRequest(
        item=WorkItem(key="X-1", title="Crash on start"),
        context=__import__("mesaguard.contexts", fromlist=["x"]).neutral_context(),
    )
    for adapter, hint in (("openai", "OPENAI_BASE_URL"), ("ollama", "OLLAMA_HOST")):
        agent = _agent(adapter, f"http://127.0.0.1:{port}", False, retries=5, timeout=30)
        started = time.perf_counter()
        with pytest.raises(AgentError, match=rf"cannot reach {adapter} endpoint .*{hint}"):
            agent.decide([request])
        assert time.perf_counter() - started < 5.0


@pytest.mark.slow
def test_fail_on_error_decides_when_failures_fail_the_run(
    organism: Agent, items: list[WorkItem], tmp_path: Path
) -> None:
    requests = _requests(organism, items)[:20]
    plan = FaultPlan(rate=0.3, kinds=("500",), depth=99)
    with serving(organism, plan) as server:
        strict = _agent("openai", server.root, False, retries=1)
        with pytest.raises(AgentError) as caught:
            strict.decide(requests)
        message = str(caught.value)
        assert server.root in message and "'organism'" in message and "item " in message
        assert "HTTP 500" in message
        lenient = _agent("openai", server.root, False, retries=1, fail_on_error=0.5)
        decisions = lenient.decide(requests)
    failed = [d for d in decisions if not d.valid]
    assert failed and all(d.raw and d.raw.startswith("error: HTTP 500") for d in failed)
    assert len(failed) < len(requests)


@pytest.mark.slow
def test_client_errors_are_not_retried(organism: Agent, items: list[WorkItem]) -> None:
    requests = _requests(organism, items)[:6]
    with serving(organism) as server:
        agent = resolve_agent(
            "openai/organism", base_url=server.root + "/wrong", cache=False, retries=4
        )
        with pytest.raises(AgentError, match="HTTP 404"):
            agent.decide(requests)
        attempts = server.ledger.snapshot()["attempts"]
    assert attempts and set(attempts.values()) == {1}


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["openai", "ollama"])
def test_a_rerun_reuses_every_reply_without_a_call(
    adapter: str, organism: Agent, items: list[WorkItem], tmp_path: Path
) -> None:
    """The second run of a red team is answered from the cache; the server may be gone."""
    cache = tmp_path / "replies.sqlite"
    with serving(organism) as server:
        first = run_redteam(_agent(adapter, server.root, cache), items, _config())
        root = server.root
    again = _agent(adapter, root, cache)
    second = run_redteam(again, items, _config())
    assert second.verdict == first.verdict and second.findings == first.findings
    stats = again.stats
    assert stats.calls == 0 and stats.cache_hits == second.queries


@pytest.mark.slow
@pytest.mark.parametrize(
    ("adapter", "refused", "used"),
    [
        ("openai", ("json_schema",), "json_object"),
        ("openai", ("json_schema", "json_object"), None),
        ("ollama", ("schema",), "json"),
    ],
)
def test_a_refused_structured_output_mode_steps_down_and_stays_cached(
    adapter: str,
    refused: tuple[str, ...],
    used: str | None,
    organism: Agent,
    items: list[WorkItem],
    tmp_path: Path,
) -> None:
    requests = _requests(organism, items)[:10]
    expected = [d.value for d in organism.decide(requests)]
    cache = tmp_path / "replies.sqlite"
    with serving(organism, FaultPlan(refuse_formats=refused)) as server:
        agent = _agent(adapter, server.root, cache)
        assert [d.value for d in agent.decide(requests)] == expected
        assert agent.formats[agent._format_level] == (used or "none")  # type: ignore[attr-defined]
        again = _agent(adapter, server.root, cache)
        assert [d.value for d in again.decide(requests)] == expected
        assert again.stats.calls == 0


def test_bad_structured_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="structured output 'yaml'"):
        resolve_agent("openai/m", base_url="http://127.0.0.1:9/v1", structured="yaml", cache=False)


def test_proxy_comes_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from mesaguard.agents._llm_http import environment_proxy

    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy("http://models.internal:8000/v1") is None
    monkeypatch.setenv("http_proxy", "http://proxy.corp:3128")
    assert environment_proxy("http://models.internal:8000/v1") == "http://proxy.corp:3128"
    monkeypatch.setenv("no_proxy", "models.internal")
    assert environment_proxy("http://models.internal:8000/v1") is None
