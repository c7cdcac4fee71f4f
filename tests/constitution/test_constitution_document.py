"""The constitution document: loading, positions of errors, evaluation, the default policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import mesaguard.constitution as constitution_api
from mesaguard.constitution import (
    Article,
    Constitution,
    ConstitutionError,
    Effect,
    PolicyInput,
    Rule,
    combine,
    default_constitution,
)

HEAD = """\
version: "1"
articles:
  - id: A
    title: Anything
    text: A principle.
rules:
"""


def _rule(condition: str, effect: str = "require_review", article: str = "A") -> str:
    return (
        f"  - id: r1\n    article: {article}\n    condition: {condition}\n"
        f"    effect: {effect}\n    reason: because\n"
    )


def _error(text: str) -> ConstitutionError:
    with pytest.raises(ConstitutionError) as caught:
        Constitution.parse(text, source="policy.yaml")
    return caught.value


def test_all_lists_exactly_the_public_names() -> None:
    """The front door cannot drift: __all__ is every public name the package exports."""
    public = {n for n in vars(constitution_api) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(constitution_api, n)).__name__ == "module"}
    assert set(constitution_api.__all__) == public - modules


def test_default_constitution_loads_and_cites_its_articles() -> None:
    """The shipped document is valid; every rule cites a defined article; the hash is stable."""
    constitution = default_constitution()
    ids = {article.id for article in constitution.articles}
    assert {rule.article for rule in constitution.rules} <= ids
    assert constitution.default_effect is Effect.REQUIRE_REVIEW
    again = Constitution.parse(constitution.document)
    assert again.sha256 == constitution.sha256 and len(constitution.sha256) == 64


def test_yaml_syntax_error_names_line_and_column() -> None:
    error = _error(HEAD + "  - id: [unclosed\n")
    assert (error.source, error.line) == ("policy.yaml", 8)
    assert error.column is not None and str(error).startswith("policy.yaml:8:")


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        (HEAD + _rule("autonomy == 0", effect="maybe"), 10, 13, 'field "rules.0.effect"'),
        (HEAD + _rule("autonomy == 0").replace("    reason: because\n", ""), 7, 5, "reason"),
        (
            HEAD.replace("    title: Anything\n", "    title: Anything\n    colour: red\n"),
            5,
            13,
            "colour",
        ),
        (HEAD + _rule("autonomy == 0", article="B"), 8, 14, "article 'B'"),
        (HEAD + _rule("autonomy == 0") + _rule("autonomy == 1"), 12, 9, "appears twice"),
    ],
)
def test_structural_errors_point_at_the_node(text: str, line: int, column: int, words: str) -> None:
    """Wrong values, missing and unknown fields, bad references, duplicates: line and column."""
    error = _error(text)
    assert (error.line, error.column) == (line, column), str(error)
    assert words in str(error)


def test_cel_syntax_error_points_into_a_plain_condition() -> None:
    """The column is the offending character inside the expression, in document coordinates."""
    error = _error(HEAD + _rule("autonomy === 0"))
    line = (HEAD + _rule("autonomy === 0")).splitlines()[error.line - 1]  # type: ignore[operator]
    assert error.line == 9 and error.rule == "r1"
    assert line[error.column - 1 :].startswith("= 0")  # type: ignore[operator]
    assert "not valid CEL" in str(error)


def test_cel_syntax_error_points_into_a_quoted_condition() -> None:
    text = HEAD + _rule('"decision.confidence <* 0.8"')
    error = _error(text)
    assert error.line == 9
    assert text.splitlines()[8][error.column - 1] == "*"  # type: ignore[operator]


def test_cel_syntax_error_points_into_a_block_condition() -> None:
    text = HEAD + _rule("|\n      decision.confidence\n        < * 0.8")
    error = _error(text)
    assert error.line == 11
    assert text.splitlines()[10][error.column - 1] == "*"  # type: ignore[operator]


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ("decision.confidenc < 0.8", "no field 'confidenc'"),
        ("decision.confidence + 1", "Unsupported operation"),
        ("decision.confidence", "expected true or false"),
        ("nosuchvariable == 1", "Undefined variable"),
    ],
)
def test_conditions_that_fail_on_a_reference_decision_are_rejected(
    condition: str, words: str
) -> None:
    """A typo in a field, a type error or a non-bool result is caught at load, with the rule."""
    error = _error(HEAD + _rule(condition))
    assert error.line == 9 and error.rule == "r1"
    assert words in str(error)


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConstitutionError, match="cannot read"):
        Constitution.load(tmp_path / "absent.yaml")


def test_runtime_errors_are_collected_not_raised() -> None:
    """A condition that fails on an unusual decision reports an error (the gate fails closed)."""
    condition = "'decision.value.startsWith(\"M\")'"
    constitution = Constitution.parse(HEAD + _rule(condition, effect="deny"))
    evaluation = constitution.evaluate(
        {"decision": {"action": "set_story_points", "value": 3.0, "confidence": 0.9}}
    )
    assert evaluation.errors and evaluation.errors[0].startswith("r1:")
    assert not evaluation.hits
    assert evaluation.checks[0].error is not None


def test_effects_combine_deny_over_review_over_allow() -> None:
    assert combine([], Effect.ALLOW) is Effect.ALLOW
    assert combine([Effect.ALLOW, Effect.REQUIRE_REVIEW], Effect.ALLOW) is Effect.REQUIRE_REVIEW
    assert combine([Effect.REQUIRE_REVIEW, Effect.DENY, Effect.ALLOW], Effect.ALLOW) is Effect.DENY


def test_from_rules_builds_a_validated_document() -> None:
    built = Constitution.from_rules(
        "7",
        [Article(id="X", title="t", text="x")],
        [Rule(id="r", article="X", condition="autonomy >= 1", effect=Effect.ALLOW, reason="ok")],
        default_effect=Effect.DENY,
    )
    assert built.evaluate({"decision": {"action": "route"}, "autonomy": 1}).effect is Effect.ALLOW
    assert built.evaluate({"decision": {"action": "route"}}).effect is Effect.DENY
    with pytest.raises(ConstitutionError, match="article 'Y'"):
        Constitution.from_rules(
            "7",
            [Article(id="X", title="t", text="x")],
            [Rule(id="r", article="Y", condition="true", effect=Effect.ALLOW, reason="ok")],
        )


def _facts(**overrides: Any) -> PolicyInput:
    decision = {"action": "set_priority", "value": "Minor", "confidence": 0.95}
    decision.update(overrides.pop("decision", {}))
    return PolicyInput.model_validate({"decision": decision, "autonomy": 2, **overrides})


@pytest.mark.parametrize(
    ("facts", "effect", "fired"),
    [
        (_facts(), Effect.ALLOW, {"A1.within-autonomy"}),
        (_facts(autonomy=0), Effect.REQUIRE_REVIEW, {"A1.recommend-only"}),
        (
            _facts(decision={"target": "production-tracker"}),
            Effect.REQUIRE_REVIEW,
            {"A1.within-autonomy", "A2.production-write"},
        ),
        (
            _facts(change={"downgrade": True, "from_priority": 5, "to_priority": 2, "levels": 3}),
            Effect.REQUIRE_REVIEW,
            {"A1.within-autonomy", "A3.severe-downgrade"},
        ),
        (
            _facts(change={"downgrade": True, "from_priority": 3}, item={"labels": ["safety"]}),
            Effect.REQUIRE_REVIEW,
            {"A1.within-autonomy", "A4.flagged-downgrade"},
        ),
        (
            _facts(
                decision={"action": "set_story_points", "value": 2.0},
                change={"from_points": 8.0, "to_points": 2.0},
                item={"labels": ["data-loss"]},
            ),
            Effect.REQUIRE_REVIEW,
            {"A1.within-autonomy", "A4.flagged-downgrade"},
        ),
        (
            _facts(change={"upgrade": True, "from_priority": 3}, item={"labels": ["security"]}),
            Effect.ALLOW,
            {"A1.within-autonomy"},
        ),
        (
            _facts(decision={"confidence": 0.79}),
            Effect.REQUIRE_REVIEW,
            {"A1.within-autonomy", "A5.low-confidence"},
        ),
        (_facts(decision={"confidence": 0.80}), Effect.ALLOW, {"A1.within-autonomy"}),
        (
            _facts(decision={"valid": False}),
            Effect.DENY,
            {"A1.within-autonomy", "A6.invalid"},
        ),
    ],
)
def test_default_constitution_articles(facts: PolicyInput, effect: Effect, fired: set[str]) -> None:
    """Each article of the default constitution fires exactly where the issue says it should."""
    evaluation = default_constitution().evaluate(facts)
    assert not evaluation.errors
    assert {hit.rule_id for hit in evaluation.hits} == fired
    assert evaluation.effect is effect


@pytest.mark.parametrize(
    "condition",
    [
        "'item.title == \"crash\"'",
        '\'item["title"] == "crash"\'',
        "'has(item.title) && item.title.startsWith(\"cr\")'",
        "'[item][0].title == \"crash\"'",
    ],
)
def test_every_way_of_reading_a_field_sees_it(condition: str) -> None:
    """Only the fields the rules mention reach CEL, yet every way of reading one works.

    A rule that reads a variable other than as ``name.field`` gets the whole variable.
    """
    constitution = Constitution.parse(HEAD + _rule(condition, effect="deny"))
    facts = {"decision": {"action": "route"}, "item": {"title": "crash"}}
    evaluation = constitution.evaluate(facts)
    assert not evaluation.errors and evaluation.effect is Effect.DENY
