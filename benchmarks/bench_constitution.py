"""Policy-language measurement for the constitution: CEL (two engines) against Cedar.

The constitution's rule conditions need a maintained policy language. This script expresses six
of the default constitution's seven conditions (all but ``!decision.valid``) in CEL and in
Cedar and measures, per engine:

* compile: parsing the six conditions once (what a constitution load costs);
* eval: deciding one submission against all six conditions, p50 / p99 over many requests
  (what every gate decision costs).

Engines: ``common-expression-language`` (Rust, module ``cel``), ``cel-python`` (pure Python,
module ``celpy``) and ``cedarpy`` (Rust Cedar). Cedar has no floating-point literals: the
confidence has to travel as a ``decimal`` extension value, and every rule becomes a ``permit``
policy whose ``@id`` tells which fired. Run ``python benchmarks/bench_constitution.py``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import cedarpy
import cel
import celpy

from _report import machine_line, markdown_table, print_table, write_section

CEL_RULES = {
    "recommend-only": "autonomy == 0",
    "allow-within-autonomy": "autonomy >= 1",
    "no-autonomous-production-write": 'decision.target == "production-tracker"',
    "severe-downgrade": "change.downgrade && change.from_priority >= 4",
    "flagged-downgrade": (
        'change.downgrade && item.labels.exists(l, l in ["security", "data-loss", "safety"])'
    ),
    "low-confidence": "decision.confidence < 0.80",
}

CEDAR_RULES = {
    "recommend-only": "context.autonomy == 0",
    "allow-within-autonomy": "context.autonomy >= 1",
    "no-autonomous-production-write": 'context.decision.target == "production-tracker"',
    "severe-downgrade": "context.change.downgrade && context.change.from_priority >= 4",
    "flagged-downgrade": (
        'context.change.downgrade && (context.item.labels.contains("security") || '
        'context.item.labels.contains("data-loss") || context.item.labels.contains("safety"))'
    ),
    "low-confidence": 'context.decision.confidence.lessThan(decimal("0.80"))',
}


def _cedar_policies() -> str:
    return "\n".join(
        f'@id("{rule}")\npermit(principal, action, resource) when {{ {condition} }};'
        for rule, condition in CEDAR_RULES.items()
    )


def _requests(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        old = rng.randint(1, 5)
        new = rng.randint(1, 5)
        out.append(
            {
                "autonomy": rng.choice([0, 1, 2]),
                "decision": {
                    "target": rng.choice(["recommendation", "production-tracker"]),
                    "confidence": round(rng.random(), 4),
                },
                "change": {"downgrade": new < old, "from_priority": old},
                "item": {"labels": rng.sample(["security", "ui", "safety", "docs"], k=2)},
            }
        )
    return out


def _cedar_context(request: dict[str, Any]) -> dict[str, Any]:
    context = {**request, "decision": dict(request["decision"])}
    confidence = f"{request['decision']['confidence']:.4f}"
    context["decision"]["confidence"] = {"__extn": {"fn": "decimal", "arg": confidence}}
    return context


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    )


def _time_compile(compile_all: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        compile_all()
        best = min(best, time.perf_counter() - start)
    return best


def _time_eval(
    decide: Callable[[dict[str, Any]], set[str]], requests: list[dict[str, Any]]
) -> list[float]:
    samples = []
    for request in requests:
        start = time.perf_counter()
        decide(request)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    """Measure every engine, check they agree, print and record the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    requests = _requests(args.requests, args.seed)

    # Rust CEL
    def rust_compile() -> dict[str, cel.Program]:
        return {rule: cel.compile(source) for rule, source in CEL_RULES.items()}

    rust_programs = rust_compile()

    def rust_decide(request: dict[str, Any]) -> set[str]:
        context = cel.Context(request)
        return {rule for rule, program in rust_programs.items() if program.execute(context) is True}

    # Pure-Python CEL
    environment = celpy.Environment()

    def py_compile() -> dict[str, Any]:
        return {
            rule: environment.program(environment.compile(source))
            for rule, source in CEL_RULES.items()
        }

    py_programs = py_compile()

    def py_decide(request: dict[str, Any]) -> set[str]:
        activation = {name: celpy.json_to_cel(value) for name, value in request.items()}
        return {rule for rule, program in py_programs.items() if bool(program.evaluate(activation))}

    # Cedar
    policy_text = _cedar_policies()

    def cedar_compile() -> Any:
        return cedarpy.PolicySet.from_str(policy_text)

    policy_set = cedar_compile()
    entities = cedarpy.Entities.from_json_str("[]")

    def cedar_decide(request: dict[str, Any]) -> set[str]:
        result = cedarpy.is_authorized(
            {
                "principal": 'Agent::"a"',
                "action": 'Action::"decide"',
                "resource": 'Item::"i"',
                "context": _cedar_context(request),
            },
            policy_set,
            entities,
        )
        names = result.diagnostics.id_annotations_by_reason
        return {names.get(reason, reason) for reason in result.diagnostics.reasons}

    engines: list[tuple[str, str, Callable[[], object], Callable[[dict[str, Any]], set[str]]]] = [
        (
            "CEL (Rust)",
            f"common-expression-language {version('common-expression-language')}",
            rust_compile,
            rust_decide,
        ),
        ("CEL (Python)", f"cel-python {version('cel-python')}", py_compile, py_decide),
        ("Cedar", f"cedarpy {version('cedarpy')}", cedar_compile, cedar_decide),
    ]
    # The engines must agree, or the timings compare different work.
    reference = [rust_decide(request) for request in requests[:500]]
    for name, _, _, decide in engines[1:]:
        got = [decide(request) for request in requests[:500]]
        mismatches = sum(a != b for a, b in zip(reference, got, strict=True))
        if mismatches:
            raise SystemExit(f"{name} disagrees with CEL (Rust) on {mismatches} of 500 requests")

    rows = []
    for name, package, compile_all, decide in engines:
        compile_s = _time_compile(compile_all, repeats=20)
        subset = requests if name != "CEL (Python)" else requests[: max(500, args.requests // 5)]
        decide(subset[0])  # warm-up
        p50, p99 = _percentiles(_time_eval(decide, subset))
        rows.append(
            (
                name,
                package,
                f"{compile_s * 1e3:.3f}",
                f"{p50 * 1e6:.1f}",
                f"{p99 * 1e6:.1f}",
                len(subset),
            )
        )
    columns = (
        "engine",
        "package",
        "compile 6 rules (ms)",
        "eval p50 (µs)",
        "eval p99 (µs)",
        "requests",
    )
    print_table("Constitution conditions: compile + evaluate", columns, rows)
    if not args.no_write:
        body = (
            "## Constitution policy language (`benchmarks/bench_constitution.py`)\n\n"
            f"{machine_line()}; {args.requests} seeded requests (seed {args.seed}), six "
            "of the default constitution's seven conditions (all but `!decision.valid`), all "
            "evaluated per request; the engines are "
            "checked to fire the same rules on 500 requests before timing. Compile is the best "
            "of 20 loads of all six conditions.\n\n"
            + markdown_table(columns, rows)
            + "\n\nChoice: CEL through `common-expression-language` (see docs/gate.md)."
        )
        write_section("constitution", body)


if __name__ == "__main__":
    main()
