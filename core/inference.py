"""Text in, text out: a trained checkpoint plus its tokenizer, for evals, samples and serving.

`CheckpointCompleter` serves the one completion interface (core/completion.py) and scores
perplexity; `load_completer` builds one from a run directory (core/layout.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tokenizers import Tokenizer

from core.checkpoint import CheckpointError, load_model
from core.completion import CompletionRequest, Completions, SamplingConfig, cut_at_stop
from core.config import ModelConfig
from core.generate import generate
from core.layout import RunLayout
from core.model import Transformer
from core.tokenizer import load_tokenizer
from core.train_step import loss_sum


class CheckpointCompleter:
    """Completions and perplexity from one model; prompts run in fixed-size batches so that
    compiled programs are reused across calls."""

    def __init__(
        self, config: ModelConfig, params: Any, tokenizer: Tokenizer, batch_size: int = 8
    ) -> None:
        self.config = config.for_backend(jax.default_backend())
        self.params = params
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def complete_ids(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        sampling: SamplingConfig,
        seed: int,
    ) -> list[list[int]]:
        """Generated ids per prompt (EOS ends a row), after `fit` trims the prompts."""
        prompts, max_new_tokens = self.fit(prompts, max_new_tokens)
        eos = self.config.eos_id
        outputs: list[list[int]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            padded = batch + [batch[-1]] * (self.batch_size - len(batch))
            generation = generate(
                self.params,
                self.config,
                padded,
                max_new_tokens,
                sampling=sampling,
                stop_ids=(eos,),
                rng=jax.random.fold_in(jax.random.key(seed), start),
            )
            outputs.extend(generation.token_lists()[: len(batch)])
        return outputs

    def fit(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int
    ) -> tuple[list[list[int]], int]:
        """The prompts and token budget as generated: at most max_seq_len - 1 new tokens, and
        prompts keep their last tokens when they would not fit beside them."""
        max_new_tokens = min(max_new_tokens, self.config.max_seq_len - 1)
        keep = self.config.max_seq_len - max_new_tokens
        return [list(prompt)[-keep:] or [self.config.eos_id] for prompt in prompts], max_new_tokens

    def complete(self, request: CompletionRequest) -> Completions:
        """`request.n_samples` completions per prompt, each cut before the first stop string;
        a prompt's tokens are those the model read (see `fit`), a completion's those of its text
        as returned (up to the stop)."""
        n = request.n_samples
        encoded = self.fit(self._encode(list(request.prompts)), request.max_new_tokens)[0]
        repeated = [ids for ids in encoded for _ in range(n)]
        generated = self.complete_ids(
            repeated, request.max_new_tokens, request.sampling, request.seed
        )
        texts = [cut_at_stop(text, request.stop) for text in self.tokenizer.decode_batch(generated)]
        lengths = [len(ids) for ids in self._encode(texts)]
        return Completions(
            [texts[i : i + n] for i in range(0, len(texts), n)],
            [len(ids) for ids in encoded],
            [sum(lengths[i : i + n]) for i in range(0, len(texts), n)],
        )

    def _encode(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]

    def perplexity(self, texts: list[str]) -> float:
        """Token-level perplexity of `texts`, packed EOS-separated into max_seq_len rows."""
        stream = [
            token
            for encoding in self.tokenizer.encode_batch(texts)
            for token in (*encoding.ids, self.config.eos_id)
        ]
        row_length = self.config.max_seq_len + 1
        rows = np.full(
            (math.ceil(len(stream) / row_length), row_length), self.config.pad_id, np.int32
        )
        rows.flat[: len(stream)] = stream
        total, count = 0.0, 0.0
        for start in range(0, len(rows), self.batch_size):
            batch_loss, batch_count = _loss_sum(
                self.config, self.params, rows[start : start + self.batch_size]
            )
            total, count = total + float(batch_loss), count + float(batch_count)
        return math.exp(total / max(count, 1.0))


@functools.partial(jax.jit, static_argnums=0)
def _loss_sum(config: ModelConfig, params: Any, rows: jax.Array) -> tuple[jax.Array, jax.Array]:
    return loss_sum(Transformer(config), params, rows)


def load_completer(path: str | Path, step: int | None = None) -> CheckpointCompleter:
    """A completer for the run at `path` (run directory or its checkpoints/ folder)."""
    layout = RunLayout.of(path)
    if not layout.tokenizer.is_file():
        raise CheckpointError(f"{layout.root}: no {layout.tokenizer.name} beside the checkpoints")
    config, params = load_model(layout.checkpoints, step)
    return CheckpointCompleter(config, params, load_tokenizer(layout.tokenizer))
