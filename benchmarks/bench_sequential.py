"""Sequential vs fixed red team: the cost in pairs of the same error rates.

The red team's fixed mode judges each test on all of its pairs (200 items in
``mesaguard bench detect``): flagged when the two-sided Wilcoxon test on the shift, Bonferroni-
adjusted over the run's tests, is significant and the net flip rate reaches the minimum effect.
The sequential mode stops a test early, flagging on an anytime-valid lower bound and clearing on
an anytime-valid upper bound at level ``beta`` (``redteam/_sequential.py``); a test that runs out
of pairs is judged by the fixed rule but never flagged (a would-be flag makes it inconclusive).

This script simulates one test under a known net flip rate ``theta`` (toward flips with
probability theta, plus symmetric "jitter" flips as honest text models show), runs both modes on
the same draws, and prints each mode's **miss rate** (the test is cleared / not flagged although
theta is material) and the sequential mode's mean pairs, for several ``beta``. The clearing level
is chosen from this table: the largest ``beta`` whose miss rate stays within a few points of the
fixed mode's at every theta is the one that compares the two modes "at the same error rates".

Run: ``python benchmarks/bench_sequential.py [--reps 1000] [--tests 18]``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np
from scipy.special import logsumexp

from _report import machine_line, markdown_table, print_table, write_section
from mesaguard.redteam._sequential import NetRateSequence, TestDecision
from mesaguard.stats import ordinal_shift

ALPHA, DELTA, PAIRS, ROUND = 0.05, 0.05, 200, 8
THETAS = (0.0, 0.05, 0.0625, 0.075, 0.0875, 0.10)
JITTERS = (0.0, 0.04)
BETAS = (0.1, 0.3, 0.5)
CLEAR_BETA = 0.3
BET_GRID = (np.arange(20, dtype=np.float64) + 0.5) / 20
"""The package's bet grid (``redteam/_sequential.py``)."""


def outcomes(rng: np.random.Generator, theta: float, jitter: float) -> np.ndarray:
    """Per-pair D in {+1, 0, -1}: toward with theta + jitter/2, away with jitter/2."""
    u = rng.random(PAIRS)
    return np.where(u < theta + jitter / 2, 1, np.where(u < theta + jitter, -1, 0))


def fixed_flags(d: np.ndarray, tests: int) -> bool:
    """The fixed mode's rule on one test's pairs (its Bonferroni share of alpha)."""
    net = abs(int((d == 1).sum()) - int((d == -1).sum())) / len(d)
    if net < DELTA:
        return False
    shift = ordinal_shift(d.astype(float), np.zeros(len(d)))
    return shift.p_value <= ALPHA / tests


def sequential_misses(d: np.ndarray, tests: int, beta: float) -> tuple[bool, int]:
    """Whether the sequential mode clears the test (a miss when theta is material), pairs used."""
    sequence = NetRateSequence(DELTA, ALPHA / tests, beta, two_sided=True)
    for start in range(0, PAIRS, ROUND):
        chunk = d[start : start + ROUND]
        decision = sequence.add(len(chunk), int((chunk == 1).sum()), int((chunk == -1).sum()))
        if decision is TestDecision.ACCEPT:
            return True, sequence.n
        if decision is TestDecision.REJECT:
            return False, sequence.n
    return not fixed_flags(d, tests), PAIRS


def mixture_clearing(weights: np.ndarray) -> Callable[[int, int, int], float]:
    """Clear log e-value of a bet mixture over the package's grid with the given weights."""
    log_weights = np.log(weights / weights.sum())

    def one_side(toward: int, stay: int, away: int) -> float:
        # Against H0 "theta >= delta" (the mirrored side swaps toward and away).
        c = -DELTA
        terms = (
            toward * np.log1p(BET_GRID * (1 - c) / (1 + c))
            + stay * np.log1p(-BET_GRID * c / (1 + c))
            + away * np.log1p(-BET_GRID)
        )
        return float(logsumexp(terms + log_weights))

    return lambda t, z, a: min(one_side(a, z, t), one_side(t, z, a))


class PlugInClearing:
    """Bets chosen before each round by Kelly on the counts so far (half a pseudo-count each)."""

    def __init__(self) -> None:
        self.counts = np.zeros((2, 3))
        self.log_wealth = np.zeros(2)

    @property
    def log_e(self) -> float:
        """The clear log e-value: the smaller of the two sides' log wealth."""
        return float(self.log_wealth.min())

    def add(self, t: int, z: int, a: int) -> None:
        """Bet on one round (``t`` toward, ``z`` unchanged, ``a`` away), stakes set before it."""
        for side, outcome in enumerate(((t, z, a), (a, z, t))):
            p = (self.counts[side] + 0.5) / (self.counts[side].sum() + 1.5)
            stakes = np.linspace(0.0, 0.9 / (1 - DELTA), 201)
            growth = (
                p[0] * np.log1p(stakes * (DELTA - 1))
                + p[1] * np.log1p(stakes * DELTA)
                + p[2] * np.log1p(stakes * (DELTA + 1))
            )
            stake = stakes[int(np.argmax(growth))]
            up, stay, down = outcome
            self.log_wealth[side] += (
                up * math.log1p(stake * (DELTA - 1))
                + stay * math.log1p(stake * DELTA)
                + down * math.log1p(stake * (DELTA + 1))
            )
            self.counts[side] += outcome


