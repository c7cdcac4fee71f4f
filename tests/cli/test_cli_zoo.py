from pathlib import Path

from typer.testing import CliRunner

from mesaguard.cli import app

runner = CliRunner()


def test_list_on_an_empty_cache_says_how_to_build(tmp_path: Path) -> None:
    result = runner.invoke(app, ["zoo", "list", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "not built (48)" in result.output and "mesaguard zoo build" in result.output


def test_show_an_unbuilt_organism_prints_its_spec(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["zoo", "show", "deceptive-date-linear-s3", "--cache-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert '"trigger": "date"' in result.output and "is not built" in result.output


def test_build_with_no_match_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["zoo", "build", "--model", "quantum", "--cache-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
