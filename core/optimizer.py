"""AdamW with global-norm clipping and a warmup + cosine learning-rate schedule.

Weight decay applies to every parameter except RMSNorm scales (logical axis "norm"). The tied
embedding is decayed: it is the output projection's weight matrix as well as the lookup table,
and decaying it matches the usual GPT-2/nanoGPT choice of decaying every matmul weight.
"""

from __future__ import annotations

from typing import Any

import jax
import optax
from jax.sharding import PartitionSpec

from core.config import TrainConfig

NO_DECAY_AXES = frozenset({"norm"})


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
    """Linear warmup 0 -> peak over `warmup_steps`, then cosine to peak × end_lr_ratio at `steps`.

    When `steps` does not exceed `warmup_steps` the run ends during warmup (a short test run).
    """
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.peak_lr,
        warmup_steps=config.warmup_steps,
        decay_steps=max(config.steps, config.warmup_steps + 1),
        end_value=config.peak_lr * config.end_lr_ratio,
    )


def weight_decay_mask(logical_specs: Any) -> Any:
    """True for parameters that get weight decay, given their logical-axis PartitionSpecs."""
    return jax.tree.map(
        lambda spec: NO_DECAY_AXES.isdisjoint(spec),
        logical_specs,
        is_leaf=lambda x: isinstance(x, PartitionSpec),
    )


def make_optimizer(config: TrainConfig, logical_specs: Any) -> optax.GradientTransformation:
    """Global-norm clipping followed by AdamW with the masked weight decay."""
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(
            learning_rate=learning_rate_schedule(config),
            b1=config.adam_b1,
            b2=config.adam_b2,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
            mask=weight_decay_mask(logical_specs),
        ),
    )
