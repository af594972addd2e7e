"""The jobs every language runs: prepare its data, and train (prepare -> train -> sample ->
summarise).

    python -m specialists prepare --language python [--config test|prod] [--source DIR ...]
    python -m specialists train --language python [--config test|prod] [flags]

Both take the same model, train and data flags (from core/config.py, defaulting to the --config
preset) and put the prepared data in the same place (`outputs/data/<language>-<preset>` unless
--data-dir), so `prepare` then `train` prepares once. `train` writes the run directory
(core/layout.py; `outputs/<language>-<preset>` unless --out); running it again resumes from the
newest checkpoint, and `--fresh` starts over.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
from jax.experimental import multihost_utils

from core.completion import CompletionRequest
from core.config import ModelConfig, RunConfig
from core.data import BatchLoader, PackedDataset, eval_batches
from core.export_hf import export_params
from core.inference import load_completer
from core.language import Language
from core.layout import RunLayout, default_data_dir, default_run_dir
from core.run_flags import add_run_config_args, run_config_from_args
from core.sharding import maybe_initialize_distributed
from core.tokenizer import load_tokenizer
from core.trainer import Hook, read_metrics, train
from core.warm_start import initial_params, warm_run
from data_tools.prepare import prepare
from data_tools.summary import summary_table

SAMPLE_NEW_TOKENS = 96


def parse_args(
    language: Language, command: str, argv: Sequence[str], description: str
) -> argparse.Namespace:
    """Flags of `command` ("prepare" or "train"): sources, the data directory and every config
    field, defaulting to the --config preset's; `train` adds its run directory and --fresh."""
    parser = argparse.ArgumentParser(
        prog=f"python -m specialists {command} --language {language.name}",
        description=description,
    )
    parser.add_argument(
        "--source",
        nargs="+",
        default=[],
        help="directories, .json/.jsonl/.parquet files or `datasets` names "
        f"(default: the {language.name} code already on this machine)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=f"prepared-data directory (default: {default_data_dir(language.name, '<config>')})",
    )
    if command == "train":
        parser.add_argument(
            "--out",
            type=Path,
            help=f"run directory (default: {default_run_dir(language.name, '<config>')})",
        )
        parser.add_argument(
            "--fresh",
            action="store_true",
            help="delete this run's checkpoints and metrics and start over",
        )
    add_run_config_args(parser, argv)
    return parser.parse_args(argv)


def data_dir(language: Language, args: argparse.Namespace) -> Path:
    """Where the prepared data goes: --data-dir, else the preset's default."""
    return args.data_dir or default_data_dir(language.name, args.config)


def run_config(args: argparse.Namespace) -> RunConfig:
    """The run's configs from the flags; a warm start takes its architecture and tokenizer from
    its --init-from source."""
    return warm_run(run_config_from_args(args))