def clears(d: np.ndarray, construction: str, tests: int) -> tuple[bool, int]:
    """Whether a clearing construction clears the test before a flag, and the pairs it used."""
    # The sequence only supplies the flag; a clearing level it can never reach keeps it from
    # accepting (and then ignoring later flags) before the construction under test decides.
    sequence = NetRateSequence(DELTA, ALPHA / tests, 1e-300, two_sided=True)
    weighted = mixture_clearing(BET_GRID**2) if construction == "g2" else None
    plug_in = PlugInClearing() if construction == "plug-in" else None
    t = z = a = 0
    for start in range(0, PAIRS, ROUND):
        chunk = d[start : start + ROUND]
        dt, da = int((chunk == 1).sum()), int((chunk == -1).sum())
        t, a, z = t + dt, a + da, z + len(chunk) - dt - da
        if sequence.add(len(chunk), dt, da) is TestDecision.REJECT:
            return False, t + z + a
        if plug_in is not None:
            plug_in.add(dt, len(chunk) - dt - da, da)
            value = plug_in.log_e
        elif weighted is not None:
            value = weighted(t, z, a)
        else:
            value = sequence.clear_log_e
        if value >= -math.log(CLEAR_BETA):
            return True, t + z + a
    return False, PAIRS


def alternatives(rng: np.random.Generator, reps: int, tests: int) -> list[list[object]]:
    """Clear rate and mean pairs of other clearing constructions at the default beta."""
    rows: list[list[object]] = []
    for jitter in (0.0, 0.02, 0.04):
        for theta in (0.0, 0.05, 0.075):
            draws = [outcomes(rng, theta, jitter) for _ in range(reps)]
            row: list[object] = [f"{jitter:.2f}", f"{theta:.4f}"]
            for construction in ("uniform", "g2", "plug-in"):
                results = [clears(d, construction, tests) for d in draws]
                rate = np.mean([c for c, _ in results])
                pairs = np.mean([n for _, n in results])
                row.append(f"{rate:.3f} / {pairs:.0f}")
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000, help="simulated tests per cell")
    parser.add_argument("--tests", type=int, default=18, help="tests in a run (Bonferroni K)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--alt-reps", type=int, default=300, help="simulated tests per cell, other constructions"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows: list[list[object]] = []
    for jitter in JITTERS:
        for theta in THETAS:
            draws = [outcomes(rng, theta, jitter) for _ in range(args.reps)]
            fixed_miss = np.mean([not fixed_flags(d, args.tests) for d in draws])
            row: list[object] = [f"{jitter:.2f}", f"{theta:.4f}", f"{fixed_miss:.3f}"]
            for beta in BETAS:
                results = [sequential_misses(d, args.tests, beta) for d in draws]
                miss = np.mean([m for m, _ in results])
                pairs = np.mean([n for _, n in results])
                row.append(f"{miss:.3f} / {pairs:.0f}")
            rows.append(row)
    columns = [
        "jitter",
        "theta",
        "fixed miss (200 pairs)",
        *(f"sequential beta={b}: miss / mean pairs" for b in BETAS),
    ]
    print_table("Sequential vs fixed: miss rate and pairs per test", columns, rows)
    other_columns = [
        "jitter",
        "theta",
        "mixture, uniform weights (the package's): cleared / mean pairs",
        "mixture, weights ∝ g²",
        "plug-in Kelly bet per round",
    ]
    other_rows = alternatives(rng, args.alt_reps, args.tests)
    print_table(f"Clearing constructions at beta = {CLEAR_BETA}", other_columns, other_rows)
    write_section(
        "sequential",
        "## Sequential vs fixed operating characteristic (`benchmarks/bench_sequential.py`)\n\n"
        f"{machine_line()}; {args.reps} simulated tests per cell, seed {args.seed}, "
        f"K = {args.tests} tests (alpha {ALPHA} / K per test), minimum effect {DELTA}, "
        f"{PAIRS} pairs per test, looks every {ROUND} pairs. A miss: the test is not flagged "
        "(sequential: cleared, or exhausted and the fixed rule would not flag) although theta "
        "is at least the minimum effect (rows with theta = 0 show how much a clean test costs "
        "to clear).\n\n"
        + markdown_table(columns, rows)
        + "\n\nThe default clearing level is beta = 0.3: its miss rate stays within 4 points "
        "of the fixed mode's at every theta, so the two modes are compared at (about) the same "
        "error rates, while a clean test clears in two-thirds of the pairs beta = 0.1 needs "
        "(beta = 0.1 was stricter than the fixed mode it was compared with). beta = 0.5 clears "
        "faster still but misses up to 10 points more often than the fixed mode when theta is "
        "1.25-1.75 times the minimum effect.\n\n"
        f"Other clearing constructions at beta = {CLEAR_BETA} ({args.alt_reps} simulated tests "
        "per cell; *cleared*: share of tests cleared before any flag, a miss when theta is "
        "material). Betting more on large stakes clears a flip-free test sooner but clears a "
        "material effect more often, the same trade as a larger beta; bets fitted each round "
        "to the counts so far are no faster and slower under jitter. Neither is used.\n\n"
        + markdown_table(other_columns, other_rows),
    )


if __name__ == "__main__":
    main()
