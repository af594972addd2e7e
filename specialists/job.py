"""The train job every specialist runs: prepare data -> train -> sample -> summarise.

`python -m specialists.<lang>.train` calls `train_main(SPECIALIST)`. A run directory
(`outputs/<language>-<config>` unless --out says otherwise) receives `config.json`,
`tokenizer.json`, `checkpoints/`, `metrics.jsonl`, `loss.png`, `samples.md` and `summary.json`.
Running the same command again resumes from the newest checkpoint; `--fresh` starts over.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from core.cli import add_dataclass_args, dataclass_from_args
from core.config import PRESETS, TRAIN_PRESETS, ModelConfig, TrainConfig, load_json
from core.data import BatchLoader, PackedDataset, eval_batches
from core.inference import load_completer
from core.sharding import maybe_initialize_distributed
from core.tokenizer import TOKENIZER_FILE, load_tokenizer
from core.trainer import CHECKPOINT_DIR, METRICS_FILE, LossDivergedError, read_metrics, train
from data_tools.config import PrepareConfig
from data_tools.prepare import prepare
from data_tools.spec import LanguageSpec

SAMPLES_FILE = "samples.md"
SUMMARY_FILE = "summary.json"
SAMPLE_NEW_TOKENS = 96

# Data defaults per preset. The TEST run trains on ~1M tokens, so it reads a bounded slice of
# the local corpus (the first run's cost is mostly ast.parse and MinHash over every file), trains
# its tokenizer on less text and holds out more files so validation has enough rows.
PREPARE_PRESETS: dict[str, PrepareConfig] = {
    "test": PrepareConfig(
        max_bytes=120_000_000, tokenizer_train_bytes=16_000_000, validation_fraction=0.05
    ),
    "prod": PrepareConfig(),
}


@dataclasses.dataclass(frozen=True)
class Specialist:
    """One language's pieces the shared jobs need."""

    language: LanguageSpec
    syntax_ok: Callable[[str], bool]  # does this program parse?
    sample_prompts: tuple[str, ...]  # end-of-run completions, reported in samples.md


def _parser(specialist: Specialist, preset: str) -> argparse.ArgumentParser:
    name = specialist.language.name
    parser = argparse.ArgumentParser(
        prog=f"specialists.{name}.train",
        description=f"Train the {name} specialist: prepare data, train, sample, summarise.",
    )
    parser.add_argument(
        "--config",
        choices=sorted(PRESETS),
        default=preset,
        help="model and training preset (default: %(default)s)",
    )
    parser.add_argument(
        "--model-config", type=Path, help="JSON ModelConfig to train instead of the preset's model"
    )
    parser.add_argument(
        "--source",
        nargs="+",
        default=[],
        help="directories, .json/.jsonl/.parquet files or `datasets` names "
        f"(default: the {name} code already on this machine)",
    )
    parser.add_argument(
        "--out", type=Path, help=f"run directory (default: outputs/{name}-<config>)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=f"prepared-data directory (default: outputs/data/{name}-<config>)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete this run's checkpoints and metrics and start over",
    )
    add_dataclass_args(parser, TrainConfig, defaults=TRAIN_PRESETS[preset])
    add_dataclass_args(
        parser, PrepareConfig, defaults=PREPARE_PRESETS[preset], exclude=("seq_len", "max_tokens")
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=0,
        help="train-split tokens to pack (default: what --steps will consume)",
    )
    return parser


def parse_args(specialist: Specialist, argv: Sequence[str]) -> argparse.Namespace:
    """Flags for the job; the --config preset supplies the TrainConfig defaults."""
    preset = argparse.ArgumentParser(add_help=False)
    preset.add_argument("--config", choices=sorted(PRESETS), default="test")
    known, _ = preset.parse_known_args(argv)
    return _parser(specialist, known.config).parse_args(argv)


def _prepare_config(args: argparse.Namespace, train_config: TrainConfig) -> PrepareConfig:
    tokens = args.max_tokens or train_config.steps * train_config.batch_size * train_config.seq_len
    base = dataclass_from_args(PrepareConfig, args, exclude=("seq_len", "max_tokens"))
    return dataclasses.replace(base, seq_len=train_config.seq_len, max_tokens=tokens)


def _start_fresh(run_dir: Path) -> None:
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
    (run_dir / METRICS_FILE).unlink(missing_ok=True)


def _install_tokenizer(manifest: dict[str, Any], run_dir: Path) -> None:
    info = manifest["tokenizer"]
    load_tokenizer(info.get("path", info["source"])).save(str(run_dir / TOKENIZER_FILE))


