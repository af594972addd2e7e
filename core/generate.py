"""KV-cached generation on token ids: jit-compiled prefills that admit prompts into the slots of a
decode batch, and a jit-compiled lax.while_loop that advances every slot by one token per step.

Cache layout. A batch of B slots keeps, per layer, keys and values [B, T, kv_heads, head_dim]
with T = P + max_new_tokens (P: the longest prompt, bucketed), used as a ring: decode step s
writes every slot's newest keys/values at entry s mod T, one dynamic_update_slice per layer for
the whole batch, after the step's next token is known. (A per-row scatter, or one array stacked
over the layers, made XLA copy the whole cache at every step to keep the step's reads of it
safe: at 32 x 1024 entries, 50 ms of CPU time per TEST step instead of 29.) A prompt admitted before step s
fills the entries just before s mod T, so its row's tokens sit in consecutive ring entries from
its `origin` on, and a row never wraps onto itself (prompt + max_new_tokens <= T). Each slot
keeps its own length and RoPE positions (0 at its first real token), so slots advance
independently: a finished slot takes a new prompt while the others keep decoding. Entries
outside a row's own span (padding, an earlier row's) are masked out.

Two drivers:
- `generate`: one batch, every prompt admitted at once (`prefill`), decoded to the end (`decode`).
  Compiled programs are reused per (config, batch, bucketed prompt length, max_new_tokens,
  sampling, number of stop ids).
- `generate_rows`: continuous batching for many prompts (all tasks x samples of an eval). Prompts
  are admitted in order of token length (so an admission's padding and prefill are small) into
  `batch_size` slots. `decode` runs `check_every` steps at a time; between runs the host hands the
  running rows' ids to `stop_check` (the completer decodes them and looks for its stop strings),
  ends the rows it reports, collects finished rows and refills their slots with the next prompts.
  The call ends when every row has ended: no row waits for a batch's longest one, and no batch
  runs to max_new_tokens just because one row might.

Stop ids end a row and are not part of its output: `Generation.lengths` counts the tokens before
the stop. A row ended by `stop_check` keeps the ids generated up to the check that ended it (at
most `check_every - 1` past the stop string); the caller cuts its text at the stop.

Sampling (`sample_token`) draws each row from its own key, folded with the row's token index, so a
row's tokens depend only on its prompt, its key and the logits, not on which rows share its batch
(the logits themselves may differ in the last bits between batch shapes, which can move a draw
that lies on a boundary). A draw is one uniform number per row, inverted through the cumulative
distribution, instead of one Gumbel sample per vocabulary entry. Nucleus (top-p) sampling is exact
without sorting the vocabulary: the nucleus is looked for in the top `NUCLEUS_CANDIDATES` tokens,
and only a row whose nucleus is larger falls back to finding its probability threshold by
bisection over the float bit patterns (the full sort took 12 ms per row per step on the CPU).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from core.completion import GREEDY, SamplingConfig
from core.config import ModelConfig
from core.model import KVCache, Params, Transformer, unstack_layers

Array = jax.Array

# Top-p looks for the nucleus among this many most likely tokens first (a trained model's
# nucleus at T = 0.2 is a handful); rows with a larger nucleus take the exact fallback.
NUCLEUS_CANDIDATES = 64
# The inverse CDF runs over blocks of this many ids: block sums, then one block.
_CDF_BLOCK = 256

# A row ended by the host's stop check: (row indices into the prompts, their ids so far) ->
# whether each has ended.
StopCheck = Callable[[Sequence[int], Sequence[Sequence[int]]], Sequence[bool]]


class GenerationError(ValueError):
    """A generation request that cannot run (bad prompt, too long); the message says why."""


@dataclasses.dataclass(frozen=True)
class Generation:
    """Generated ids per row: `tokens[i, :lengths[i]]`; later entries are 0."""

    tokens: np.ndarray  # int32 [rows, max_new_tokens]
    lengths: np.ndarray  # int32 [rows]
    stopped: np.ndarray  # bool [rows]: the row ended on a stop id (excluded) or a stop check

    def token_lists(self) -> list[list[int]]:
        """Each row's generated ids, without padding."""
        return [
            row[:length].tolist() for row, length in zip(self.tokens, self.lengths, strict=True)
        ]


