"""`mesaguard constitution check / explain / show` through the real CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesaguard.cli import app, main
from mesaguard.constitution import default_constitution

runner = CliRunner()


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "constitution.yaml"
    path.write_text(default_constitution().document, encoding="utf-8")
    return path


def _run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["mesaguard", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    return int(caught.value.code or 0)


def test_check_accepts_the_default_constitution(policy: Path) -> None:
    result = runner.invoke(app, ["constitution", "check", str(policy)])
    assert result.exit_code == 0, result.output
    assert "7 rules" in result.output and default_constitution().version in result.output


def test_check_reports_line_and_column_in_one_line_exit_2(
    policy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken condition is named by file:line:column and rule, without a traceback."""
    text = policy.read_text(encoding="utf-8").replace(
        "condition: decision.confidence < 0.80", "condition: decision.confidence << 0.80"
    )
    policy.write_text(text, encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "<< 0.80" in row)
    assert _run_main(monkeypatch, "constitution", "check", str(policy)) == 2
    err = capsys.readouterr().err
    assert f"{policy}:{line}:" in err.replace("\n", "")
    assert "A5.low-confidence" in err and "Traceback" not in err


def test_explain_a_gate_submission(policy: Path, tmp_path: Path) -> None:
    """A submission as an agent posts it: the downgrade of a flagged Blocker needs review."""
    submission = {
        "idempotency_key": "k-1",
        "agent": "triage",
        "decision": {
            "item_key": "P-1",
            "context": "neutral",
            "action": "set_priority",
            "value": "Minor",
            "confidence": 0.95,
        },
        "item": {"key": "P-1", "title": "Data lost on save", "priority": "Blocker"},
        "labels": ["Data Loss"],
    }
    path = tmp_path / "decision.json"
    path.write_text(json.dumps(submission), encoding="utf-8")
    result = runner.invoke(
        app, ["constitution", "explain", str(policy), str(path), "--autonomy", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.output)
    fired = {hit["rule_id"] for hit in evaluation["hits"]}
    assert fired == {"A1.within-autonomy", "A3.severe-downgrade", "A4.flagged-downgrade"}
    assert evaluation["effect"] == "require_review"
    table = runner.invoke(app, ["constitution", "explain", str(policy), str(path)])
    assert table.exit_code == 0
    assert "A1.recommend-only" in table.output and "require_review" in table.output


def test_explain_policy_facts_and_bad_json(
    policy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(
        json.dumps({"decision": {"action": "route", "value": "core", "confidence": 0.9}}),
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["constitution", "explain", str(policy), str(facts), "--autonomy", "1", "--json"]
    )
    assert json.loads(result.output)["effect"] == "allow"
    facts.write_text('{"decision": {"action": ', encoding="utf-8")
    assert _run_main(monkeypatch, "constitution", "explain", str(policy), str(facts)) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_show_prints_the_default_document() -> None:
    result = runner.invoke(app, ["constitution", "show", "--yaml"])
    assert result.exit_code == 0
    assert result.output == default_constitution().document
    tables = runner.invoke(app, ["constitution", "show"])
    assert "A4" in tables.output and "Ethics" in tables.output
