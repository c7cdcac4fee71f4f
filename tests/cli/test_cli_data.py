import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from mesaguard.cli import app

runner = CliRunner()


def mesaguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from mesaguard.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_help_lists_the_command_groups() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("demo", "data", "zoo", "log"):
        assert group in result.output


def test_inspect_bundled_data_shows_priorities_and_hash() -> None:
    result = runner.invoke(app, ["data", "inspect"])
    assert result.exit_code == 0, result.output
    assert (
        "2503 items" in result.output and "Major" in result.output and "data hash" in result.output
    )


def test_inspect_story_points(shared_data: Path) -> None:
    result = runner.invoke(
        app, ["data", "inspect", str(shared_data / "storypoints-deepse" / "mesos.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "1680 items" in result.output and "story points" in result.output


def test_a_bad_row_is_one_readable_line_and_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Summary,Issue key,Priority\nok,P-1,Major\nbad,P-2,Urgentish\n")
    result = mesaguard("data", "inspect", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert 'row 3, column "Priority"' in result.stderr and "--skip-bad-rows" in result.stderr
    skipped = mesaguard("data", "inspect", str(path), "--skip-bad-rows")
    assert skipped.returncode == 0, skipped.stderr
    assert "1 items, 1 rows skipped" in " ".join(skipped.stdout.split())


def test_usage_errors_exit_2_without_traceback() -> None:
    result = mesaguard("data", "inspect", "--format", "xml")
    assert result.returncode == 2 and "Traceback" not in result.stderr
