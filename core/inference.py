"""Text in, text out: a trained checkpoint plus its tokenizer, for evals, samples and serving.

`CheckpointCompleter` serves the one completion interface (core/completion.py), plain and
fill-in-the-middle, and scores perplexity; `load_completer` builds one from a run directory
(core/layout.py).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from tokenizers import Tokenizer

from core.checkpoint import CheckpointError, load_model
from core.completion import CompletionRequest, Completions, SamplingConfig, cut_at_stop
from core.config import ConfigError, ModelConfig
from core.fim import FILE_SEPARATOR, FIM_TOKENS, infill_prompt_ids
from core.generate import DecodeStats, StopCheck, content_keys, generate_rows
from core.layout import RunLayout
from core.model import Transformer, unstack_layers
from core.tokenizer import load_tokenizer
from core.train_step import loss_sum

# Decode slots per generation call, by backend. CPU: measured with core/bench_eval_sampling.py
# (TEST, HumanEval prompts x 4 samples, T = 0.2, top-p 0.95; see the report in that module's
# docstring). Accelerators: not measured here; a PROD decode step is memory-bound on the weights
# and the KV cache, so a large batch costs little more per step than a small one.
GENERATION_BATCH = {"cpu": 32, "gpu": 128, "tpu": 128}
# Decode steps between the host's stop-string checks (and refills of finished slots).
CHECK_EVERY = 8


def _starts(sizes: Sequence[int]) -> list[int]:
    """Where each of consecutive slices of these sizes starts."""
    return [0, *itertools.accumulate(sizes)][:-1]


def stop_settled(text: str, stops: Sequence[str]) -> bool:
    """Whether `text`, decoded from the first ids of a row, already fixes where the row's final
    text is cut (`cut_at_stop`): it holds a stop string, and no stop string could still begin
    before the first one found (its start is at the end of `text`). The row can end there: the
    ids after it do not change the completion.

    A text decoded from a prefix of the ids is a prefix of the final text once its trailing
    replacement characters are dropped (byte-level BPE: only an incomplete last character
    differs), so a row ended here is cut to exactly the text of the row decoded to the end.
    """
    text = text.rstrip("\ufffd")
    stops = [stop for stop in stops if stop]
    first = min((index for stop in stops if (index := text.find(stop)) >= 0), default=-1)
    if first < 0:
        return False
    return not any(
        text.endswith(stop[:size]) and len(text) - size < first
        for stop in stops
        for size in range(1, len(stop))
    )


class CheckpointCompleter:
    """Completions and perplexity from one model.

    All rows of a request (every prompt x every sample) go through one continuously batched
    decode (core.generate.generate_rows): rows are admitted shortest prompt first into
    `generation_batch_size` slots; every `check_every` steps the running rows' text is decoded
    and a row whose text holds one of its stop strings ends, and its slot takes the next row; the
    call ends when every row has ended. Each row samples from its own key (the seed, the prompt's
    ids and the sample number), so a prompt's samples do not depend on the rest of the request.
    Compiled programs (one decode program per batch size, prompt region and max_new_tokens; one
    prefill per admitted power-of-two count and prompt bucket) are reused across calls.
    `batch_size` is the number of rows per perplexity batch.
    """

    def __init__(
        self,
        config: ModelConfig,
        params: Any,
        tokenizer: Tokenizer,
        batch_size: int = 8,
        generation_batch_size: int | None = None,
        check_every: int = CHECK_EVERY,
    ) -> None:
        backend = jax.default_backend()
        self.config = config.for_backend(backend)
        self.params = params
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.generation_batch_size = generation_batch_size or GENERATION_BATCH.get(backend, 32)
        self.check_every = check_every
        self.last_stats: DecodeStats | None = None  # what the latest generation call computed
        self._decode_model: tuple[ModelConfig, Any] | None = None

    def complete_ids(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        sampling: SamplingConfig,
        seed: int,
        samples: Sequence[int] | None = None,
        stop_check: StopCheck | None = None,
        stop_ids: Sequence[int] = (),
    ) -> list[list[int]]:
        """Generated ids per prompt (EOS, or one of `stop_ids`, ends a row), after `fit` trims
        the prompts; row i samples from the key of (seed, its prompt ids, samples[i]) (default
        0)."""
        prompts, max_new_tokens = self.fit(prompts, max_new_tokens)
        config, params = self._decoding()
        keys = content_keys(seed, prompts, [0] * len(prompts) if samples is None else samples)
        generation, self.last_stats = generate_rows(
            params,
            config,
            prompts,
            max_new_tokens,
            sampling=sampling,
            stop_ids=(self.config.eos_id, *stop_ids),
            keys=keys,
            stop_check=stop_check,
            batch_size=self.generation_batch_size,
            check_every=self.check_every,
        )
        return generation.token_lists()

    def _decoding(self) -> tuple[ModelConfig, Any]:
        """The model with its layers unrolled, made once: decoding reads each layer's weights
        at every step, and a scanned stack would be sliced again at every decode call."""
        if self._decode_model is None:
            params, config = unstack_layers(self.params, self.config)
            self._decode_model = config, params
        return self._decode_model

    def fit(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int
    ) -> tuple[list[list[int]], int]:
        """The prompts and token budget as generated: at most max_seq_len - 1 new tokens, and
        prompts keep their last tokens when they would not fit beside them."""
        max_new_tokens = min(max_new_tokens, self.config.max_seq_len - 1)
        keep = self.config.max_seq_len - max_new_tokens
        return [list(prompt)[-keep:] or [self.config.eos_id] for prompt in prompts], max_new_tokens

    def complete(
        self, request: CompletionRequest, prompt_stops: Sequence[Sequence[str]] | None = None
    ) -> Completions:
        """`request.n_samples` completions per prompt, each cut before the first stop string
        (`request.stop`, plus prompt i's own `prompt_stops[i]` when given: per-task stops); a
        prompt's tokens are those the model read (see `fit`, `infill_prompts`), a completion's
        those of its text as returned (up to the stop). Greedy rows are the same as one prompt
        decoded alone to max_new_tokens and then cut; rows end as soon as their text holds a stop
        string. With `request.suffix`, each completion is the middle (`infill_prompts`)."""
        if prompt_stops is not None and len(prompt_stops) != len(request.prompts):
            raise ValueError(
                f"prompt_stops has {len(prompt_stops)} entries for {len(request.prompts)} prompts"
            )
        stops = [
            tuple(s for s in (*request.stop, *(prompt_stops[i] if prompt_stops else ())) if s)
            for i in range(len(request.prompts))
        ]
        return self._complete([request], [stops])[0]

    def complete_each(self, requests: Sequence[CompletionRequest]) -> list[Completions]:
        """Each request's completions, as `complete` gives them, from one batched decode of all
        their rows. The requests may differ in their prompts, sample counts, stops and suffixes;
        either all or none are fill-in-the-middle requests (an eval's tasks, each with its
        suffix)."""
        if not requests:
            return []
        shared = {(r.sampling, r.seed, r.max_new_tokens, r.suffix is None) for r in requests}
        if len(shared) > 1:
            raise ValueError(
                "complete_each: the requests must share sampling, seed and max_new_tokens, and "
                "be all or none fill-in-the-middle"
            )
        stops = [[tuple(filter(None, r.stop))] * len(r.prompts) for r in requests]
        return self._complete(requests, stops)

    def _complete(
        self, requests: Sequence[CompletionRequest], stops: Sequence[Sequence[tuple[str, ...]]]
    ) -> list[Completions]:
        """The completions of `requests` (which share their decode settings), prompt i of request
        r cut at `stops[r][i]`, all rows in one `complete_ids` call."""
        first = requests[0]
        infill = first.suffix is not None
        encoded: list[list[int]] = []
        max_new_tokens = first.max_new_tokens
        for request in requests:
            if infill:
                ids, max_new_tokens = self.infill_prompts(
                    request.prompts, request.suffix or "", request.max_new_tokens
                )
            else:
                ids, max_new_tokens = self.fit(
                    self._encode(list(request.prompts)), request.max_new_tokens
                )
            encoded += ids
        samples = [request.n_samples for request in requests for _ in request.prompts]
        prompt_stops = [stop for request_stops in stops for stop in request_stops]
        rows = [prompt for prompt, n in enumerate(samples) for _ in range(n)]
        row_stops = [prompt_stops[prompt] for prompt in rows]
        generated = self.complete_ids(
            [encoded[prompt] for prompt in rows],
            max_new_tokens,
            first.sampling,
            first.seed,
            samples=[sample for n in samples for sample in range(n)],
            stop_check=self._stop_check(row_stops) if any(row_stops) else None,
            stop_ids=(self._fim_token_id(FILE_SEPARATOR),) if infill else (),
        )
        texts = [
            cut_at_stop(text, stop)
            for text, stop in zip(self.tokenizer.decode_batch(generated), row_stops, strict=True)
        ]
        lengths = [len(ids) for ids in self._encode(texts)]
        starts = _starts(samples)
        answer = Completions(
            [texts[start : start + n] for start, n in zip(starts, samples, strict=True)],
            [len(ids) for ids in encoded],
            [sum(lengths[start : start + n]) for start, n in zip(starts, samples, strict=True)],
        )
        sizes = [len(request.prompts) for request in requests]
        return [
            answer.rows(start, start + n) for start, n in zip(_starts(sizes), sizes, strict=True)
        ]

    def infill_prompts(
        self, prefixes: Sequence[str], suffix: str, max_new_tokens: int
    ) -> tuple[list[list[int]], int]:
        """The fill-in-the-middle prompts of `prefixes` with `suffix` as generated (PSM, the
        layout the model trained on: core.fim.infill_prompt_ids) and the token budget: at most
        max_seq_len - 3 new tokens, so that the sentinels always fit; a prefix and suffix too
        long beside them lose the prefix's start and the suffix's end. Generation stops at EOS
        and at <file_sep>."""
        sentinels = {token: self._fim_token_id(token) for token in FIM_TOKENS}
        max_new_tokens = min(max_new_tokens, self.config.max_seq_len - len(FIM_TOKENS))
        room = self.config.max_seq_len - max_new_tokens
        suffix_ids, *prefix_ids = self._encode([suffix, *prefixes])
        prompts = [infill_prompt_ids(ids, suffix_ids, sentinels, room) for ids in prefix_ids]
        return prompts, max_new_tokens

    @property
    def fills_in_the_middle(self) -> bool:
        """Whether the tokenizer has the tokens an infill needs (the FIM sentinels, <file_sep>)."""
        return all(self.tokenizer.token_to_id(t) is not None for t in (*FIM_TOKENS, FILE_SEPARATOR))

    def _fim_token_id(self, token: str) -> int:
        """The id of a special token; a one-line ConfigError if the tokenizer has none."""
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            raise ConfigError(
                f"the model's tokenizer has no {token} token: it cannot fill in the middle"
            )
        return token_id

    def _stop_check(self, row_stops: Sequence[tuple[str, ...]]) -> StopCheck:
        """The decode loop's host-side check: whether each row's text so far settles its cut
        (`stop_settled`)."""

        def check(rows: Sequence[int], ids: Sequence[Sequence[int]]) -> list[bool]:
            candidates = [index for index, row in enumerate(rows) if row_stops[row]]
            ended = [False] * len(rows)
            texts = self.tokenizer.decode_batch([list(ids[index]) for index in candidates])
            for index, text in zip(candidates, texts, strict=True):
                ended[index] = stop_settled(text, row_stops[rows[index]])
            return ended

        return check

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


def live_completer(config: ModelConfig, params: Any, tokenizer: Tokenizer) -> CheckpointCompleter:
    """A completer over a training state's parameters (a training-time eval's model), gathered
    to every host first when they are sharded across several."""
    if jax.process_count() > 1:
        params = multihost_utils.process_allgather(params)
    return CheckpointCompleter(config, params, tokenizer)


def load_completer(path: str | Path, step: int | None = None) -> CheckpointCompleter:
    """A completer for the run at `path` (run directory or its checkpoints/ folder)."""
    layout = RunLayout.of(path)
    if not layout.tokenizer.is_file():
        raise CheckpointError(f"{layout.root}: no {layout.tokenizer.name} beside the checkpoints")
    config, params = load_model(layout.checkpoints, step)
    return CheckpointCompleter(config, params, load_tokenizer(layout.tokenizer))