@dataclasses.dataclass(frozen=True)
class DecodeStats:
    """What a `generate_rows` call computed: how much of the decode work went to live rows."""

    rows: int
    batch_size: int
    decode_steps: int  # while-loop iterations: one token for every slot, live or idle
    generated_tokens: int  # ids recorded for the rows (before any cut at a stop string)
    prefill_calls: int
    prefill_tokens: int  # prompt entries run through prefill, padding included
    checks: int  # returns to the host between decode runs

    @property
    def slot_steps(self) -> int:
        """Tokens computed in decode steps, live rows and idle slots alike."""
        return self.decode_steps * self.batch_size

    @property
    def utilization(self) -> float:
        """The share of decode slot-steps that produced a row's token."""
        return self.generated_tokens / max(self.slot_steps, 1)


class DecodeState(NamedTuple):
    """The decode loop's carry, one entry per slot (see the module docstring for the layout)."""

    cache: KVCache  # keys and values: a tuple of one [B, T, Hkv, Dh] array per layer
    token: Array  # [B] each slot's latest token, not yet in the cache
    fresh: Array  # [B] bool: `token` is a newly admitted row's first token, not yet recorded
    generated: Array  # [B, max_new_tokens]
    lengths: Array  # [B] tokens recorded
    done: Array  # [B] the slot's row has ended (or the slot is empty)
    stopped: Array  # [B] it ended on a stop id
    prompt_lengths: Array  # [B]
    origin: Array  # [B] the ring entry of each row's first prompt token
    keys: Array  # [B, ...] uint32 key data: each row's sampling key
    steps: Array  # scalar: decode steps run on this state; step s writes entry s mod T


# --- sampling -------------------------------------------------------------------------------


def _argmax(logits: Array) -> Array:
    """jnp.argmax over the last axis (the first maximum), as a max and a min: XLA's CPU argmax
    (a variadic reduce) took 8 ms for [32, 49152] logits, this 1.4 ms."""
    best = jnp.max(logits, axis=-1, keepdims=True)
    ids = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
    first = jnp.min(jnp.where(logits == best, ids, logits.shape[-1]), axis=-1)
    return jnp.minimum(first, logits.shape[-1] - 1).astype(jnp.int32)


def _first_above(cumulative: Array, target: Array, weights: Array) -> Array:
    """Per row, the first index whose cumulative weight exceeds target; the last positive weight
    if rounding left none (target within an ulp of the total)."""
    size = cumulative.shape[-1]
    first = jnp.sum(cumulative <= target[:, None], axis=-1)
    ids = jax.lax.broadcasted_iota(jnp.int32, weights.shape, 1)
    last_positive = jnp.max(jnp.where(weights > 0, ids, 0), axis=-1)
    return jnp.where(first < size, first, last_positive).astype(jnp.int32)


def _inverse_cdf(weights: Array, uniform: Array) -> Array:
    """Index i drawn with probability weights[i] / sum(weights) per row, from uniform [B] in
    [0, 1): the first index whose cumulative weight exceeds uniform * total. Long rows are
    summed in blocks, then only the chosen block is scanned."""
    batch, size = weights.shape
    if size <= _CDF_BLOCK:
        cumulative = jnp.cumsum(weights, axis=-1)
        return _first_above(cumulative, uniform * cumulative[:, -1], weights)
    padded = math.ceil(size / _CDF_BLOCK) * _CDF_BLOCK
    blocks = jnp.pad(weights, ((0, 0), (0, padded - size))).reshape(batch, -1, _CDF_BLOCK)
    sums = jnp.sum(blocks, axis=-1)
    cumulative = jnp.cumsum(sums, axis=-1)
    target = uniform * cumulative[:, -1]
    block = _first_above(cumulative, target, sums)
    before = jnp.take_along_axis(cumulative - sums, block[:, None], axis=1)[:, 0]
    inner = jnp.take_along_axis(blocks, block[:, None, None], axis=1)[:, 0]
    within = _first_above(jnp.cumsum(inner, axis=-1) + before[:, None], target, inner)
    return block * _CDF_BLOCK + within


def _nucleus_of_sorted(probs: Array, top_p: float) -> Array:
    """probs [B, K] sorted most likely first, zeroed past the smallest prefix reaching top_p."""
    if top_p >= 1.0:
        return probs
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    return jnp.where(mass_before < top_p, probs, 0.0)


