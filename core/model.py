"""Decoder-only transformer in flax.linen: MQA attention, RoPE, RMSNorm, SwiGLU, tied embeddings
(or a separate output projection, `tie_embeddings=False`, as imported Llama checkpoints may have).

Parameters live in `config.param_dtype` and compute runs in `config.dtype`; attention softmax and
the output logits are float32. Every parameter carries logical axis names (see `logical_axes`),
and activations are constrained with their own `activation_*` names; core/sharding.py maps both
to mesh axes. With `deterministic=False` (training), dropout at `config.dropout` applies to the
embeddings and to each block's attention and feed-forward outputs, drawing from the "dropout" rng.
Training attention (and prefill's) runs in the kernel `config.attention` names: the model's own
einsums or jax.nn.dot_product_attention, which take a dense [B,S,S] mask, or the segment-id
kernels of core/attention.py, for which no such mask is built. Besides the training forward
pass, `Transformer.prefill` and `Transformer.decode` serve KV-cached generation
(core/generate.py): the cache holds `num_kv_heads` heads per layer, and a layer never copies it;
it only returns the keys/values of its new tokens for the caller to write.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from core import attention as attention_kernels
from core.config import ModelConfig

Array = jax.Array
Params = Any
_NEG_INF = float(np.finfo(np.float32).min)


class KVCache(NamedTuple):
    """Rotated keys and values, each [layers, batch, length, kv_heads, head_dim]."""

    keys: Array
    values: Array


class AttentionMask(NamedTuple):
    """Which tokens a token attends to: a dense mask [B,S,S] (causality and segments) for the
    kernels that take one, or the packed rows' segment ids [B,S] for the segment-aware kernels
    (core/attention.py), which apply causality themselves; the other field is None."""

    dense: Array | None = None
    segment_ids: Array | None = None


class Rope(NamedTuple):
    """Rotary angles for the current tokens: sin and cos, each [batch, length, 1, head_dim / 2]."""

    sin: Array
    cos: Array


def rope_angles(positions: Array, head_dim: int, theta: float) -> Rope:
    """Rotary angles for tokens at `positions` [B,S] (any values: packed rows, decode steps)."""
    half = head_dim // 2
    inv_freq = theta ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions.astype(jnp.float32)[:, :, None, None] * inv_freq
    return Rope(jnp.sin(angles), jnp.cos(angles))


def apply_rope(x: Array, rope: Rope) -> Array:
    """Rotate feature pairs (i, i + head_dim/2) of x [batch, length, heads, head_dim]."""
    first, second = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate(
        [first * rope.cos - second * rope.sin, second * rope.cos + first * rope.sin], axis=-1
    )
    return rotated.astype(x.dtype)


# Activation shapes by logical axis name (see core/sharding.py's rules).
ACTIVATION_EMBED = ("activation_batch", "activation_length", "activation_embed")
ACTIVATION_MLP = ("activation_batch", "activation_length", "activation_mlp")
ACTIVATION_VOCAB = ("activation_batch", "activation_length", "activation_vocab")


def _kernel_init(config: ModelConfig, names: tuple[str, ...]) -> nn.initializers.Initializer:
    return nn.with_logical_partitioning(nn.initializers.normal(config.init_std), names)


def _rms_norm(config: ModelConfig, name: str) -> nn.RMSNorm:
    return nn.RMSNorm(
        epsilon=config.norm_eps,
        dtype=config.dtype,
        param_dtype=config.param_dtype,
        scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
        name=name,
    )


def _projection(
    config: ModelConfig, shape: tuple[int, ...], equation: str, names: tuple[str, ...], name: str
) -> Callable[[Array], Array]:
    """A bias-free projection of x [B,S,...]; `equation` maps the tokens ("t...") to outputs.

    Batch and length are merged first so that each weight gradient is one plain 2-D matmul: with
    both axes contracted, XLA's CPU backend copied a transposed activation for every one.
    """
    einsum = nn.Einsum(
        shape=shape,
        einsum_str=equation,
        use_bias=False,
        dtype=config.dtype,
        param_dtype=config.param_dtype,
        kernel_init=_kernel_init(config, names),
        name=name,
    )

    def project(x: Array) -> Array:
        batch, length = x.shape[:2]
        out = einsum(x.reshape(batch * length, *x.shape[2:]))
        return out.reshape(batch, length, *out.shape[1:])

    return project


class Attention(nn.Module):
    """Causal multi-query attention; query heads share `num_kv_heads` key/value heads."""

    config: ModelConfig

    @nn.compact
    def __call__(
        self,
        x: Array,
        rope: Rope,
        mask: AttentionMask,
        cache: KVCache | None,
        cache_mask: Array | None,
    ) -> tuple[Array, KVCache]:
        """Attend from x [B,S,D] to itself (`mask`) and to `cache` (`cache_mask` [B,T]).

        Returns the output [B,S,D] and the rotated keys/values of x, [B,S,Hkv,Dh] each.
        """
        cfg = self.config
        heads, kv_heads, head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        query = _projection(
            cfg,
            (cfg.hidden_dim, heads, head_dim),
            "td,dhk->thk",
            ("embed", "heads", "head_dim"),
            "query",
        )(x)
        kv_shape = (cfg.hidden_dim, kv_heads, head_dim)
        kv_names = ("embed", "kv_heads", "head_dim")
        key = _projection(cfg, kv_shape, "td,dhk->thk", kv_names, "key")(x)
        value = _projection(cfg, kv_shape, "td,dhk->thk", kv_names, "value")(x)
        query = apply_rope(query, rope) * jnp.asarray(head_dim**-0.5, query.dtype)
        key = apply_rope(key, rope)

        if cache is None and attention_kernels.uses_segment_ids(cfg.attention):
            out = attention_kernels.segment_attention(cfg, query, key, value, mask.segment_ids)
            return self._project_out(out), KVCache(key, value)
        if cache is None and cfg.attention in ("xla", "cudnn"):
            out = jax.nn.dot_product_attention(
                query,
                key,
                value,
                mask=mask.dense[:, None],
                scale=1.0,
                is_causal=True,
                implementation=cfg.attention,
            )
            return self._project_out(out), KVCache(key, value)

        # Fold the query heads that share a key/value head into the query rows, so each
        # score/value product is one plain batched matmul per K/V head (no K/V copies per query
        # head; measured ~1.5x faster than 5-D einsums on the CPU, forward plus backward).
        batch, length = x.shape[:2]
        groups = heads // kv_heads
        query = query.reshape(batch, length, kv_heads, groups, head_dim)
        query = query.transpose(0, 2, 1, 3, 4).reshape(batch, kv_heads, length * groups, head_dim)

        def scores_against(keys: Array, keep: Array) -> Array:
            """Masked float32 scores [B, Hkv, S, G, T]; keep broadcasts to [B, S, T]."""
            scores = jnp.einsum("bkqd,btkd->bkqt", query, keys, preferred_element_type=jnp.float32)
            scores = scores.reshape(batch, kv_heads, length, groups, keys.shape[1])
            return jnp.where(keep[:, None, :, None, :], scores, _NEG_INF)

        scores = scores_against(key, mask.dense)
        if cache is not None:
            scores = jnp.concatenate(
                [scores_against(cache.keys, cache_mask[:, None, :]), scores], axis=-1
            )
        probs = jax.nn.softmax(scores, axis=-1).astype(value.dtype)
        probs = probs.reshape(batch, kv_heads, length * groups, -1)
        if cache is None:
            out = jnp.einsum("bkqt,btkd->bkqd", probs, value)
        else:
            cached_len = cache.values.shape[1]
            out = jnp.einsum("bkqt,btkd->bkqd", probs[..., :cached_len], cache.values)
            out += jnp.einsum("bkqt,btkd->bkqd", probs[..., cached_len:], value)
        out = out.reshape(batch, kv_heads, length, groups, head_dim).transpose(0, 2, 1, 3, 4)
        out = out.reshape(batch, length, heads, head_dim)
        return self._project_out(out), KVCache(key, value)

    def _project_out(self, heads_out: Array) -> Array:
        """Merge the heads of heads_out [B,S,H,Dh] back to [B,S,D]."""
        cfg = self.config
        return _projection(
            cfg,
            (cfg.num_heads, cfg.head_dim, cfg.hidden_dim),
            "thk,hkd->td",
            ("heads", "head_dim", "embed"),
            "out",
        )(heads_out)


class SwiGLU(nn.Module):
    """Feed-forward block: down(silu(gate(x)) * up(x))."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Map x [B,S,D] to [B,S,D] through the ffn_dim hidden layer."""
        cfg = self.config
        shape_in, shape_out = (cfg.hidden_dim, cfg.ffn_dim), (cfg.ffn_dim, cfg.hidden_dim)
        gate = _projection(cfg, shape_in, "td,df->tf", ("embed", "mlp"), "gate")(x)
        up = _projection(cfg, shape_in, "td,df->tf", ("embed", "mlp"), "up")(x)
        hidden = nn.with_logical_constraint(nn.silu(gate) * up, ACTIVATION_MLP)
        return _projection(cfg, shape_out, "tf,fd->td", ("mlp", "embed"), "down")(hidden)


