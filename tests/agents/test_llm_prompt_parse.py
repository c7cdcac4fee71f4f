"""Prompt templates, reply parsing, log-probability confidence, cache keys and pacing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from mesaguard._errors import ConfigError
from mesaguard.agents import (
    ResponseCache,
    answer_schema,
    available_templates,
    default_template,
    load_template,
    parse_reply,
    request_key,
)
from mesaguard.agents._llm_executor import (
    CallFailure,
    CallRunner,
    ExecutorOptions,
    FinalError,
    RetryableError,
    TokenBucket,
    backoff_delay,
    retry_after_seconds,
)
from mesaguard.agents._llm_parse import TokenLogprob, logprob_confidence, tokens_from_openai
from mesaguard.contexts import cue_family, neutral_context
from mesaguard.items import ActionType, WorkItem

ITEM = WorkItem(
    key="HADOOP-1",
    title="NameNode  crashes\non startup",
    component="hdfs",
    description="Stack trace:\n" + "x" * 5000,
)


def test_every_action_has_zero_and_few_shot_templates_in_versioned_files() -> None:
    names = available_templates()
    for task in ("priority", "story-points", "route"):
        assert f"{task}.zero-shot.v1" in names and f"{task}.few-shot.v1" in names
    for action in ActionType:
        for few_shot in (False, True):
            template = default_template(action, few_shot=few_shot)
            assert template.action is action
            assert bool(template.examples) is few_shot


def test_the_framing_goes_into_the_system_prompt_and_the_issue_into_the_user_turn() -> None:
    context = cue_family("oversight").unobserved[0]
    messages = load_template("priority.zero-shot.v1").messages(ITEM, context)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith(context.render_prompt())
    assert context.cue in messages[0]["content"]
    user = messages[1]["content"]
    assert "Title: NameNode crashes on startup" in user  # one line, whitespace folded
    assert "Component: hdfs" in user and "Issue: HADOOP-1" in user
    assert user.count("x") == 2000 - len("Stack trace:\n")  # cut at 2000 characters
    short = load_template("priority.zero-shot").messages(ITEM, context, description_chars=100)
    assert short[1]["content"].count("x") == 100 - len("Stack trace:\n")


def test_few_shot_examples_are_user_assistant_turns_with_json_answers() -> None:
    messages = load_template("priority.few-shot").messages(ITEM, neutral_context())
    roles = [m["role"] for m in messages]
    assert roles == ["system", *["user", "assistant"] * 3, "user"]
    for answer in messages[2:-1:2]:
        assert parse_reply(answer["content"], ActionType.SET_PRIORITY) is not None


def test_unknown_or_broken_templates_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown prompt template 'priority.many-shot.v1'"):
        load_template("priority.many-shot.v1")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvariant: y\nversion: 0\naction: set_priority\nsystem: s\nuser: u\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: field 'version'"):
        load_template(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "name: x\nvariant: y\nversion: 1\naction: set_priority\nsystem: $framng\nuser: u\n"
    )
    with pytest.raises(ConfigError, match="bad placeholder 'framng'"):
        load_template(typo).messages(ITEM, neutral_context())


@pytest.mark.parametrize(
    ("text", "value", "confidence"),
    [
        ('{"priority": "Major", "confidence": 0.8}', "Major", 0.8),
        ('```json\n{"priority": "critical", "confidence": 0.7}\n```', "Critical", 0.7),
        ('Sure! {"priority": "Blocker", "confidence": 95} is my answer.', "Blocker", 0.95),
        ('{"Priority": "High"}', "Critical", None),
        ("Minor", "Minor", None),
        ("I would call this a trivial issue.", "Trivial", None),
        ('{"priority": "Major", "confid', "Major", None),  # cut off after the answer
        ('{"answer": 4}', "Critical", None),
    ],
)
def test_priority_replies_in_many_shapes_are_read(
    text: str, value: str, confidence: float | None
) -> None:
    parsed = parse_reply(text, ActionType.SET_PRIORITY)
    assert parsed is not None and parsed.value == value
    assert parsed.confidence == (None if confidence is None else pytest.approx(confidence))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I cannot decide.",
        '{"priority": "Urgentish"}',
        "Either Major or Minor, hard to say.",
        '{"priority": "Ma',
        "[1, 2, 3]",
    ],
)
def test_replies_without_one_answer_are_not_guessed(text: str) -> None:
    assert parse_reply(text, ActionType.SET_PRIORITY) is None


def test_story_points_and_routes_are_read() -> None:
    points = parse_reply('{"story_points": 5, "confidence": 0.6}', ActionType.SET_STORY_POINTS)
    assert points is not None and points.value == 5.0
    bare = parse_reply("About 8 points.", ActionType.SET_STORY_POINTS)
    assert bare is not None and bare.value == 8.0
    assert parse_reply("3 or 5", ActionType.SET_STORY_POINTS) is None
    routes = ("hdfs", "yarn")
    route = parse_reply('{"route": "HDFS"}', ActionType.ROUTE, routes=routes)
    assert route is not None and route.value == "hdfs"
    assert parse_reply('{"route": "kafka"}', ActionType.ROUTE, routes=routes) is None
    word = parse_reply("This belongs to yarn.", ActionType.ROUTE, routes=routes)
    assert word is not None and word.value == "yarn"


def test_answer_schemas_constrain_the_answer_and_ask_for_confidence() -> None:
    import jsonschema

    schema = answer_schema(ActionType.SET_PRIORITY)
    jsonschema.validate({"priority": "Major", "confidence": 0.5}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"priority": "Urgent", "confidence": 0.5}, schema)
    points = answer_schema(ActionType.SET_STORY_POINTS)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"story_points": 4, "confidence": 0.5}, points)
    route = answer_schema(ActionType.ROUTE, ["hdfs"])
    assert route["properties"]["route"]["enum"] == ["hdfs"]


def test_confidence_is_the_answer_token_probability_renormalised_over_allowed_answers() -> None:
    tokens = [
        TokenLogprob('{"priority": "', 0.0),
        TokenLogprob(
            "Major",
            math.log(0.6),
            (("Major", math.log(0.6)), ("Minor", math.log(0.2)), ("The", math.log(0.2))),
        ),
        TokenLogprob('", "confidence": 0.9}', 0.0),
    ]
    allowed = ["Blocker", "Critical", "Major", "Minor", "Trivial"]
    # "The" begins no allowed answer, so the mass is 0.6 + 0.2.
    assert logprob_confidence(tokens, "Major", allowed) == pytest.approx(0.75)
    assert logprob_confidence(tokens, "Blocker", allowed) is None
    assert logprob_confidence([], "Major", allowed) is None
    payload = {
        "content": [
            {"token": t.token, "logprob": t.logprob, "top_logprobs": [
                {"token": a, "logprob": b} for a, b in t.top
            ]}
            for t in tokens
        ]
    }  # fmt: skip
    assert tokens_from_openai(payload) == tokens
    assert tokens_from_openai(None) == [] and tokens_from_openai({"content": [1]}) == []


def test_cache_keys_cover_adapter_url_and_the_whole_body(tmp_path: Path) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0}
    key = request_key("openai", "http://h/v1/", body)
    assert key == request_key("openai", "http://h/v1", dict(reversed(list(body.items()))))
    assert key != request_key("ollama", "http://h/v1", body)
    assert key != request_key("openai", "http://other/v1", body)
    assert key != request_key("openai", "http://h/v1", {**body, "temperature": 0.7})
    assert key != request_key("openai", "http://h/v1", {**body, "model": "n"})
    # Keys written by earlier versions (the whole payload encoded at once) stay valid.
    payload = {"adapter": "openai", "base_url": "http://h/v1", "body": body | {"é": "ü"}}
    whole = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert request_key("openai", "http://h/v1", body | {"é": "ü"}) == (
        hashlib.sha256(whole.encode()).hexdigest()
    )
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put(key, "openai", "m", {"text": "Major"})
    cache.close()
    reopened = ResponseCache(tmp_path / "c.sqlite")
    assert reopened.get_many([key, "missing"]) == {key: {"text": "Major"}}
    assert len(reopened) == 1


def test_token_bucket_paces_starts_to_the_rate() -> None:
    async def starts(n: int) -> float:
        bucket = TokenBucket(rate=50.0, burst=1.0)
        began = time.perf_counter()
        for _ in range(n):
            await bucket.acquire()
        return time.perf_counter() - began

    elapsed = asyncio.run(starts(11))
    assert elapsed >= 10 / 50.0 * 0.9


def test_call_runner_bounds_concurrency_across_submissions_and_retries_what_can_succeed() -> None:
    options = ExecutorOptions(max_connections=3, retries=2, backoff=0.0)
    in_flight = peak = 0
    attempts: dict[str, int] = {}

    def call(name: str, fails: int, final: bool = False) -> Callable[[], Awaitable[str]]:
        async def attempt() -> str:
            nonlocal in_flight, peak
            attempts[name] = attempts.get(name, 0) + 1
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            if final:
                raise FinalError("HTTP 404: no such model", status=404)
            if attempts[name] <= fails:
                raise RetryableError("HTTP 503")
            return name

        return attempt

    async def run() -> list[object]:
        runner = CallRunner(options)
        first = [asyncio.create_task(runner.run(call(f"a{i}", 0))) for i in range(5)]
        await asyncio.sleep(0)  # a second submission while the first is in flight
        second = [
            asyncio.create_task(runner.run(call("flaky", 2))),
            asyncio.create_task(runner.run(call("dead", 5))),
            asyncio.create_task(runner.run(call("missing", 0, final=True))),
        ]
        return list(await asyncio.gather(*first, *second))

    results = asyncio.run(run())
    assert peak == 3
    assert results[:5] == [f"a{i}" for i in range(5)] and results[5] == "flaky"
    assert results[6] == CallFailure("HTTP 503", 3) and attempts["dead"] == 3
    assert isinstance(results[7], CallFailure) and attempts["missing"] == 1


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    options = ExecutorOptions(backoff=0.5, max_backoff=4.0)
    for attempt, ceiling in ((0, 0.5), (1, 1.0), (2, 2.0), (5, 4.0)):
        delays = [backoff_delay(attempt, options, None) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert backoff_delay(0, options, 3.0) == 3.0
    assert backoff_delay(0, options, 60.0) == 4.0
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_reply_json_survives_the_cache_round_trip(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    reply = {"text": "ünïcode ✓", "logprobs": [{"token": "a", "logprob": -0.1}]}
    cache.put("k", "ollama", "m", reply)
    assert cache.get_many(["k"])["k"] == json.loads(json.dumps(reply))
