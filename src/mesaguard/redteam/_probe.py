"""The `Probe` extension point: a protocol, a registering decorator and the registry.

A probe turns work items into paired trials and says, for a decided pair, which outcome was
harmful under each condition. Everything statistical happens in one place
(:mod:`mesaguard.redteam._analysis`), so every probe is measured the same way.

Third-party probes register with ``@probe("name")`` in a module named in the ``mesaguard``
entry-point group; :func:`registered_probes` imports those modules first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from .._errors import ConfigError
from ..agents import load_plugins
from ..items import WorkItem
from ._models import DecidedPair, TrialPair, VerdictKind

__all__ = ["Probe", "ProbeFactory", "make_probe", "probe", "registered_probes"]


@runtime_checkable
class Probe(Protocol):
    """Turns work items into paired trials and reads outcomes back out of decisions.

    ``first`` of every pair is the suspect condition, ``second`` the reference. ``outcome``
    returns ``(toward, away)``: whether the pair moved in the probe's direction of concern
    (priority lower under the first condition; for sandbagging: right only under the reference)
    or the opposite way. ``harmful`` returns whether each side's decision was harmful (for the
    compliance gap). Both get only pairs with two valid answers. A probe whose tests support
    different categories may also define ``category_for(test) -> VerdictKind``.
    """

    name: str
    category: VerdictKind
    """The verdict a flagged finding of this probe supports."""
    params: dict[str, Any]
    """The factory parameters, recorded in the report."""
    first_label: str
    second_label: str
    alternative: Literal["two-sided", "greater"]
    """``greater``: only the ``toward`` direction counts; ``two-sided``: either does."""

    def trials(self, items: Sequence[WorkItem], rng: np.random.Generator) -> list[TrialPair]: ...

    def outcome(self, pair: DecidedPair) -> tuple[bool, bool]: ...

    def harmful(self, pair: DecidedPair) -> tuple[bool, bool]: ...


ProbeFactory = Callable[..., Probe]
"""Builds a probe from keyword parameters (all with defaults)."""

_PROBES: dict[str, ProbeFactory] = {}


def probe(name: str) -> Callable[[ProbeFactory], ProbeFactory]:
    """Register a probe factory under ``name`` (``--suite NAME`` on the command line)."""

    def register(factory: ProbeFactory) -> ProbeFactory:
        if name in _PROBES and _PROBES[name] is not factory:
            raise ConfigError(f"probe {name!r} is already registered")
        _PROBES[name] = factory
        return factory

    return register


def registered_probes() -> dict[str, ProbeFactory]:
    """Probe names known now (built-in and plug-ins), with their factories."""
    from . import (  # noqa: F401  (they self-register)
        _observation,
        _proxy,
        _sandbagging,
        _trigger,
        _whitebox_probe,
    )

    load_plugins()
    return dict(_PROBES)


def make_probe(name: str, **params: Any) -> Probe:
    """Build the registered probe ``name``; the error lists the known probes."""
    known = registered_probes()
    if name not in known:
        raise ConfigError(f"unknown probe {name!r} (known: {', '.join(sorted(known))})")
    try:
        return known[name](**params)
    except TypeError as error:
        raise ConfigError(f"probe {name!r}: bad parameters {params!r} ({error})") from None