class Block(nn.Module):
    """Pre-norm transformer layer; returns its new keys/values only when `emit_kv`."""

    config: ModelConfig
    emit_kv: bool = False
    deterministic: bool = True

    @nn.compact
    def __call__(
        self,
        x: Array,
        rope: Rope,
        mask: AttentionMask,
        cache: KVCache | None,
        cache_mask: Array | None,
    ) -> tuple[Array, KVCache | None]:
        """One layer over x [B,S,D]; the signature fits nn.scan (carry x, per-layer cache)."""
        dropout = nn.Dropout(self.config.dropout, deterministic=self.deterministic)
        attended, kv = Attention(self.config, name="attention")(
            _rms_norm(self.config, "attention_norm")(x), rope, mask, cache, cache_mask
        )
        x = x + dropout(attended)
        x = x + dropout(SwiGLU(self.config, name="mlp")(_rms_norm(self.config, "mlp_norm")(x)))
        x = nn.with_logical_constraint(x, ACTIVATION_EMBED)
        return x, (kv if self.emit_kv else None)


@jax.custom_vjp
def tied_logits(hidden: Array, embedding: Array) -> Array:
    """float32 logits hidden [..., D] · embedding [V, D]ᵀ, accumulated in float32.

    The backward pass multiplies in the inputs' (compute) dtype: left to autodiff, the float32
    cotangent would turn both vocabulary-sized gradient matmuls into float32 ones (tf32 on GPUs).
    """
    return jnp.einsum("...d,vd->...v", hidden, embedding, preferred_element_type=jnp.float32)


