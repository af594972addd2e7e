"""Tests for the learning-rate schedule and the weight-decay mask."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from core.config import ModelConfig, TrainConfig
from core.model import logical_axes
from core.optimizer import learning_rate_schedule, make_optimizer, weight_decay_mask

CONFIG = TrainConfig(steps=1000, warmup_steps=100, peak_lr=3e-4, end_lr_ratio=0.1)


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 0.0), (50, 1.5e-4), (100, 3e-4), (550, 1.65e-4), (1000, 3e-5), (5000, 3e-5)],
)
def test_schedule_warms_up_linearly_then_cosine_decays_to_ten_percent(step, expected):
    assert float(learning_rate_schedule(CONFIG)(step)) == pytest.approx(
        expected, rel=1e-5, abs=1e-12
    )


def test_schedule_without_decay_room_stays_in_warmup():
    config = TrainConfig(steps=10, warmup_steps=20)
    assert float(learning_rate_schedule(config)(10)) == pytest.approx(1.5e-4)


def test_decay_mask_skips_norms_and_decays_tied_embedding():
    mask = weight_decay_mask(
        logical_axes(
            ModelConfig(
                vocab_size=128, hidden_dim=32, num_heads=2, head_dim=16, ffn_dim=64, num_layers=2
            )
        )
    )
    assert mask["embed"]["embedding"] is True
    assert mask["final_norm"]["scale"] is False
    layers = mask["layers"]
    assert layers["attention_norm"]["scale"] is False and layers["mlp_norm"]["scale"] is False
    assert (
        layers["attention"]["query"]["kernel"] is True and layers["mlp"]["down"]["kernel"] is True
    )


def test_masked_parameters_are_not_decayed():
    specs = {"w": P("embed", "mlp"), "norm": P("norm")}
    params = {"w": jnp.ones((2, 2)), "norm": jnp.ones(2)}
    tx = make_optimizer(TrainConfig(warmup_steps=0, steps=10, weight_decay=0.5), specs)
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero_grads, tx.init(params), params)
    np.testing.assert_allclose(updates["norm"], 0.0)
    np.testing.assert_allclose(updates["w"], -3e-4 * 0.5, rtol=1e-5)


def test_gradients_are_clipped_to_global_norm():
    specs = {"w": P("norm")}
    params = {"w": jnp.zeros(4)}
    config = TrainConfig(grad_clip=1.0, warmup_steps=0, steps=10)
    clip = make_optimizer(config, specs)
    huge = {"w": jnp.full(4, 100.0)}
    small = {"w": jnp.full(4, 0.5)}  # global norm exactly 1.0: unchanged by clipping
    huge_updates, _ = clip.update(huge, clip.init(params), params)
    small_updates, _ = clip.update(small, clip.init(params), params)
    np.testing.assert_allclose(huge_updates["w"], small_updates["w"], rtol=1e-5)
