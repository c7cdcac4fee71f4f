"""Versioned prompt templates for LLM triage agents, and the JSON schemas of their answers.

A template is a YAML file under ``mesaguard/agents/prompts/`` named
``<task>.<variant>.v<version>.yaml`` (``priority.zero-shot.v1.yaml``). It holds a system text, a
user text and optional worked examples; ``$placeholders`` are filled with
:class:`string.Template`, so JSON braces in the text need no escaping. The context's whole
framing (:meth:`~mesaguard.contexts.Context.render_prompt`) goes into the system prompt as
``$framing``: the cue under test reaches the model exactly where a deployment harness puts it.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._errors import ConfigError
from ..contexts import Context
from ..items import ActionType, Priority, WorkItem

__all__ = [
    "DESCRIPTION_CHARS",
    "STORY_POINT_SCALE",
    "ChatMessage",
    "PromptTemplate",
    "answer_key",
    "answer_schema",
    "available_templates",
    "default_template",
    "load_template",
]

STORY_POINT_SCALE = (1, 2, 3, 5, 8, 13, 21)
"""The story-point values a template offers (Fibonacci, as most Scrum teams use)."""

DESCRIPTION_CHARS = 2000
"""Descriptions are cut here; the rest is stack traces that only cost context window."""

_TASK_FOR_ACTION = {
    ActionType.SET_PRIORITY: "priority",
    ActionType.SET_STORY_POINTS: "story-points",
    ActionType.ROUTE: "route",
}

ChatMessage = dict[str, str]
"""``{"role": "system" | "user" | "assistant", "content": ...}`` as every chat API takes it."""


class Example(BaseModel):
    """One worked example of a few-shot template: an issue and the reply the model should give."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: dict[str, str]
    answer: dict[str, Any]


class PromptTemplate(BaseModel):
    """A versioned prompt for one action: system and user text plus optional worked examples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """The task: ``priority``, ``story-points`` or ``route``."""
    variant: str
    """``zero-shot`` or ``few-shot``."""
    version: int = Field(ge=1)
    action: ActionType
    system: str
    user: str
    examples: tuple[Example, ...] = ()

    @property
    def ident(self) -> str:
        """``task.variant.vN``: how specs and reports name the template."""
        return f"{self.name}.{self.variant}.v{self.version}"

    def messages(
        self,
        item: WorkItem,
        context: Context,
        *,
        routes: Sequence[str] = (),
        description_chars: int = DESCRIPTION_CHARS,
    ) -> list[ChatMessage]:
        """The chat messages that ask for one decision: system, examples, then the issue.

        The description is cut after ``description_chars`` characters.
        """
        extra = {"routes": ", ".join(routes) if routes else "(any team name)"}
        system = _fill(self.system, {"framing": context.render_prompt(), **extra}, self.ident)
        out: list[ChatMessage] = [{"role": "system", "content": system.strip()}]
        for example in self.examples:
            fields = {**_BLANK_ITEM, **example.item, **extra}
            out.append({"role": "user", "content": _fill(self.user, fields, self.ident).strip()})
            out.append({"role": "assistant", "content": _json_line(example.answer)})
        fields = {**_item_fields(item, description_chars), **extra}
        out.append({"role": "user", "content": _fill(self.user, fields, self.ident).rstrip()})
        return out


_BLANK_ITEM = {"key": "", "issue_type": "Bug", "title": "", "component": "", "description": ""}


def _item_fields(item: WorkItem, description_chars: int) -> dict[str, str]:
    return {
        "key": item.key,
        "issue_type": item.issue_type,
        # One line each: the title and component are read back line by line by test servers.
        "title": " ".join(item.title.split()),
        "component": " ".join((item.component or "").split()),
        "description": item.description[:description_chars],
    }


def _fill(text: str, fields: dict[str, str], ident: str) -> str:
    try:
        return string.Template(text).substitute(fields)
    except (KeyError, ValueError) as error:
        raise ConfigError(f"prompt template {ident}: bad placeholder {error}") from None


def _json_line(answer: dict[str, Any]) -> str:
    import json

    return json.dumps(answer, ensure_ascii=False)


def answer_key(action: ActionType) -> str:
    """The JSON field that carries the answer of an action."""
    return {
        ActionType.SET_PRIORITY: "priority",
        ActionType.SET_STORY_POINTS: "story_points",
        ActionType.ROUTE: "route",
    }[action]


def answer_schema(action: ActionType, routes: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON schema of a reply (for structured-output APIs): the answer and a confidence."""
    value: dict[str, Any]
    if action is ActionType.SET_PRIORITY:
        value = {"type": "string", "enum": Priority.names()}
    elif action is ActionType.SET_STORY_POINTS:
        value = {"type": "integer", "enum": list(STORY_POINT_SCALE)}
    else:
        value = {"type": "string", "enum": list(routes)} if routes else {"type": "string"}
    key = answer_key(action)
    return {
        "type": "object",
        "properties": {key: value, "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
        "required": [key, "confidence"],
        "additionalProperties": False,
    }


def available_templates() -> list[str]:
    """Identifiers of the bundled templates (``priority.zero-shot.v1`` …), sorted."""
    folder = resources.files("mesaguard.agents") / "prompts"
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


@cache
def _bundled(ident: str) -> PromptTemplate:
    folder = resources.files("mesaguard.agents") / "prompts"
    entry = folder / f"{ident}.yaml"
    if not entry.is_file():
        raise ConfigError(
            f"unknown prompt template {ident!r}; bundled: {', '.join(available_templates())}, "
            "or give the path of a .yaml file"
        )
    return _parse(entry.read_text(encoding="utf-8"), f"bundled template {ident}")


def load_template(name: str | Path) -> PromptTemplate:
    """A bundled template by identifier (``priority.few-shot.v1``) or a YAML file by path.

    A bundled identifier without a version (``priority.few-shot``) picks its newest version.
    """
    text = str(name)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        path = Path(text).expanduser()
        try:
            return _parse(path.read_text(encoding="utf-8"), str(path))
        except OSError as error:
            raise ConfigError(f"cannot read prompt template {path}: {error}") from None
    if not any(part.startswith("v") and part[1:].isdigit() for part in text.split(".")[-1:]):
        versions = [t for t in available_templates() if t.rsplit(".", 1)[0] == text]
        if versions:
            text = max(versions, key=lambda t: int(t.rsplit(".v", 1)[1]))
    return _bundled(text)


def _parse(text: str, where: str) -> PromptTemplate:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{where}: not valid YAML ({error})") from None
    try:
        return PromptTemplate.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise ConfigError(f"{where}: field {field!r}: {first['msg']}") from None


def default_template(action: ActionType, *, few_shot: bool = False) -> PromptTemplate:
    """The newest bundled template for an action."""
    variant = "few-shot" if few_shot else "zero-shot"
    return load_template(f"{_TASK_FOR_ACTION[action]}.{variant}")
