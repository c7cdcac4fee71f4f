"""Reading a decision out of what a language model replied, and how sure it was.

Models answer in many shapes even when asked for JSON: the object alone, the object in a
fenced block, the object inside prose, or a bare priority word. :func:`parse_reply` accepts all
of them and gives up (returns None) only when no single answer can be read; the adapter then
records an invalid decision with the raw text rather than guessing.

Confidence comes from token log-probabilities when the server returns them: the probability of
the first token of the answer, renormalised over the alternatives at that position that begin an
allowed answer. Without log-probabilities the model's own ``confidence`` field is used.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..items import ActionType, Priority
from ._llm_prompt import STORY_POINT_SCALE

__all__ = ["ParsedReply", "TokenLogprob", "logprob_confidence", "parse_reply"]

DEFAULT_CONFIDENCE = 0.5
"""Confidence of an answer that came with neither log-probabilities nor a confidence field."""

_KEYS = {
    ActionType.SET_PRIORITY: ("priority", "answer", "value", "level", "severity"),
    ActionType.SET_STORY_POINTS: ("story_points", "storypoints", "points", "estimate", "answer"),
    ActionType.ROUTE: ("route", "team", "component", "target", "answer"),
}
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_PRIORITY_WORD = re.compile(
    r"\b(blocker|critical|major|minor|trivial|highest|lowest|high|medium|low)\b", re.IGNORECASE
)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")


@dataclass(frozen=True)
class ParsedReply:
    """The answer read from a reply."""

    value: str | float
    """Priority name, story points, or route target."""
    confidence: float | None
    """The model's own ``confidence`` field, when it gave one in range."""
    rationale: str | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


def parse_reply(text: str, action: ActionType, *, routes: Sequence[str] = ()) -> ParsedReply | None:
    """The answer in a model's reply, or None when it holds no single readable answer."""
    for candidate in _json_objects(text):
        parsed = _from_object(candidate, action, routes)
        if parsed is not None:
            return parsed
    return _from_words(text, action, routes)


