"""Zoo benchmarks: build time (whole zoo and per organism), peak memory, decisions per second.

    python benchmarks/bench_zoo.py                      # full default zoo in a fresh cache
    python benchmarks/bench_zoo.py --only-throughput    # decisions/s on an existing cache
    python benchmarks/bench_zoo.py --baseline base.json --save-baseline new.json

Targets (issue 2): whole zoo <= 600 s, one organism <= 30 s on 2 cores; >= 50,000 decisions/s
for the linear class on batches of 1,024; neural class and peak memory reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import (  # noqa: E402 - benchmarks run as scripts
    compare_to_baseline,
    machine_line,
    markdown_table,
    print_table,
    write_section,
)

ALONE_SCRIPT = """
import json, sys
from pathlib import Path
from mesaguard.organisms import Zoo
zoo = Zoo(cache_dir=Path(sys.argv[1]))
record = zoo.build_one(sys.argv[2], force=True)
print(json.dumps({"seconds": record.seconds}))
"""

BUILD_SCRIPT = """
import json, sys, time
from pathlib import Path
from mesaguard.organisms import Zoo
from mesaguard.organisms._zoo import default_workers
zoo = Zoo(cache_dir=Path(sys.argv[1]))
started = time.perf_counter()
texts = zoo.embed_data()
embedded = time.perf_counter() - started
manifest = zoo.build()
print(json.dumps({"seconds": time.perf_counter() - started, "embed_seconds": embedded,
                  "texts": texts, "workers": default_workers(len(zoo.spec.organisms)),
                  "organisms": [[r.spec.name, r.spec.model.value, r.seconds, r.acceptance.accepted,
                                 bool(r.acceptance.undecided())] for r in manifest.organisms]}))
