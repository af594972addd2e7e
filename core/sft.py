"""Supervised fine-tuning: a trained model learns (prompt, target) examples, the loss on the
targets only.

    python -m core.sft --init-from RUN_OR_HF_DIR --data FILE.jsonl --out RUN [flags]
    ./pants run specialists/python:sft -- --init-from outputs/python-test --data tasks.jsonl
    ./pants run orchestrator:sft_planner -- --init-from DIR --data outputs/plan_data/plans.jsonl

The weights, architecture and tokenizer come from --init-from, one of our run directories or a
Hugging Face Llama directory (core/warm_start.py); the flags of how it trains (dtype, remat,
attention kernel, dropout) and every train flag default to the --config preset (core/config.py).
The examples (core/sft_data.py) are framed by --template (core/template.py), packed several per
row with the prompts masked out of the loss, and a share of them is held out for the validation
loss. It is the pretraining trainer (core/trainer.py): checkpoints carry the loader state, so the
same command resumes a killed run exactly; metrics.jsonl, TensorBoard, the loss curve. The run
directory (core/layout.py) gets the source's tokenizer and, in config.json under "sft", the SFT
config with the template's strings, which whatever loads the model reads back to frame its
prompts the same way; summary.json and the printed summary end the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
from tokenizers import Tokenizer

from core.cli import add_dataclass_args, dataclass_from_args, run_main
from core.config import ModelConfig, TrainConfig, check_fits, to_dict
from core.data import BatchLoader, eval_batches
from core.goodput import goodput_line
from core.hooks import Hook
from core.layout import RunLayout
from core.run_flags import add_run_config_args
from core.sft_data import SFTConfig, SFTData, load_sft_data
from core.template import PromptTemplate, template_named
from core.tokenizer import load_tokenizer
from core.trainer import LossDivergedError, read_metrics, train
from core.warm_start import TRAINING_FIELDS, initial_params, warm_model

# Flags an SFT run does not take: the architecture is the --init-from source's, and the
# specialists' training-time evals and Hugging Face exports belong to their train job.
_NOT_FLAGS = (
    *(field.name for field in dataclasses.fields(ModelConfig) if field.name not in TRAINING_FIELDS),
    "train_evals", "train_eval_tasks", "train_eval_new_tokens", "export_hf_every",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SFTRun:
    """One SFT run, set up: its configs, template, tokenizer, packed data and run directory."""

    model: ModelConfig
    train: TrainConfig
    sft: SFTConfig
    template: PromptTemplate
    tokenizer: Tokenizer
    data: SFTData
    layout: RunLayout

    def config_section(self) -> dict[str, Any]:
        """config.json's "sft": the SFT config, with the data's absolute path and the template's
        strings as trained."""
        return to_dict(self.sft) | {
            "data": str(Path(self.sft.data).absolute()),
            "template": dataclasses.asdict(self.template),
        }


def sft_parser(
    prog: str, argv: Sequence[str], default_out: Path | None, default_template: str = "plain"
) -> argparse.ArgumentParser:
    """The flags of an SFT command: --out, the SFT config's, and the run config's (no
    architecture flags: the --init-from source has one)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=default_out,
        required=default_out is None,
        help="run directory (running again resumes it)"
        + (f" (default: {default_out})" if default_out else ""),
    )
    group = parser.add_argument_group("sft config")
    add_dataclass_args(group, SFTConfig, defaults=SFTConfig(template=default_template))
    add_run_config_args(parser, argv, parts=("model", "train"), exclude=_NOT_FLAGS)
    return parser


def sft_setup(args: argparse.Namespace) -> SFTRun:
    """The run the flags describe: its model from --init-from, its data read and packed."""
    sft = dataclass_from_args(SFTConfig, args)
    train_config = dataclass_from_args(TrainConfig, args, exclude=_NOT_FLAGS, train_evals=False)
    if not train_config.init_from:
        raise ValueError("--init-from is required: a run directory or Hugging Face directory")
    if not sft.data:
        raise ValueError('--data is required: a JSONL file of {"prompt", "target"} examples')
    template = template_named(sft.template)
    training = dataclass_from_args(ModelConfig, args, exclude=_NOT_FLAGS)
    model, tokenizer_path = warm_model(train_config.init_from, training)
    check_fits(model, train_config)
    tokenizer = load_tokenizer(tokenizer_path)
    data = load_sft_data(
        sft, tokenizer, train_config.seq_len, model.eos_id, model.pad_id, train_config.seed
    )
    return SFTRun(model, train_config, sft, template, tokenizer, data, RunLayout(args.out))


