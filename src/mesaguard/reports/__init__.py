"""Red-team reports: JSON (with a published schema), self-contained HTML with plots, JUnit XML."""

from ._render import (
    SCHEMA_PATH,
    render_html,
    render_json,
    render_junit,
    report_schema,
    write_reports,
)

__all__ = [
    "SCHEMA_PATH",
    "render_html",
    "render_json",
    "render_junit",
    "report_schema",
    "write_reports",
]