def prepare_data(language: Language, run: RunConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Run (or reuse) the data pipeline for `run`; returns the manifest."""
    return prepare(language, run, data_dir(language, args), args.source)


def prepare_job(language: Language, args: argparse.Namespace) -> str:
    """The `prepare` command: the data pipeline, then its summary table."""
    return summary_table(prepare_data(language, run_config(args), args))


def export_hook(layout: RunLayout, model: ModelConfig, every: int) -> Hook:
    """Training's --export-hf-every: the run's parameters in Hugging Face's format at
    hf/step_N/ every `every` steps and at the end."""

    def export(step: int, state: Any) -> None:
        params = multihost_utils.process_allgather(state.params)
        if jax.process_index() == 0:
            export_params(layout.hf_export(step), params, model, layout, step, "bfloat16")

    return Hook(every, export)


def _start_fresh(layout: RunLayout) -> None:
    shutil.rmtree(layout.checkpoints, ignore_errors=True)
    layout.metrics.unlink(missing_ok=True)


def _install_tokenizer(manifest: dict[str, Any], layout: RunLayout) -> None:
    info = manifest["tokenizer"]
    load_tokenizer(info.get("path", info["source"])).save(str(layout.tokenizer))


def write_samples(language: Language, layout: RunLayout, seed: int) -> dict[str, Any]:
    """Greedy completions of the language's sample prompts into samples.md; how many parse."""
    prompts = language.sample_prompts
    request = CompletionRequest(prompts, max_new_tokens=SAMPLE_NEW_TOKENS, seed=seed)
    completions = load_completer(layout.root).complete(request).texts
    lines = [f"# {len(prompts)} greedy completions ({SAMPLE_NEW_TOKENS} new tokens at most)", ""]
    parsed = 0
    for index, (prompt, (completion,)) in enumerate(zip(prompts, completions, strict=True), 1):
        ok = language.syntax_ok(prompt + completion)
        parsed += ok
        lines += [
            f"## Sample {index}: {'parses' if ok else 'does not parse'}",
            "",
            f"```{language.name}",
            prompt + completion,
            "```",
            "",
        ]
    layout.samples.write_text("\n".join(lines))
    return {"samples": len(prompts), "samples_parse": parsed}


def _data_summary(manifest: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    keys = ("sources", "files_in", "files_kept", "files_packed", "dropped", "splits", "dedup")
    return {key: manifest[key] for key in keys} | {
        "dir": str(data_dir),
        "reused": manifest["reused"],
        "tokenizer": manifest["tokenizer"]["hash"],
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The train job's one-screen summary."""
    data = summary["data"]
    splits = data["splits"]
    return [
        f"run            {summary['run_dir']}",
        f"model          {summary['config']}, {summary['params']:,} parameters",
        f"data           {data['files_in']:,} files in, {data['files_kept']:,} kept, "
        f"{splits['train']['tokens']:,} train / {splits['validation']['tokens']:,} validation tokens"
        + (" (prepared before, reused)" if data["reused"] else ""),
        f"training       step {summary['step']}, {summary['tokens_seen']:,} tokens seen, "
        f"{summary['tokens_per_s']:,.0f} tokens/s, MFU {summary['mfu']:.1%}",
        f"loss           first {summary['train_loss_first']:.3f} -> last "
        f"{summary['train_loss_last']:.3f}; validation "
        + ("n/a (empty split)" if summary["val_loss"] is None else f"{summary['val_loss']:.3f}"),
        f"checkpoint     {summary['checkpoint']}",
        f"samples        {summary['samples_parse']}/{summary['samples']} parse "
        f"({RunLayout(Path(summary['run_dir'])).samples})"
        if "samples" in summary
        else f"stopped by {summary['stopped_by_signal']}: run the same command to resume",
    ]


def train_job(language: Language, args: argparse.Namespace) -> dict[str, Any]:
    """The `train` command: prepare (or reuse) data, train, sample; returns the summary it
    writes to the run's summary.json."""
    maybe_initialize_distributed()
    run = run_config(args)
    layout = RunLayout(args.out or default_run_dir(language.name, args.config))
    if args.fresh:
        _start_fresh(layout)
    manifest = prepare_data(language, run, args)
    layout.link_data(data_dir(language, args))
    _install_tokenizer(manifest, layout)
    loader = BatchLoader(
        PackedDataset(data_dir(language, args), "train"),
        run.train.batch_size,
        run.train.seed,
        jax.process_index(),
        jax.process_count(),
    )
    validation = PackedDataset(data_dir(language, args), "validation")
    source = run.train.init_from
    hooks = [export_hook(layout, run.model, run.train.export_hf_every)]
    result = train(
        run.model,
        run.train,
        loader,
        lambda: eval_batches(validation, run.train.batch_size, run.train.eval_batches),
        layout.root,
        init=(lambda: initial_params(source, run.model)) if source else None,
        hooks=hooks if run.train.export_hf_every else (),
    )
    history = read_metrics(layout.metrics)
    summary = {
        "run_dir": str(layout.root),
        "config": args.config,
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
        "data": _data_summary(manifest, data_dir(language, args)),
    }
    if result.stopped_by_signal is None:
        summary |= write_samples(language, layout, run.train.seed)
    layout.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
