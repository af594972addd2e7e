"""Trainer loop tests: exact resume, divergence stop, signal save, metrics and plot files, hooks,
trackers (TensorBoard, W&B offline), profiles and goodput."""

import dataclasses
import json
import math
import signal
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from core import trainer as trainer_module
from core.checkpoint import Checkpointer, load_model
from core.config import ConfigError, TrainConfig
from core.goodput import CATEGORIES, Goodput, goodput_line
from core.hooks import Hook, StepInfo, hook
from core.layout import RunLayout
from core.testing import TINY_TRAINED
from core.tracking import read_metrics, tag, tensorboard_scalars, wandb_records
from core.trainer import LossDivergedError, StopRequest, train

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


class FakeEval(Hook):
    """An evaluation hook: a metric of its own in the record of the step it ran at."""

    kind = "eval"
    every = 3

    def run(self, info: StepInfo) -> None:
        info.metrics["eval/fake/pass@1"] = info.step / 10


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("full")
    return run_dir, train(TINY, TRAIN, CountingSource(), validation, run_dir, hooks=[FakeEval()])


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
    assert [(r["step"], r["eval/fake/pass@1"]) for r in records if "eval/fake/pass@1" in r] == [
        (3, 0.3),
        (6, 0.6),
    ]


TRACKED = {
    "train/loss": "loss",
    "train/lr": "lr",
    "train/grad_norm": "grad_norm",
    "train/tokens_per_s": "tokens_per_s",
    "train/mfu": "mfu",
    "eval/val_loss": "val_loss",
    "eval/fake/pass_1": "eval/fake/pass@1",
}


def test_tensorboard_events_hold_every_metric_of_the_records(uninterrupted):
    run_dir, _ = uninterrupted
    records = read_metrics(RunLayout(run_dir).metrics)
    scalars = tensorboard_scalars(RunLayout(run_dir).tensorboard)
    assert set(TRACKED) <= set(scalars)
    for tag_name, key in TRACKED.items():
        assert tag(key) == tag_name
        expected = [(r["step"], r[key]) for r in records if key in r]
        assert [step for step, _ in scalars[tag_name]] == [step for step, _ in expected]
        np.testing.assert_allclose([v for _, v in scalars[tag_name]], [v for _, v in expected])


def test_goodput_splits_the_wall_time(uninterrupted):
    _, result = uninterrupted
    goodput = result.goodput
    for name in ("compile", "steps", "eval", "checkpoint", "init"):
        assert goodput[f"{name}_s"] > 0, name
    assert goodput["restart_s"] == 0 and goodput["data_s"] >= 0
    parts = sum(goodput[f"{name}_s"] for name in CATEGORIES)
    assert math.isclose(parts, goodput["total_s"], rel_tol=1e-6)
    assert goodput["goodput"] == goodput["steps_s"] / goodput["total_s"]


def test_goodput_counts_each_category_on_its_clock():
    now = [0.0]
    goodput = Goodput(clock=lambda: now[0])
    with goodput.timed("compile"):
        now[0] += 3.0
    goodput.add("steps", 5.0)
    now[0] += 7.0  # 5 s of steps and 2 s nothing claimed
    summary = goodput.summary()
    assert summary["total_s"] == 10.0 and summary["compile_s"] == 3.0
    assert summary["steps_s"] == 5.0 and summary["other_s"] == 2.0 and summary["goodput"] == 0.5
    assert (
        goodput_line(summary)
        == "50.0% of 10.0s: compile 3.0s (30%), steps 5.0s (50%), other 2.0s (20%)"
    )
    with pytest.raises(ValueError, match="goodput category"):
        goodput.add("other", 1.0)


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
    # TensorBoard purged the killed call's steps past the checkpoint: each step once.
    losses = tensorboard_scalars(RunLayout(tmp_path).tensorboard)["train/loss"]
    assert [step for step, _ in losses] == list(range(1, 7))
    assert resumed.goodput["restart_s"] > 0


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