def _nucleus_threshold(probs: Array, top_p: float) -> Array:
    """Per row, the smallest probability of the nucleus: the least t with mass(p > t) < top_p,
    found by bisection over the bit patterns of non-negative float32s (monotone as integers)."""
    bits = jax.lax.bitcast_convert_type(probs, jnp.int32)

    def mass_above(bound: Array) -> Array:
        value = jax.lax.bitcast_convert_type(bound, jnp.float32)
        return jnp.sum(jnp.where(probs > value[:, None], probs, 0.0), axis=-1)

    def halve(bounds: tuple[Array, Array]) -> tuple[Array, Array]:
        low, high = bounds  # invariant: mass_above(high) < top_p
        middle = low + (high - low) // 2
        inside = mass_above(middle) < top_p
        return jnp.where(inside, low, middle + 1), jnp.where(inside, middle, high)

    bounds = (jnp.zeros(probs.shape[:1], jnp.int32), jnp.max(bits, axis=-1))
    _, high = jax.lax.while_loop(lambda b: jnp.any(b[0] < b[1]), halve, bounds)
    return jax.lax.bitcast_convert_type(high, jnp.float32)


def _top_p(scaled: Array, uniform: Array, top_p: float) -> Array:
    """Nucleus sampling over the whole vocabulary from temperature-scaled logits [B, V]."""
    candidates = min(NUCLEUS_CANDIDATES, scaled.shape[-1])
    values, ids = jax.lax.top_k(scaled, candidates)  # sorted, most likely first
    log_total = jax.nn.logsumexp(scaled, axis=-1, keepdims=True)
    head = jnp.exp(values - log_total)
    covered = jnp.sum(head, axis=-1) >= top_p  # the nucleus lies within the candidates
    choice = _inverse_cdf(_nucleus_of_sorted(head, top_p), uniform)
    fast = jnp.take_along_axis(ids, choice[:, None], axis=-1)[:, 0]

    def exact() -> Array:
        probs = jnp.exp(scaled - log_total)
        threshold = _nucleus_threshold(probs, top_p)
        slow = _inverse_cdf(jnp.where(probs >= threshold[:, None], probs, 0.0), uniform)
        return jnp.where(covered, fast, slow)

    return jax.lax.cond(jnp.all(covered), lambda: fast, exact)


def sample_token(logits: Array, keys: Array, sampling: SamplingConfig) -> Array:
    """Pick one token id per row from float32 logits [B, V].

    `keys` is one key per row ([B] key array), or one key split into the rows. Greedy takes the
    first maximum; otherwise the temperature-scaled distribution is cut to the top_k tokens (its
    probabilities renormalised over them) and to the smallest most-likely-first set whose mass
    reaches top_p (ties at the edge of a nucleus larger than NUCLEUS_CANDIDATES all stay in).
    """
    if sampling.greedy:
        return _argmax(logits)
    batch, vocab = logits.shape
    if keys.ndim == 0:
        keys = jax.random.split(keys, batch)
    uniform = jax.vmap(lambda key: jax.random.uniform(key, dtype=jnp.float32))(keys)
    scaled = logits.astype(jnp.float32) / sampling.temperature
    if sampling.top_k:
        values, ids = jax.lax.top_k(scaled, min(sampling.top_k, vocab))
        probs = _nucleus_of_sorted(jax.nn.softmax(values, axis=-1), sampling.top_p)
        choice = _inverse_cdf(probs, uniform)
        return jnp.take_along_axis(ids, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)
    if sampling.top_p < 1.0:
        return _top_p(scaled, uniform, sampling.top_p).astype(jnp.int32)
    return _inverse_cdf(jax.nn.softmax(scaled, axis=-1), uniform)


# --- the compiled programs ------------------------------------------------------------------


