"""Train-step tests: batch preparation, masking, accumulation, and fsdp=8 vs one device.

BUILD gives this file 8 simulated CPU devices.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from core import trainer
from core.checkpoint import load_model
from core.config import PROD, TrainConfig
from core.model import Transformer, init_params
from core.sharding import global_batch, make_mesh
from core.testing import TINY_DECODER
from core.tokenizer import EOS_ID, PAD_ID
from core.train_step import MaskedRows, build_steps, loss_sum, prepare_batch

TINY = dataclasses.replace(TINY_DECODER, max_seq_len=32, init_std=0.02)
TRAIN = TrainConfig(steps=4, batch_size=8, seq_len=32, warmup_steps=1, peak_lr=1e-2)


def random_rows(seed: int, batch: int = 8, length: int = 33) -> np.ndarray:
    return np.random.default_rng(seed).integers(
        40, TINY.vocab_size, (batch, length), dtype=np.int32
    )


def test_prepare_batch_segments_positions_and_pad_mask():
    rows = jnp.array([[7, 8, EOS_ID, 9, 10, EOS_ID, PAD_ID, PAD_ID]])
    batch = prepare_batch(rows, EOS_ID, PAD_ID)
    np.testing.assert_array_equal(batch.inputs, [[7, 8, EOS_ID, 9, 10, EOS_ID, PAD_ID]])
    np.testing.assert_array_equal(batch.targets, [[8, EOS_ID, 9, 10, EOS_ID, PAD_ID, PAD_ID]])
    np.testing.assert_array_equal(batch.segment_ids, [[0, 0, 0, 1, 1, 1, 2]])
    np.testing.assert_array_equal(batch.positions, [[0, 1, 2, 0, 1, 2, 0]])
    np.testing.assert_array_equal(batch.loss_mask, [[1, 1, 1, 1, 1, 0, 0]])


def test_loss_ignores_pad_targets_and_matches_full_logits():
    model = Transformer(TINY)
    params = init_params(TINY, jax.random.PRNGKey(0))
    rows = random_rows(1, batch=2)
    padded = rows.copy()
    padded[:, 20:] = PAD_ID

    @jax.jit
    def chunked_and_direct(params, rows):
        batch = prepare_batch(rows, EOS_ID, PAD_ID)
        logits = model.apply({"params": params}, batch.inputs, batch.positions, batch.segment_ids)
        log_probs = jax.nn.log_softmax(logits)
        losses = -jnp.take_along_axis(log_probs, batch.targets[..., None], -1)[..., 0]
        return loss_sum(model, params, rows), jnp.sum(losses[:, :19])

    (total, count), direct = chunked_and_direct(params, jnp.asarray(padded))
    assert float(count) == 2 * 19
    assert float(total) == pytest.approx(float(direct), rel=1e-5)


def masked_rows(seed: int) -> MaskedRows:
    """Random rows whose loss counts about half of the targets (an SFT batch)."""
    rows = random_rows(seed)
    return MaskedRows(rows, np.random.default_rng(seed + 100).random(rows.shape) < 0.5)


def run_losses(train_config: TrainConfig, mesh: Mesh, steps: int = 2, rows=random_rows):
    fns = build_steps(TINY, train_config, mesh)
    state = fns.init()
    losses = []
    for seed in range(steps):
        state, metrics = fns.train(state, global_batch(rows(seed), mesh))
        losses.append(float(metrics["loss"]))
    return losses, state


@pytest.fixture(scope="module")
def one_device_losses() -> list[float]:
    return run_losses(TRAIN, make_mesh(devices=jax.devices()[:1]))[0]


def test_eight_simulated_devices_are_present():
    assert jax.device_count() == 8, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8"


def test_fsdp8_matches_one_device_and_shards_params(one_device_losses):
    losses, state = run_losses(TRAIN, make_mesh("fsdp=8"))
    np.testing.assert_allclose(losses, one_device_losses, rtol=2e-5)
    kernel = state.params["layers"]["mlp"]["up"]["kernel"]  # [layers, embed, mlp]
    assert len({shard.device for shard in kernel.addressable_shards}) == 8
    assert {shard.data.shape for shard in kernel.addressable_shards} == {(2, 64 // 8, 128)}
    adam_mu = state.opt_state[1][0].mu["layers"]["mlp"]["up"]["kernel"]
    assert adam_mu.sharding == kernel.sharding


def test_accumulation_on_data_fsdp_tensor_mesh_matches_one_big_batch(one_device_losses):
    # Two micro-batches of 4 rows (one per data × fsdp device) against one 8-row batch.
    config = dataclasses.replace(TRAIN, grad_accum=2)
    losses, state = run_losses(config, make_mesh("data=2,fsdp=2,tensor=2"))
    np.testing.assert_allclose(losses, one_device_losses, rtol=2e-5)
    embedding = state.params["embed"]["embedding"]
    assert embedding.addressable_shards[0].data.shape == (256 // 2, 64 // 2)


def test_masked_rows_accumulate_on_data_fsdp_tensor_mesh_as_on_one_device(one_device_losses):
    one_device = run_losses(TRAIN, make_mesh(devices=jax.devices()[:1]), rows=masked_rows)[0]
    config = dataclasses.replace(TRAIN, grad_accum=2)
    sharded = run_losses(config, make_mesh("data=2,fsdp=2,tensor=2"), rows=masked_rows)[0]
    np.testing.assert_allclose(sharded, one_device, rtol=2e-5)
    assert one_device[0] != pytest.approx(one_device_losses[0])  # the mask changed the loss


class RandomRows:
    """A resumable batch source of random rows; raises KeyboardInterrupt at `crash_at`."""

    def __init__(self, vocab: int, batch: int, length: int, crash_at: int | None = None) -> None:
        self.vocab, self.batch, self.length, self.crash_at = vocab, batch, length, crash_at
        self.position = 0

    def __next__(self) -> np.ndarray:
        if self.position == self.crash_at:
            raise KeyboardInterrupt
        self.position += 1
        return random_rows(self.position, self.batch, self.length)

    def state(self) -> dict:
        return {"position": self.position}

    def restore(self, state: dict) -> None:
        self.position = state["position"]


@pytest.mark.usefixtures("compilation_cache")
@pytest.mark.parametrize("remat", [False, True])
def test_prod_shaped_model_trains_sharded_and_resumes(remat: bool, tmp_path) -> None:
    # PROD as the preset runs it (unrolled layers, bf16 config computing in f32 on the CPU),
    # with or without remat, at a tiny width.
    config = dataclasses.replace(
        PROD, vocab_size=TINY.vocab_size, hidden_dim=64, num_heads=4, head_dim=16, ffn_dim=128,
        num_layers=3, max_seq_len=32, remat=remat,
    )  # fmt: skip
    assert not config.scan_layers and config.dtype == "bfloat16"
    train_config = TrainConfig(steps=4, batch_size=8, seq_len=32, warmup_steps=1, peak_lr=1e-2,
                               mesh="fsdp=8", log_every=1, save_every=2, eval_every=4)  # fmt: skip
    validation = [random_rows(99)]
    full = trainer.train(config, train_config, RandomRows(TINY.vocab_size, 8, 33),
                         lambda: validation, tmp_path / "full")  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        trainer.train(config, train_config, RandomRows(TINY.vocab_size, 8, 33, crash_at=3),
                      lambda: validation, tmp_path / "resumed")  # fmt: skip
    resumed = trainer.train(config, train_config, RandomRows(TINY.vocab_size, 8, 33),
                            lambda: validation, tmp_path / "resumed")  # fmt: skip
    assert sorted(resumed.step_losses) == [3, 4]
    assert resumed.step_losses == {step: full.step_losses[step] for step in (3, 4)}
    assert full.last_loss < full.first_loss
    _, params = load_model(tmp_path / "resumed" / "checkpoints")
    kernel = params["layer_2"]["mlp"]["up"]["kernel"]  # [embed, mlp], embed over fsdp
    assert {shard.data.shape for shard in kernel.addressable_shards} == {(64 // 8, 128)}
