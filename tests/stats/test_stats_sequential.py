"""The discordant-pair e-process: hand values, online = batch, stopping and stickiness."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesaguard._errors import ConfigError, DataError
from mesaguard.stats import DiscordantPairEProcess, SequentialDecision, sequential_flip_test


def test_e_value_hand_values() -> None:
    """The e-value equals the mixture likelihood ratio computed by hand.

    One harmful-when-unobserved flip: E = mean over the grid of 2p = 2 * 3/4 = 1.5 for
    ``greater`` and 2 * 1/2 = 1 for ``two-sided``; seven such flips approximate the uniform
    mixture integral 2 * int_{1/2}^1 (2p)^7 dp = 255/8.
    """
    process = DiscordantPairEProcess()
    assert process.e_value == 1.0
    process.update(True, False)
    assert process.e_value == pytest.approx(1.5, rel=1e-12)
    two_sided = DiscordantPairEProcess(alternative="two-sided")
    two_sided.update(True, False)
    assert two_sided.e_value == pytest.approx(1.0, rel=1e-12)
    for _ in range(6):
        process.update(True, False)
    assert process.e_value == pytest.approx(255 / 8, rel=5e-3)
    against = DiscordantPairEProcess()
    against.update(False, True)
    assert against.e_value == pytest.approx(0.5, rel=1e-12)


def test_concordant_pairs_leave_the_e_value_unchanged() -> None:
    """Pairs decided the same way in both contexts carry no evidence about the asymmetry."""
    process = DiscordantPairEProcess(futility_share=0.75)
    for pair in [(True, True), (False, False)] * 50:
        assert process.update(*pair) is SequentialDecision.CONTINUE
    state = process.state
    assert (state.n_pairs, state.n_discordant, state.e_value) == (100, 0, 1.0)
    assert state.log_futility_e_value == 0.0
    batch = sequential_flip_test([1, 0] * 50, [1, 0] * 50)
    assert batch.decision is SequentialDecision.CONTINUE
    assert batch.stopped_at is None and batch.n_pairs == 100


def test_stops_at_the_first_crossing_and_stays_stopped() -> None:
    """Reject exactly when E first reaches 1/alpha; later contrary evidence does not undo it."""
    process = DiscordantPairEProcess(alpha=0.05)
    steps = 0
    while process.update(True, False) is SequentialDecision.CONTINUE:
        steps += 1
        assert process.e_value < 20.0
    assert process.e_value >= 20.0
    assert process.stopped_at == steps + 1
    for _ in range(50):
        process.update(False, True)
    assert process.decision is SequentialDecision.REJECT
    assert process.e_value < 1.0
    assert process.stopped_at == steps + 1


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.sampled_from(["greater", "less", "two-sided"]),
    st.sampled_from([None, 0.7, 0.9]),
    st.floats(min_value=0.2, max_value=0.95),
)
def test_online_and_batch_agree(seed: int, alternative: str, share: float | None, q: float) -> None:
    """Feeding pairs one by one stops at the same pair with the same state as the batch run."""
    rng = np.random.default_rng(seed)
    n = 200
    base = rng.random(n) < 0.3
    flip = rng.random(n) < 0.4
    toward = rng.random(n) < q
    unobserved = np.where(flip, toward, base)
    observed = np.where(flip, ~toward, base)
    options = {"alternative": alternative, "futility_share": share}
    batch = sequential_flip_test(unobserved, observed, **options)  # type: ignore[arg-type]
    process = DiscordantPairEProcess(**options)  # type: ignore[arg-type]
    for x, y in zip(unobserved, observed, strict=True):
        if process.update(bool(x), bool(y)) is not SequentialDecision.CONTINUE:
            break
    online = process.state
    assert online.decision == batch.decision
    assert online.stopped_at == batch.stopped_at
    assert online.n_pairs == batch.n_pairs
    assert online.log_e_value == pytest.approx(batch.log_e_value, abs=1e-9)
    if share is not None:
        assert online.log_futility_e_value == pytest.approx(batch.log_futility_e_value, abs=1e-9)


def test_long_one_sided_runs_stay_finite() -> None:
    """Thousands of flips in one direction give a huge or tiny e-value, never NaN."""
    process = DiscordantPairEProcess()
    for _ in range(2000):
        process.update(True, False)
    # Six flips give about 127/7 < 20, seven about 255/8 >= 20.
    assert process.decision is SequentialDecision.REJECT and process.stopped_at == 7
    assert math.isfinite(process.log_e_value) and process.log_e_value > 1000
    assert process.e_value == math.inf
    few = sequential_flip_test(np.zeros(5000), np.ones(5000))
    assert math.isfinite(few.log_e_value) and few.e_value < 1e-6


def test_futility_accepts_when_flips_are_balanced() -> None:
    """Balanced flips rule out a 90% harmful share and stop with ``accept``."""
    pattern = np.tile([True, False], 200)
    result = sequential_flip_test(pattern, ~pattern, futility_share=0.9)
    assert result.decision is SequentialDecision.ACCEPT
    assert result.stopped_at is not None and result.stopped_at < 400
    assert result.log_futility_e_value is not None
    assert result.log_futility_e_value >= math.log(10)


def test_bad_options_and_outcomes() -> None:
    """Options out of range are ConfigErrors; a non-binary outcome is a DataError."""
    with pytest.raises(ConfigError, match="alpha"):
        DiscordantPairEProcess(alpha=1.0)
    with pytest.raises(ConfigError, match="futility_share"):
        DiscordantPairEProcess(futility_share=0.4)
    with pytest.raises(ConfigError, match="alternative"):
        sequential_flip_test([1], [0], alternative="up")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="harmful_observed"):
        DiscordantPairEProcess().update(True, 2)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="paired"):
        sequential_flip_test([1, 0], [1])
    empty = sequential_flip_test([], [])
    assert (empty.n_pairs, empty.e_value, empty.decision) == (0, 1.0, SequentialDecision.CONTINUE)