def _empty_state(config: ModelConfig, batch: int, prompt_len: int, max_new_tokens: int):
    shape = (batch, prompt_len + max_new_tokens, config.num_kv_heads, config.head_dim)
    zeros = tuple(jnp.zeros(shape, jnp.dtype(config.dtype)) for _ in range(config.num_layers))
    keys = jax.random.key_data(jax.random.split(jax.random.key(0), batch))
    return DecodeState(
        cache=KVCache(zeros, zeros),
        token=jnp.zeros((batch,), jnp.int32),
        fresh=jnp.zeros((batch,), bool),
        generated=jnp.zeros((batch, max_new_tokens), jnp.int32),
        lengths=jnp.zeros((batch,), jnp.int32),
        done=jnp.ones((batch,), bool),
        stopped=jnp.zeros((batch,), bool),
        prompt_lengths=jnp.ones((batch,), jnp.int32),
        origin=jnp.zeros((batch,), jnp.int32),
        keys=keys,
        steps=jnp.zeros((), jnp.int32),
    )


@functools.partial(jax.jit, static_argnames=("config", "batch", "prompt_len", "max_new_tokens"))
def empty_state(config: ModelConfig, batch: int, prompt_len: int, max_new_tokens: int):
    """A batch of `batch` empty (ended) slots with a prompt region of `prompt_len` entries and
    room for `max_new_tokens`; `admit` fills slots."""
    return _empty_state(config, batch, prompt_len, max_new_tokens)


def _admit(
    params: Params,
    state: DecodeState,
    tokens: Array,
    prompt_lengths: Array,
    keys: Array,
    slots: Array,
    config: ModelConfig,
    sampling: SamplingConfig,
) -> DecodeState:
    batch, padded_len = tokens.shape
    cache_len = state.cache.keys[0].shape[1]
    index = jnp.arange(padded_len, dtype=jnp.int32)
    first_index = (padded_len - prompt_lengths)[:, None]
    positions = jnp.maximum(index - first_index, 0)
    segment_ids = (index >= first_index).astype(jnp.int32)
    logits, kv = Transformer(config).apply(
        {"params": params}, tokens, positions, segment_ids, method=Transformer.prefill
    )
    first_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(jax.random.wrap_key_data(keys), 0)
    first = sample_token(logits, first_keys, sampling)
    # The prompt fills the ring entries just before the next decode step's.
    ring = (state.steps - padded_len + index) % cache_len

    def write(layers: tuple[Array, ...], new: Array) -> tuple[Array, ...]:
        return tuple(
            layer.at[slots[:, None], ring[None, :]].set(new[i].astype(layer.dtype), mode="drop")
            for i, layer in enumerate(layers)
        )

    cache = KVCache(*(write(layers, new) for layers, new in zip(state.cache, kv, strict=True)))

    def put(values: Array, new: Array | bool | int) -> Array:
        return values.at[slots].set(new, mode="drop")

    return state._replace(
        cache=cache,
        token=put(state.token, first),
        fresh=put(state.fresh, True),
        generated=put(state.generated, 0),
        lengths=put(state.lengths, 0),
        done=put(state.done, False),
        stopped=put(state.stopped, False),
        prompt_lengths=put(state.prompt_lengths, prompt_lengths),
        origin=put(state.origin, (state.steps - prompt_lengths) % cache_len),
        keys=put(state.keys, keys),
    )


@functools.partial(jax.jit, static_argnames=("config", "sampling"), donate_argnames="state")
def admit(
    params: Params,
    state: DecodeState,
    tokens: Array,
    prompt_lengths: Array,
    keys: Array,
    slots: Array,
    *,
    config: ModelConfig,
    sampling: SamplingConfig,
) -> DecodeState:
    """Prefill left-padded prompts [n, p] (p + max_new_tokens at most the cache length) into `slots` [n]
    (an index past the batch drops its row: padding) and sample their first tokens from `keys`
    [n, ...] (key data). The admitted rows start afresh; other slots are untouched."""
    return _admit(params, state, tokens, prompt_lengths, keys, slots, config, sampling)


@functools.partial(jax.jit, static_argnames=("config", "max_new_tokens", "sampling"))
def prefill(
    params: Params,
    tokens: Array,
    prompt_lengths: Array,
    rng: Array,
    *,
    config: ModelConfig,
    max_new_tokens: int,
    sampling: SamplingConfig,
) -> DecodeState:
    """A new batch holding left-padded prompts [B, P], each with its first new token sampled;
    `rng` is one key per row [B] or one key split into the rows."""
    batch, padded_len = tokens.shape
    keys = rng if rng.ndim == 1 else jax.random.split(rng, batch)
    state = _empty_state(config, batch, padded_len, max_new_tokens)
    slots = jnp.arange(batch, dtype=jnp.int32)
    return _admit(
        params, state, tokens, prompt_lengths, jax.random.key_data(keys), slots, config, sampling
    )


