"""Calibration: null agents are flagged at most alpha of the time, planted effects are found.

Each check runs 400 seeded replicates and compares a rate with its nominal value plus a
binomial tolerance of three standard errors (about 0.033 at alpha = 0.05), so a test that is
miscalibrated by more than sampling noise fails. The "teeth" tests show the harness would
catch a miscalibrated procedure: unadjusted multiple testing and naive optional stopping both
exceed the tolerance on the same simulated data.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binom

from mesaguard.stats import (
    PairedCounts,
    SequentialDecision,
    compliance_gap_from_counts,
    holm,
    mcnemar_exact,
    ordinal_shift,
    sequential_flip_test,
)
from mesaguard.stats._paired import newcombe_paired_bounds

REPLICATES = 400
ALPHA = 0.05
TOLERANCE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPLICATES)

# Cell probabilities (both, unobserved only, observed only, neither).
NULL_CELLS = (0.2, 0.1, 0.1, 0.6)
RARE_NULL_CELLS = (0.05, 0.02, 0.02, 0.91)
PLANTED_CELLS = (0.2, 0.15, 0.05, 0.6)


def _tables(seed: int, n: int, cells: tuple[float, ...]) -> np.ndarray:
    """``REPLICATES`` paired tables of ``n`` pairs, one row (a, b, c, d) per replicate."""
    return np.random.default_rng(seed).multinomial(n, cells, size=REPLICATES)


def _mcnemar_rejection_rate(tables: np.ndarray) -> float:
    p = np.array([mcnemar_exact(int(b), int(c)) for _, b, c, _ in tables])
    return float(np.mean(p <= ALPHA))


def test_null_agent_mcnemar_false_positive_rate_stays_at_alpha() -> None:
    """An agent whose harmful rate does not depend on the context is flagged in <= alpha."""
    for seed, n, cells in ((1, 200, NULL_CELLS), (2, 300, RARE_NULL_CELLS), (3, 40, NULL_CELLS)):
        rate = _mcnemar_rejection_rate(_tables(seed, n, cells))
        assert rate <= ALPHA + TOLERANCE, (n, cells, rate)


def test_planted_gap_mcnemar_power_is_high() -> None:
    """A 10-point compliance gap over 300 pairs is detected in at least 90% of runs."""
    rate = _mcnemar_rejection_rate(_tables(4, 300, PLANTED_CELLS))
    assert rate >= 0.9, rate


def test_newcombe_interval_covers_the_true_gap() -> None:
    """The paired 95% interval covers the true gap in >= 95% (minus tolerance) of replicates.

    Null and planted gaps, small and large samples, common and rare outcomes.
    """
    settings = [
        (NULL_CELLS, 30),
        (NULL_CELLS, 200),
        (PLANTED_CELLS, 30),
        (PLANTED_CELLS, 200),
        (RARE_NULL_CELLS, 100),
        ((0.3, 0.02, 0.01, 0.67), 200),
        ((0.0, 0.1, 0.0, 0.9), 50),
    ]
    for seed, (cells, n) in enumerate(settings, start=10):
        tables = _tables(seed, n, cells).T
        low, high = newcombe_paired_bounds(*tables, 0.95)
        truth = cells[1] - cells[2]
        coverage = float(np.mean((low <= truth + 1e-12) & (truth - 1e-12 <= high)))
        assert coverage >= 0.95 - TOLERANCE, (cells, n, coverage)
        # The public wrapper gives the same interval as the vectorised kernel.
        a, b, c, d = (int(v) for v in tables[:, 0])
        one = compliance_gap_from_counts(
            PairedCounts(both=a, first_only=b, second_only=c, neither=d)
        )
        assert one.gap_ci == (float(low[0]), float(high[0]))


def _family_p_values(
    seed: int, cells_per_family: list[tuple[float, ...]], n: int = 200
) -> np.ndarray:
    """McNemar p-values, one row per replicate, one column per cue family."""
    columns = []
    for offset, cells in enumerate(cells_per_family):
        tables = _tables(seed + offset, n, cells)
        columns.append([mcnemar_exact(int(b), int(c)) for _, b, c, _ in tables])
    return np.array(columns).T


def test_holm_keeps_family_wise_error_at_alpha_and_finds_the_planted_family() -> None:
    """Holm flags a null family in <= alpha of runs and finds a planted one.

    Four null families: Holm flags any in <= alpha (unadjusted testing does not); with one
    planted family (400 pairs) Holm finds it in >= 90% and still rarely flags the null ones.
    """
    null = _family_p_values(100, [NULL_CELLS] * 4)
    holm_any = np.mean([any(holm(list(row)).reject) for row in null])
    unadjusted_any = np.mean((null <= ALPHA).any(axis=1))
    assert holm_any <= ALPHA + TOLERANCE, holm_any
    assert unadjusted_any > ALPHA + TOLERANCE, unadjusted_any

    mixed = _family_p_values(200, [PLANTED_CELLS, NULL_CELLS, NULL_CELLS, NULL_CELLS], n=400)
    rejections = np.array([holm(list(row)).reject for row in mixed])
    assert rejections[:, 0].mean() >= 0.9, rejections[:, 0].mean()
    assert rejections[:, 1:].any(axis=1).mean() <= ALPHA + TOLERANCE


def _discordant_streams(seed: int, length: int, share: float) -> np.ndarray:
    """Per replicate, the direction of each flip: True = harmful only when unobserved."""
    return np.random.default_rng(seed).random((REPLICATES, length)) < share


def _embed(rng: np.random.Generator, toward: np.ndarray, flip_rate: float) -> tuple:
    """Interleave flips with concordant pairs, as an agent with the given flip rate would."""
    n = int(toward.size / flip_rate)
    flips = np.sort(rng.choice(n, size=toward.size, replace=False))
    base = rng.random(n) < 0.3
    unobserved, observed = base.copy(), base.copy()
    unobserved[flips] = toward
    observed[flips] = ~toward
    return unobserved, observed


def test_sequential_test_under_optional_stopping_stays_at_alpha() -> None:
    """Stopping at the first rejection, checked after every pair, keeps a null agent at alpha.

    Naive repeated exact McNemar on the same streams exceeds alpha by far.
    """
    streams = _discordant_streams(300, 500, 0.5)
    rejected = [
        sequential_flip_test(row, ~row).decision is SequentialDecision.REJECT for row in streams
    ]
    assert np.mean(rejected) <= ALPHA + TOLERANCE, np.mean(rejected)
    two_sided = [
        sequential_flip_test(row, ~row, alternative="two-sided").decision
        is SequentialDecision.REJECT
        for row in streams
    ]
    assert np.mean(two_sided) <= ALPHA + TOLERANCE, np.mean(two_sided)

    toward = np.cumsum(streams, axis=1)
    m = np.arange(1, streams.shape[1] + 1)
    naive_p = np.minimum(1.0, 2 * binom.cdf(np.minimum(toward, m - toward), m, 0.5))
    naive = np.mean((naive_p <= ALPHA).any(axis=1))
    assert naive > ALPHA + TOLERANCE, naive


def test_sequential_test_with_concordant_pairs_interleaved_stays_at_alpha() -> None:
    """A null agent flipping 20% of items, 1,500 pairs per run, checked after every pair."""
    rng = np.random.default_rng(301)
    streams = _discordant_streams(302, 300, 0.5)
    rejected = [
        sequential_flip_test(*_embed(rng, row, 0.2)).decision is SequentialDecision.REJECT
        for row in streams
    ]
    assert np.mean(rejected) <= ALPHA + TOLERANCE, np.mean(rejected)


def test_sequential_test_finds_a_planted_asymmetry_early() -> None:
    """A planted asymmetry is found early.

    With 20% flips, 75% of them harmful when unobserved, the test rejects within 1,000 pairs
    in >= 95% of runs, with a median stop of at most 300 pairs.
    """
    rng = np.random.default_rng(400)
    streams = _discordant_streams(401, 200, 0.75)
    results = [sequential_flip_test(*_embed(rng, row, 0.2)) for row in streams]
    power = np.mean([r.decision is SequentialDecision.REJECT for r in results])
    median_stop = np.median([r.n_pairs for r in results])
    assert power >= 0.95, power
    assert median_stop <= 300, median_stop


def test_futility_error_stays_at_beta() -> None:
    """Futility ``accept`` errs in <= beta of runs and fires when there is no asymmetry.

    When the true harmful share equals the futility share, ``accept`` comes in <= beta of
    runs; with no asymmetry it comes in at least 90% of runs.
    """
    beta = 0.1
    tolerance = 3 * math.sqrt(beta * (1 - beta) / REPLICATES)
    at_share = _discordant_streams(500, 300, 0.75)
    wrong = np.mean(
        [
            sequential_flip_test(row, ~row, futility_share=0.75, futility_beta=beta).decision
            is SequentialDecision.ACCEPT
            for row in at_share
        ]
    )
    assert wrong <= beta + tolerance, wrong
    balanced = _discordant_streams(501, 300, 0.5)
    accepted = np.mean(
        [
            sequential_flip_test(row, ~row, futility_share=0.75, futility_beta=beta).decision
            is SequentialDecision.ACCEPT
            for row in balanced
        ]
    )
    assert accepted >= 0.9, accepted


def test_wilcoxon_null_rate_and_power_on_priority_shifts() -> None:
    """Symmetric priority noise is flagged in <= alpha; a downgrade habit is found >= 90%."""
    rng = np.random.default_rng(600)
    observed = rng.integers(1, 6, (REPLICATES, 100))
    noise = rng.choice([-1, 0, 0, 0, 1], size=(REPLICATES, 100))
    null = np.clip(observed + noise, 1, 5)
    null_rate = np.mean(
        [ordinal_shift(u, o).p_value <= ALPHA for u, o in zip(null, observed, strict=True)]
    )
    assert null_rate <= ALPHA + TOLERANCE, null_rate
    downgrade = rng.random((REPLICATES, 100)) < 0.35
    shifted = np.clip(null - downgrade, 1, 5)
    power = np.mean(
        [ordinal_shift(u, o).p_value <= ALPHA for u, o in zip(shifted, observed, strict=True)]
    )
    assert power >= 0.9, power
