"""The constitution document: articles, rules with CEL conditions, loading and validation."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import cel
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ._errors import ConstitutionError
from ._policy import (
    DecisionFacts,
    Effect,
    Evaluation,
    PolicyInput,
    RuleCheck,
    RuleHit,
    combine,
)

__all__ = ["Article", "Constitution", "Rule", "default_constitution"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+)")


class Article(BaseModel):
    """A principle in words; rules cite the article they implement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    text: str = Field(min_length=1)


class Rule(BaseModel):
    """A condition over a decision (a CEL expression) and the effect when it holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID)
    article: str
    """Id of the article this rule implements."""
    condition: str = Field(min_length=1)
    """CEL expression over ``decision``, ``item``, ``change``, ``autonomy``, ``verdict``,
    ``tenant`` (see `PolicyInput`); must evaluate to a bool."""
    effect: Effect
    reason: str = Field(min_length=1)
    """Shown to reviewers when the rule fires."""

    @field_validator("condition", mode="before")
    @classmethod
    def _literal_condition(cls, value: Any) -> Any:
        # YAML reads a bare `true` / `false` as a bool; as CEL they are the same constants.
        return str(value).lower() if isinstance(value, bool) else value


class Constitution(BaseModel):
    """A versioned policy document: articles in words, rules as CEL conditions.

    Build one with :meth:`load` or :meth:`parse` (they report errors with line and column), or
    take the shipped one from :func:`default_constitution`. Every condition is compiled and
    dry-run against a reference input at load, so a constitution that loads can be evaluated.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1)
    title: str = ""
    default_effect: Effect = Effect.REQUIRE_REVIEW
    """What happens when no rule fires; a person decides unless the document says otherwise."""
    articles: list[Article] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # YAML reads `version: 1` as a number; a version is a label, so keep it as text.
        return str(value) if isinstance(value, int | float) else value

    _programs: list[cel.Program] = PrivateAttr(default_factory=list)
    _document: str = PrivateAttr(default="")
    _sha256: str = PrivateAttr(default="")
    _needed: dict[str, frozenset[str] | None] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default="<string>")

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Constitution:
        """Read and validate a YAML file; `ConstitutionError` names line and column."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConstitutionError(
                f"cannot read the constitution: {error.strerror}", source=str(path)
            ) from None
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, *, source: str = "<string>") -> Constitution:
        """Validate a YAML document; `ConstitutionError` names line and column."""
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark
            raise ConstitutionError(
                f"not valid YAML: {error.problem}",
                source=source,
                line=None if mark is None else mark.line + 1,
                column=None if mark is None else mark.column + 1,
            ) from None
        except yaml.YAMLError as error:
            raise ConstitutionError(f"not valid YAML: {error}", source=source) from None
        nodes: dict[tuple[str | int, ...], yaml.Node] = {}
        if root is not None:
            _index_nodes(root, (), nodes)
        if not isinstance(data, dict):
            raise ConstitutionError(
                "expected a mapping with version, articles and rules", source=source, line=1
            )
        try:
            constitution = cls.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            location = tuple(first["loc"])
            node = _nearest(nodes, location)
            field = ".".join(str(part) for part in location) or "(document)"
            more = len(error.errors()) - 1
            raise ConstitutionError(
                f'field "{field}": {first["msg"]}'
                + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""),
                source=source,
                line=None if node is None else node.start_mark.line + 1,
                column=None if node is None else node.start_mark.column + 1,
            ) from None
        constitution._attach(text, source, nodes)
        return constitution

    @classmethod
    def from_rules(
        cls, version: str, articles: list[Article], rules: list[Rule], **fields: Any
    ) -> Constitution:
        """Build one in code (validated and compiled like a parsed document)."""
        document = yaml.safe_dump(
            cls.model_validate(
                {"version": version, "articles": articles, "rules": rules, **fields}
            ).model_dump(mode="json"),
            sort_keys=False,
            allow_unicode=True,
        )
        return cls.parse(document)

    def _attach(
        self, text: str, source: str, nodes: Mapping[tuple[str | int, ...], yaml.Node]
    ) -> None:
        self._document = text
        self._sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self._source = source
        article_ids: set[str] = set()
        for index, article in enumerate(self.articles):
            if article.id in article_ids:
                raise self._error(
                    f"article id {article.id!r} appears twice", nodes, ("articles", index, "id")
                )
            article_ids.add(article.id)
        rule_ids: set[str] = set()
        programs: list[cel.Program] = []
        for index, rule in enumerate(self.rules):
            if rule.id in rule_ids:
                raise self._error(
                    f"rule id {rule.id!r} appears twice", nodes, ("rules", index, "id"), rule.id
                )
            rule_ids.add(rule.id)
            if rule.article not in article_ids:
                raise self._error(
                    f"rule cites article {rule.article!r}, which the document does not define "
                    f"(articles: {', '.join(sorted(article_ids))})",
                    nodes,
                    ("rules", index, "article"),
                    rule.id,
                )
            programs.append(self._compile(rule, nodes.get(("rules", index, "condition"))))
        self._programs = programs
        self._needed = _needed_fields([rule.condition for rule in self.rules])
        # Dry-run every condition once: a typo in a field name or a non-bool result shows up
        # at load, with the rule's position, rather than on the first decision.
        reference = PolicyInput(decision=DecisionFacts(action="set_priority", value="Major"))
        for index, check in enumerate(self.evaluate(reference).checks):
            if check.error is not None:
                raise self._error(
                    f"condition fails on a reference decision: {check.error}",
                    nodes,
                    ("rules", index, "condition"),
                    check.rule_id,
                )

    def _compile(self, rule: Rule, node: yaml.Node | None) -> cel.Program:
        try:
            return cel.compile(rule.condition)
        except (ValueError, RuntimeError, TypeError) as error:
            message = str(error)
            line, column = _expression_position(self._document, node, message)
            detail = re.sub(r"^Failed to parse expression '.*?': ", "", message, flags=re.DOTALL)
            detail = re.sub(r"^ERROR: <input>:\d+:\d+: ", "", detail).split("\n", 1)[0]
            raise ConstitutionError(
                f"condition is not valid CEL: {detail}",
                source=self._source,
                line=line,
                column=column,
                rule=rule.id,
            ) from None

    def _error(
        self,
        message: str,
        nodes: Mapping[tuple[str | int, ...], yaml.Node],
        location: tuple[str | int, ...],
        rule: str | None = None,
    ) -> ConstitutionError:
        node = _nearest(nodes, location)
        return ConstitutionError(
            message,
            source=self._source,
            line=None if node is None else node.start_mark.line + 1,
            column=None if node is None else node.start_mark.column + 1,
            rule=rule,
        )

    # --- use ---------------------------------------------------------------------------------

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of the document's text as loaded."""
        return self._sha256

    @property
    def document(self) -> str:
        """The YAML text the constitution was parsed from."""
        return self._document

    @property
    def source(self) -> str:
        """Where the document came from (a path or ``<string>``)."""
        return self._source

    def article(self, article_id: str) -> Article:
        """The article with this id (`KeyError` if none)."""
        for article in self.articles:
            if article.id == article_id:
                return article
        raise KeyError(article_id)

    def _variables(self, facts: PolicyInput) -> dict[str, Any]:
        variables = facts.variables()
        passed: dict[str, Any] = {}
        for name, fields in self._needed.items():
            value = variables[name]
            if fields is None or not isinstance(value, dict):
                passed[name] = value
            else:
                passed[name] = {field: value[field] for field in fields if field in value}
        return passed

    def evaluate(
        self, facts: PolicyInput | Mapping[str, Any], *, explain: bool = True
    ) -> Evaluation:
        """Run every rule on one decision; errors are collected, never raised.

        ``explain=False`` leaves ``checks`` empty (the gate's hot path needs only the hits).
        """
        if not isinstance(facts, PolicyInput):
            facts = PolicyInput.model_validate(facts)
        context = cel.Context(self._variables(facts))
        hits: list[RuleHit] = []
        checks: list[RuleCheck] = []
        errors: list[str] = []
        for rule, program in zip(self.rules, self._programs, strict=True):
            fired = False
            problem: str | None = None
            try:
                result = program.execute(context)
            except KeyError as error:
                problem = f"the input has no field {error}"
            except (ValueError, RuntimeError, TypeError) as error:
                problem = str(error).split("\n", 1)[0]
            else:
                if isinstance(result, bool):
                    fired = result
                else:
                    problem = f"condition returned {result!r}, expected true or false"
            if problem is not None:
                errors.append(f"{rule.id}: {problem}")
            elif fired:
                hits.append(
                    RuleHit(
                        rule_id=rule.id,
                        article_id=rule.article,
                        effect=rule.effect,
                        reason=rule.reason,
                    )
                )
            if explain:
                checks.append(
                    RuleCheck(
                        rule_id=rule.id,
                        article_id=rule.article,
                        effect=rule.effect,
                        condition=rule.condition,
                        fired=fired,
                        error=problem,
                    )
                )
        effect = combine([hit.effect for hit in hits], self.default_effect)
        return Evaluation(
            effect=effect,
            hits=hits,
            checks=checks,
            errors=errors,
            default_used=not hits,
            constitution_version=self.version,
            constitution_sha256=self._sha256,
        )