def _record(state: DecodeState, token: Array, live: Array, stop_ids: Array) -> DecodeState:
    """Append `token` to the `live` rows, or end the rows it stops (or fills)."""
    is_stop = jnp.isin(token, stop_ids)
    accept = live & ~is_stop
    max_new_tokens = state.generated.shape[1]
    rows = jnp.arange(token.shape[0])
    column = jnp.minimum(state.lengths, max_new_tokens - 1)
    kept = state.generated[rows, column]
    generated = state.generated.at[rows, column].set(jnp.where(accept, token, kept))
    lengths = state.lengths + accept
    return state._replace(
        token=token,
        fresh=state.fresh & ~live,
        generated=generated,
        lengths=lengths,
        done=state.done | (live & (is_stop | (lengths >= max_new_tokens))),
        stopped=state.stopped | (live & is_stop),
    )


@functools.partial(jax.jit, static_argnames=("config", "sampling"), donate_argnames="state")
def decode(
    params: Params,
    state: DecodeState,
    stop_ids: Array,
    until: Array | int | None = None,
    *,
    config: ModelConfig,
    sampling: SamplingConfig,
) -> DecodeState:
    """Record newly admitted rows' first tokens, then decode every slot one token per step until
    every row ended (a stop id among `stop_ids` [K], or max_new_tokens) or, if given,
    `state.steps` reached `until`."""
    params, config = unstack_layers(params, config)  # once per call, outside the loop
    model = Transformer(config)
    batch, max_new_tokens = state.generated.shape
    transposed_embedding = _decode_output_weights(model, params, batch)
    cache_len = state.cache.keys[0].shape[1]
    entries = jnp.arange(cache_len, dtype=jnp.int32)
    origin = state.origin[:, None]

    def running(state: DecodeState) -> Array:
        more = ~jnp.all(state.done)
        return more if until is None else more & (state.steps < until)

    def step(state: DecodeState) -> DecodeState:
        # A row's entries in the cache: its prompt and all its tokens but the latest.
        cached = state.prompt_lengths + state.lengths - 1
        cache_mask = (entries - origin) % cache_len < cached[:, None]
        positions = cached[:, None]
        logits, kv = model.apply(
            {"params": params},
            state.token[:, None],
            positions,
            state.cache,
            cache_mask,
            transposed_embedding,
            method=Transformer.decode,
        )
        keys = jax.vmap(jax.random.fold_in)(jax.random.wrap_key_data(state.keys), state.lengths)
        token = sample_token(logits[:, 0], keys, sampling)
        # Written after the next token is known: then every read of the cache comes before its
        # in-place update, and XLA need not copy the cache at every step to keep the reads safe.
        token, kv = jax.lax.optimization_barrier((token, kv))
        write = (0, state.steps % cache_len, 0, 0)  # every slot's latest token's entry
        cache = KVCache(
            *(
                tuple(
                    jax.lax.dynamic_update_slice(layer, new[i].astype(layer.dtype), write)
                    for i, layer in enumerate(layers)
                )
                for layers, new in zip(state.cache, kv, strict=True)
            )
        )
        state = state._replace(cache=cache, steps=state.steps + 1)
        return _record(state, token, ~state.done, stop_ids)

    state = _record(state, state.token, state.fresh & ~state.done, stop_ids)
    return jax.lax.while_loop(running, step, state)


def _decode_output_weights(model: Transformer, params: Params, batch: int) -> Array | None:
    """A [D,V] copy of the tied embedding for batch-1 decoding on the CPU, else None.

    There XLA's matrix-vector product over the [D,V] copy is ~1.7x faster than over the
    embedding's own [V,D] layout (TEST logits: 2.0 vs 3.4 ms per token); from batch 2 on the
    [V,D] matrix product is the faster one. The barrier keeps XLA from folding the transpose
    back into the loop's product, so the copy is made once per call.
    """
    if batch > 1 or jax.default_backend() != "cpu":
        return None
    embedding = model.apply({"params": params}, method=Transformer.output_embedding)
    return jax.lax.optimization_barrier(embedding.T)


# --- drivers --------------------------------------------------------------------------------


