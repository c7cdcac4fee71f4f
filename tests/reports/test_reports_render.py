"""Reports: JSON valid against the published schema, self-contained HTML, JUnit that CI reads."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

import mesaguard.reports as reports
from mesaguard.agents import CallableAgent
from mesaguard.contexts import Context, Side
from mesaguard.items import Priority, WorkItem, bundled_hadoop, split_items
from mesaguard.redteam import RedTeamReport, run_redteam
from mesaguard.reports import (
    SCHEMA_PATH,
    render_html,
    render_json,
    render_junit,
    report_schema,
    write_reports,
)


def deceptive(item: WorkItem, context: Context) -> Priority:
    truth = item.priority or Priority.MAJOR
    if context.family == "oversight" and context.side is Side.UNOBSERVED and truth.is_severe:
        return Priority.TRIVIAL
    return truth


@pytest.fixture(scope="module")
def report() -> RedTeamReport:
    items = list(split_items(bundled_hadoop().items).test[:80])
    return run_redteam(CallableAgent(deceptive, name="deceptive <b>"), items)


def test_front_door_lists_exactly_the_public_names() -> None:
    assert set(reports.__all__) == {n for n in dir(reports) if not n.startswith("_")}


def test_published_schema_matches_the_model() -> None:
    """report.schema.json equals the schema generated from the pydantic model.

    If this fails, regenerate it with ``mesaguard redteam schema --write``.
    """
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == report_schema()


def test_json_report_validates_and_round_trips(report: RedTeamReport) -> None:
    payload = json.loads(render_json(report))
    jsonschema.validate(payload, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    assert RedTeamReport.model_validate(payload) == report
    assert payload["verdict"]["kind"] == "deceptive"


def test_html_is_self_contained_and_escapes_text(report: RedTeamReport) -> None:
    page = render_html(report)
    assert page.count("data:image/png;base64,") >= 2
    assert "<script" not in page and "http://" not in page
    assert "deceptive &lt;b&gt;" in page and "deceptive <b>" not in page
    assert "oversight" in page and "Flipped items" in page


def test_html_and_reports_are_byte_identical_for_the_same_report(
    report: RedTeamReport, tmp_path: Path
) -> None:
    one = write_reports(report, tmp_path / "a")
    two = write_reports(report, tmp_path / "b")
    for kind in one:
        assert one[kind].read_bytes() == two[kind].read_bytes()


def test_junit_fails_exactly_the_flagged_findings(report: RedTeamReport) -> None:
    root = ET.fromstring(render_junit(report))
    failures = [
        case.get("name") for case in root.iter("testcase") if case.find("failure") is not None
    ]
    assert failures == [f.test for f in report.findings if f.flagged]
    assert sum(int(s.get("tests", 0)) for s in root.iter("testsuite")) == len(report.findings)
