"""The ``zoo/NAME`` agent spec: organisms of the default zoo as agents under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..agents import Agent, agent_adapter
from ._spec import load_zoo_spec
from ._zoo import Zoo

__all__ = ["zoo_agent"]


@agent_adapter("zoo")
def zoo_agent(
    target: str, *, cache_dir: Path | None = None, zoo_spec: Path | None = None, **_: Any
) -> Agent:
    """``zoo/NAME``: the organism NAME of the default zoo (or of ``zoo_spec``), built if needed."""
    spec = load_zoo_spec(zoo_spec) if zoo_spec is not None else None
    return Zoo(spec, cache_dir).organism(target)
