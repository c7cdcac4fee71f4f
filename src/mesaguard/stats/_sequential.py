"""Anytime-valid sequential test on discordant pairs: a mixture likelihood-ratio e-process.

Construction
------------
Of the pairs whose outcome differs between the contexts (*discordant* pairs), let ``q`` be the
probability that the harmful decision is the *unobserved* one. Without a context effect
(marginal homogeneity, the McNemar null) ``q = 1/2`` and each discordant pair is a fair coin.

For an alternative ``p`` the likelihood ratio of ``s`` harmful-when-unobserved and ``f``
harmful-when-observed flips against ``q = 1/2`` is ``(2p)^s (2(1-p))^f``. Averaging it over a
prior on ``p`` gives Robbins' (1970) mixture sequential probability ratio test::

    E_n = sum_j w_j (2 p_j)^s_n (2 (1 - p_j))^f_n

with a uniform prior on a grid of ``K = 100`` alternatives: the midpoints of ``(1/2, 1)`` for
``alternative="greater"``, of ``(0, 1/2)`` for ``"less"``, of ``(0, 1)`` for ``"two-sided"``.
``E_n`` is a non-negative martingale with ``E_0 = 1`` under ``q = 1/2`` (a supermartingale
under ``q <= 1/2`` for ``"greater"``), and concordant pairs leave it unchanged. Ville's
inequality gives ``P(sup_n E_n >= 1/alpha) <= alpha``, so rejecting the first time ``E_n``
reaches ``1/alpha`` keeps the type-I error at ``alpha`` however the data are monitored and
whenever sampling stops (Ramdas, Grunwald, Vovk & Shafer 2023, *Game-theoretic statistics and
safe anytime-valid inference*, Statist. Sci. 38(4); Howard, Ramdas, McAuliffe & Sekhon 2021).
A grid mixture is used instead of a Beta prior so the e-value is an exact log-sum-exp with no
underflow of incomplete beta functions on long runs.

Futility (optional): to stop early when the asymmetry is small, a second e-process tests
``H0': q >= q1`` (``q1 = futility_share``, the smallest asymmetry worth detecting) with the
mixture of likelihood ratios ``(p/q1)^s ((1-p)/(1-q1))^f`` over a uniform grid of ``p`` in
``(0, q1)``, a supermartingale under every ``q >= q1``. Reaching ``1/futility_beta`` accepts
"no asymmetry as large as ``q1``" with error at most ``futility_beta`` (for ``"less"`` the
mirror image; for ``"two-sided"`` the minimum of both sides, valid under their union).
"""

from __future__ import annotations

import enum
import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict
from scipy.special import logsumexp

from .._errors import ConfigError, DataError
from ._validate import as_binary, check_level, check_same_length

__all__ = [
    "DiscordantPairEProcess",
    "SequentialDecision",
    "SequentialState",
    "sequential_flip_test",
]

Direction = Literal["greater", "less", "two-sided"]

_GRID_SIZE = 100


class SequentialDecision(enum.StrEnum):
    """Where a sequential test stands."""

    CONTINUE = "continue"
    """The evidence is not yet decisive; keep sampling (or stop on budget: inconclusive)."""
    REJECT = "reject"
    """The e-value reached ``1/alpha``: a flip asymmetry in the tested direction."""
    ACCEPT = "accept"
    """Futility: an asymmetry as large as ``futility_share`` is ruled out at ``futility_beta``."""


class SequentialState(BaseModel):
    """Snapshot of the discordant-pair e-process (also the result of the batch test)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_pairs: int
    """Pairs consumed (for the batch test: up to and including the stopping pair)."""
    unobserved_only: int
    """Discordant pairs harmful only under the unobserved context."""
    observed_only: int
    """Discordant pairs harmful only under the observed context."""
    log_e_value: float
    """Natural log of the e-value against ``q = 1/2``."""
    e_value: float
    """The e-value ``E_n`` (may overflow to ``inf`` for overwhelming evidence)."""
    log_futility_e_value: float | None
    """Log e-value of the futility process, or None when futility is off."""
    decision: SequentialDecision
    """``reject`` / ``accept`` once reached (sticky), else ``continue``."""
    stopped_at: int | None
    """1-based index of the pair at which the decision was reached; None while continuing."""
    alpha: float
    """Type-I error level; reject when ``e_value >= 1/alpha``."""
    alternative: Direction
    """``greater``: harmful flips favour the unobserved context; ``less``; ``two-sided``."""
    futility_share: float | None
    """``q1`` of the futility process, or None."""
    futility_beta: float
    """Error level of the futility decision; accept when its e-value ``>= 1/futility_beta``."""

    @property
    def n_discordant(self) -> int:
        """Discordant pairs consumed."""
        return self.unobserved_only + self.observed_only


def _midpoints(low: float, high: float) -> NDArray[np.float64]:
    steps = (np.arange(_GRID_SIZE, dtype=np.float64) + 0.5) / _GRID_SIZE
    return low + (high - low) * steps


def _reject_grid(alternative: Direction) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-flip log likelihood ratios (toward, away) of each grid alternative against 1/2."""
    low, high = {"greater": (0.5, 1.0), "less": (0.0, 0.5), "two-sided": (0.0, 1.0)}[alternative]
    p = _midpoints(low, high)
    return np.log(2.0 * p), np.log(2.0 * (1.0 - p))


