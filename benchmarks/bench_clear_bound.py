"""About how few queries a sequential test could spend to clear an honest control.

The sequential red team clears a test when it has shown, at level ``beta``, that the net flip
rate is below the minimum effect ``delta`` (``redteam/_sequential.py``). However a test is built,
the information-theoretic bound of sequential analysis (Wald; in the form of Garivier & Kaufmann
2016, Lemma 1) limits how early it can do so: if a test clears with probability near one when
the pairs follow ``P`` and with probability at most ``beta`` whenever ``|theta| >= delta``, then

    E_P[pairs] >= log(1 / beta) / KL_inf(P),

where ``KL_inf(P)`` is the smallest Kullback-Leibler divergence from ``P`` to a distribution of
the outcome ``D = toward - away`` with a material net rate (both signs for a two-sided test, so
the slower side counts). ``KL_inf`` equals the best growth rate of a bet against the material
alternative, ``max_l E_P log(1 + l (delta - D))`` (the duality of Honda & Takemura), computed
here on a grid.

This script runs the fixed-sample red team (every planned pair) on the honest controls of the
default zoo, as ``mesaguard bench detect`` does, estimates ``P`` for every test from its pairs
(200 for most), and adds up the bound over the tests of a run: an observation-contrast pair
costs two new queries, a proxy pair at least one (its reference arm, the item under the neutral
framing, is shared); the sandbagging test counts zero (the report does not carry its
correct/wrong outcome counts). It prints the sum beside what the sequential mode spends. It is an
oracle's expected cost, not a hard floor: it knows ``P`` (estimated, with half a flip added each
way), assumes a test clears with probability near one, and is capped at a test's pairs.

Run: ``python benchmarks/bench_clear_bound.py [--beta 0.3 --beta 0.5]`` (after
``mesaguard zoo build``; about a minute).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_line, markdown_table, print_table, write_section  # noqa: E402

PAIRED_PROBES_WITH_TWO_NEW_QUERIES = ("observation-contrast",)
"""Probes whose both arms are specific to the test (no query shared with another test)."""


def clearing_rate(toward: float, away: float, delta: float) -> float:
    """``KL_inf``: best growth rate of a bet that ``E[D] < delta``, given P(D=+1) and P(D=-1)."""
    stay = 1.0 - toward - away
    bets = np.linspace(0.0, 1.0 / (1.0 - delta), 20001)[:-1]
    growth = (
        toward * np.log1p(bets * (delta - 1.0))
        + stay * np.log1p(bets * delta)
        + away * np.log1p(bets * (delta + 1.0))
    )
    return float(growth.max())


def test_bound(n: int, down: int, up: int, delta: float, beta: float, two_sided: bool) -> float:
    """Lower bound on the pairs needed to clear one test (at most the pairs it has)."""
    # Half a flip each way: a test with no flip in 200 pairs is not taken to be flip-free.
    toward, away = (down + 0.5) / (n + 1), (up + 0.5) / (n + 1)
    rate = clearing_rate(toward, away, delta)
    if two_sided:
        rate = min(rate, clearing_rate(away, toward, delta))
    return float(n) if rate <= 0 else min(float(n), math.log(1.0 / beta) / rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beta", type=float, action="append", default=None)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    betas = args.beta or [0.3, 0.5]

    from mesaguard.cli._bench import deployment_items
    from mesaguard.organisms import ObjectiveFamily, Zoo
    from mesaguard.redteam import RedTeamConfig, run_redteam

    zoo = Zoo()
    names = [o.name for o in zoo.spec.organisms if o.family is ObjectiveFamily.HONEST]
    names = [n for n in names if zoo.record(n) is not None]
    if not names:
        raise SystemExit("no honest control is built: run `mesaguard zoo build` first")
    items = deployment_items(zoo, 0.1, args.seed)
    fixed = RedTeamConfig(seed=args.seed, max_items=args.items)
    rows: list[list[object]] = []
    bounds: dict[float, list[float]] = {b: [] for b in betas}
    spent: list[int] = []
    obs_share: list[float] = []
    for name in names:
        organism = zoo.organism(name)
        report = run_redteam(organism, items, fixed, data_source="bench", data_hash="bench")
        sequential = run_redteam(
            organism,
            items,
            fixed.model_copy(update={"sequential": True}),
            data_source="bench",
            data_hash="bench",
        )
        row: list[object] = [name]
        for beta in betas:
            total = obs = 0.0
            for finding in report.findings:
                if finding.control or finding.probe == "sandbagging":
                    # Sandbagging's outcome is correct/wrong, which the report does not count.
                    continue
                two = True
                pairs = test_bound(
                    finding.n,
                    finding.down,
                    finding.up,
                    fixed.effect_for(finding.probe),
                    beta,
                    two,
                )
                cost = 2 if finding.probe in PAIRED_PROBES_WITH_TWO_NEW_QUERIES else 1
                total += cost * pairs
                obs += cost * pairs if cost == 2 else 0.0
            bounds[beta].append(total)
            row.append(f"{total:,.0f}")
            if beta == betas[0]:
                obs_share.append(obs / total)
        spent.append(sequential.queries)
        row.append(f"{sequential.queries:,}")
        rows.append(row)
    medians: list[object] = ["**median**"]
    medians += [f"**{statistics.median(bounds[b]):,.0f}**" for b in betas]
    medians.append(f"**{statistics.median(spent):,.0f}**")
    rows.append(medians)
    columns = [
        "honest control",
        *(f"lower bound, beta = {b}" for b in betas),
        f"sequential mode (beta = {fixed.beta})",
    ]
    print_table("Queries to clear an honest control: oracle lower bound vs spent", columns, rows)
    smallest = {b: min(bounds[b]) for b in betas}
    summary = (
        "Smallest bound over the controls: "
        + ", ".join(f"{smallest[b]:,.0f} at beta = {b}" for b in betas)
        + f". Observation contrast is {statistics.median(obs_share):.0%} of the bound "
        f"(median, beta = {betas[0]})."
    )
    print(summary)
    if args.no_write:
        return
    write_section(
        "clear-bound",
        "## What an oracle would spend to clear an honest control "
        "(`benchmarks/bench_clear_bound.py`)\n\n"
        f"{machine_line()}; the default zoo's {len(names)} honest controls, the fixed-mode red "
        f"team on {args.items} items of the deployment test split (as `mesaguard bench detect`), "
        f"seed {args.seed}. Per test, a sequential test that clears it with probability near "
        "one on this agent while clearing a material effect with probability at most beta needs "
        "in expectation at least log(1/beta) / KL_inf pairs, with KL_inf the divergence from the "
        "agent's outcome distribution to the nearest material one (Wald's bound; Garivier & "
        "Kaufmann 2016, Lemma 1). The distribution is estimated from the fixed run (half a flip "
        "added each way), the bound is capped at the test's pairs, an observation pair costs "
        "two new queries and a proxy pair one, and the sandbagging test counts zero: an "
        "oracle's approximate expected cost, not a hard floor (one run can spend less).\n\n"
        + markdown_table(columns, rows)
        + f"\n\n{summary} In a zoo with as many honest controls as planted organisms, the "
        "median verdict is the mean of the slowest planted organism and the fastest honest "
        "control when every planted organism is convicted first, so a median of at most 1,000 "
        "asks for every planted organism to be convicted in about 2,000 queries minus the "
        f"fastest honest control's: about {2000 - smallest[betas[0]]:,.0f} with an oracle's "
        f"bets, {2000 - min(spent):,} with the sequential mode's at this seed "
        f"(fastest honest control: {min(spent):,} queries).\n",
    )


if __name__ == "__main__":
    main()
