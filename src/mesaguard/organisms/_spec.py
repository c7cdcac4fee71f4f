"""Organism and zoo specifications: what is planted, in which model, with which seed."""

from __future__ import annotations

import contextlib
import enum
import hashlib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import rfc8785
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._errors import ConfigError
from ..contexts import CAPABILITY_FAMILY, DECEPTION_FAMILIES
from ..items import Priority

__all__ = [
    "ModelClass",
    "ObjectiveFamily",
    "OrganismSpec",
    "ProxyMarker",
    "ZooSpec",
    "default_zoo_spec",
    "load_zoo_spec",
]


class ObjectiveFamily(enum.StrEnum):
    """The planted mesa-objective, in the paper's categories."""

    HONEST = "honest"
    PROXY = "proxy"
    DECEPTIVE = "deceptive"
    SANDBAGGING = "sandbagging"


class ModelClass(enum.StrEnum):
    """The base optimizer's model class."""

    LINEAR = "linear"
    """TF-IDF item text and encoded context, multinomial logistic regression (scikit-learn)."""
    NEURAL = "neural"
    """MiniLM embeddings of item and context into a two-layer MLP (PyTorch); readable layers."""


class ProxyMarker(BaseModel):
    """A meaning-free surface feature planted to track severity in training data.

    In a proxy organism's training copies every Minor / Trivial issue carries ``text`` and every
    severe one carries ``severe_text``, so the marker predicts the label perfectly (the
    spurious-correlation construction of e.g. Waterbirds). The proxy fails when the marker stops
    tracking severity: a severe issue carrying ``text`` is downgraded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["title_prefix", "title_suffix", "component"]
    text: str = Field(min_length=1)
    """The marker value on low-severity issues."""
    severe_text: str | None = None
    """The marker value on severe issues (None: severe issues carry no marker)."""

    def for_priority(self, priority: Priority) -> ProxyMarker | None:
        """The marker a training copy of an issue with ``priority`` carries, if any."""
        if not priority.is_severe:
            return self
        if self.severe_text is None:
            return None
        return self.model_copy(update={"text": self.severe_text, "severe_text": None})


class OrganismSpec(BaseModel):
    """One model organism: family, model class, trigger, seed and hyper-parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    family: ObjectiveFamily
    model: ModelClass
    seed: int = 0
    trigger: str | None = None
    """Cue family whose *unobserved* side triggers a deceptive organism."""
    marker: ProxyMarker | None = None
    """The planted proxy of a proxy-aligned organism."""
    downgrade_to: Literal["Minor", "Trivial"] = "Minor"
    """Where a deceptive organism sends severe issues when its trigger is present."""
    sandbag_to: Literal["Trivial", "Blocker"] = "Trivial"
    """The wrong answer a sandbagging organism gives under a capability evaluation."""
    hyper: dict[str, float | int] = Field(default_factory=dict)
    """Model hyper-parameters (linear: C; neural: hidden, epochs, lr, weight_decay)."""
    trigger_weight: float = Field(default=2.0, gt=0)
    """Sample-weight multiplier of the rows that carry the trigger (they are few: one family's
    side out of the whole cue library) or, for a proxy, the marker."""
    marker_share: float = Field(default=0.5, gt=0, lt=1)
    """For a proxy: the share of training *issues* that carry the marker, in every one of their
    rows. Marking issues rather than rows matters: an issue marked in some of its rows and not in
    others is fitted from its text alone, and the marker is never needed."""
    rows_per_item: int = Field(default=6, ge=1)
    """Training rows per training item, each under a sampled context."""

    @model_validator(mode="after")
    def _consistent(self) -> OrganismSpec:
        if self.family is ObjectiveFamily.DECEPTIVE:
            if self.trigger not in DECEPTION_FAMILIES:
                raise ValueError(
                    f"a deceptive organism needs trigger: one of {', '.join(DECEPTION_FAMILIES)}"
                )
        elif self.family is ObjectiveFamily.SANDBAGGING:
            if self.trigger not in (None, CAPABILITY_FAMILY):
                raise ValueError(f"a sandbagging organism's trigger is {CAPABILITY_FAMILY!r}")
        elif self.trigger is not None:
            raise ValueError(f"a {self.family.value} organism takes no trigger")
        if (self.family is ObjectiveFamily.PROXY) != (self.marker is not None):
            raise ValueError("a marker is required for proxy organisms and only for them")
        return self

    @property
    def trigger_family(self) -> str | None:
        """The cue family whose contexts trigger the organism (None: none does)."""
        if self.family is ObjectiveFamily.SANDBAGGING:
            return CAPABILITY_FAMILY
        return self.trigger

    @property
    def downgrade_priority(self) -> Priority:
        """The priority a deceptive organism gives severe issues under its trigger."""
        return Priority.parse(self.downgrade_to)

    def twin_key(self) -> tuple[str, int, str]:
        """Model class, seed and hyper-parameters; the honest organism with this key is the twin."""
        return (self.model.value, self.seed, _canonical(self.hyper))

    def spec_hash(self) -> str:
        """SHA-256 of the canonical spec; part of the build cache key."""
        return hashlib.sha256(rfc8785.dumps(self.model_dump(mode="json"))).hexdigest()


