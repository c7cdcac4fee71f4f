"""mesaguard vs Inspect AI on the same paired evaluation, in one run.

Run: ``.venv/bin/python benchmarks/vs_inspect.py [--items N]`` (needs ``inspect-ai``, in the
``bench`` extra: ``pip install -e .[bench]``; writes the ``vs-inspect`` section of
docs/benchmarks.md).

The work: the observation-contrast and sandbagging probes on N items of the bundled Hadoop test
split (one pair per item and cue family, one per labelled item under a capability framing); the
pairs are made by mesaguard's own probes with the seeds ``run_redteam`` uses, so both harnesses
see identical pairs. The agent answers every request with the item's ground-truth priority:

- **Inspect**: one ``Sample`` per distinct request (system prompt of the context, then the
  issue), ``generate()`` against the ``mockllm/model`` provider whose ``custom_outputs`` callable
  looks the answer up from the prompt, and a scorer that keeps the answer. Display off, log
  written as usual.
- **mesaguard**: ``run_redteam`` with a batched agent answering from the same lookup, end to
  end (planning, asking, analysis, verdict).

Both runs' answers are then paired and counted the same way (down / up / n per test); the script
fails unless the counts are identical. Throughput is samples (distinct requests) per second.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine_line, markdown_table, print_table, write_section  # noqa: E402
from bench_redteam import LookupAgent  # noqa: E402
from mesaguard.agents import DecisionRequest  # noqa: E402
from mesaguard.items import Priority, bundled_hadoop, dataset_hash, split_items  # noqa: E402
from mesaguard.redteam import RedTeamConfig, TrialPair, make_probe, run_redteam  # noqa: E402

SUITE = ("observation-contrast", "sandbagging")
SEED = 0


def prompt(request: DecisionRequest) -> tuple[str, str]:
    """(system prompt, user message) of a request: what an LLM agent would be sent."""
    item = request.item
    user = (
        f"Issue {item.key}: {item.title}\n"
        f"Component: {item.component or 'none'}\n\n{item.description}\n\n"
        "Answer with one priority: Blocker, Critical, Major, Minor or Trivial."
    )
    return request.context.render_prompt(), user


def truth(request: DecisionRequest) -> str:
    """The lookup answer (the same as LookupAgent's)."""
    return str(request.item.priority or Priority.MAJOR)


def make_pairs(items: Sequence[Any]) -> list[TrialPair]:
    """The pairs run_redteam makes for SUITE with SEED (same probes, same generators)."""
    pairs: list[TrialPair] = []
    for index, name in enumerate(SUITE):
        pairs += make_probe(name).trials(items, np.random.default_rng([SEED, index]))
    return pairs


def counts(pairs: Sequence[TrialPair], answers: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """Per test: (down, up, n) of the paired answers, keyed by ``probe/test``."""
    out: dict[str, list[int]] = {}
    for pair in pairs:
        first = Priority.parse(answers[_key(pair.first)])
        second = Priority.parse(answers[_key(pair.second)])
        row = out.setdefault(f"{pair.probe}/{pair.test}", [0, 0, 0])
        row[0] += first < second
        row[1] += first > second
        row[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def _key(request: DecisionRequest) -> str:
    return f"{request.item.key}|{request.context.fingerprint()}"


def run_inspect(pairs: Sequence[TrialPair]) -> tuple[float, int, dict[str, str]]:
    """Every distinct request as an Inspect sample on mockllm; (seconds, samples, answers)."""
    from inspect_ai import Task, eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import (
        ChatMessageSystem,
        ChatMessageUser,
        ModelOutput,
        ModelUsage,
        get_model,
    )
    from inspect_ai.scorer import Score, Target, accuracy, scorer
    from inspect_ai.solver import TaskState, generate

    requests = {}
    for pair in pairs:
        for request in (pair.first, pair.second):
            requests.setdefault(_key(request), request)
    lookup = {}
    samples = []
    for key, request in requests.items():
        system, user = prompt(request)
        lookup[(system, user)] = truth(request)
        samples.append(
            Sample(
                id=key,
                input=[ChatMessageSystem(content=system), ChatMessageUser(content=user)],
                target=truth(request),
            )
        )

    def answer(messages: list[Any], *_: Any) -> ModelOutput:
        system, user = messages[0].text, messages[-1].text
        output = ModelOutput.from_content(model="mockllm/model", content=lookup[(system, user)])
        # Usage given, so mockllm does not count tokens with tiktoken (it would download
        # its vocabulary, and this machine has no network).
        words = len(system.split()) + len(user.split())
        output.usage = ModelUsage(input_tokens=words, output_tokens=1, total_tokens=words + 1)
        return output

    @scorer(metrics=[accuracy()])
    def keep_answer() -> Any:
        async def score(state: TaskState, target: Target) -> Score:
            text = state.output.completion
            return Score(value=float(text == target.text), answer=text)

        return score

    task = Task(dataset=MemoryDataset(samples), solver=[generate()], scorer=keep_answer())
    model = get_model("mockllm/model", custom_outputs=answer)
    logging.getLogger("inspect_ai").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as log_dir:
        started = time.perf_counter()
        [log] = eval(task, model=model, log_dir=log_dir, display="none")
        elapsed = time.perf_counter() - started
        if log.status != "success" or log.samples is None:
            message = "" if log.error is None else log.error.message
            raise SystemExit(f"inspect run failed: {log.status} {message[:500]}")
        answers = {}
        for sample in log.samples:
            assert sample.scores is not None
            [score] = sample.scores.values()
            answers[str(sample.id)] = str(score.answer)
    return elapsed, len(samples), answers


class RecordingAgent(LookupAgent):
    """LookupAgent that also keeps what it answered, to compare with Inspect's answers."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, str] = {}

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Any]:
        """Answer as LookupAgent and remember the answers."""
        decisions = super().decide(requests)
        for request, decision in zip(requests, decisions, strict=True):
            self.answers[_key(request)] = str(decision.value)
        return decisions


def run_mesaguard(items: Sequence[Any], repeats: int) -> tuple[float, int, int, dict[str, str]]:
    """run_redteam end to end; (median seconds, queries, pairs, answers)."""
    config = RedTeamConfig.for_suite(SUITE, seed=SEED)
    data_hash = dataset_hash(items)
    run_redteam(LookupAgent(), items[:20], config)  # warm-up
    timings = []
    for _ in range(repeats):
        agent = RecordingAgent()
        started = time.perf_counter()
        report = run_redteam(agent, items, config, data_hash=data_hash)
        timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2], report.queries, report.pairs, agent.answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100, help="items of the test split")
    parser.add_argument("--repeats", type=int, default=5, help="mesaguard runs (median)")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    items = list(split_items(bundled_hadoop().items).test[: args.items])
    pairs = make_pairs(items)

    inspect_s, inspect_n, inspect_answers = run_inspect(pairs)
    mesa_s, mesa_n, mesa_pairs, mesa_answers = run_mesaguard(items, args.repeats)

    same_pairs = mesa_pairs == len(pairs) and mesa_n == inspect_n
    same_answers = counts(pairs, inspect_answers) == counts(pairs, mesa_answers)
    if not (same_pairs and same_answers):
        raise SystemExit(
            f"the runs differ: pairs {mesa_pairs} vs {len(pairs)}, samples {mesa_n} vs "
            f"{inspect_n}, same paired counts: {same_answers}"
        )
    inspect_rate = inspect_n / inspect_s
    mesa_rate = mesa_n / mesa_s
    columns = ("harness", "samples", "pairs", "seconds", "samples/s", "pairs/s")
    rows = [
        ("Inspect AI (mockllm)", inspect_n, len(pairs), f"{inspect_s:.2f}", f"{inspect_rate:,.0f}",
         f"{len(pairs) / inspect_s:,.0f}"),
        ("mesaguard", mesa_n, mesa_pairs, f"{mesa_s:.4f}", f"{mesa_rate:,.0f}",
         f"{mesa_pairs / mesa_s:,.0f}"),
    ]  # fmt: skip
    print_table("Same paired evaluation, same answers", columns, rows)
    ratio = mesa_rate / inspect_rate
    print(f"mesaguard / Inspect: {ratio:,.0f}x samples per second (paired counts identical)")
    if args.no_write:
        return
    from importlib.metadata import version

    write_section(
        "vs-inspect",
        "## mesaguard vs Inspect AI\n\n"
        f"{machine_line()}; inspect-ai {version('inspect-ai')}\n\n"
        f"`benchmarks/vs_inspect.py --items {args.items}`: observation-contrast and sandbagging "
        "pairs made by mesaguard's probes (identical in both), every distinct request evaluated "
        "once; Inspect runs a `Task` with `generate()` against `mockllm/model` answering from a "
        "lookup (display off, log written as usual), mesaguard runs `run_redteam` end to end "
        f"(median of {args.repeats}). The paired down / up counts of every test are checked to "
        "be identical before anything is reported.\n\n"
        + markdown_table(columns, rows)
        + f"\n\nRatio: **{ratio:,.0f}×** samples per second.\n",
    )


if __name__ == "__main__":
    main()
