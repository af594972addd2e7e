"""The segment-id attention kernels (Pallas, in interpret mode on the CPU) against a dense-mask
einsum reference, sharded over 8 simulated devices, and their config fields."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.attention import SEQUENCE_TILE, segment_attention, splash_block_sizes
from core.config import PROD, SEGMENT_ATTENTION, TEST, ConfigError, ModelConfig
from core.sharding import make_mesh, mesh_context

# 128-token blocks, so that a 200-token row (padded to 256) spans two query and two key blocks.
SMALL_BLOCKS = ModelConfig(splash_block_q=128, splash_block_kv=128, splash_block_kv_compute=128)


def reference_attention(query, key, value, segment_ids):
    """Causal attention within segments with a dense [B, S, S] mask, in float32 einsums."""
    groups = query.shape[2] // key.shape[2]
    key, value = (jnp.repeat(x, groups, axis=2) for x in (key, value))
    scores = jnp.einsum("bqhd,bkhd->bhqk", query, key)
    length = query.shape[1]
    visible = jnp.tril(jnp.ones((length, length), bool)) & (
        segment_ids[:, :, None] == segment_ids[:, None, :]
    )
    scores = jnp.where(visible[:, None], scores, jnp.finfo(jnp.float32).min)
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), value)


# Document lengths of four 200-token rows: several documents per row, some crossing the
# 128-token block boundary, one of a single token, one row a single document.
DOCUMENTS = ([60, 90, 50], [1, 127, 72], [200], [10, 150, 25, 15])


def packed_rows(seed, heads, kv_heads, head_dim=16):
    """Random q/k/v for the DOCUMENTS rows and their segment ids (0, 1, ... along a row, as the
    model numbers them)."""
    segment_ids = np.array([np.repeat(np.arange(len(row)), row) for row in DOCUMENTS])
    batch, length = segment_ids.shape
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(batch, length, heads, head_dim))
    k, v = (rng.normal(size=(batch, length, kv_heads, head_dim)) for _ in range(2))
    arrays = (jnp.asarray(x, jnp.float32) for x in (q, k, v))
    return (*arrays, jnp.asarray(segment_ids, jnp.int32))


@pytest.mark.parametrize("kv_heads", [1, 2])
@pytest.mark.parametrize("attention", SEGMENT_ATTENTION)
def test_kernel_matches_the_einsum_reference_sharded_over_the_mesh(attention, kv_heads):
    # float32: outputs within 1e-5, gradients of q, k and v within 1e-4 (measured ~2e-5).
    config = dataclasses.replace(SMALL_BLOCKS, attention=attention)
    query, key, value, segment_ids = packed_rows(0, 4, kv_heads)
    weights = jnp.asarray(np.random.default_rng(1).normal(size=query.shape), jnp.float32)

    def loss(attend):
        return lambda q, k, v: jnp.sum(attend(q, k, v, segment_ids) * weights)

    def kernel(q, k, v, s):
        return segment_attention(config, q, k, v, s)

    mesh = make_mesh("data=2,fsdp=2,tensor=2") if jax.device_count() == 8 else make_mesh()
    with mesh_context(mesh):
        grad_fn = jax.jit(jax.grad(loss(kernel), (0, 1, 2)))
        out = jax.jit(kernel)(query, key, value, segment_ids)
        grads = grad_fn(query, key, value)
        assert "shard_map" in str(jax.make_jaxpr(kernel)(query, key, value, segment_ids))
    want = reference_attention(query, key, value, segment_ids)
    np.testing.assert_allclose(out, want, atol=1e-5, rtol=1e-5)
    want_grads = jax.grad(loss(reference_attention), (0, 1, 2))(query, key, value)
    for got, expected in zip(grads, want_grads, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_splash_blocks_default_to_v5e_sizes_and_shrink_to_divide_the_length():
    assert (PROD.splash_block_q, PROD.splash_block_kv, PROD.splash_block_kv_compute) == (512,) * 3
    blocks = splash_block_sizes(PROD, 2048)
    assert (blocks.block_q, blocks.block_kv, blocks.block_kv_compute) == (512, 512, 512)
    assert (blocks.block_q_dkv, blocks.block_kv_dkv, blocks.block_q_dq) == (512, 512, 512)
    short = splash_block_sizes(PROD, 640)  # 5 tiles: only 128 divides it
    assert (short.block_q, short.block_kv) == (SEQUENCE_TILE, SEQUENCE_TILE)
    assert splash_block_sizes(PROD, 256).block_q == 256


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"splash_block_q": 100}, "splash_block_q must be a positive multiple of 128, got 100"),
        ({"splash_block_kv": 0}, "splash_block_kv must be a positive multiple of 128"),
        (
            {"splash_block_kv": 512, "splash_block_kv_compute": 384},
            r"splash_block_kv \(512\) must be a multiple of splash_block_kv_compute \(384\)",
        ),
    ],
)
def test_bad_splash_blocks_are_rejected(changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(TEST, **changes)


def test_auto_picks_splash_on_tpus_and_keeps_cudnn_on_gpus():
    assert TEST.for_backend("tpu").attention == "splash"
    assert TEST.for_backend("gpu").attention == "cudnn"
    assert dataclasses.replace(TEST, attention="pallas_gpu").for_backend("gpu").attention == (
        "pallas_gpu"
    )
    for name in SEGMENT_ATTENTION:  # interpret mode on the CPU, for tests and memory analysis
        assert dataclasses.replace(TEST, attention=name).for_backend("cpu").attention == name
    with pytest.raises(ConfigError, match="'splash' runs on tpu or cpu, not gpu"):
        dataclasses.replace(TEST, attention="splash").for_backend("gpu")
    with pytest.raises(ConfigError, match="'pallas_gpu' runs on gpu or cpu, not tpu"):
        dataclasses.replace(TEST, attention="pallas_gpu").for_backend("tpu")
    with pytest.raises(ConfigError, match="'cudnn' runs on gpu, not tpu"):
        dataclasses.replace(TEST, attention="cudnn").for_backend("tpu")
