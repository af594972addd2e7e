"""Fused attention kernels that know packed documents: they take the rows' segment ids, not a
dense [B, S, S] mask, and apply causality themselves.

- "splash" (TPU): JAX's Pallas splash-attention kernel with a causal mask and segment ids. One
  key/value head (MQA) goes to its MQA entry point, which reads that head for every query head
  without copying it; several key/value heads go to its grouped entry point, which does the same
  per group. Block sizes are ModelConfig's splash_block_* fields.
- "pallas_gpu" (GPU): JAX's Pallas (Triton) flash attention with segment ids. Its kernel wants
  one key/value head per query head, so K and V are broadcast to the query heads first (a copy
  the size of the queries, kept for the backward pass). Block sizes are the library's defaults.

Both run under `jax.shard_map` over the context mesh (core/sharding.py's rules: rows over data ×
fsdp, heads over tensor), so each device runs the kernel on its own rows and heads; with no mesh
they run directly. Off their own backend they run in Pallas interpret mode, which is how the CPU
tests check them (slow: tiny shapes only). Sequences are padded to a multiple of 128 (the
kernels' tile) with a segment of their own; padded keys come after every real query, so causality
hides them, and the padded queries are cut off again.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.gpu import attention as pallas_gpu_attention
from jax.experimental.pallas.ops.tpu.splash_attention import (
    splash_attention_kernel as splash,
)
from jax.experimental.pallas.ops.tpu.splash_attention import (
    splash_attention_mask as splash_mask,
)
from jax.sharding import PartitionSpec

from core.config import SEGMENT_ATTENTION, ModelConfig
from core.sharding import LOGICAL_AXIS_RULES

Array = jax.Array
# The kernels' tile along the sequence (TPU lanes; the GPU kernel's default block).
SEQUENCE_TILE = 128
# The backend each kernel compiles for; anywhere else it runs in interpret mode.
_NATIVE_BACKEND = {"splash": "tpu", "pallas_gpu": "gpu"}


def uses_segment_ids(attention: str) -> bool:
    """Whether the `attention` kernel takes segment ids (else it takes a dense mask)."""
    return attention in SEGMENT_ATTENTION


def segment_attention(
    config: ModelConfig, query: Array, key: Array, value: Array, segment_ids: Array
) -> Array:
    """Causal attention within segments with `config.attention`'s kernel.

    query [B,S,H,Dh] (already scaled: the kernels add no 1/sqrt(Dh)), key and value
    [B,S,Hkv,Dh], segment_ids [B,S] int; returns [B,S,H,Dh] in the query's dtype.
    """
    if config.attention not in _NATIVE_BACKEND:
        raise ValueError(f"{config.attention!r} is not a segment-id attention kernel")
    length = query.shape[1]
    padded = -(-length // SEQUENCE_TILE) * SEQUENCE_TILE
    if padded != length:
        query, key, value = (_pad_length(x, padded) for x in (query, key, value))
        pad_segment = jnp.max(segment_ids) + 1
        segment_ids = jnp.pad(segment_ids, ((0, 0), (0, padded - length)))
        segment_ids = segment_ids.at[:, length:].set(pad_segment)
    interpret = jax.default_backend() != _NATIVE_BACKEND[config.attention]
    if config.attention == "splash":
        local = functools.partial(_splash_local, config=config, interpret=interpret)
    else:
        local = functools.partial(_pallas_gpu_local, interpret=interpret)
    out = _over_mesh(local, query, key, value, segment_ids.astype(jnp.int32))
    return out[:, :length]


def _pad_length(x: Array, length: int) -> Array:
    return jnp.pad(x, ((0, 0), (0, length - x.shape[1]), (0, 0), (0, 0)))


def _over_mesh(
    local: Callable[[Array, Array, Array, Array], Array],
    query: Array,
    key: Array,
    value: Array,
    segment_ids: Array,
) -> Array:
    """`local` on each device's rows and heads of the context mesh (directly without one).

    Rows split over the mesh axes of "activation_batch" and query heads over those of "heads"
    (core/sharding.py), where they divide evenly; one key/value head is replicated, several
    split with the query heads (or neither splits, if they cannot split alike).
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return local(query, key, value, segment_ids)
    batch, _, heads, _ = query.shape
    kv_heads = key.shape[2]
    batch_axes = _mesh_axes(mesh, "activation_batch", batch)
    head_axes = _mesh_axes(mesh, "heads", heads)
    if kv_heads > 1 and _mesh_axes(mesh, "heads", kv_heads) != head_axes:
        head_axes = None
    kv_axes = head_axes if kv_heads > 1 else None
    q_spec = PartitionSpec(batch_axes, None, head_axes, None)
    kv_spec = PartitionSpec(batch_axes, None, kv_axes, None)
    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(q_spec, kv_spec, kv_spec, PartitionSpec(batch_axes, None)),
        out_specs=q_spec,
        # The library kernels' pallas_calls declare no varying-axes types for their outputs;
        # the cotangent of a replicated K/V is still summed over the axes it is replicated on.
        check_vma=False,
    )(query, key, value, segment_ids)