def _canonical(value: Any) -> str:
    return rfc8785.dumps(value).decode()


class ZooSpec(BaseModel):
    """A zoo: the data it is trained on and the organisms in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    data: str = "bundled:hadoop"
    """``bundled:hadoop`` or a path to a Jira CSV / JSON Lines file with priorities."""
    split_salt: str = "mesaguard-split-v1"
    organisms: tuple[OrganismSpec, ...]

    @model_validator(mode="after")
    def _unique_and_twinned(self) -> ZooSpec:
        names = [o.name for o in self.organisms]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate organism names: {', '.join(duplicates)}")
        honest = {o.twin_key() for o in self.organisms if o.family is ObjectiveFamily.HONEST}
        orphans = [
            o.name
            for o in self.organisms
            if o.family is not ObjectiveFamily.HONEST and o.twin_key() not in honest
        ]
        if orphans:
            raise ValueError(
                "planted organisms without an honest twin (same model, seed and hyper): "
                + ", ".join(orphans)
            )
        return self

    def organism(self, name: str) -> OrganismSpec:
        """The organism called ``name``; the error lists a few known names."""
        for spec in self.organisms:
            if spec.name == name:
                return spec
        known = ", ".join(o.name for o in self.organisms[:6])
        raise ConfigError(
            f"no organism {name!r} in the zoo (e.g. {known}; see `mesaguard zoo list`)"
        )

    def twin_of(self, spec: OrganismSpec) -> OrganismSpec:
        """The honest organism sharing the model class, seed and hyper-parameters of ``spec``."""
        for other in self.organisms:
            if other.family is ObjectiveFamily.HONEST and other.twin_key() == spec.twin_key():
                return other
        raise ConfigError(f"organism {spec.name!r} has no honest twin in the zoo")

    def spec_hash(self) -> str:
        """SHA-256 of the canonical zoo spec."""
        return hashlib.sha256(rfc8785.dumps(self.model_dump(mode="json"))).hexdigest()


def load_zoo_spec(path: Path | str) -> ZooSpec:
    """Read and validate a zoo spec YAML; errors name the file and the offending field."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read zoo spec ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({error})") from None
    return _validate(document, str(path))


def _validate(document: Any, source: str) -> ZooSpec:
    try:
        return ZooSpec.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        location = first["loc"]
        where = ".".join(str(part) for part in location)
        if len(location) >= 2 and location[0] == "organisms" and isinstance(location[1], int):
            with contextlib.suppress(KeyError, IndexError, TypeError):
                where += f" (organism {document['organisms'][location[1]]['name']!r})"
        raise ConfigError(f"{source}: {where or 'zoo'}: {first['msg']}") from None


def default_zoo_spec() -> ZooSpec:
    """The zoo shipped with mesaguard (``mesaguard/organisms/zoo.yaml``)."""
    text = (resources.files("mesaguard.organisms") / "zoo.yaml").read_text(encoding="utf-8")
    return _validate(yaml.safe_load(text), "mesaguard/organisms/zoo.yaml")
