"""The training loop: sharded steps, periodic eval and checkpoints, exact resume, metrics and plots.

It writes the run directory's config, checkpoints, metrics and loss curve (core/layout.py). Metrics stay on the
device and are fetched in one transfer every `log_every` steps (and before evals and saves), so
the host never waits on the device in between. The next batch is put on the device while the
current step runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import jax
import matplotlib
import numpy as np
from tqdm import tqdm

from core.checkpoint import Checkpointer, run_config_dict, write_run_config
from core.config import ModelConfig, TrainConfig, check_fits
from core.flops import mfu, peak_flops, training_flops_per_step
from core.layout import RunLayout
from core.model import count_params
from core.sharding import global_batch, make_mesh
from core.train_step import Metrics, StepFunctions, build_steps

matplotlib.use("Agg")
from matplotlib import pyplot as plt


class BatchSource(Protocol):
    """An endless, resumable source of this process's rows: int32 [batch / processes, S + 1]."""

    def __next__(self) -> np.ndarray: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


ValidationBatches = Callable[[], Iterable[np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Hook:
    """Work the loop does every `every` steps and after the last one: `run(step, state)`, after
    that step's metrics and checkpoint, on every process (one that writes files does so on
    process 0)."""

    every: int
    run: Callable[[int, Any], None]


class LossDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the message names the step and last checkpoint."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Summary of one `train` call (a resumed run reports the steps it ran itself)."""

    first_loss: float | None  # None when the checkpoint had already reached `steps`
    last_loss: float | None
    final_val_loss: float | None
    step: int
    tokens_seen: int
    tokens_per_s: float
    mfu: float
    checkpoint_dir: Path
    params: int
    step_losses: dict[int, float]
    stopped_by_signal: str | None


class StopRequest:
    """Set by SIGINT/SIGTERM; the loop checks it after each step, saves and returns."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __call__(self, signum: int, frame: Any = None) -> None:
        self.signal_name = signal.Signals(signum).name

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Handle SIGINT and SIGTERM with this object while the block runs."""
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class _Throughput:
    """Step time from wall-clock windows that end in a device sync, excluding compile and evals."""

    def __init__(self) -> None:
        self.window_start = time.perf_counter()
        self.steps = 0
        self.seconds = 0.0
        self.compiled = False

    def close_window(self, steps: int) -> float:
        """Seconds per step over the window just synced; the first window (compiling) is not kept."""
        seconds = time.perf_counter() - self.window_start
        if self.compiled:
            self.steps += steps
            self.seconds += seconds
        self.compiled = True
        self.restart()
        return seconds / steps

    def restart(self) -> None:
        """Start a new window (after time spent outside training steps)."""
        self.window_start = time.perf_counter()

    def step_seconds(self, fallback: float) -> float:
        """Mean seconds per step over the kept windows."""
        return self.seconds / self.steps if self.steps else fallback


def train(
    model_config: ModelConfig,
    train_config: TrainConfig,
    batches: BatchSource,
    validation_batches: ValidationBatches,
    output_dir: str | Path,
    stop: StopRequest | None = None,
    init: Callable[[], Any] | None = None,
    hooks: Sequence[Hook] = (),
) -> TrainResult:
    """Train to `train_config.steps`, resuming from the newest checkpoint in `output_dir`; a run
    without one starts from the parameters `init()` returns when given (a warm start), else from
    a fresh initialisation.

    Raises LossDivergedError when the loss stops being finite; the bad state is not saved.
    """
    check_fits(model_config, train_config)
    layout = RunLayout(Path(output_dir))
    is_main = jax.process_index() == 0
    if is_main:
        write_run_config(layout, model_config, train_config)
    mesh = make_mesh(train_config.mesh)
    steps = build_steps(model_config.for_backend(jax.default_backend()), train_config, mesh)
    checkpointer = Checkpointer(layout.checkpoints, keep=train_config.keep_checkpoints)
    stop = stop or StopRequest()
    with contextlib.closing(checkpointer), stop.installed():
        return _loop(
            model_config,
            train_config,
            batches,
            validation_batches,
            layout,
            _Session(mesh, steps, checkpointer, stop, is_main, init, tuple(hooks)),
        )


@dataclasses.dataclass(frozen=True)
class _Session:
    """What one `train` call set up: mesh, compiled steps, checkpointer, stop flag."""

    mesh: jax.sharding.Mesh
    steps: StepFunctions
    checkpointer: Checkpointer
    stop: StopRequest
    is_main: bool
    init: Callable[[], Any] | None
    hooks: tuple[Hook, ...]


def _start(session: _Session, batches: BatchSource, metrics_path: Path) -> tuple[int, Any]:
    """(step, state) to continue from: the newest checkpoint (with its loader state) or step 0."""
    start = session.checkpointer.latest_step()
    if start is None:
        if session.is_main:
            metrics_path.unlink(missing_ok=True)
        if session.init is None:
            return 0, session.steps.init()
        return 0, session.steps.init_from(session.init())
    state, loader_state = session.checkpointer.restore(session.steps.abstract_state, start)
    batches.restore(loader_state)
    if session.is_main:
        _drop_records_after(metrics_path, start)
    return start, state


def _loop(
    model_config: ModelConfig,
    train_config: TrainConfig,
    batches: BatchSource,
    validation_batches: ValidationBatches,
    layout: RunLayout,
    session: _Session,
) -> TrainResult:
    mesh, steps, checkpointer, stop, is_main = (
        session.mesh,
        session.steps,
        session.checkpointer,
        session.stop,
        session.is_main,
    )
    metrics_path = layout.metrics
    start, state = _start(session, batches, metrics_path)
    run_config = run_config_dict(model_config, train_config)
    tokens_per_step = train_config.batch_size * train_config.seq_len
    flops_per_step = training_flops_per_step(
        model_config, train_config.batch_size, train_config.seq_len
    )
    peak = peak_flops()
    throughput = _Throughput()
    pending: list[tuple[int, Metrics]] = []
    step_losses: dict[int, float] = {}
    val_loss: float | None = None
    window_step_s = math.nan

    rows = global_batch(next(batches), mesh)
    loader_state = batches.state()
    progress = tqdm(
        total=train_config.steps, initial=start, desc="train", unit="step", disable=not is_main
    )
    step = start
    for step in range(start + 1, train_config.steps + 1):
        state, metrics = steps.train(state, rows)
        pending.append((step, metrics))
        loader_state_at_step = loader_state
        if step < train_config.steps:
            rows = global_batch(next(batches), mesh)
            loader_state = batches.state()
        progress.update(1)
        done = step == train_config.steps or stop.signal_name is not None
        evaluate = step % train_config.eval_every == 0 or done
        save = step % train_config.save_every == 0 or done
        hooked = [hook for hook in session.hooks if step % hook.every == 0 or done]
        if not (step % train_config.log_every == 0 or evaluate or save or hooked):
            continue
        records = _fetch(pending)
        pending.clear()
        window_step_s = throughput.close_window(len(records))
        _check_finite(records, checkpointer)
        step_losses.update((r["step"], r["loss"]) for r in records)
        summary = _summary(
            records, tokens_per_step / window_step_s, mfu(flops_per_step, window_step_s, peak)
        )
        if evaluate:
            val_loss = _validation_loss(steps, state.params, validation_batches, mesh)
            if val_loss is not None:
                summary["val_loss"] = val_loss
        if save:
            checkpointer.save(step, state, loader_state_at_step, run_config)
        if is_main:
            _append_record(metrics_path, summary)
            progress.set_postfix(
                loss=f"{summary['loss']:.4f}", tok_s=f"{summary['tokens_per_s']:.0f}"
            )
        for hook in hooked:
            hook.run(step, state)
        throughput.restart()
        if stop.signal_name is not None:
            break
    progress.close()
    checkpointer.wait()
    if is_main:
        plot_loss_curve(metrics_path, layout.loss_curve)
    step_s = throughput.step_seconds(fallback=window_step_s)
    ran = sorted(step_losses)
    return TrainResult(
        first_loss=step_losses[ran[0]] if ran else None,
        last_loss=step_losses[ran[-1]] if ran else None,
        final_val_loss=val_loss,
        step=step,
        tokens_seen=step * tokens_per_step,
        tokens_per_s=tokens_per_step / step_s,
        mfu=mfu(flops_per_step, step_s, peak),
        checkpoint_dir=checkpointer.directory,
        params=count_params(model_config),
        step_losses=step_losses,
        stopped_by_signal=stop.signal_name,
    )


def _fetch(pending: list[tuple[int, Metrics]]) -> list[dict[str, Any]]:
    """Per-step host metrics for the pending steps, in one device-to-host transfer."""
    values = jax.device_get([metrics for _, metrics in pending])
    return [
        {"step": step, **{k: float(v) for k, v in m.items()}}
        for (step, _), m in zip(pending, values, strict=True)
    ]


def _check_finite(records: list[dict[str, Any]], checkpointer: Checkpointer) -> None:
    for record in records:
        if not math.isfinite(record["loss"]):
            raise LossDivergedError(
                f"training loss is {record['loss']} at step {record['step']}; stopped without "
                f"saving; last good checkpoint: step {checkpointer.latest_step()} in "
                f"{checkpointer.directory}"
            )


def _summary(
    records: list[dict[str, Any]], tokens_per_s: float, utilisation: float
) -> dict[str, Any]:
    """One metrics.jsonl record: mean loss over the window, the last step's lr and grad-norm."""
    last = records[-1]
    return {
        "step": last["step"],
        "loss": float(np.mean([r["loss"] for r in records])),
        "lr": last["lr"],
        "grad_norm": last["grad_norm"],
        "tokens_per_s": tokens_per_s,
        "mfu": utilisation,
    }


def _validation_loss(
    steps: StepFunctions,
    params: Any,
    validation_batches: ValidationBatches,
    mesh: jax.sharding.Mesh,
) -> float | None:
    """Token-weighted mean loss over the validation batches (one host transfer at the end);
    None when there are no validation batches."""
    sums = [steps.eval(params, global_batch(rows, mesh)) for rows in validation_batches()]
    if not sums:
        return None
    totals = np.sum(jax.device_get(sums), axis=0)
    return float(totals[0] / max(totals[1], 1.0))


def _append_record(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file (empty if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _drop_records_after(path: Path, step: int) -> None:
    """Forget metrics logged after the checkpoint a resumed run restarts from."""
    kept = [r for r in read_metrics(path) if r["step"] <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def plot_loss_curve(metrics_path: Path, png_path: Path) -> None:
    """Train (and validation, where logged) loss against step, as a PNG."""
    records = read_metrics(metrics_path)
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot([r["step"] for r in records], [r["loss"] for r in records], label="train")
    evals = [r for r in records if "val_loss" in r]
    axes.plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", label="validation")
    axes.set(xlabel="step", ylabel="loss", title="loss")
    axes.legend()
    figure.savefig(png_path, dpi=100, bbox_inches="tight")
    plt.close(figure)