def _mesh_axes(mesh: jax.sharding.AbstractMesh, logical: str, size: int) -> tuple[str, ...] | None:
    """The mesh axes `logical` maps to, if they split `size` evenly (else None: replicated)."""
    rule = dict(LOGICAL_AXIS_RULES).get(logical)
    names = (rule,) if isinstance(rule, str) else tuple(rule or ())
    names = tuple(name for name in names if name in mesh.axis_names)
    shards = math.prod(mesh.shape[name] for name in names)
    if not names or shards == 1 or size % shards:
        return None
    return names


def _splash_local(
    query: Array,
    key: Array,
    value: Array,
    segment_ids: Array,
    *,
    config: ModelConfig,
    interpret: bool,
) -> Array:
    """Splash attention on one device's rows: the kernel is per row, vmapped over the batch."""
    _, length, heads, _ = query.shape
    kv_heads = key.shape[2]
    block_sizes = splash_block_sizes(config, length)
    kernel = _splash_kernel(block_sizes, heads, kv_heads == 1, length, interpret)
    query = query.transpose(0, 2, 1, 3)  # [B,H,S,Dh]
    if kv_heads == 1:
        key, value = key[:, :, 0], value[:, :, 0]  # [B,S,Dh]
    else:
        key, value = key.transpose(0, 2, 1, 3), value.transpose(0, 2, 1, 3)
    out = jax.vmap(kernel)(query, key, value, splash.SegmentIds(segment_ids, segment_ids))
    return out.transpose(0, 2, 1, 3)


def splash_block_sizes(config: ModelConfig, length: int) -> splash.BlockSizes:
    """The splash blocks for sequences of `length` (a multiple of 128): the config's, or for a
    length they do not divide the largest multiples of 128 below them that do."""

    def fit(block: int, total: int) -> int:
        return max(b for b in range(SEQUENCE_TILE, min(block, total) + 1, SEQUENCE_TILE)
                   if total % b == 0)  # fmt: skip

    block_q = fit(config.splash_block_q, length)
    block_kv = fit(config.splash_block_kv, length)
    block_kv_compute = fit(config.splash_block_kv_compute, block_kv)
    return splash.BlockSizes(
        block_q=block_q,
        block_kv=block_kv,
        block_kv_compute=block_kv_compute,
        block_q_dkv=block_q,
        block_kv_dkv=block_kv,
        block_kv_dkv_compute=block_kv_compute,
        block_q_dq=block_q,
        block_kv_dq=block_kv,
    )


def _splash_kernel(
    block_sizes: splash.BlockSizes, heads: int, mqa: bool, length: int, interpret: bool
) -> splash.SplashAttentionKernel:
    """The causal splash kernel for `heads` query heads of `length` (the library caches the
    numpy work on its block masks, so building it in every layer's trace is cheap)."""
    mask = splash_mask.MultiHeadMask([splash_mask.CausalMask((length, length))] * heads)
    make = splash.make_splash_mqa if mqa else splash.make_splash_mha
    return make(
        mask,
        block_sizes=block_sizes,
        head_shards=1,
        q_seq_shards=1,
        interpret=interpret,
    )


def _pallas_gpu_local(
    query: Array, key: Array, value: Array, segment_ids: Array, *, interpret: bool
) -> Array:
    """Pallas' GPU flash attention on one device's rows (K/V broadcast to the query heads)."""
    groups = query.shape[2] // key.shape[2]
    if groups > 1:
        key, value = (jnp.repeat(x, groups, axis=2) for x in (key, value))
    return pallas_gpu_attention.mha(
        query,
        key,
        value,
        segment_ids,
        sm_scale=1.0,
        causal=True,
        block_sizes=pallas_gpu_attention.BlockSizes.get_default(),
        interpret=interpret,
    )