def write_samples(specialist: Specialist, run_dir: Path, seed: int) -> dict[str, Any]:
    """Greedy completions of the specialist's prompts into samples.md; how many parse."""
    completer = load_completer(run_dir)
    prompts = list(specialist.sample_prompts)
    completions = completer.complete(prompts, 1, SAMPLE_NEW_TOKENS, 0.0, 1.0, [], seed)
    fence = specialist.language.name
    lines = [f"# {len(prompts)} greedy completions ({SAMPLE_NEW_TOKENS} new tokens at most)", ""]
    parsed = 0
    for index, (prompt, (completion,)) in enumerate(zip(prompts, completions, strict=True), 1):
        ok = specialist.syntax_ok(prompt + completion)
        parsed += ok
        lines += [
            f"## Sample {index}: {'parses' if ok else 'does not parse'}",
            "",
            f"```{fence}",
            prompt + completion,
            "```",
            "",
        ]
    (run_dir / SAMPLES_FILE).write_text("\n".join(lines))
    return {"samples": len(prompts), "samples_parse": parsed}


def _data_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("sources", "files_in", "files_kept", "files_packed", "dropped", "splits", "dedup")
    return {key: manifest[key] for key in keys} | {"tokenizer": manifest["tokenizer"]["hash"]}


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    data = summary["data"]
    splits = data["splits"]
    return [
        f"run            {summary['run_dir']}",
        f"model          {summary['config']}, {summary['params']:,} parameters",
        f"data           {data['files_in']:,} files in, {data['files_kept']:,} kept, "
        f"{splits['train']['tokens']:,} train / {splits['validation']['tokens']:,} validation tokens",
        f"training       step {summary['step']}, {summary['tokens_seen']:,} tokens seen, "
        f"{summary['tokens_per_s']:,.0f} tokens/s, MFU {summary['mfu']:.1%}",
        f"loss           first {summary['train_loss_first']:.3f} -> last "
        f"{summary['train_loss_last']:.3f}; validation "
        + ("n/a (empty split)" if summary["val_loss"] is None else f"{summary['val_loss']:.3f}"),
        f"checkpoint     {summary['checkpoint']}",
        f"samples        {summary['samples_parse']}/{summary['samples']} parse "
        f"({summary['run_dir']}/{SAMPLES_FILE})"
        if "samples" in summary
        else f"stopped by {summary['stopped_by_signal']}: run the same command to resume",
    ]


def run(specialist: Specialist, args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole job for parsed `args`; returns the summary written to summary.json."""
    maybe_initialize_distributed()
    name = specialist.language.name
    model_config = (
        load_json(ModelConfig, args.model_config) if args.model_config else PRESETS[args.config]
    )
    train_config = dataclass_from_args(TrainConfig, args)
    run_dir = args.out or Path("outputs") / f"{name}-{args.config}"
    data_dir = args.data_dir or Path("outputs") / "data" / f"{name}-{args.config}"
    if args.fresh:
        _start_fresh(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    manifest = prepare(
        specialist.language, _prepare_config(args, train_config), data_dir, args.source
    )
    _install_tokenizer(manifest, run_dir)
    loader = BatchLoader(
        PackedDataset(data_dir, "train"),
        train_config.batch_size,
        train_config.seed,
        jax.process_index(),
        jax.process_count(),
    )
    validation = PackedDataset(data_dir, "validation")
    result = train(
        model_config,
        train_config,
        loader,
        lambda: eval_batches(validation, train_config.batch_size, train_config.eval_batches),
        run_dir,
    )
    history = read_metrics(run_dir / METRICS_FILE)
    summary = {
        "run_dir": str(run_dir),
        "config": str(args.model_config) if args.model_config else args.config,
        "params": result.params,
        "step": result.step,
        "tokens_seen": result.tokens_seen,
        "tokens_per_s": result.tokens_per_s,
        "mfu": result.mfu,
        "train_loss_first": history[0]["loss"],
        "train_loss_last": history[-1]["loss"],
        "val_loss": next((r["val_loss"] for r in reversed(history) if "val_loss" in r), None),
        "stopped_by_signal": result.stopped_by_signal,
        "checkpoint": str(result.checkpoint_dir),
        "data": _data_summary(manifest),
    }
    if result.stopped_by_signal is None:
        summary |= write_samples(specialist, run_dir, train_config.seed)
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def train_main(specialist: Specialist, argv: Sequence[str] | None = None) -> int:
    """Entry point of `specialists.<lang>.train`: one-line errors, exit 2."""
    args = parse_args(specialist, sys.argv[1:] if argv is None else argv)
    try:
        summary = run(specialist, args)
    except (ValueError, LossDivergedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(_summary_lines(summary)))
    return 0