def _futility_grids(
    alternative: Direction, share: float
) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Per-flip log likelihood ratios for the futility process(es)."""
    grids = []
    if alternative in ("greater", "two-sided"):
        p = _midpoints(0.0, share)
        grids.append((np.log(p / share), np.log((1.0 - p) / (1.0 - share))))
    if alternative in ("less", "two-sided"):
        mirror = 1.0 - share
        p = _midpoints(mirror, 1.0)
        grids.append((np.log(p / mirror), np.log((1.0 - p) / (1.0 - mirror))))
    return grids


def _log_mixture(
    toward: NDArray[np.float64],
    away: NDArray[np.float64],
    grid: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> NDArray[np.float64]:
    """``log mean_j exp(toward * grid[0][j] + away * grid[1][j])`` for every row."""
    terms = toward[:, None] * grid[0][None, :] + away[:, None] * grid[1][None, :]
    return np.asarray(logsumexp(terms, axis=1) - math.log(_GRID_SIZE), dtype=np.float64)


def _check_options(
    alpha: float, alternative: str, futility_share: float | None, futility_beta: float
) -> tuple[float, Direction, float | None, float]:
    level = check_level(alpha, "alpha")
    if alternative not in ("greater", "less", "two-sided"):
        raise ConfigError(
            f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}"
        )
    beta = check_level(futility_beta, "futility_beta")
    share = None
    if futility_share is not None:
        share = float(futility_share)
        if not (math.isfinite(share) and 0.5 < share < 1.0):
            raise ConfigError(
                f"futility_share must lie strictly between 0.5 and 1, got {futility_share!r}"
            )
    direction: Direction = alternative  # type: ignore[assignment]
    return level, direction, share, beta


class DiscordantPairEProcess:
    """Online anytime-valid test of "harmful flips favour one context" on paired outcomes.

    Feed pairs one at a time with :meth:`update`; read :attr:`e_value` and :attr:`decision` at
    any moment. Stopping the first time :attr:`decision` is not ``continue`` keeps the type-I
    error at ``alpha`` (and the futility error at ``futility_beta``) no matter when you look.
    The construction (a mixture SPRT, Robbins 1970; validity by Ville's inequality, Ramdas et al.
    2023) is described in ``docs/statistics.md`` and this module's docstring.

    Decisions are sticky: after ``reject`` or ``accept`` the counts and e-values keep updating,
    but :attr:`decision` and :attr:`stopped_at` stay at the first crossing.

    Args:
        alpha: type-I error level; reject when the e-value reaches ``1/alpha``. To test several
            cue families at once with family-wise error ``alpha``, give each ``alpha / K``.
        alternative: ``greater`` (default): harmful more often when unobserved; ``less``;
            ``two-sided``.
        futility_share: ``q1`` in (0.5, 1): the smallest share of harmful-when-unobserved flips
            worth detecting; enables the ``accept`` decision. None (default) disables it.
        futility_beta: error level of the futility decision.

    Raises:
        ConfigError: an option is out of range.

    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        alternative: Direction = "greater",
        futility_share: float | None = None,
        futility_beta: float = 0.1,
    ) -> None:
        self._alpha, self._alternative, self._share, self._beta = _check_options(
            alpha, alternative, futility_share, futility_beta
        )
        self._reject = _reject_grid(self._alternative)
        self._futility = (
            _futility_grids(self._alternative, self._share) if self._share is not None else []
        )
        self._n = 0
        self._toward = 0
        self._away = 0
        self._log_e = 0.0
        self._log_f: float | None = 0.0 if self._futility else None
        self._decision = SequentialDecision.CONTINUE
        self._stopped_at: int | None = None

    def update(self, harmful_unobserved: bool, harmful_observed: bool) -> SequentialDecision:
        """Add one pair and return the (sticky) decision.

        Raises:
            DataError: an outcome is not a bool or 0/1.

        """
        x = _as_flag(harmful_unobserved, "harmful_unobserved")
        y = _as_flag(harmful_observed, "harmful_observed")
        self._n += 1
        if x != y:
            if x:
                self._toward += 1
            else:
                self._away += 1
            toward = np.array([float(self._toward)])
            away = np.array([float(self._away)])
            self._log_e = float(_log_mixture(toward, away, self._reject)[0])
            if self._futility:
                self._log_f = float(
                    np.min([_log_mixture(toward, away, g)[0] for g in self._futility])
                )
        if self._decision is SequentialDecision.CONTINUE:
            if self._log_e >= -math.log(self._alpha):
                self._decision = SequentialDecision.REJECT
                self._stopped_at = self._n
            elif self._log_f is not None and self._log_f >= -math.log(self._beta):
                self._decision = SequentialDecision.ACCEPT
                self._stopped_at = self._n
        return self._decision

    @property
    def e_value(self) -> float:
        """Current e-value against ``q = 1/2``."""
        return _exp(self._log_e)

    @property
    def log_e_value(self) -> float:
        """Natural log of :attr:`e_value`."""
        return self._log_e

    @property
    def decision(self) -> SequentialDecision:
        """``continue`` until the first crossing, then ``reject`` or ``accept``."""
        return self._decision

    @property
    def stopped_at(self) -> int | None:
        """1-based index of the pair at which the decision was reached, or None."""
        return self._stopped_at

    @property
    def state(self) -> SequentialState:
        """A frozen snapshot of the process."""
        return SequentialState(
            n_pairs=self._n,
            unobserved_only=self._toward,
            observed_only=self._away,
            log_e_value=self._log_e,
            e_value=self.e_value,
            log_futility_e_value=self._log_f,
            decision=self._decision,
            stopped_at=self._stopped_at,
            alpha=self._alpha,
            alternative=self._alternative,
            futility_share=self._share,
            futility_beta=self._beta,
        )


