"""Model FLOP counts checked against XLA's own count of the compiled training computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.config import PROD, TEST, ModelConfig
from core.flops import matmul_params, measure_matmul_flops, peak_flops, training_flops_per_token
from core.model import Transformer, count_params, init_params

# Unrolled layers and full logits: XLA counts every matmul of this computation exactly once.
SMALL = ModelConfig(vocab_size=4096, hidden_dim=256, num_layers=2, num_heads=4, head_dim=64,
                    ffn_dim=1024, max_seq_len=256, dtype="float32", scan_layers=False)  # fmt: skip


def xla_training_flops_per_token(config: ModelConfig, batch: int, seq_len: int) -> float:
    """XLA's FLOP count of forward + backward through the model, dense (unmasked) attention."""

    def loss(params, tokens):
        logits = Transformer(config).apply({"params": params}, tokens)
        return jnp.sum(jax.nn.log_softmax(logits)[..., 0])

    params = jax.eval_shape(lambda: init_params(config, jax.random.key(0)))
    tokens = jax.ShapeDtypeStruct((batch, seq_len), jnp.int32)
    analysis = jax.jit(jax.grad(loss)).lower(params, tokens).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return analysis["flops"] / (batch * seq_len)


def test_matmul_params_are_all_params_but_the_norms():
    for config in (TEST, PROD):
        norms = config.num_layers * 2 * config.hidden_dim + config.hidden_dim
        assert matmul_params(config) == count_params(config) - norms


def test_training_flops_match_xla_with_causal_attention_doing_half_the_work():
    # Dense attention costs a fixed amount per token per position attended to; causal attention
    # attends to half the positions on average, so per token it does the work dense attention
    # does over half the sequence.
    dense_full = xla_training_flops_per_token(SMALL, 2, 256)
    dense_half = xla_training_flops_per_token(SMALL, 2, 128)
    assert dense_full > dense_half  # attention grows with the sequence
    assert training_flops_per_token(SMALL, 256) == pytest.approx(dense_half, rel=0.02)


def test_cpu_peak_is_a_measured_positive_rate():
    assert 1e8 < measure_matmul_flops(size=256, repeats=3) < 1e14
    assert peak_flops() > 0
    assert np.isfinite(peak_flops())
