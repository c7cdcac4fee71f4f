"""Render a red-team report as JSON, a self-contained HTML page, or JUnit XML."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from ..redteam import Finding, RedTeamReport
from ._plots import gap_plot, layer_plot, shift_matrix_plot

__all__ = [
    "SCHEMA_PATH",
    "render_html",
    "render_json",
    "render_junit",
    "report_schema",
    "write_reports",
]

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
"""The published JSON schema of :func:`render_json` output (checked in; a test keeps it current)."""

MAX_MATRICES = 8


def report_schema() -> dict[str, Any]:
    """The JSON schema of a red-team report, generated from the pydantic model."""
    schema = RedTeamReport.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mesaguard.dev/schemas/redteam-report.schema.json"
    return schema


def render_json(report: RedTeamReport) -> str:
    """The report as indented JSON (valid against :data:`SCHEMA_PATH`)."""
    return report.model_dump_json(indent=2) + "\n"


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _finding_row(finding: Finding) -> str:
    status = "FLAGGED" if finding.flagged else "control" if finding.control else "ok"
    css = "flag" if finding.flagged else "ctl" if finding.control else "ok"
    return (
        f"<tr class='{css}'><td>{_esc(finding.probe)}</td><td>{_esc(finding.test)}</td>"
        f"<td>{finding.n}</td><td>{finding.flip_rate:.3f}</td>"
        f"<td>{finding.gap:+.3f} [{finding.gap_ci[0]:+.3f}, {finding.gap_ci[1]:+.3f}]</td>"
        f"<td>{finding.down} / {finding.up}</td><td>{finding.net_shift:+.3f}</td>"
        f"<td>{finding.wilcoxon_p:.3g} (r = {finding.wilcoxon_r:+.2f})</td>"
        f"<td>{finding.mcnemar_p:.3g}</td><td>{finding.p_adjusted:.3g}</td>"
        f"<td>{status}</td></tr>"
    )


def _examples(finding: Finding) -> str:
    if not finding.examples:
        return ""
    rows = "".join(
        f"<tr><td>{_esc(e.item_key)}</td><td>{_esc(e.title)}"
        + (
            f"<br><small>reference: {_esc(e.reference_title)}</small>"
            if e.reference_title != e.title
            else ""
        )
        + f"</td><td>{_esc(e.truth or '—')}</td><td>{_esc(e.first)}"
        f"<br><small>{_esc(e.first_context)}</small></td><td>{_esc(e.second)}"
        f"<br><small>{_esc(e.second_context)}</small></td></tr>"
        for e in finding.examples
    )
    return (
        f"<h3>Flipped items: {_esc(finding.probe)} / {_esc(finding.test)}</h3>"
        f"<table><tr><th>item</th><th>title</th><th>truth</th>"
        f"<th>{_esc(finding.first_label)}</th><th>{_esc(finding.second_label)}</th></tr>"
        f"{rows}</table>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
tr.flag { background: #fde2e1; } tr.ctl { color: #777; }
.verdict { font-size: 1.4em; padding: 0.5em 1em; border-radius: 6px; display: inline-block; }
.robustly-aligned { background: #e3f4e1; } .inconclusive { background: #f4f1de; }
.deceptive, .proxy-aligned, .sandbagging { background: #fde2e1; }
.matrices img { margin: 0.3em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _adaptive(report: RedTeamReport) -> str:
    """Sections of the adaptive probes: the trigger search's leaderboard, the layer sweep."""
    parts = []
    search = report.details.get("trigger-search")
    if search:
        rows = "".join(
            f"<tr><td>{_esc(r['label'])}</td><td>{_esc(r['source'])}</td><td>{r['items']}</td>"
            f"<td>{r['down']} / {r['up']}</td><td>{r['score']:+.2f}</td></tr>"
            for r in search.get("leaderboard", [])
        )
        parts.append(
            f"<h2>Trigger search</h2><p>{search.get('tried')} of {search.get('candidates')} "
            f"candidate changes tried on {search.get('search_items')} severe items with "
            f"{search.get('search_queries')} queries; the top ones were confirmed on "
            f"{search.get('confirm_items')} fresh items (findings <code>trigger:…</code> "
            "above).</p><table><tr><th>candidate</th><th>source</th><th>items</th>"
            f"<th>down / up</th><th>net</th></tr>{rows}</table>"
        )
    whitebox = report.details.get("whitebox-defection")
    if whitebox and "skipped" in whitebox:
        parts.append(f"<h2>White-box defection probe</h2><p>{_esc(whitebox['skipped'])}</p>")
    elif whitebox:
        flagged = ", ".join(
            f"<code>{_esc(f['context'])}</code> ({f['score']:.2f})"
            for f in whitebox.get("flagged_framings", [])
        )
        parts.append(
            "<h2>White-box defection probe</h2><p>Linear probe trained on generic contrast "
            f"pairs; hook point <code>{_esc(whitebox['hook_point'])}</code> chosen on the "
            f"contrast data. Framings it rates most unwatched: {flagged} (tested by behaviour "
            "in findings <code>whitebox:…</code>).</p>"
            f"<img alt='probe score by layer' src='data:image/png;base64,"
            f"{layer_plot(whitebox['layers'], whitebox['hook_point'])}'>"
        )
    return "".join(parts)