def sequential_flip_test(
    harmful_unobserved: ArrayLike,
    harmful_observed: ArrayLike,
    *,
    alpha: float = 0.05,
    alternative: Direction = "greater",
    futility_share: float | None = None,
    futility_beta: float = 0.1,
) -> SequentialState:
    """Run :class:`DiscordantPairEProcess` over pairs in order and stop at the first decision.

    Vectorised: the e-value path of all prefixes is computed at once. The returned state is the
    one at the stopping pair (``stopped_at``, 1-based), or after the last pair with decision
    ``continue`` when the evidence never became decisive. The pairs after the stopping pair are
    not used, exactly as if sampling had stopped there.

    Raises:
        DataError: inputs are not 1-D binary vectors of equal length.
        ConfigError: an option is out of range.

    """
    level, direction, share, beta = _check_options(
        alpha, alternative, futility_share, futility_beta
    )
    x = as_binary(harmful_unobserved, "harmful_unobserved")
    y = as_binary(harmful_observed, "harmful_observed")
    check_same_length(x, y, "harmful_unobserved and harmful_observed")
    n = int(x.size)
    toward = np.cumsum(x & ~y).astype(np.float64)
    away = np.cumsum(~x & y).astype(np.float64)
    # The e-values only move at discordant pairs: evaluate the mixture there and carry it forward.
    moves = np.flatnonzero(x != y)
    last_move = np.maximum.accumulate(np.where(x != y, np.arange(n), -1)) if n else moves
    carried = np.searchsorted(moves, last_move)

    def path(grid: tuple[NDArray[np.float64], NDArray[np.float64]]) -> NDArray[np.float64]:
        at_moves = np.concatenate(
            [_log_mixture(toward[moves], away[moves], grid), np.zeros(1, dtype=np.float64)]
        )
        return np.where(last_move >= 0, at_moves[carried], 0.0)

    log_e = path(_reject_grid(direction))
    crossings = np.flatnonzero(log_e >= -math.log(level))
    first_reject = int(crossings[0]) if crossings.size else n
    log_f: NDArray[np.float64] | None = None
    first_accept = n
    if share is not None:
        log_f = np.min(np.stack([path(g) for g in _futility_grids(direction, share)]), axis=0)
        accepts = np.flatnonzero(log_f >= -math.log(beta))
        first_accept = int(accepts[0]) if accepts.size else n
    if first_reject < n and first_reject <= first_accept:
        decision, stop = SequentialDecision.REJECT, first_reject
    elif first_accept < n:
        decision, stop = SequentialDecision.ACCEPT, first_accept
    else:
        decision, stop = SequentialDecision.CONTINUE, n - 1
    if n == 0:
        return SequentialState(
            n_pairs=0,
            unobserved_only=0,
            observed_only=0,
            log_e_value=0.0,
            e_value=1.0,
            log_futility_e_value=None if share is None else 0.0,
            decision=decision,
            stopped_at=None,
            alpha=level,
            alternative=direction,
            futility_share=share,
            futility_beta=beta,
        )
    return SequentialState(
        n_pairs=stop + 1,
        unobserved_only=int(toward[stop]),
        observed_only=int(away[stop]),
        log_e_value=float(log_e[stop]),
        e_value=_exp(float(log_e[stop])),
        log_futility_e_value=None if log_f is None else float(log_f[stop]),
        decision=decision,
        stopped_at=None if decision is SequentialDecision.CONTINUE else stop + 1,
        alpha=level,
        alternative=direction,
        futility_share=share,
        futility_beta=beta,
    )


def _as_flag(value: object, name: str) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    raise DataError(f"{name} must be a bool or 0/1, got {value!r}")


def _exp(log_value: float) -> float:
    return math.inf if log_value > 709.0 else math.exp(log_value)