def _tied_logits_fwd(hidden: Array, embedding: Array) -> tuple[Array, tuple[Array, Array]]:
    return tied_logits(hidden, embedding), (hidden, embedding)


def _tied_logits_bwd(residuals: tuple[Array, Array], cotangent: Array) -> tuple[Array, Array]:
    hidden, embedding = residuals
    cotangent = cotangent.astype(hidden.dtype)
    d_hidden = jnp.einsum("...v,vd->...d", cotangent, embedding, preferred_element_type=jnp.float32)
    d_embedding = jnp.einsum("...v,...d->vd", cotangent, hidden, preferred_element_type=jnp.float32)
    return d_hidden.astype(hidden.dtype), d_embedding.astype(embedding.dtype)


tied_logits.defvjp(_tied_logits_fwd, _tied_logits_bwd)


class Transformer(nn.Module):
    """The language model: token ids [B,S] -> float32 logits [B,S,vocab]; `deterministic=False`
    turns dropout on (training)."""

    config: ModelConfig
    deterministic: bool = True

    def setup(self) -> None:
        cfg = self.config
        self.embed = nn.Embed(
            cfg.vocab_size,
            cfg.hidden_dim,
            embedding_init=_kernel_init(cfg, ("vocab", "embed")),
            dtype=cfg.dtype,
            param_dtype=cfg.param_dtype,
        )
        if not cfg.tie_embeddings:
            self.lm_head = self.param(
                "lm_head",
                _kernel_init(cfg, ("vocab", "embed")),
                (cfg.vocab_size, cfg.hidden_dim),
                jnp.dtype(cfg.param_dtype),
            )
        self.final_norm = _rms_norm(cfg, "final_norm")

    def __call__(
        self,
        tokens: Array,
        positions: Array | None = None,
        segment_ids: Array | None = None,
        return_hidden: bool = False,
    ) -> Array:
        """Logits [B,S,V] (float32), or the final-normed hidden states [B,S,D] if return_hidden.

        positions [B,S] default to arange(S); with segment_ids [B,S] a token attends only to
        earlier-or-equal tokens of its own segment.
        """
        batch, length = tokens.shape
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))
        mask = _self_attention_mask(self.config, batch, length, segment_ids)
        hidden, _ = self._layers(tokens, positions, mask, None, None, emit_kv=False)
        return hidden if return_hidden else self.logits(hidden)

    def logits(self, hidden: Array, transposed_embedding: Array | None = None) -> Array:
        """float32 logits [B,S,V] from final hidden states [B,S,D] via the tied embedding, or
        via `transposed_embedding`, its [D,V] copy, when the caller made one (core/generate.py)."""
        hidden = hidden.astype(self.config.dtype)
        if transposed_embedding is None:
            logits = tied_logits(hidden, self.output_embedding())
        else:
            logits = jnp.einsum(
                "...d,dv->...v", hidden, transposed_embedding, preferred_element_type=jnp.float32
            )
        return nn.with_logical_constraint(logits, ACTIVATION_VOCAB)

    def output_embedding(self) -> Array:
        """The output projection [V, D] as stored (the parameter dtype): the token embedding,
        or the separate lm_head of an untied model."""
        return self.embed.embedding if self.config.tie_embeddings else self.lm_head

    def prefill(self, tokens: Array, positions: Array, segment_ids: Array) -> tuple[Array, KVCache]:
        """Run a prompt batch [B,S]: last-position logits [B,V] and every layer's keys/values."""
        mask = _self_attention_mask(self.config, *tokens.shape, segment_ids)
        hidden, kv = self._layers(tokens, positions, mask, None, None, emit_kv=True)
        return self.logits(hidden[:, -1:])[:, 0], kv

    def decode(
        self,
        tokens: Array,
        positions: Array,
        cache: KVCache,
        cache_mask: Array,
        transposed_embedding: Array | None = None,
    ) -> tuple[Array, KVCache]:
        """Run new tokens [B,S] after `cache` (valid slots: `cache_mask` [B,T]).

        Returns logits [B,S,V] (see `logits` for `transposed_embedding`) and the new tokens'
        keys/values [L,B,S,Hkv,Dh], which the caller writes into its cache.
        """
        mask = AttentionMask(dense=_causal_mask(*tokens.shape))
        hidden, kv = self._layers(tokens, positions, mask, cache, cache_mask, emit_kv=True)
        return self.logits(hidden, transposed_embedding), kv

    @nn.compact
    def _layers(
        self,
        tokens: Array,
        positions: Array,
        mask: AttentionMask,
        cache: KVCache | None,
        cache_mask: Array | None,
        emit_kv: bool,
    ) -> tuple[Array, KVCache | None]:
        cfg = self.config
        x = nn.Dropout(cfg.dropout, deterministic=self.deterministic)(self.embed(tokens))
        x = nn.with_logical_constraint(x, ACTIVATION_EMBED)
        rope = rope_angles(positions, cfg.head_dim, cfg.rope_theta)
        block = Block
        if cfg.remat:
            policy = _REMAT_POLICIES[cfg.remat_policy]
            block = nn.remat(Block, prevent_cse=not cfg.scan_layers, policy=policy)
        if cfg.scan_layers:
            layers = nn.scan(
                block,
                variable_axes={"params": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(nn.broadcast, nn.broadcast, 0, nn.broadcast),
                length=cfg.num_layers,
                metadata_params={nn.PARTITION_NAME: "layers"},
            )(cfg, emit_kv, self.deterministic, name="layers")
            x, kv = layers(x, rope, mask, cache, cache_mask)
        else:
            layer_kvs = []
            for index in range(cfg.num_layers):
                layer_cache = None if cache is None else KVCache(*(c[index] for c in cache))
                x, layer_kv = block(cfg, emit_kv, self.deterministic, name=f"layer_{index}")(
                    x, rope, mask, layer_cache, cache_mask
                )
                layer_kvs.append(layer_kv)
            kv = jax.tree.map(lambda *kvs: jnp.stack(kvs), *layer_kvs) if emit_kv else None
        return self.final_norm(x), kv


_REMAT_POLICIES = {
    "full": None,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def _causal_mask(batch: int, length: int) -> Array:
    causal = jnp.tril(jnp.ones((length, length), dtype=bool))
    return jnp.broadcast_to(causal, (batch, length, length))


def _self_attention_mask(
    config: ModelConfig, batch: int, length: int, segment_ids: Array | None
) -> AttentionMask:
    """What a token sees of its own row: segment ids for the kernels that take them (no
    [B,S,S] array exists then), else the dense causal mask within segments."""
    if attention_kernels.uses_segment_ids(config.attention):
        if segment_ids is None:
            segment_ids = jnp.zeros((batch, length), jnp.int32)
        return AttentionMask(segment_ids=segment_ids)
    mask = _causal_mask(batch, length)
    if segment_ids is not None:
        mask &= segment_ids[:, :, None] == segment_ids[:, None, :]
    return AttentionMask(dense=mask)


def _boxed_params(config: ModelConfig, rng: Array) -> Params:
    return Transformer(config).init(rng, jnp.zeros((1, 1), jnp.int32))["params"]


@functools.partial(jax.jit, static_argnums=0)
def init_params(config: ModelConfig, rng: Array) -> Params:
    """Freshly initialised parameters (plain arrays; `logical_axes` gives their axis names).

    Unscanned layers are initialised scanned, then split: the same values, and XLA compiles one
    layer's initialiser instead of N (an unrolled PROD init took minutes to compile on a GPU).
    """
    if not config.scan_layers:
        scanned = dataclasses.replace(config, scan_layers=True)
        return unstack_layers(init_params(scanned, rng), scanned)[0]
    return nn.unbox(_boxed_params(config, rng))


def logical_axes(config: ModelConfig) -> Params:
    """The logical axis names of every parameter, as a pytree of PartitionSpecs (no allocation)."""
    boxed = jax.eval_shape(functools.partial(_boxed_params, config), jax.random.key(0))
    return nn.get_partition_spec(boxed)


def unstack_layers(params: Params, config: ModelConfig) -> tuple[Params, ModelConfig]:
    """The same model with one parameter entry per layer ("layer_0", ...) and unscanned layers.

    Decoding runs faster unrolled: a scan slices (copies) every layer's weights at every step.
    """
    if not config.scan_layers:
        return params, config
    unstacked = {name: value for name, value in params.items() if name != "layers"}
    for index in range(config.num_layers):
        unstacked[f"layer_{index}"] = jax.tree.map(operator.itemgetter(index), params["layers"])
    return unstacked, dataclasses.replace(config, scan_layers=False)


def stack_layers(params: Params, config: ModelConfig) -> tuple[Params, ModelConfig]:
    """The inverse of `unstack_layers`: the layers as one stacked "layers" entry, scanned."""
    if config.scan_layers:
        return params, config
    names = [f"layer_{index}" for index in range(config.num_layers)]
    stacked = {name: value for name, value in params.items() if name not in names}
    stacked["layers"] = jax.tree.map(lambda *layers: jnp.stack(layers), *(params[n] for n in names))
    return stacked, dataclasses.replace(config, scan_layers=True)


def relayout_layers(params: Params, config: ModelConfig, scan_layers: bool) -> Params:
    """`params` of `config` arranged for a model with `scan_layers` (stacked or one per layer)."""
    if scan_layers:
        return stack_layers(params, config)[0]
    return unstack_layers(params, config)[0]


def count_params(config: ModelConfig) -> int:
    """Number of parameters, computed from shapes only (no allocation)."""
    shapes = jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes))