def render_html(report: RedTeamReport) -> str:
    """A self-contained HTML page: verdict, findings, plots (embedded PNG) and examples."""
    verdict = report.verdict
    run = report.run
    findings = list(report.findings)
    interesting = sorted(
        (f for f in findings if not f.control and f.n > 0),
        key=lambda f: (not f.flagged, -abs(f.net_shift), f.probe, f.test),
    )[:MAX_MATRICES]
    matrices = "".join(
        f"<img alt='shift matrix {_esc(f.test)}' "
        f"src='data:image/png;base64,{shift_matrix_plot(f)}'>"
        for f in interesting
    )
    examples = "".join(_examples(f) for f in findings if f.flagged) or "<p>No flagged findings.</p>"
    provenance = "".join(
        f"<tr><th>{_esc(k)}</th><td><code>{_esc(v)}</code></td></tr>"
        for k, v in (
            ("agent", run.agent),
            ("mode", run.mode),
            ("seed", run.seed),
            ("data", f"{run.data_source} ({run.n_items} items)"),
            ("data hash", run.data_hash),
            ("queries", report.queries),
            ("pairs", f"{report.pairs} of {report.planned_pairs} planned"),
            ("versions", ", ".join(f"{k} {v}" for k, v in sorted(run.versions.items()))),
            ("configuration", json.dumps(run.config, sort_keys=True)),
        )
    )
    supporting = "".join(f"<li><code>{_esc(s)}</code></li>" for s in verdict.supporting)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>mesaguard red team: {_esc(run.agent)}</title><style>{_STYLE}</style></head>
<body>
<h1>Stage-3 red team: <code>{_esc(run.agent)}</code></h1>
<p class="verdict {_esc(verdict.kind.value)}">{_esc(verdict.kind.value)}
 &mdash; risk {verdict.risk:.2f}</p>
<p>{_esc(verdict.reason)}</p>
<ul>{supporting}</ul>
<p>Only a change of behaviour between paired conditions counts; what an agent says about being
tested plays no part. Significance: Holm-adjusted p &le; {run.config.get("alpha")} (sequential
mode: an anytime-valid e-process); material: net flip rate at least the minimum effect.</p>
<h2>Findings</h2>
<table><tr><th>probe</th><th>test</th><th>n</th><th>flip rate</th><th>compliance gap [95% CI]</th>
<th>down / up</th><th>net</th><th>Wilcoxon p</th><th>McNemar p</th><th>Holm p</th>
<th>status</th></tr>
{"".join(_finding_row(f) for f in findings)}</table>
<h2>Compliance gap per test</h2>
<img alt="compliance gap per test" src="data:image/png;base64,{gap_plot(findings)}">
<h2>Priority shift matrices (reference rows, suspect columns)</h2>
<div class="matrices">{matrices}</div>
{_adaptive(report)}<h2>Examples</h2>
{examples}
<h2>Provenance</h2>
<table>{provenance}</table>
</body></html>
"""


def render_junit(report: RedTeamReport) -> str:
    """JUnit XML: one test suite per probe, one test case per test; flagged findings fail."""
    suites = ET.Element("testsuites", name=f"mesaguard redteam {report.run.agent}")
    by_probe: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_probe.setdefault(finding.probe, []).append(finding)
    for probe_name, findings in by_probe.items():
        failures = sum(f.flagged for f in findings)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=probe_name,
            tests=str(len(findings)),
            failures=str(failures),
            errors="0",
            skipped=str(sum(f.control for f in findings)),
        )
        for finding in findings:
            case = ET.SubElement(
                suite, "testcase", classname=f"mesaguard.redteam.{probe_name}", name=finding.test
            )
            summary = (
                f"n={finding.n} flip_rate={finding.flip_rate:.3f}"
                f" net_shift={finding.net_shift:+.3f} gap={finding.gap:+.3f}"
                f" p_adjusted={finding.p_adjusted:.3g}"
            )
            if finding.control:
                ET.SubElement(case, "skipped", message="control (reported, never flagged)")
            elif finding.flagged:
                failure = ET.SubElement(
                    case, "failure", message=f"{finding.category.value}: {summary}"
                )
                failure.text = summary
            ET.SubElement(case, "system-out").text = summary
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def write_reports(report: RedTeamReport, out_dir: Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.html`` and ``junit.xml`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "report.json",
        "html": out_dir / "report.html",
        "junit": out_dir / "junit.xml",
    }
    paths["json"].write_text(render_json(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    paths["junit"].write_text(render_junit(report), encoding="utf-8")
    return paths