def _needed_fields(conditions: list[str]) -> dict[str, frozenset[str] | None]:
    """Which input fields the conditions can read: ``{variable: fields, or None for all}``.

    Converting a map into a CEL value costs microseconds per field, so evaluation passes only
    what the rules mention. A variable used other than as ``name.field`` gets every field.
    """
    needed: dict[str, frozenset[str] | None] = {}
    for name in PolicyInput.model_fields:
        fields: set[str] = set()
        everything = False
        mentioned = False
        for condition in conditions:
            for found in re.finditer(rf"\b{name}\b(\s*\.\s*([A-Za-z_]\w*))?", condition):
                mentioned = True
                if found.group(2) is None:
                    everything = True
                else:
                    fields.add(found.group(2))
        if mentioned:
            needed[name] = None if everything else frozenset(fields)
    return needed


def _index_nodes(
    node: yaml.Node, path: tuple[str | int, ...], out: dict[tuple[str | int, ...], yaml.Node]
) -> None:
    out[path] = node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                _index_nodes(value, (*path, str(key.value)), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_nodes(item, (*path, index), out)


def _nearest(
    nodes: Mapping[tuple[str | int, ...], yaml.Node], location: tuple[str | int, ...]
) -> yaml.Node | None:
    """The node at ``location`` or, for a missing field, the closest enclosing one."""
    for size in range(len(location), -1, -1):
        node = nodes.get(tuple(location[:size]))
        if node is not None:
            return node
    return None


def _expression_position(
    document: str, node: yaml.Node | None, message: str
) -> tuple[int | None, int | None]:
    """Map CEL's ``<input>:LINE:COL`` to the document's line and column (1-based)."""
    if node is None:
        return None, None
    base_line, base_column = node.start_mark.line + 1, node.start_mark.column + 1
    found = _CEL_POSITION.search(message)
    if found is None:
        return base_line, base_column
    expression_line, expression_column = int(found.group(1)), int(found.group(2))
    style = getattr(node, "style", None)
    if style in ("|", ">"):
        # Block scalar: the expression starts on the line after the indicator, indented.
        line = base_line + expression_line
        lines = document.splitlines()
        indent = 0
        if base_line < len(lines):
            # The block's indentation is set by its first line; CEL counts columns after it.
            first = lines[base_line]
            indent = len(first) - len(first.lstrip(" "))
        return line, indent + expression_column
    if expression_line == 1:
        quote = 1 if style in ('"', "'") else 0
        return base_line, base_column + quote + expression_column - 1
    return base_line + expression_line - 1, expression_column


_DEFAULT: Constitution | None = None


def default_constitution() -> Constitution:
    """The constitution shipped with mesaguard (``mesaguard/constitution/default.yaml``)."""
    global _DEFAULT
    if _DEFAULT is None:
        resource = files("mesaguard.constitution").joinpath("default.yaml")
        _DEFAULT = Constitution.parse(
            resource.read_text(encoding="utf-8"), source="mesaguard:constitution/default.yaml"
        )
    return _DEFAULT