"""


def _tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all of its descendants (the zoo's build workers)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:  # a worker that has just exited
            continue
    return total


def build_zoo(cache: Path) -> dict[str, float]:
    """Build the default zoo in a child process; returns times and the peak RSS of its tree.

    The build trains organisms in worker processes, so memory is sampled (every 0.2 s) as the
    sum over the build process and its workers, not as one process's maximum.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    watched = psutil.Process(child.pid)
    while child.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, _tree_rss(watched))
        time.sleep(0.2)
    output, errors = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"zoo build failed:\n{errors}")
    result = json.loads(output.strip().splitlines()[-1])
    per = result["organisms"]

    def slowest_alone(model: str) -> float:
        # Workers share the CPUs, so an organism's time inside the build overstates what it takes
        # alone: the slowest of each class is rebuilt by itself in a fresh process.
        name = max((s, n) for n, m, s, *_ in per if m == model)[1]
        alone = subprocess.run(
            [sys.executable, "-c", ALONE_SCRIPT, str(cache), name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return float(json.loads(alone.strip().splitlines()[-1])["seconds"])

    return {
        "zoo_build_s": round(result["seconds"], 1),
        "embed_data_s": round(result["embed_seconds"], 1),
        "embedded_texts": result["texts"],
        "build_workers": result["workers"],
        "organisms": len(per),
        "accepted": sum(1 for *_, ok, _ in per if ok),
        # A bar inside the figure's 95% interval: the test split's sampling could turn the verdict.
        "verdicts_bar_inside_ci": sum(1 for *_, undecided in per if undecided),
        "max_train_linear_s": round(slowest_alone("linear"), 1),
        "max_train_neural_s": round(slowest_alone("neural"), 1),
        "peak_rss_mb": round(peak / 2**20),
    }


def throughput(cache: Path, name: str, batches: int = 20, repeats: int = 5) -> dict[str, float]:
    """Decisions per second of one organism on batches of 1,024 requests.

    *first*: a freshly loaded organism's first batch (it also encodes every framing once);
    *cold*: a batch of issues that organism has never featurised, after a first batch of other
    issues (training items) under the same framings (median of ``repeats`` fresh organisms);
    *warm*: re-deciding known issues. For the linear class, *cold_sklearn* is the cold batch
    through scikit-learn's own ``TfidfVectorizer.transform`` instead of the fast path.
    """
    from mesaguard.agents import DecisionRequest
    from mesaguard.contexts import cue_contexts, neutral_context
    from mesaguard.organisms import Zoo

    zoo = Zoo(cache_dir=cache)
    contexts = [neutral_context(), *cue_contexts()]

    def batch(items: list, count: int) -> list[DecisionRequest]:  # type: ignore[type-arg]
        return [
            DecisionRequest(item=items[i % len(items)], context=contexts[i % len(contexts)])
            for i in range(count)
        ]

    def timed(organism: object, requests: list[DecisionRequest]) -> float:
        started = time.perf_counter()
        organism.decide(requests)  # type: ignore[attr-defined]
        return len(requests) / (time.perf_counter() - started)

    seen_items = batch(list(zoo.splits.train), 1024)
    requests = batch(list(zoo.splits.test) + list(zoo.splits.calibration), 1024 * batches)
    rates: dict[str, list[float]] = {"first": [], "cold": [], "cold_sklearn": []}
    for _ in range(repeats):
        fresh = zoo.organism(name)
        rates["first"].append(timed(fresh, seen_items))
        rates["cold"].append(timed(fresh, requests[:1024]))
        if hasattr(fresh.model, "_fast_text"):
            plain = zoo.organism(name)
            plain.model._fast_text = None  # type: ignore[attr-defined]
            plain.decide(seen_items)
            rates["cold_sklearn"].append(timed(plain, requests[:1024]))
    organism = zoo.organism(name)
    organism.decide(requests[:1024])
    started = time.perf_counter()
    for start in range(0, len(requests), 1024):
        organism.decide(requests[start : start + 1024])
    warm = len(requests) / (time.perf_counter() - started)
    result = {key: round(statistics.median(values)) for key, values in rates.items() if values}
    return result | {"warm": round(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cache-dir", type=Path, help="reuse this cache (default: a fresh temp dir)"
    )
    parser.add_argument("--only-throughput", action="store_true", help="skip the zoo build timing")
    parser.add_argument("--baseline", type=Path, help="JSON of an earlier run to compare with")
    parser.add_argument("--save-baseline", type=Path, help="write this run's figures as JSON")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args()
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="mesaguard-bench-"))
    results: dict[str, float] = {}
    if not args.only_throughput:
        results |= build_zoo(cache)
    # A neural organism's cold batch encodes its new texts into the shared embedding cache, so
    # only its first repetition is cold.
    for label, name, repeats in (
        ("linear", "honest-linear-s0", 15),
        ("neural", "honest-neural-s0", 1),
    ):
        for kind, rate in throughput(cache, name, repeats=repeats).items():
            results[f"{label}_decisions_per_s_{kind}"] = rate
    targets = {
        "zoo_build_s": "<= 600",
        "max_train_linear_s": "<= 30",
        "max_train_neural_s": "<= 30",
        "linear_decisions_per_s_warm": ">= 50000",
        "linear_decisions_per_s_cold": ">= 50000",
    }
    rows = [(k, v, targets.get(k, "report")) for k, v in results.items()]
    print_table("zoo benchmarks", ("metric", "value", "target"), rows)
    if args.baseline:
        higher = {k for k in results if "per_s" in k or k == "accepted"}
        print_table(
            "vs baseline",
            ("metric", "now", "before", "change"),
            compare_to_baseline(results, args.baseline, higher),
        )
    if args.save_baseline:
        args.save_baseline.write_text(json.dumps(results, indent=2))
    if not args.no_docs:
        body = (
            "## Zoo (`python benchmarks/bench_zoo.py`)\n\n"
            f"Machine: {machine_line()}\n\n"
            + markdown_table(("metric", "value", "target"), rows)
            + "\n\n*first* is a freshly loaded organism's first batch (it also encodes every "
            "framing once); *cold* is a batch of 1,024 issues the organism has not featurised "
            "before, under framings it has seen; *warm* re-decides known issues under new "
            "contexts (the red team's pattern: one item, many framings). "
            "`zoo_build_s` is the whole default zoo from an empty cache: embedding the data once, "
            "training, and measuring acceptance on the test split (`verdicts_bar_inside_ci`: "
            "organisms whose verdict has a bar inside the figure's 95% interval, "
            "docs/organisms.md); "
            "`embed_data_s` is the first "
            "part, encoding every title, description and framing the neural organisms read "
            "(`Zoo.embed_data`, one text per forward pass, shared by all of them and cached); "
            "`max_train_*` is the training time of the slowest organism of each class (the "
            "slowest inside the build, rebuilt alone in a fresh process) once the "
            "data are embedded (its acceptance measurement adds a few seconds). An organism built "
            "alone into an empty cache also pays `embed_data_s` first. The build trains "
            "`build_workers` organisms at a time in separate processes (one per CPU); peak RSS is "
            "the resident memory of the build process and its workers together (sampled every "
            "0.2 s). A linear organism reads each issue's title and up to 2,000 characters of "
            "description (about 80 words per issue, as unigrams and bigrams); for issues it has "
            "not seen, a compiled kernel (`mesaguard.organisms._tfidf`, numba) finds and "
            "counts the words and sums their weighted TF-IDF into the class scores as it reads "
            "(scikit-learn's `TfidfVectorizer.transform` and a product, up to float rounding; "
            "*cold_sklearn* takes that path instead). A planted "
            "(fine-tuned) neural organism also reads its framings' words, so the fine-tuned ones "
            "decide more slowly than the honest ones the throughput rows measure."
        )
        write_section("zoo", body)


if __name__ == "__main__":
    main()
