"""Where things live: every path of a run directory, and the default run and data directories.

A run directory (what training writes, and what evals, the orchestrator and exports read):

    config.json      model + train config (and an SFT run's data and prompt template, "sft")
    tokenizer.json   the tokenizer the data was packed with
    data.json        which prepared-data directory the run trains on
    checkpoints/     orbax steps
    hf/step_N/       Hugging Face exports written while training (--export-hf-every)
    metrics.jsonl    one JSON record per logged step
    tensorboard/     TensorBoard event files of the same records (`tensorboard --logdir RUN`)
    wandb/, wandb.json   Weights & Biases files and the run's W&B id (--wandb-project)
    profile/         jax.profiler traces (--profile-steps), under plugins/profile/<time>/
    loss.png         the loss curve
    samples.md       end-of-run sample completions
    summary.json     the run's one-screen summary

Defaults, relative to the working directory: runs in `outputs/<language>-<preset>` (fine-tuning
runs in `outputs/<name>-sft`), their prepared data in `outputs/data/<language>-<preset>`, eval
results in `outputs/eval/<name>-<time>`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from core.tokenizer import TOKENIZER_FILE

OUTPUTS = Path("outputs")
EVALS = OUTPUTS / "eval"
CHECKPOINTS = "checkpoints"


def run_name(language: str, preset: str) -> str:
    """The default name of a language's run of a preset, e.g. "python-test"."""
    return f"{language}-{preset}"


def default_run_dir(language: str, preset: str) -> Path:
    """Where a language's train job writes a preset's run unless told otherwise."""
    return OUTPUTS / run_name(language, preset)


def default_data_dir(language: str, preset: str) -> Path:
    """Where `prepare` and `train` put a language's prepared data for a preset."""
    return OUTPUTS / "data" / run_name(language, preset)


def default_eval_dir(name: str) -> Path:
    """A fresh results directory for an eval called `name`."""
    return EVALS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory."""

    root: Path

    @classmethod
    def of(cls, path: str | Path) -> RunLayout:
        """The layout for a path naming a run directory or its checkpoints/ folder."""
        path = Path(path)
        return cls(path.parent if path.name == CHECKPOINTS else path)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def tokenizer(self) -> Path:
        return self.root / TOKENIZER_FILE

    @property
    def data_link(self) -> Path:
        return self.root / "data.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def wandb_run(self) -> Path:
        """The W&B run id a resumed run continues (W&B's own files go to root/wandb/)."""
        return self.root / "wandb.json"

    @property
    def profile(self) -> Path:
        """The profiler's log directory: TensorBoard's profile plugin reads plugins/profile/."""
        return self.root / "profile"

    @property
    def loss_curve(self) -> Path:
        return self.root / "loss.png"

    @property
    def samples(self) -> Path:
        return self.root / "samples.md"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def hf_export(self, step: int) -> Path:
        """Where training exports step `step` in Hugging Face's format (--export-hf-every)."""
        return self.root / "hf" / f"step_{step}"

    def link_data(self, data_dir: Path) -> None:
        """Record that this run trains on the prepared data in `data_dir`."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_link.write_text(json.dumps({"data_dir": str(data_dir.absolute())}) + "\n")

    def data_dir(self) -> Path | None:
        """The prepared-data directory this run trained on, if it recorded one."""
        if not self.data_link.is_file():
            return None
        return Path(json.loads(self.data_link.read_text())["data_dir"])
