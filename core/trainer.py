"""The training loop: it steps, fetches metrics where a hook is due, and calls the hooks.

Everything else the loop does is a hook (core/hooks.py) with its own `every`: validation loss,
checkpoints, the trackers (metrics.jsonl, TensorBoard, Weights & Biases; core/tracking.py), the
loss curve and the profiler are built here from the TrainConfig; callers add theirs (benchmark
evals, Hugging Face exports). Metrics stay on the device and are fetched in one transfer at each
step where some hook is due, so the host never waits on the device in between; the next batch is
put on the device while the current step runs. Goodput (core/goodput.py) splits the call's wall
time into compile, steps, data waits, evals, checkpoint saves, restarts and initialisation on the
host clock at those same points.

It writes the run directory's config, checkpoints, metrics, TensorBoard events, loss curve and,
when asked, profiles (core/layout.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from core.goodput import Goodput
from core.hooks import Hook, RunInfo, StepInfo, hook, in_run_order
from core.layout import RunLayout
from core.model import count_params
from core.sharding import global_batch, make_mesh
from core.tracking import read_metrics, tracker_hooks
from core.train_step import MaskedRows, Metrics, StepFunctions, build_steps

matplotlib.use("Agg")
from matplotlib import pyplot as plt

__all__ = [
    "BatchSource",
    "Hook",
    "LossDivergedError",
    "StepInfo",
    "StopRequest",
    "TrainResult",
    "hook",
    "plot_loss_curve",
    "read_metrics",
    "train",
]


class BatchSource(Protocol):
    """An endless, resumable source of this process's rows: int32 [batch / processes, S + 1],
    or those rows with their loss mask (MaskedRows, supervised fine-tuning)."""

    def __next__(self) -> np.ndarray | MaskedRows: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


ValidationBatches = Callable[[], Iterable[np.ndarray | MaskedRows]]


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
    goodput: dict[str, float]  # core/goodput.py's summary of this call


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


class _StepClock:
    """Wall-clock windows of steps, each ending in the metric fetch (a device sync) and excluding
    the hooks' time: throughput per window (the first, which compiles, is not kept in the mean),
    and goodput's `steps` (a window less the compile and data waits inside it)."""

    def __init__(self, goodput: Goodput) -> None:
        self.goodput = goodput
        self.steps = 0
        self.seconds = 0.0
        self.compiled = False
        self.restart()

    def restart(self) -> None:
        """Start a window (after time spent outside training steps)."""
        self.start = time.perf_counter()
        self.excluded = 0.0

    @contextlib.contextmanager
    def outside_steps(self, category: str | None) -> Iterator[None]:
        """Count the block under goodput's `category`, not as step time (None: step time)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if category is not None:
                seconds = time.perf_counter() - start
                self.goodput.add(category, seconds)
                self.excluded += seconds

    def close_window(self, steps: int) -> float:
        """Seconds per step over the window just synced."""
        seconds = time.perf_counter() - self.start
        self.goodput.add("steps", max(seconds - self.excluded, 0.0))
        if self.compiled:
            self.steps += steps
            self.seconds += seconds
        self.compiled = True
        return seconds / steps

    def step_seconds(self, fallback: float) -> float:
        """Mean seconds per step over the kept windows."""
        return self.seconds / self.steps if self.steps else fallback


class ValidationHook(Hook):
    """Token-weighted validation loss into the record as `val_loss` (none without batches)."""

    kind = "eval"

    def __init__(
        self,
        steps: StepFunctions,
        batches: ValidationBatches,
        mesh: jax.sharding.Mesh,
        every: int,
    ) -> None:
        self.steps, self.batches, self.mesh, self.every = steps, batches, mesh, every
        self.last: float | None = None

    def run(self, info: StepInfo) -> None:
        loss = _validation_loss(self.steps, info.state.params, self.batches, self.mesh)
        if loss is not None:
            info.metrics["val_loss"] = self.last = loss


class CheckpointHook(Hook):
    """A checkpoint of the state with the loader state it pairs with (its next batch)."""

    kind = "checkpoint"

    def __init__(self, checkpointer: Checkpointer, config: dict[str, Any], every: int) -> None:
        self.checkpointer, self.config, self.every = checkpointer, config, every

    def run(self, info: StepInfo) -> None:
        self.checkpointer.save(info.step, info.state, info.loader_state, self.config)


class PlotHook(Hook):
    """loss.png from metrics.jsonl every `every` steps and when the run ends, however it ends."""

    kind = "plot"
    at_end = False  # close() plots the end

    def __init__(self, every: int) -> None:
        self.every = every
        self.layout: RunLayout | None = None

    def start(self, run: RunInfo) -> None:
        self.layout = run.layout if run.is_main else None

    def run(self, info: StepInfo) -> None:
        if self.layout is not None:
            plot_loss_curve(self.layout.metrics, self.layout.loss_curve)

    def close(self) -> None:
        if self.layout is not None and self.layout.metrics.exists():
            plot_loss_curve(self.layout.metrics, self.layout.loss_curve)


class ProfileHook(Hook):
    """A jax.profiler trace of steps first..last into the run's profile/ folder: it starts after
    step first - 1 (or before the first step of a call that begins in the range) and stops once
    step `last` and its hooks are done. TensorBoard's profile plugin reads it; the
    perfetto_trace.json.gz beside it opens in ui.perfetto.dev."""

    kind = "profile"

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.directory: Path | None = None
        self.tracing = False

    def due(self, step: int, final: bool) -> bool:
        return step == self.first - 1 or (self.tracing and (step >= self.last or final))

    def start(self, run: RunInfo) -> None:
        self.directory = run.layout.profile
        if self.first - 1 <= run.start_step < self.last:
            self._start_trace()

    def run(self, info: StepInfo) -> None:
        if self.tracing:
            self.close()
        elif info.step == self.first - 1:
            self._start_trace()

    def _start_trace(self) -> None:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        jax.profiler.start_trace(str(self.directory), create_perfetto_trace=True)
        self.tracing = True

    def close(self) -> None:
        if self.tracing:
            jax.profiler.stop_trace()
            self.tracing = False


def train(
    model_config: ModelConfig,
    train_config: TrainConfig,
    batches: BatchSource,
    validation_batches: ValidationBatches,
    output_dir: str | Path,
    stop: StopRequest | None = None,
    init: Callable[[], Any] | None = None,
    hooks: Sequence[Hook] = (),
    tracked_config: dict[str, Any] | None = None,
    config_sections: dict[str, Any] | None = None,
) -> TrainResult:
    """Train to `train_config.steps`, resuming from the newest checkpoint in `output_dir`; a run
    without one starts from the parameters `init()` returns when given (a warm start), else from
    a fresh initialisation. `hooks` run beside the built-in ones (core/hooks.py);
    `tracked_config` is what trackers record besides the model and train configs (the data
    config, the data's counts); `config_sections` join the model and train configs in
    config.json, in every checkpoint and in what trackers record (an SFT run's data and prompt
    template, which inference reads back).

    Raises LossDivergedError when the loss stops being finite; the bad state is not saved.
    """
    goodput = Goodput()
    check_fits(model_config, train_config)
    layout = RunLayout(Path(output_dir))
    is_main = jax.process_index() == 0
    sections = config_sections or {}
    if is_main:
        write_run_config(layout, model_config, train_config, sections)
    mesh = make_mesh(train_config.mesh)
    steps = build_steps(model_config.for_backend(jax.default_backend()), train_config, mesh)
    checkpointer = Checkpointer(layout.checkpoints, keep=train_config.keep_checkpoints)
    stop = stop or StopRequest()
    session = _Session(
        mesh, steps, checkpointer, stop, is_main, init, tuple(hooks), tracked_config or {},
        sections, goodput,
    )  # fmt: skip
    with contextlib.closing(checkpointer), stop.installed():
        return _loop(model_config, train_config, batches, validation_batches, layout, session)


@dataclasses.dataclass(frozen=True)
class _Session:
    """What one `train` call set up: mesh, compiled steps, checkpointer, stop flag, hooks."""

    mesh: jax.sharding.Mesh
    steps: StepFunctions
    checkpointer: Checkpointer
    stop: StopRequest
    is_main: bool
    init: Callable[[], Any] | None
    hooks: tuple[Hook, ...]
    tracked_config: dict[str, Any]
    config_sections: dict[str, Any]
    goodput: Goodput


def _start(session: _Session, batches: BatchSource) -> tuple[int, Any]:
    """(step, state) to continue from: the newest checkpoint (with its loader state) or step 0."""
    start = session.checkpointer.latest_step()
    if start is None:
        with session.goodput.timed("init"):
            if session.init is None:
                return 0, session.steps.init()
            return 0, session.steps.init_from(session.init())
    with session.goodput.timed("restart"):
        state, loader_state = session.checkpointer.restore(session.steps.abstract_state, start)
        batches.restore(loader_state)
    return start, state


def _built_in_hooks(
    train_config: TrainConfig,
    validation_batches: ValidationBatches,
    session: _Session,
    run_config: dict[str, Any],
) -> tuple[ValidationHook, list[Hook]]:
    """Validation, checkpoints, trackers, the loss curve and (when asked) the profiler."""
    validation = ValidationHook(
        session.steps, validation_batches, session.mesh, train_config.eval_every
    )
    hooks: list[Hook] = [
        validation,
        CheckpointHook(session.checkpointer, run_config, train_config.save_every),
        *tracker_hooks(train_config),
        PlotHook(train_config.eval_every),
    ]
    if train_config.profile_range is not None:
        hooks.append(ProfileHook(*train_config.profile_range))
    return validation, hooks


_TIMED_KINDS = ("eval", "checkpoint")  # hook kinds that are goodput categories of their own


def _timed(goodput: Goodput, item: Hook) -> contextlib.AbstractContextManager[None]:
    return goodput.timed(item.kind) if item.kind in _TIMED_KINDS else contextlib.nullcontext()


def _loop(
    model_config: ModelConfig,
    train_config: TrainConfig,
    batches: BatchSource,
    validation_batches: ValidationBatches,
    layout: RunLayout,
    session: _Session,
) -> TrainResult:
    mesh, steps, stop, goodput = session.mesh, session.steps, session.stop, session.goodput
    start, state = _start(session, batches)
    run_config = run_config_dict(model_config, train_config) | session.config_sections
    validation, built_in = _built_in_hooks(train_config, validation_batches, session, run_config)
    hooks = in_run_order([*built_in, *session.hooks])
    run = RunInfo(
        layout, start, train_config.steps, {**run_config, **session.tracked_config}, session.is_main
    )
    tokens_per_step = train_config.batch_size * train_config.seq_len
    flops_per_step = training_flops_per_step(
        model_config, train_config.batch_size, train_config.seq_len
    )
    peak = peak_flops()
    pending: list[tuple[int, Metrics]] = []
    step_losses: dict[int, float] = {}
    window_step_s = math.nan

    with contextlib.ExitStack() as started:
        for item in hooks:
            with _timed(goodput, item):
                item.start(run)
            started.callback(item.close)
        clock = _StepClock(goodput)
        with clock.outside_steps("data"):
            rows = global_batch(next(batches), mesh)
        loader_state = batches.state()
        progress = tqdm(
            total=train_config.steps,
            initial=start,
            desc="train",
            unit="step",
            disable=not session.is_main,
        )
        clock.restart()
        step = start
        for step in range(start + 1, train_config.steps + 1):
            # The first call traces and compiles the step before dispatching it.
            with clock.outside_steps("compile" if step == start + 1 else None):
                state, metrics = steps.train(state, rows)
            pending.append((step, metrics))
            loader_state_at_step = loader_state
            if step < train_config.steps:
                with clock.outside_steps("data"):
                    rows = global_batch(next(batches), mesh)
                loader_state = batches.state()
            progress.update(1)
            final = step == train_config.steps or stop.signal_name is not None
            if not any(item.due(step, final) for item in hooks):
                continue
            records = _fetch(pending)  # the one host sync: waits for the steps to finish
            pending.clear()
            window_step_s = clock.close_window(len(records))
            _check_finite(records, session.checkpointer)
            step_losses.update((r["step"], r["loss"]) for r in records)
            info = StepInfo(
                step,
                state,
                _summary(
                    records,
                    tokens_per_step / window_step_s,
                    mfu(flops_per_step, window_step_s, peak),
                ),
                loader_state_at_step,
                final,
                stop.signal_name,
            )
            for item in hooks:
                if item.due(step, final) or item.at_every_boundary:
                    with _timed(goodput, item):
                        item.run(info)
            progress.set_postfix(
                loss=f"{info.metrics['loss']:.4f}", tok_s=f"{info.metrics['tokens_per_s']:.0f}"
            )
            clock.restart()
            if stop.signal_name is not None:
                break
        progress.close()
        with goodput.timed("checkpoint"):
            session.checkpointer.wait()
    step_s = clock.step_seconds(fallback=window_step_s)
    ran = sorted(step_losses)
    return TrainResult(
        first_loss=step_losses[ran[0]] if ran else None,
        last_loss=step_losses[ran[-1]] if ran else None,
        final_val_loss=validation.last,
        step=step,
        tokens_seen=step * tokens_per_step,
        tokens_per_s=tokens_per_step / step_s,
        mfu=mfu(flops_per_step, step_s, peak),
        checkpoint_dir=session.checkpointer.directory,
        params=count_params(model_config),
        step_losses=step_losses,
        stopped_by_signal=stop.signal_name,
        goodput=goodput.summary(),
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
    """One metrics record: mean loss over the window, the last step's lr and grad-norm."""
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