def _json_objects(text: str) -> list[dict[str, Any]]:
    """JSON objects in the text: the whole text, fenced blocks, then any embedded object."""
    found: list[dict[str, Any]] = []
    stripped = text.strip()
    sources = [stripped, *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for source in sources:
        try:
            value = json.loads(source)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            found.append(value)
    decoder = json.JSONDecoder()
    start = stripped.find("{")
    while start != -1 and len(found) < 8:
        try:
            value, end = decoder.raw_decode(stripped, start)
        except (json.JSONDecodeError, RecursionError):
            start = stripped.find("{", start + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        start = stripped.find("{", end)
    return found


def _field(obj: dict[str, Any], names: Sequence[str]) -> Any:
    lowered = {str(k).lower().replace("-", "_").replace(" ", "_"): v for k, v in obj.items()}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _confidence(obj: dict[str, Any]) -> float | None:
    raw = _field(obj, ("confidence", "probability", "certainty"))
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if 1.0 < value <= 100.0:
        value /= 100.0  # a percentage
    return value if 0.0 <= value <= 1.0 else None


def _from_object(
    obj: dict[str, Any], action: ActionType, routes: Sequence[str]
) -> ParsedReply | None:
    raw = _field(obj, _KEYS[action])
    value = _value(raw, action, routes)
    if value is None:
        return None
    rationale = _field(obj, ("rationale", "reason", "reasoning", "explanation"))
    return ParsedReply(value, _confidence(obj), rationale if isinstance(rationale, str) else None)


def _value(raw: Any, action: ActionType, routes: Sequence[str]) -> str | float | None:
    if raw is None or isinstance(raw, bool):
        return None
    if action is ActionType.SET_PRIORITY:
        if isinstance(raw, int | str):
            try:
                return str(Priority.parse(raw))
            except ValueError:
                return None
        return None
    if action is ActionType.SET_STORY_POINTS:
        try:
            points = float(raw)
        except (TypeError, ValueError):
            return None
        return points if math.isfinite(points) and points >= 0 else None
    if not isinstance(raw, str) or not raw.strip():
        return None
    target = raw.strip()
    if routes:
        by_lower = {r.lower(): r for r in routes}
        return by_lower.get(target.lower())
    return target


def _from_words(text: str, action: ActionType, routes: Sequence[str]) -> ParsedReply | None:
    """A bare answer: exactly one distinct allowed value named in the text."""
    if action is ActionType.SET_PRIORITY:
        levels = {Priority.parse(m.group(1)) for m in _PRIORITY_WORD.finditer(text)}
        return ParsedReply(str(levels.pop()), None) if len(levels) == 1 else None
    if action is ActionType.SET_STORY_POINTS:
        numbers = {float(m.group(1)) for m in _NUMBER.finditer(text)}
        return ParsedReply(numbers.pop(), None) if len(numbers) == 1 else None
    if routes:
        named = {
            r for r in routes if re.search(rf"(?<!\w){re.escape(r)}(?!\w)", text, re.IGNORECASE)
        }
        return ParsedReply(named.pop(), None) if len(named) == 1 else None
    return None


def allowed_answers(action: ActionType, routes: Sequence[str] = ()) -> list[str]:
    """The answers an action allows, as text (for log-probability renormalisation)."""
    if action is ActionType.SET_PRIORITY:
        return Priority.names()
    if action is ActionType.SET_STORY_POINTS:
        return [str(v) for v in STORY_POINT_SCALE]
    return list(routes)


def logprob_confidence(
    tokens: Sequence[TokenLogprob], value: str | float, allowed: Sequence[str]
) -> float | None:
    """Probability of the answer's first token, renormalised over allowed alternatives.

    The answer is located in the generated text (its last occurrence before any ``confidence``
    field, i.e. the value of the answer field); None when it cannot be found.
    """
    if not tokens:
        return None
    answer = _as_text(value)
    text = "".join(t.token for t in tokens)
    cut = text.lower().find("confidence")
    head = text if cut < 0 else text[:cut]
    position = head.lower().rfind(answer.lower())
    if position < 0:
        return None
    offset = 0
    for token in tokens:
        end = offset + len(token.token)
        if end > position:
            return _renormalised(token, answer, allowed)
        offset = end
    return None


def _as_text(value: str | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _renormalised(token: TokenLogprob, answer: str, allowed: Sequence[str]) -> float:
    chosen = math.exp(token.logprob)
    if not token.top:
        return min(1.0, chosen)
    lowered = [a.lower() for a in allowed] or [answer.lower()]
    mass = 0.0
    seen_chosen = False
    for text, logprob in token.top:
        piece = text.strip().strip('"').lower()
        if piece and any(a.startswith(piece) for a in lowered):
            mass += math.exp(logprob)
            seen_chosen = seen_chosen or text == token.token
    if not seen_chosen:
        mass += chosen
    return min(1.0, chosen / mass) if mass > 0 else min(1.0, chosen)


def tokens_from_openai(logprobs: Any) -> list[TokenLogprob]:
    """Token log-probabilities from an OpenAI (or Ollama) ``logprobs`` payload; [] if absent."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else logprobs
    if not isinstance(content, list):
        return []
    out: list[TokenLogprob] = []
    for entry in content:
        if not isinstance(entry, dict):
            return []
        token, logprob = entry.get("token"), entry.get("logprob")
        if not isinstance(token, str) or not isinstance(logprob, int | float):
            return []
        top = tuple(
            (str(alt["token"]), float(alt["logprob"]))
            for alt in entry.get("top_logprobs") or ()
            if isinstance(alt, dict)
            and isinstance(alt.get("token"), str)
            and isinstance(alt.get("logprob"), int | float)
        )
        out.append(TokenLogprob(token, float(logprob), top))
    return out
