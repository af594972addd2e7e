"""Trainer loop tests: exact resume, divergence stop, signal save, metrics and plot files."""

import dataclasses
import json
import signal
from typing import Any

import jax
import numpy as np
import pytest

from core.checkpoint import Checkpointer, load_model
from core.config import TrainConfig
from core.layout import RunLayout
from core.testing import TINY_TRAINED
from core.trainer import Hook, LossDivergedError, StopRequest, train

pytestmark = pytest.mark.usefixtures("compilation_cache")
TINY = TINY_TRAINED
TRAIN = TrainConfig(
    steps=6,
    batch_size=4,
    seq_len=16,
    warmup_steps=2,
    peak_lr=1e-2,
    log_every=1,
    eval_every=3,
    save_every=2,
    keep_checkpoints=5,
)


class CountingSource:
    """Deterministic rows keyed by position.

    `on_batch(position)` simulates interruptions; `replace(position)` may return substitute rows.
    """

    def __init__(self, on_batch=None, replace=None) -> None:
        self.position = 0
        self.on_batch = on_batch
        self.replace = replace

    def __next__(self) -> np.ndarray:
        if self.on_batch:
            self.on_batch(self.position)
        substitute = self.replace(self.position) if self.replace else None
        rng = np.random.default_rng(self.position)
        self.position += 1
        if substitute is not None:
            return substitute
        return rng.integers(
            40, TINY.vocab_size, (TRAIN.batch_size, TRAIN.seq_len + 1), dtype=np.int32
        )

    def state(self) -> dict[str, Any]:
        return {"position": self.position}

    def restore(self, state: dict[str, Any]) -> None:
        self.position = state["position"]


def validation():
    rng = np.random.default_rng(1234)
    return [
        rng.integers(40, TINY.vocab_size, (4, TRAIN.seq_len + 1), dtype=np.int32) for _ in range(2)
    ]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("full")
    return run_dir, train(TINY, TRAIN, CountingSource(), validation, run_dir)


def test_run_writes_metrics_plot_config_and_result(uninterrupted):
    run_dir, result = uninterrupted
    layout = RunLayout(run_dir)
    records = [json.loads(line) for line in layout.metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 7))
    for record in records:
        assert {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu"} <= set(record)
    assert [r["step"] for r in records if "val_loss" in r] == [3, 6]
    assert layout.loss_curve.stat().st_size > 0
    assert json.loads(layout.config.read_text())["train"]["steps"] == 6
    assert result.step == 6 and result.tokens_seen == 6 * 4 * 16
    assert result.last_loss < result.first_loss
    assert result.final_val_loss == records[-1]["val_loss"]
    assert result.tokens_per_s > 0 and result.mfu > 0 and result.params > 0
    assert Checkpointer(result.checkpoint_dir).latest_step() == 6


def test_killed_run_resumes_with_identical_losses(uninterrupted, tmp_path):
    _, full = uninterrupted

    def crash_in_step_four(position: int) -> None:
        if position == 4:  # prefetching step 5's rows: step 4 ran but was never saved
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TINY, TRAIN, CountingSource(crash_in_step_four), validation, tmp_path)
    assert Checkpointer(RunLayout(tmp_path).checkpoints).latest_step() == 2
    resumed = train(TINY, TRAIN, CountingSource(), validation, tmp_path)
    assert sorted(resumed.step_losses) == [3, 4, 5, 6]
    assert resumed.step_losses == {s: full.step_losses[s] for s in (3, 4, 5, 6)}
    steps_logged = [
        json.loads(line)["step"] for line in RunLayout(tmp_path).metrics.read_text().splitlines()
    ]
    assert steps_logged == list(range(1, 7))


def test_sigterm_saves_the_current_step_and_stops(tmp_path):
    stop = StopRequest()

    def sigterm_while_prefetching_batch_three(position: int) -> None:
        if position == 2:
            stop(signal.SIGTERM)

    config = dataclasses.replace(TRAIN, save_every=100, eval_every=100)
    result = train(
        TINY,
        config,
        CountingSource(sigterm_while_prefetching_batch_three),
        validation,
        tmp_path,
        stop=stop,
    )
    assert result.stopped_by_signal == "SIGTERM" and result.step == 2
    checkpointer = Checkpointer(RunLayout(tmp_path).checkpoints)
    assert checkpointer.latest_step() == 2


def test_diverging_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    def corrupt_rows(position: int) -> np.ndarray | None:
        # Token ids past the vocabulary gather NaN embeddings (jnp.take's "fill" mode).
        return np.full((4, 17), TINY.vocab_size + 7, np.int32) if position == 2 else None

    with pytest.raises(LossDivergedError) as error:
        train(TINY, TRAIN, CountingSource(replace=corrupt_rows), validation, tmp_path)
    assert str(error.value) == (
        "training loss is nan at step 3; stopped without saving; last good checkpoint: "
        f"step 2 in {RunLayout(tmp_path).checkpoints}"
    )
    assert Checkpointer(RunLayout(tmp_path).checkpoints).latest_step() == 2


def test_dropout_trains_differently_and_still_resumes_exactly(uninterrupted, tmp_path):
    _, without_dropout = uninterrupted
    noisy = dataclasses.replace(TINY, dropout=0.3)
    full = train(noisy, TRAIN, CountingSource(), validation, tmp_path / "full")
    assert full.step_losses[1] != without_dropout.step_losses[1]  # masks change the first loss

    def crash_in_step_four(position: int) -> None:
        if position == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(noisy, TRAIN, CountingSource(crash_in_step_four), validation, tmp_path / "resumed")
    resumed = train(noisy, TRAIN, CountingSource(), validation, tmp_path / "resumed")
    assert resumed.step_losses == {s: full.step_losses[s] for s in (3, 4, 5, 6)}
    assert resumed.final_val_loss == full.final_val_loss


def test_hooks_run_every_n_steps_and_after_the_last(tmp_path):
    calls = []
    hooks = [Hook(4, lambda step, state: calls.append((step, int(state.step))))]
    train(TINY, TRAIN, CountingSource(), validation, tmp_path, hooks=hooks)
    assert calls == [(4, 4), (6, 6)]


def test_a_warm_start_begins_from_the_given_parameters(uninterrupted, tmp_path):
    run_dir, _ = uninterrupted
    _, trained = load_model(RunLayout(run_dir).checkpoints)
    frozen = dataclasses.replace(TRAIN, peak_lr=1e-30, weight_decay=0.0)
    started = train(TINY, frozen, CountingSource(), validation, tmp_path, init=lambda: trained)
    _, after = load_model(RunLayout(tmp_path).checkpoints)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(after), jax.device_get(trained))
    fresh = train(TINY, frozen, CountingSource(), validation, tmp_path / "fresh")
    assert started.first_loss < fresh.first_loss  # the trained weights already fit the data
