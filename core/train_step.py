"""The jitted, sharded training and evaluation steps.

A loader row batch int32 [B, S+1] becomes inputs tokens[:, :-1] and targets tokens[:, 1:]; a new
segment (packed file) starts after each EOS, positions restart per segment, and PAD targets are
masked. Supervised fine-tuning hands `MaskedRows` instead, whose loss mask also leaves out the
prompt tokens; pretraining's plain rows compile to the same step as before. The cross-entropy
(core/loss.py) runs in float32 over sequence chunks, so [B, S, vocab] logits never exist at once.
Gradients are accumulated over `grad_accum` micro-batches with lax.scan, as sums, and divided by
the global token count, so accumulation matches one big batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from core.config import ModelConfig, TrainConfig
from core.loss import tied_cross_entropy
from core.model import Transformer, init_params, logical_axes
from core.optimizer import learning_rate_schedule, make_optimizer
from core.sharding import (
    BATCH_AXES,
    batch_sharding,
    logical_to_shardings,
    mesh_context,
    replicated,
)

Metrics = dict[str, jax.Array]


class TrainState(train_state.TrainState):
    """Step, params and optimizer state, plus the run's base PRNG key.

    The params were initialised from fold_in(rng, 0); the key is checkpointed with the state.
    """

    rng: jax.Array


class MaskedRows(NamedTuple):
    """Rows whose loss counts only some targets (supervised fine-tuning): token ids int32
    [B, S+1] and `loss_mask` bool [B, S+1], true at the tokens to predict (a target's tokens and
    the EOS after it), false at prompt tokens and padding."""

    tokens: Any
    loss_mask: Any


Rows = jax.Array | MaskedRows  # what the loader yields per step: plain rows or MaskedRows


class Batch(NamedTuple):
    """Model inputs and loss targets derived from loader rows."""

    inputs: jax.Array
    targets: jax.Array
    positions: jax.Array
    segment_ids: jax.Array
    loss_mask: jax.Array


def prepare_batch(rows: Rows, eos_id: int, pad_id: int) -> Batch:
    """Split rows [B, S+1] into next-token inputs/targets with packed-file segments: a segment
    ends after each `eos_id`, and `pad_id` targets carry no loss, nor (MaskedRows) any target
    outside the loss mask."""
    tokens = rows.tokens if isinstance(rows, MaskedRows) else rows
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    loss_mask = targets != pad_id
    if isinstance(rows, MaskedRows):
        loss_mask &= rows.loss_mask[:, 1:]
    is_eos = inputs == eos_id
    segment_ids = jnp.cumsum(is_eos, axis=1, dtype=jnp.int32) - is_eos
    index = jnp.arange(inputs.shape[1], dtype=jnp.int32)
    starts_segment = jnp.pad(is_eos[:, :-1], ((0, 0), (1, 0)), constant_values=True)
    segment_start = jax.lax.cummax(jnp.where(starts_segment, index, 0), axis=1)
    return Batch(inputs, targets, index - segment_start, segment_ids, loss_mask)


def loss_sum(
    model: Transformer, params: Any, rows: Rows, dropout_rng: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(summed token losses, number of unmasked target tokens) for loader rows [B, S+1].

    A model built with deterministic=False needs `dropout_rng`.
    """
    return batch_loss_sum(
        model, params, prepare_batch(rows, model.config.eos_id, model.config.pad_id), dropout_rng
    )