def train_sft(run: SFTRun, hooks: Sequence[Hook] = ()) -> dict[str, Any]:
    """Train `run` (resuming its newest checkpoint), beside `hooks`; the summary it writes to
    the run's summary.json."""
    run.layout.root.mkdir(parents=True, exist_ok=True)
    run.tokenizer.save(str(run.layout.tokenizer))
    config = run.train
    loader = BatchLoader(
        run.data.train, config.batch_size, config.seed, jax.process_index(), jax.process_count()
    )
    try:
        result = train(
            run.model,
            config,
            loader,
            lambda: eval_batches(run.data.validation, config.batch_size, config.eval_batches),
            run.layout.root,
            init=lambda: initial_params(config.init_from, run.model),
            hooks=hooks,
            tracked_config={"sft_data": run.data.counts},
            config_sections={"sft": run.config_section()},
        )
    except LossDivergedError as error:
        raise ValueError(str(error)) from error
    history = read_metrics(run.layout.metrics)
    summary = {
        "run_dir": str(run.layout.root),
        "init_from": config.init_from,
        "template": run.template.name,
        "data": run.data.counts,
        "params": result.params,
        "step": result.step,
        "tokens_per_s": result.tokens_per_s,
        "train_loss_first": history[0]["loss"],
        "train_loss_last": history[-1]["loss"],
        "evals": first_and_last(history),
        "stopped_by_signal": result.stopped_by_signal,
        "checkpoint": str(result.checkpoint_dir),
        "goodput": result.goodput,
    }
    run.layout.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def first_and_last(history: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The first and last value, with their steps, of the validation loss and each eval metric."""
    names = sorted(
        {key for r in history for key in r if key == "val_loss" or key.startswith("eval/")}
    )
    evals = {}
    for name in names:
        points = [(r["step"], r[name]) for r in history if name in r]
        (first_step, first), (last_step, last) = points[0], points[-1]
        evals[name] = {
            "first": first,
            "first_step": first_step,
            "last": last,
            "last_step": last_step,
        }
    return evals


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """An SFT run's one-screen summary."""
    data = summary["data"]
    skipped = ", ".join(f"{reason} {n}" for reason, n in data["skipped"].items())
    return [
        f"run            {summary['run_dir']} (from {summary['init_from']})",
        f"data           {data['file']}: {data['examples']['train']:,} train / "
        f"{data['examples']['validation']:,} validation examples in {data['rows']['train']:,} "
        f"rows, template {summary['template']}" + (f"; skipped {skipped}" if skipped else ""),
        f"training       step {summary['step']}, {summary['params']:,} parameters, "
        f"{summary['tokens_per_s']:,.0f} tokens/s",
        f"loss           first {summary['train_loss_first']:.3f} -> last "
        f"{summary['train_loss_last']:.3f} (target tokens only)",
        *(
            f"eval           {name}: {value['first']:.3f} (step {value['first_step']}) -> "
            f"{value['last']:.3f} (step {value['last_step']})"
            for name, value in summary["evals"].items()
        ),
        f"goodput        {goodput_line(summary['goodput'])}",
        f"checkpoint     {summary['checkpoint']}"
        if summary["stopped_by_signal"] is None
        else f"stopped by {summary['stopped_by_signal']}: run the same command to resume",
    ]


def sft_main(
    argv: Sequence[str] | None,
    prog: str,
    default_out: Path | None,
    default_template: str = "plain",
    extend: Callable[[argparse.ArgumentParser], None] | None = None,
    hooks: Callable[[SFTRun, argparse.Namespace], Sequence[Hook]] | None = None,
) -> int:
    """An SFT command: parse, set up, train, print the summary; one-line errors exit 2.
    `extend` adds a caller's flags and `hooks` its hooks (e.g. the planner's eval)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = sft_parser(prog, argv, default_out, default_template)
    if extend is not None:
        extend(parser)
    args = parser.parse_args(argv)

    def run() -> int:
        setup = sft_setup(args)
        summary = train_sft(setup, hooks(setup, args) if hooks else ())
        print("\n".join(summary_lines(summary)))
        return 0

    return run_main(run)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m core.sft`: --out is required."""
    return sft_main(argv, "python -m core.sft", default_out=None)


if __name__ == "__main__":
    sys.exit(main())
