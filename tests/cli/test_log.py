"""`mesaguard log ...` end to end through the real CLI entry point."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesaguard.cli import app, main
from mesaguard.ledger import InclusionProof, Ledger, verify_consistency

runner = CliRunner()
ORIGIN = "cli.test/log"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MESAGUARD_LOG_DB", str(tmp_path / "log.sqlite"))
    monkeypatch.setenv("MESAGUARD_LOG_KEY", str(tmp_path / "log.key"))
    return tmp_path


def _ok(*args: str, input: str | None = None) -> str:
    result = runner.invoke(app, ["log", *args], input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _records(n: int) -> str:
    lines = [
        json.dumps(
            {
                "actor": f"agent:{i}",
                "record": {"kind": "review", "subject": f"P-{i}", "outcome": "approve"},
            }
        )
        for i in range(n)
    ]
    return "\n".join(lines) + "\n"


def test_full_workflow(workdir: Path) -> None:
    """init, key generate, append, checkpoint, prove, rotate, verify, export."""
    assert "0 entries" in _ok("init", "--origin", ORIGIN)
    vkey = _ok("key", "generate").strip()
    assert vkey.startswith(ORIGIN + "+")
    assert (workdir / "log.key").stat().st_mode & 0o777 == 0o600
    assert _ok("key", "show").strip() == vkey
    out = _ok(
        "append",
        "--actor",
        "agent:triage",
        '{"kind": "decision", "subject": "P-1", "action": "set-priority"}',
    )
    assert out.startswith("0\t")
    _ok("append", "--file", "-", input=_records(9))
    note = _ok("checkpoint", "--out", str(workdir / "cp.txt"))
    assert note.startswith(f"{ORIGIN}\n10\n")
    proof = InclusionProof.model_validate_json(_ok("prove-inclusion", "4"))
    assert proof.verify() and proof.tree_size == 10
    consistency = json.loads(_ok("prove-consistency", "3", "10"))
    assert verify_consistency(
        3,
        10,
        bytes.fromhex(consistency["root1"]),
        bytes.fromhex(consistency["root2"]),
        [bytes.fromhex(h) for h in consistency["proof"]],
    )
    new_vkey = _ok("key", "rotate").strip()
    assert new_vkey != vkey
    _ok("append", "--file", "-", input=_records(2))
    _ok("checkpoint")
    listing = _ok("key", "list")
    assert "retired" in listing and "active" in listing
    out = _ok("verify", "--vkey", vkey, "--checkpoint", str(workdir / "cp.txt"))
    assert "ok: 12 entries" in out and "supplied keys" in out
    summary = json.loads(_ok("show"))
    assert summary["tree_size"] == 12 and summary["origin"] == ORIGIN
    assert json.loads(_ok("show", "0"))["record"]["kind"] == "decision"
    assert len(_ok("show", "--last", "3").splitlines()) == 3
    export = workdir / "export.jsonl"
    _ok("export", "--out", str(export))
    lines = export.read_bytes().splitlines()
    with Ledger(workdir / "log.sqlite") as log:
        assert lines == [body for _i, body, _l, _s in log.rows()]


def test_verify_exits_1_naming_the_tampered_entry(workdir: Path) -> None:
    _ok("init", "--origin", ORIGIN)
    _ok("append", "--file", "-", input=_records(5))
    with sqlite3.connect(workdir / "log.sqlite") as connection:
        connection.execute(
            "UPDATE ledger_entries SET body = replace(body, 'P-3', 'P-9') WHERE idx = 3"
        )
    result = runner.invoke(app, ["log", "verify"])
    assert result.exit_code == 1
    assert "entry 3: edited" in result.output


def test_errors_are_one_line_and_exit_2(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed record is named by field, nothing is stored, no traceback."""
    _ok("init", "--origin", ORIGIN)
    monkeypatch.setattr(
        sys,
        "argv",
        ["mesaguard", "log", "append", "--actor", "a", '{"kind": "review", "subject": ""}'],
    )
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert 'field "subject"' in err and "Traceback" not in err
    assert json.loads(_ok("show"))["tree_size"] == 0


def test_checkpoint_without_a_key_says_how_to_make_one(workdir: Path) -> None:
    _ok("init", "--origin", ORIGIN)
    result = runner.invoke(app, ["log", "checkpoint"])
    assert result.exit_code != 0
    assert "mesaguard log key generate" in str(result.exception)


def test_bad_jsonl_line_is_named(workdir: Path) -> None:
    _ok("init")
    result = runner.invoke(app, ["log", "append", "--file", "-"], input=_records(1) + "{nope\n")
    assert "line 2" in str(result.exception)