def test_hooks_run_every_n_steps_and_after_the_last_in_kind_order(tmp_path, monkeypatch):
    calls = []
    fetched = []
    fetch = trainer_module._fetch
    monkeypatch.setattr(
        trainer_module, "_fetch", lambda pending: fetched.append(pending[-1][0]) or fetch(pending)
    )

    def exporting(info: StepInfo) -> None:
        calls.append(("export", info.step, int(info.state.step), "val_loss" in info.metrics))

    def evaluating(info: StepInfo) -> None:
        calls.append(("eval", info.step, int(info.state.step), "val_loss" in info.metrics))

    config = dataclasses.replace(TRAIN, log_every=100, save_every=100, eval_every=5)
    hooks = [hook(exporting, every=4), hook(evaluating, every=4, kind="eval")]
    train(TINY, config, CountingSource(), validation, tmp_path, hooks=hooks)
    assert calls == [
        ("eval", 4, 4, False),
        ("export", 4, 4, False),
        ("eval", 6, 6, True),  # after validation, which runs at the end too
        ("export", 6, 6, True),
    ]
    # Metrics are fetched only where a hook is due, and the trackers log at each such step.
    assert fetched == [4, 5, 6]
    assert [r["step"] for r in read_metrics(RunLayout(tmp_path).metrics)] == [4, 5, 6]


def test_wandb_offline_run_files_hold_the_config_and_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):  # nothing in $HOME
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    config = dataclasses.replace(
        TRAIN, steps=2, eval_every=2, wandb_project="codefactory-test", wandb_run_name="tiny"
    )
    data = {"data": {"max_bytes": 7}, "data_manifest": {"files_kept": 3}}
    train(TINY, config, CountingSource(), validation, tmp_path, tracked_config=data)
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    records = wandb_records(run_file)
    (run,) = (r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.project == "codefactory-test" and run.display_name == "tiny"
    assert run.run_id == json.loads(RunLayout(tmp_path).wandb_run.read_text())["id"]
    tracked = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert tracked["model"]["hidden_dim"] == TINY.hidden_dim
    assert tracked["train"]["wandb_project"] == "codefactory-test"
    assert tracked["data"] == {"max_bytes": 7} and tracked["data_manifest"] == {"files_kept": 3}
    history = [
        {
            item.key or "/".join(item.nested_key): json.loads(item.value_json)
            for item in r.history.item
        }
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    assert [h["_step"] for h in history] == [1, 2]
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s", "train/mfu"} <= set(
        history[0]
    )
    assert "eval/val_loss" in history[1]


def test_profile_steps_write_a_trace_of_those_steps(tmp_path: Path):
    config = dataclasses.replace(TRAIN, profile_steps="5:5")
    train(TINY, config, CountingSource(), validation, tmp_path)
    (trace_dir,) = (RunLayout(tmp_path).profile / "plugins" / "profile").iterdir()
    names = [path.name for path in trace_dir.iterdir()]
    assert any(name.endswith(".xplane.pb") for name in names)
    assert "perfetto_trace.json.gz" in names


@pytest.mark.parametrize("text", ["3", "0:2", "4:2", "a:b"])
def test_bad_profile_steps_are_a_one_line_config_error(text: str):
    with pytest.raises(ConfigError, match="profile_steps"):
        TrainConfig(profile_steps=text)


def test_a_warm_start_begins_from_the_given_parameters(uninterrupted, tmp_path):
    run_dir, _ = uninterrupted
    _, trained = load_model(RunLayout(run_dir).checkpoints)
    frozen = dataclasses.replace(TRAIN, peak_lr=1e-30, weight_decay=0.0)
    started = train(TINY, frozen, CountingSource(), validation, tmp_path, init=lambda: trained)
    _, after = load_model(RunLayout(tmp_path).checkpoints)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(after), jax.device_get(trained))
    fresh = train(TINY, frozen, CountingSource(), validation, tmp_path / "fresh")
    assert started.first_loss < fresh.first_loss  # the trained weights already fit the data
