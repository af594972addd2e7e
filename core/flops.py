"""Model FLOPs per training step and the peak FLOP/s of the current accelerator (for MFU)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from core.config import ModelConfig

# Dense bf16 peak FLOP/s per chip, matched against `device.device_kind` (lower-cased substrings,
# checked in order so "v5p" wins over "v5").
PEAK_FLOPS_BY_DEVICE_KIND: tuple[tuple[str, float], ...] = (
    ("v5p", 459e12),
    ("v5 lite", 197e12),
    ("v5e", 197e12),
    ("v4", 275e12),
    ("h200", 989e12),
    ("h100", 989e12),
    ("a100", 312e12),
)


def matmul_params(config: ModelConfig) -> int:
    """Parameters that take part in a matmul per token (the tied output projection included)."""
    d, h, kv, dh, f = (
        config.hidden_dim,
        config.num_heads,
        config.num_kv_heads,
        config.head_dim,
        config.ffn_dim,
    )
    per_layer = d * h * dh + 2 * d * kv * dh + h * dh * d + 3 * d * f
    return config.num_layers * per_layer + d * config.vocab_size


def training_flops_per_token(config: ModelConfig, seq_len: int) -> float:
    """Forward + backward FLOPs per token: 6 × matmul params plus causal attention scores.

    Attention (QK^T and AV, forward + backward) costs 12 × layers × heads × head_dim × seq_len
    without masking; causal masking halves the useful work, so 6 × ... is counted.
    """
    attention = 6 * config.num_layers * config.num_heads * config.head_dim * seq_len
    return 6.0 * matmul_params(config) + attention


def training_flops_per_step(config: ModelConfig, batch_size: int, seq_len: int) -> float:
    """Model FLOPs of one optimizer step over a global batch of `batch_size` × `seq_len` tokens."""
    return training_flops_per_token(config, seq_len) * batch_size * seq_len


def measure_matmul_flops(size: int = 1024, dtype: str = "float32", repeats: int = 20) -> float:
    """FLOP/s of a jitted square matmul on the default device: a practical peak."""
    a = jnp.ones((size, size), dtype)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def peak_flops() -> float:
    """Peak FLOP/s of all devices: the table for known accelerators, else a measured matmul.

    The CPU is measured in float32 (its compute dtype); simulated CPU devices share the same
    cores, so the CPU's peak is counted once. Unknown accelerators are measured in bfloat16.
    """
    device = jax.devices()[0]
    if device.platform == "cpu":
        return measure_matmul_flops()
    kind = device.device_kind.lower()
    per_device = next((flops for name, flops in PEAK_FLOPS_BY_DEVICE_KIND if name in kind), None)
    if per_device is None:
        per_device = measure_matmul_flops(size=8192, dtype="bfloat16")
    return per_device * jax.device_count()


def mfu(flops_per_step: float, step_seconds: float, peak: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over peak FLOP/s."""
    return flops_per_step / step_seconds / peak
