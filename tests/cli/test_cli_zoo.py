import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mesaguard.cli import app
from mesaguard.organisms import LLMZoo, default_llm_zoo_spec, packaged_adapter_dir

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


@pytest.mark.slow
@pytest.mark.llm
def test_llm_build_over_current_adapters_trains_nothing_and_shows_the_kept_epochs(
    tmp_path: Path,
) -> None:
    """The committed adapters are current, so the build only reads their records and reports."""
    adapters = tmp_path / "adapters"
    shutil.copytree(packaged_adapter_dir(), adapters)
    before = {p.name: p.read_bytes() for p in adapters.glob("*.safetensors")}
    result = runner.invoke(
        app,
        [
            "zoo", "build", "--family", "llm", "--strict",
            "--adapters", str(adapters), "--cache-dir", str(tmp_path / "cache"),
        ],
        env={"COLUMNS": "240"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for organism in default_llm_zoo_spec().organisms:
        record = LLMZoo()._read_record(adapters, organism.name)
        assert record is not None and record.kept_epoch is not None
        assert organism.name in result.output
        assert f"{record.kept_epoch} of {len(record.calibration_margins)}" in result.output
    assert {p.name: p.read_bytes() for p in adapters.glob("*.safetensors")} == before
    assert not (tmp_path / "cache" / "zoo" / "llm").exists()  # nothing was captured