def batch_loss_sum(
    model: Transformer, params: Any, batch: Batch, dropout_rng: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """`loss_sum` of a prepared batch."""
    hidden = model.apply(
        {"params": params},
        batch.inputs,
        batch.positions,
        batch.segment_ids,
        return_hidden=True,
        rngs=None if dropout_rng is None else {"dropout": dropout_rng},
    )
    mask = batch.loss_mask.astype(jnp.float32)
    embedding = model.apply({"params": params}, method=Transformer.output_embedding)
    return tied_cross_entropy(hidden, embedding, batch.targets, mask), jnp.sum(mask)


def _micro_batches(rows: Rows, count: int, mesh: Mesh) -> Rows:
    """[B, S+1] -> [count, B/count, S+1] taking strided rows, so each stays on its device."""
    sharding = NamedSharding(mesh, PartitionSpec(None, BATCH_AXES))

    def split(leaf: jax.Array) -> jax.Array:
        stacked = leaf.reshape(leaf.shape[0] // count, count, leaf.shape[1]).swapaxes(0, 1)
        return jax.lax.with_sharding_constraint(stacked, sharding)

    return jax.tree.map(split, rows)


def train_step(
    state: TrainState, rows: Rows, *, model: Transformer, config: TrainConfig, mesh: Mesh
) -> tuple[TrainState, Metrics]:
    """One optimizer step on a global row batch, accumulating over config.grad_accum.

    Dropout (a model with deterministic=False) draws from rng's stream 1 folded with the step and
    the micro-batch (stream 0 made the initial parameters): the same masks whenever the same step
    runs again, e.g. after a resume.
    """
    grad_fn = jax.value_and_grad(
        lambda p, r, key: loss_sum(model, p, r, None if model.deterministic else key),
        has_aux=True,
    )
    step_rng = jax.random.fold_in(jax.random.fold_in(state.rng, 1), state.step)

    def accumulate(
        carry: tuple[Any, ...], micro: tuple[jax.Array, Rows]
    ) -> tuple[tuple[Any, ...], None]:
        grad_total, loss_total, count_total = carry
        index, micro_rows = micro
        (loss, count), grads = grad_fn(
            state.params, micro_rows, jax.random.fold_in(step_rng, index)
        )
        grad_total = jax.tree.map(jnp.add, grad_total, grads)
        return (grad_total, loss_total + loss, count_total + count), None

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    init = (zeros, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
    micro_batches = _micro_batches(rows, config.grad_accum, mesh)
    (grad_total, loss_total, count), _ = jax.lax.scan(
        accumulate, init, (jnp.arange(config.grad_accum), micro_batches)
    )
    count = jnp.maximum(count, 1.0)
    grads = jax.tree.map(lambda g: g / count, grad_total)
    metrics = {
        "loss": loss_total / count,
        "grad_norm": optax.tree.norm(grads),
        "lr": learning_rate_schedule(config)(state.step),
        "target_tokens": count,
    }
    return state.apply_gradients(grads=grads), metrics


class StepFunctions(NamedTuple):
    """Compiled steps plus the shardings they were compiled for."""

    train: Callable[[TrainState, Rows], tuple[TrainState, Metrics]]
    eval: Callable[[Any, Rows], tuple[jax.Array, jax.Array]]
    init: Callable[[], TrainState]
    init_from: Callable[[Any], TrainState]  # a fresh state around given parameters
    state_shardings: TrainState
    abstract_state: TrainState


def _in_mesh(fn: Callable[..., Any], mesh: Mesh) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        with mesh_context(mesh):
            return fn(*args)

    return wrapped


def build_steps(model_config: ModelConfig, train_config: TrainConfig, mesh: Mesh) -> StepFunctions:
    """Jitted init/train/eval with params and optimizer state placed by the logical-axis rules."""
    model = Transformer(model_config)
    training_model = Transformer(model_config, deterministic=not model_config.dropout)
    tx = make_optimizer(train_config, logical_axes(model_config))

    def create_from(params: Any) -> TrainState:
        rng = jax.random.PRNGKey(train_config.seed)
        return TrainState.create(apply_fn=model.apply, params=params, tx=tx, rng=rng)

    def create() -> TrainState:
        rng = jax.random.PRNGKey(train_config.seed)
        return create_from(init_params(model_config, jax.random.fold_in(rng, 0)))

    abstract = jax.eval_shape(create)
    param_shardings = logical_to_shardings(logical_axes(model_config), mesh)
    opt_shardings = optax.tree_map_params(
        tx,
        lambda _, sharding: sharding,
        abstract.opt_state,
        param_shardings,
        transform_non_params=lambda _: replicated(mesh),
    )
    state_shardings = abstract.replace(
        step=replicated(mesh), params=param_shardings, opt_state=opt_shardings, rng=replicated(mesh)
    )
    abstract_state = jax.tree.map(
        lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        abstract,
        state_shardings,
    )
    rows_sharding = batch_sharding(mesh)
    train = jax.jit(
        lambda state, rows: train_step(
            state, rows, model=training_model, config=train_config, mesh=mesh
        ),
        in_shardings=(state_shardings, rows_sharding),
        out_shardings=(state_shardings, replicated(mesh)),
        donate_argnums=0,
    )
    evaluate = jax.jit(
        lambda params, rows: loss_sum(model, params, rows),
        in_shardings=(param_shardings, rows_sharding),
        out_shardings=replicated(mesh),
    )
    init = jax.jit(create, out_shardings=state_shardings)
    init_from = jax.jit(create_from, in_shardings=(param_shardings,), out_shardings=state_shardings)
    return StepFunctions(
        train=_in_mesh(train, mesh),
        eval=_in_mesh(evaluate, mesh),
        init=_in_mesh(init, mesh),
        init_from=_in_mesh(init_from, mesh),
        state_shardings=state_shardings,
        abstract_state=abstract_state,
    )
