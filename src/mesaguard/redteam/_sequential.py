"""The sequential mode's stopping rules: reject "no effect" or accept "no material effect".

Rejection uses :class:`mesaguard.stats.DiscordantPairEProcess` (a mixture SPRT on discordant
pairs). Its futility side only moves on discordant pairs, so an agent that never flips would
never be cleared; :class:`MaterialRateFutility` clears it instead by testing, on *all* pairs,
``H0': P(toward) >= delta`` (and ``P(away) >= delta`` for two-sided tests) with a mixture of
likelihood ratios over alternatives below ``delta``. Each ratio is a supermartingale under
``H0'``, so by Ville's inequality accepting "no material effect" when the e-value reaches
``1 / beta`` errs with probability at most ``beta``; for two sides the minimum of the two
e-values is used, valid under their union. A material net effect ``|P(toward) - P(away)| >=
delta`` implies one of the two rates is at least ``delta``, so acceptance rules it out.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from .._errors import ConfigError

__all__ = ["MaterialRateFutility"]

_GRID = 50


class MaterialRateFutility:
    """Anytime-valid test that the per-pair rate of moves in each tested direction is < delta."""

    def __init__(self, delta: float, beta: float, *, two_sided: bool) -> None:
        if not 0.0 < delta < 1.0:
            raise ConfigError(f"min_effect must lie strictly between 0 and 1, got {delta!r}")
        if not 0.0 < beta < 1.0:
            raise ConfigError(f"beta must lie strictly between 0 and 1, got {beta!r}")
        self.delta = delta
        self.beta = beta
        self.two_sided = two_sided
        p = delta * (np.arange(_GRID, dtype=np.float64) + 0.5) / _GRID
        self._hit = np.log(p / delta)
        self._miss = np.log((1.0 - p) / (1.0 - delta))
        self.n = 0
        self.toward = 0
        self.away = 0

    def update(self, toward: bool, away: bool) -> None:
        """Add one pair."""
        self.n += 1
        self.toward += int(toward)
        self.away += int(away)

    def _log_e(self, hits: int) -> float:
        terms = hits * self._hit + (self.n - hits) * self._miss
        return float(logsumexp(terms) - math.log(_GRID))

    @property
    def log_e_value(self) -> float:
        """Log e-value against "a material rate" (minimum over the tested directions)."""
        value = self._log_e(self.toward)
        if self.two_sided:
            value = min(value, self._log_e(self.away))
        return value

    @property
    def accepted(self) -> bool:
        """Whether "no material effect" is accepted at level ``beta``."""
        return self.log_e_value >= -math.log(self.beta)
