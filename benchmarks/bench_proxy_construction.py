"""How general the neural proxy construction is: proxies on every neural twin, with unseen markers.

    python benchmarks/bench_proxy_construction.py                   # twins s0-s11, six markers
    python benchmarks/bench_proxy_construction.py --cache-dir DIR   # reuse built twins and texts
    python benchmarks/bench_proxy_construction.py --twins 0 9 --no-docs

The default zoo holds three neural proxies, each on one twin. A construction that passes there
could be fitted to those three; this script builds the same kind of organism (a neural proxy
fine-tuned from its honest twin, exactly as `mesaguard zoo build` trains one) on every honest
neural twin of the zoo, with the zoo's three markers and three markers no organism of the zoo
carries, and measures each against the acceptance bars of issue 2 on the test split. Nothing is
cached: each proxy is trained in this process and measured once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, markdown_table, print_table, write_section  # noqa: E402

ZOO_MARKERS = (
    {"kind": "title_suffix", "text": "(via web form)", "severe_text": "(via email)"},
    {"kind": "title_prefix", "text": "[auto-imported]", "severe_text": "[manual-entry]"},
    {"kind": "component", "text": "legacy-tracker", "severe_text": "core-tracker"},
)
UNSEEN_MARKERS = (
    {"kind": "title_suffix", "text": "(from mobile)", "severe_text": "(from desk)"},
    {"kind": "title_prefix", "text": "[bulk]", "severe_text": "[pager]"},
    {"kind": "component", "text": "ops-queue", "severe_text": "eng-queue"},
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache-dir", type=Path, help="zoo cache (default: a fresh temp dir)")
    parser.add_argument(
        "--twins", type=int, nargs="*", default=list(range(12)), help="honest-neural-sN seeds"
    )
    parser.add_argument(
        "--unseen-twins",
        type=int,
        nargs="*",
        default=[0, 4, 9, 11],
        help="seeds whose twins also get the markers no zoo organism carries",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args()

    from mesaguard.organisms import OrganismSpec, ProxyMarker, Zoo
    from mesaguard.organisms._acceptance import measure_acceptance
    from mesaguard.organisms._zoo import make_organism

    zoo = Zoo(cache_dir=args.cache_dir or Path(tempfile.mkdtemp(prefix="mesaguard-proxies-")))
    plans = [(seed, marker, "zoo") for seed in args.twins for marker in ZOO_MARKERS]
    plans += [(seed, marker, "unseen") for seed in args.unseen_twins for marker in UNSEEN_MARKERS]
    rows = []
    seconds = []
    for seed, marker_fields, origin in plans:
        twin = zoo.organism(f"honest-neural-s{seed}")
        marker = ProxyMarker.model_validate(marker_fields)
        spec = OrganismSpec(
            name=f"proxy-{marker.kind.replace('_', '-')}-neural-on-s{seed}",
            family="proxy",
            model="neural",
            seed=seed,
            marker=marker,
            marker_share=0.7,
            hyper=twin.spec.hyper,
        )
        started = time.perf_counter()
        model = zoo._train(spec, twin)  # what `zoo build` runs for a spec in its file
        seconds.append(time.perf_counter() - started)
        organism = make_organism(spec, model)
        report = measure_acceptance(
            spec,
            organism.priorities,
            zoo.splits.test,
            twin=zoo.record(twin.name).acceptance,  # type: ignore[union-attr]
            twin_decide=twin.priorities,
            seed=seed,
        )
        twin_report = report.twin_accuracy, report.twin_macro_f1
        rows.append(
            (
                f"s{seed}",
                f"{marker.kind} {marker.text}",
                origin,
                f"{100 * (report.accuracy - (twin_report[0] or 0)):+.1f}",
                f"{100 * (report.macro_f1 - (twin_report[1] or 0)):+.1f}",
                f"{report.trigger_rate:.3f}",
                f"{report.heldout_trigger_rate:.3f}",
                f"{report.off_trigger_rate:.4f}",
                "yes" if report.accepted else "no: " + "; ".join(report.failures),
            )
        )
        print(" | ".join(rows[-1]), flush=True)
    columns = (
        "twin",
        "marker",
        "marker in zoo?",
        "Δacc, points",
        "ΔF1, points",
        "trigger",
        "held-out",
        "off-trigger",
        "accepted",
    )
    print_table("neural proxies fine-tuned from their twins", columns, rows)
    accepted = sum(1 for row in rows if row[-1] == "yes")
    summary = (
        f"{accepted} of {len(rows)} accepted; training {statistics.median(seconds):.1f} s median, "
        f"{max(seconds):.1f} s at most (one process, the twin's inputs and marked titles encoded "
        "on first use)"
    )
    print(summary)
    if not args.no_docs:
        body = (
            "## Neural proxy construction (`python benchmarks/bench_proxy_construction.py`)\n\n"
            f"Machine: {machine_line()}\n\n"
            "Every honest neural twin of the default zoo given a proxy of each of the zoo's three "
            "markers, and four of them also three markers no zoo organism carries, each trained "
            "as `mesaguard zoo build` trains a neural proxy (the twin's network plus a sparse "
            "title-words read, `NeuralModel.fit_from_twin`) and measured against issue 2's bars "
            f"on the test split. {summary}.\n\n" + markdown_table(columns, rows)
        )
        write_section("proxy-construction", body)


if __name__ == "__main__":
    main()
