"""Trackers: where a run's metric records go, each one a hook of the loop (core/hooks.py).

Every run writes `metrics.jsonl` (one JSON record per boundary) and TensorBoard event files in
its `tensorboard/` folder (tensorboardX: no TensorFlow needed); with `--wandb-project` it also
logs to Weights & Biases, whose files live in the run's `wandb/` folder (`WANDB_MODE=offline`
writes only there; `wandb sync` uploads later). TensorBoard and W&B also get the run's whole
config once, at the start.

A record's keys are metric names: the training window's `loss`, `lr`, `grad_norm`,
`tokens_per_s`, `mfu`, the validation `val_loss`, and evaluation metrics named `eval/...`.
TensorBoard and W&B show them under `tag(key)`: `train/<key>`, `eval/val_loss`, `eval/...`
(`pass@1` as `pass_1`).

A resumed run continues each tracker where the checkpoint it restarts from left off: records
after that step are dropped from metrics.jsonl, TensorBoard is told to purge its events past that
step, and W&B continues the run's id (kept in `wandb.json`; W&B's steps only increase, so it
keeps its first record of a step the killed call had already logged).
"""

from __future__ import annotations

import json
import math
import re
import secrets
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from core.config import TrainConfig
from core.hooks import Hook, RunInfo, StepInfo
from core.layout import RunLayout

Record = dict[str, Any]
_NOT_IN_TAGS = re.compile(r"[^-/\w.]")  # as tensorboardX cleans summary names


def tag(key: str) -> str:
    """A record key's TensorBoard and W&B name: grouped under train/ or eval/, and with the
    characters TensorBoard refuses in a name as "_" (`eval/humaneval/pass@1` shows as
    `eval/humaneval/pass_1`)."""
    if "/" not in key:
        key = "eval/val_loss" if key == "val_loss" else f"train/{key}"
    return _NOT_IN_TAGS.sub("_", key)


def scalars(record: Record) -> dict[str, float]:
    """The record's finite numbers by tag, without its step."""
    return {
        tag(key): float(value)
        for key, value in record.items()
        if key != "step"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


class Tracker(Protocol):
    """Somewhere records go."""

    def log(self, record: Record) -> None: ...

    def close(self) -> None: ...


def read_metrics(path: Path) -> list[Record]:
    """The records of a metrics.jsonl file (empty if it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class JsonlTracker:
    """metrics.jsonl: a fresh run starts it over, a resumed one forgets records past its start."""

    def __init__(self, path: Path, start_step: int) -> None:
        self.path = path
        if start_step == 0:
            path.unlink(missing_ok=True)
        else:
            kept = [r for r in read_metrics(path) if r["step"] <= start_step]
            path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def log(self, record: Record) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        pass


class TensorBoardTracker:
    """Event files in `directory`, flushed at every record so a running job can be watched."""

    def __init__(self, directory: Path, start_step: int, config: dict[str, Any]) -> None:
        from tensorboardX import SummaryWriter

        directory.mkdir(parents=True, exist_ok=True)
        if start_step == 0:
            for old in directory.glob("events.out.tfevents.*"):
                old.unlink()
        # purge_step: TensorBoard drops the earlier files' events from that step on.
        self.writer = SummaryWriter(
            str(directory), purge_step=start_step + 1 if start_step else None
        )
        text = json.dumps(config, indent=2, sort_keys=True)
        self.writer.add_text("config", "    " + text.replace("\n", "\n    "), start_step)
        self.writer.flush()

    def log(self, record: Record) -> None:
        for name, value in scalars(record).items():
            self.writer.add_scalar(name, value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    """A Weights & Biases run in the run directory (offline when WANDB_MODE=offline)."""

    def __init__(
        self, layout: RunLayout, train: TrainConfig, start_step: int, config: dict
    ) -> None:
        import wandb

        run_id = None
        if start_step and layout.wandb_run.is_file():
            run_id = json.loads(layout.wandb_run.read_text()).get("id")
        run_id = run_id or secrets.token_hex(4)
        layout.root.mkdir(parents=True, exist_ok=True)
        layout.wandb_run.write_text(json.dumps({"id": run_id}) + "\n")
        self.run = wandb.init(
            project=train.wandb_project,
            entity=train.wandb_entity or None,
            name=train.wandb_run_name or None,
            id=run_id,
            resume="allow",
            dir=str(layout.root.absolute()),  # the W&B service process may have another cwd
            config=config,
            settings=wandb.Settings(console="off"),
        )

    def log(self, record: Record) -> None:
        self.run.log(scalars(record), step=record["step"])

    def close(self) -> None:
        self.run.finish()


class TrackerHook(Hook):
    """A tracker as a hook: it writes each boundary's record on process 0."""

    kind = "log"
    at_every_boundary = True

    def __init__(self, open_tracker: Callable[[RunInfo], Tracker], every: int) -> None:
        self.open_tracker = open_tracker
        self.every = every
        self.tracker: Tracker | None = None

    def start(self, run: RunInfo) -> None:
        if run.is_main:
            self.tracker = self.open_tracker(run)

    def run(self, info: StepInfo) -> None:
        if self.tracker is not None:
            self.tracker.log(info.metrics)

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None


def tracker_hooks(train: TrainConfig) -> list[Hook]:
    """The run's trackers: metrics.jsonl and TensorBoard always, W&B with --wandb-project."""
    hooks: list[Hook] = [
        TrackerHook(lambda run: JsonlTracker(run.layout.metrics, run.start_step), train.log_every),
        TrackerHook(
            lambda run: TensorBoardTracker(run.layout.tensorboard, run.start_step, run.config),
            train.log_every,
        ),
    ]
    if train.wandb_project:
        hooks.append(
            TrackerHook(
                lambda run: WandbTracker(run.layout, train, run.start_step, run.config),
                train.log_every,
            )
        )
    return hooks


def tensorboard_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under `directory`: tag -> [(step, value)] (TensorBoard's
    own reader, purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    events.Reload()
    return {
        name: [(event.step, event.value) for event in events.Scalars(name)]
        for name in events.Tags()["scalars"]
    }


_WANDB_BLOCK = 32768
_WANDB_HEADER = 7  # ":W&B", a 2-byte magic number, a version byte; then each chunk's header


def wandb_records(path: Path) -> list[Any]:
    """The protobuf records of a W&B run file (`run-<id>.wandb`, a LevelDB-style log of 32 KiB
    blocks whose chunks carry a CRC, a length and a first/middle/last type)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    records, chunks, position = [], [], _WANDB_HEADER
    while position + _WANDB_HEADER <= len(data):
        left = _WANDB_BLOCK - position % _WANDB_BLOCK
        if left < _WANDB_HEADER:
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + _WANDB_HEADER])
        position += _WANDB_HEADER
        chunks.append(data[position : position + length])
        position += length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            records.append(record)
            chunks = []
    return records