def bucketed(length: int, bucket: int) -> int:
    """`length` rounded up to a multiple of `bucket`."""
    return math.ceil(length / bucket) * bucket


def left_pad(prompts: Sequence[Sequence[int]], prompt_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompts as int32 [B, P] aligned to the right, P the longest rounded up to the bucket."""
    lengths = np.array([len(prompt) for prompt in prompts], dtype=np.int32)
    padded_len = bucketed(int(lengths.max()), prompt_bucket)
    tokens = np.zeros((len(prompts), padded_len), dtype=np.int32)
    for row, prompt in enumerate(prompts):
        tokens[row, padded_len - len(prompt) :] = prompt
    return tokens, lengths


def _validate(
    config: ModelConfig,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    stop_ids: Sequence[int],
) -> None:
    if not prompts:
        raise GenerationError("no prompts given")
    if max_new_tokens <= 0:
        raise GenerationError(f"max_new_tokens must be positive, got {max_new_tokens}")
    for row, prompt in enumerate(prompts):
        if not len(prompt):
            raise GenerationError(f"prompt {row} is empty")
        if min(prompt) < 0 or max(prompt) >= config.vocab_size:
            raise GenerationError(f"prompt {row} has token ids outside [0, {config.vocab_size})")
        if len(prompt) + max_new_tokens > config.max_seq_len:
            raise GenerationError(
                f"prompt {row} ({len(prompt)} tokens) + max_new_tokens ({max_new_tokens}) "
                f"exceeds ModelConfig.max_seq_len ({config.max_seq_len})"
            )
    if any(not 0 <= stop < config.vocab_size for stop in stop_ids):
        raise GenerationError(f"stop ids {list(stop_ids)} must lie in [0, {config.vocab_size})")


def _stop_array(stop_ids: Sequence[int]) -> Array:
    return jnp.asarray(sorted(set(stop_ids)), dtype=jnp.int32)


def generate(
    params: Params,
    config: ModelConfig,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    *,
    sampling: SamplingConfig = GREEDY,
    stop_ids: Sequence[int] = (),
    rng: Array | None = None,
    prompt_bucket: int = 64,
) -> Generation:
    """Continue each prompt (a list of token ids) by up to max_new_tokens ids, as one batch.

    Compiled programs are reused for calls with the same config, batch size, bucketed prompt
    length, max_new_tokens, sampling and number of stop ids. `rng` (default: key 0) drives
    sampling: one key split into the rows, or one key per row.
    """
    _validate(config, prompts, max_new_tokens, stop_ids)
    tokens, lengths = left_pad(prompts, prompt_bucket)
    state = prefill(
        params,
        jnp.asarray(tokens),
        jnp.asarray(lengths),
        jax.random.key(0) if rng is None else rng,
        config=config,
        max_new_tokens=max_new_tokens,
        sampling=sampling,
    )
    state = decode(params, state, _stop_array(stop_ids), config=config, sampling=sampling)
    return Generation(
        tokens=np.asarray(state.generated),
        lengths=np.asarray(state.lengths),
        stopped=np.asarray(state.stopped),
    )


def content_keys(seed: int, prompts: Sequence[Sequence[int]], samples: Sequence[int]) -> Array:
    """One sampling key per row from the seed, the row's prompt ids and its sample number: the
    same prompt and sample draw the same tokens in any request and any batch."""
    digests = [zlib.crc32(np.asarray(prompt, np.int32).tobytes()) for prompt in prompts]
    return _content_keys(
        jax.random.key(seed), jnp.asarray(digests, jnp.uint32), jnp.asarray(samples, jnp.uint32)
    )


@jax.jit
def _content_keys(seed: Array, digests: Array, samples: Array) -> Array:
    def one(digest: Array, sample: Array) -> Array:
        return jax.random.fold_in(jax.random.fold_in(seed, digest), sample)

    return jax.vmap(one)(digests, samples)


def _power_of_two(count: int) -> int:
    return 1 << max(count - 1, 0).bit_length()


def generate_rows(
    params: Params,
    config: ModelConfig,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    *,
    sampling: SamplingConfig = GREEDY,
    stop_ids: Sequence[int] = (),
    keys: Array | None = None,
    stop_check: StopCheck | None = None,
    batch_size: int = 32,
    check_every: int = 8,
    prompt_bucket: int = 64,
) -> tuple[Generation, DecodeStats]:
    """Continue every prompt by up to max_new_tokens ids with continuous batching (see the module
    docstring); rows come back in prompt order.

    `keys` [rows] (default: split from key 0) are the rows' sampling keys (`content_keys`).
    The batch has `batch_size` slots, fewer (a power of two) when there are fewer prompts; an
    admission prefills a power-of-two number of prompts. `params` may be unstacked beforehand
    (`unstack_layers`) so that decode calls do not slice a scanned stack each time.
    """
    _validate(config, prompts, max_new_tokens, stop_ids)
    if batch_size <= 0 or check_every <= 0:
        raise GenerationError(f"batch_size ({batch_size}) and check_every must be positive")
    count = len(prompts)
    batch = min(batch_size, _power_of_two(count))
    lengths = np.array([len(prompt) for prompt in prompts], dtype=np.int32)
    region = bucketed(int(lengths.max()), prompt_bucket)
    order = np.argsort(lengths, kind="stable")
    if keys is None:
        keys = jax.random.split(jax.random.key(0), count)
    key_data = np.asarray(jax.random.key_data(keys))
    stop_array = _stop_array(stop_ids)

    tokens = np.zeros((count, max_new_tokens), np.int32)
    out_lengths = np.zeros(count, np.int32)
    stopped = np.zeros(count, bool)
    slot_row = np.full(batch, -1)  # the row each slot decodes; -1: empty
    admitted, steps = 0, 0
    prefill_calls = prefill_tokens = checks = 0
    state = empty_state(config, batch, region, max_new_tokens)
    while True:
        free = np.flatnonzero(slot_row < 0)
        if free.size and admitted < count:
            rows = order[admitted : admitted + free.size]
            admitted += rows.size
            size = _power_of_two(rows.size)
            padded = bucketed(int(lengths[rows].max()), prompt_bucket)
            ids = np.zeros((size, padded), np.int32)
            for index, row in enumerate(rows):
                ids[index, padded - lengths[row] :] = prompts[row]
            slots = np.full(size, batch, np.int32)  # past the batch: dropped
            slots[: rows.size] = free[: rows.size]
            row_keys = np.zeros((size, *key_data.shape[1:]), key_data.dtype)
            row_keys[: rows.size] = key_data[rows]
            row_lengths = np.ones(size, np.int32)
            row_lengths[: rows.size] = lengths[rows]
            state = admit(params, state, ids, row_lengths, row_keys, slots,
                          config=config, sampling=sampling)  # fmt: skip
            slot_row[free[: rows.size]] = rows
            prefill_calls, prefill_tokens = prefill_calls + 1, prefill_tokens + ids.size
        if (slot_row < 0).all():
            break
        # Without stop strings and with no prompt waiting, nothing can change between checks.
        waiting = admitted < count or stop_check is not None
        until = steps + (check_every if waiting else max_new_tokens)
        state = decode(params, state, stop_array, until, config=config, sampling=sampling)
        done, row_lengths, generated, ended_on_stop, steps = jax.device_get(
            (state.done, state.lengths, state.generated, state.stopped, state.steps)
        )
        done, ended_on_stop, steps = done.copy(), ended_on_stop.copy(), int(steps)
        checks += 1
        live = np.flatnonzero((slot_row >= 0) & ~done)
        if stop_check is not None and live.size:
            ended = np.asarray(
                stop_check(
                    slot_row[live].tolist(),
                    [generated[slot, : row_lengths[slot]].tolist() for slot in live],
                ),
                bool,
            )
            if ended.any():
                done[live[ended]] = ended_on_stop[live[ended]] = True
                state = state._replace(done=jnp.asarray(done))
        for slot in np.flatnonzero((slot_row >= 0) & done):
            row, length = slot_row[slot], row_lengths[slot]
            tokens[row, :length] = generated[slot, :length]
            out_lengths[row], stopped[row] = length, ended_on_stop[slot]
            slot_row[slot] = -1
    stats = DecodeStats(
        rows=count,
        batch_size=batch,
        decode_steps=steps,
        generated_tokens=int(out_lengths.sum()),
        prefill_calls=prefill_calls,
        prefill_tokens=prefill_tokens,
        checks=checks,
    )
    return Generation(tokens=tokens, lengths=out_lengths, stopped=stopped), stats
