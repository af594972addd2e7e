"""The jobs every language runs: prepare its data, and train (prepare -> train -> sample ->
summarise).

    python -m specialists prepare --language python [--config test|prod] [--source DIR ...]
    python -m specialists train --language python [--config test|prod] [flags]

Both take the same model, train and data flags (from core/config.py, defaulting to the --config
preset) and put the prepared data in the same place (`outputs/data/<language>-<preset>` unless
--data-dir), so `prepare` then `train` prepares once. `train` writes the run directory
(core/layout.py; `outputs/<language>-<preset>` unless --out); running it again resumes from the
newest checkpoint, and `--fresh` starts over.

Besides the validation loss, every `--eval-every` steps the train job scores the live parameters
on the language's own benchmark (greedy pass@1 on its first benchmark's first
`--train-eval-tasks` tasks, run in the evals sandbox) and the syntax-valid rate of greedy
completions of its sample prompts (`TrainEvalHook`); a language without benchmarks gets only the
syntax-valid rate. They are logged like every metric (metrics.jsonl, TensorBoard, W&B), and
summary.json keeps the best and the last of each.
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
from tokenizers import Tokenizer

from core.completion import CompletionRequest, infill
from core.config import ModelConfig, RunConfig, TrainConfig, to_dict
from core.data import BatchLoader, eval_batches, open_windows
from core.export_hf import export_params
from core.goodput import goodput_line
from core.hooks import Hook, RunInfo, StepInfo, hook
from core.inference import live_completer, load_completer
from core.language import Language
from core.layout import RunLayout, default_data_dir, default_run_dir
from core.run_flags import add_run_config_args, run_config_from_args
from core.sharding import maybe_initialize_distributed
from core.tokenizer import load_tokenizer
from core.trainer import read_metrics, train
from core.warm_start import initial_params, warm_run
from data_tools.executors import PipelineError
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

    def export(info: StepInfo) -> None:
        params = multihost_utils.process_allgather(info.state.params)
        if jax.process_index() == 0:
            export_params(layout.hf_export(info.step), params, model, layout, info.step, "bfloat16")

    return hook(export, every)


# Metric names of the training-time evals (tracking.tag shows "pass@1" as "pass_1").
SYNTAX_METRIC = "eval/samples/syntax_valid_rate"


def pass_metric(benchmark: str) -> str:
    """The record key of greedy pass@1 on `benchmark`'s training-time subset."""
    return f"eval/{benchmark}/pass@1"


class TrainEvalHook(Hook):
    """Training-time evals of the live parameters (no checkpoint round trip), every `eval_every`
    steps and at the end (not when a signal stops the run): greedy pass@1 on the first
    `train_eval_tasks` tasks of the language's first benchmark, executed in the evals sandbox,
    with the syntax-valid rate of those completions; and the syntax-valid rate of greedy
    completions of the language's sample prompts (cut at its next line comment, as the syntax
    eval cuts them). A benchmark that cannot run here (no toolchain, no data) is skipped with a
    note; the syntax-valid rate still runs. On several processes every process evaluates the
    gathered parameters."""

    kind = "eval"

    def __init__(
        self, language: Language, model: ModelConfig, tokenizer: Tokenizer, train: TrainConfig
    ) -> None:
        self.language, self.model, self.tokenizer = language, model, tokenizer
        self.every = train.eval_every
        self.tasks = train.train_eval_tasks
        self.request = CompletionRequest(
            max_new_tokens=train.train_eval_new_tokens, seed=train.seed
        )
        self.benchmark: Any = None
        self.sandbox: Any = None

    def start(self, run: RunInfo) -> None:
        if self.tasks == 0 or self.language.benchmarks is None:
            return
        from evals.errors import EvalError

        try:
            self.benchmark, self.sandbox = _benchmark_subset(self.language, self.tasks, run.layout)
        except EvalError as error:
            print(f"note: training-time {self.language.name} benchmark eval skipped: {error}")

    def run(self, info: StepInfo) -> None:
        from evals.harness import complete_tasks, evaluate, generate
        from evals.syntax import check_syntax, prompt_tasks, summarize_syntax

        if info.stopping is not None:
            return
        completer = live_completer(self.model, info.state.params, self.tokenizer)
        if self.benchmark is not None:
            completions = generate(self.benchmark, completer, self.request)
            results = evaluate(self.benchmark, completions, self.sandbox)
            samples = [sample for result in results for sample in result.samples]
            name = self.benchmark.name
            info.metrics[pass_metric(name)] = sum(s.passed for s in samples) / len(samples)
            info.metrics[f"eval/{name}/syntax_valid_rate"] = sum(
                s.syntax_valid for s in samples
            ) / len(samples)
        language = self.language
        tasks = prompt_tasks(language.name, language.sample_prompts)
        stop = [f"\n{language.line_comment}"]
        completions = complete_tasks(tasks, stop, completer, self.request)
        prompts = {task.task_id: task.prompt for task in tasks}
        checked = check_syntax(completions, prompts, language.drop_reason, language.line_comment)
        info.metrics[SYNTAX_METRIC] = summarize_syntax(checked)["syntax_valid_rate"]

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None


def _benchmark_subset(language: Language, count: int, layout: RunLayout) -> tuple[Any, Any]:
    """(the first `count` tasks of the language's first benchmark as a harness benchmark, the
    sandbox it runs in), with the settings `:eval --checkpoint RUN` would use."""
    from evals.cli import parse_args as eval_args
    from evals.sandbox import Sandbox

    suite = language.benchmarks()
    name = next(iter(suite.benchmarks))
    argv = ["--checkpoint", str(layout.root), "--benchmark", name, "--limit", str(count)]
    args = eval_args(language, suite, argv)
    tasks = list(suite.benchmarks[name](args))[:count]
    sandbox = Sandbox(suite.limits)
    try:
        toolchain = suite.toolchain(sandbox)
        if suite.prepare is not None:
            tasks = list(suite.prepare(args, name, tasks, sandbox, toolchain))
        return suite.make_benchmark(name, tasks, toolchain), sandbox
    except BaseException:
        sandbox.close()
        raise


def eval_summary(history: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For the validation loss and each training-time eval metric, its best (lowest loss,
    highest rate) and last value, with their steps."""
    names = sorted(
        {key for r in history for key in r if key == "val_loss" or key.startswith("eval/")}
    )
    summary = {}
    for name in names:
        points = [(r["step"], r[name]) for r in history if name in r]
        lower_is_better = name.endswith("loss")
        best = (min if lower_is_better else max)(points, key=lambda point: point[1])
        summary[name] = {
            "best": best[1],
            "best_step": best[0],
            "last": points[-1][1],
            "last_step": points[-1][0],
        }
    return summary


def _start_fresh(layout: RunLayout) -> None:
    shutil.rmtree(layout.checkpoints, ignore_errors=True)
    shutil.rmtree(layout.tensorboard, ignore_errors=True)
    layout.metrics.unlink(missing_ok=True)


def _install_tokenizer(manifest: dict[str, Any], layout: RunLayout) -> None:
    info = manifest["tokenizer"]
    load_tokenizer(info.get("path", info["source"])).save(str(layout.tokenizer))


def write_samples(language: Language, layout: RunLayout, seed: int) -> dict[str, Any]:
    """Greedy completions of the language's sample prompts, and the middle of its infill sample
    (when it has one and the tokenizer the FIM tokens), into samples.md; how many parse."""
    prompts = language.sample_prompts
    request = CompletionRequest(prompts, max_new_tokens=SAMPLE_NEW_TOKENS, seed=seed)
    completer = load_completer(layout.root)
    completions = completer.complete(request).texts
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
    counts: dict[str, Any] = {"samples": len(prompts), "samples_parse": parsed}
    if language.infill_sample is not None and completer.fills_in_the_middle:
        prefix, suffix = language.infill_sample
        middle = infill(completer, prefix, suffix, request)
        counts["infill_parses"] = language.syntax_ok(prefix + middle + suffix)
        lines += [
            f"## Infill: {'parses' if counts['infill_parses'] else 'does not parse'}",
            "",
            "The middle the model wrote between a fixed prefix and suffix, then the whole:",
            "",
            "```",
            middle,
            "```",
            "",
            f"```{language.name}",
            prefix + middle + suffix,
            "```",
            "",
        ]
    layout.samples.write_text("\n".join(lines))
    return counts


def _data_summary(manifest: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    keys = ("sources", "files_in", "files_kept", "files_packed", "dropped", "splits", "dedup")
    return {key: manifest[key] for key in keys} | {
        "fim": manifest.get("fim"),
        "dir": str(data_dir),
        "reused": manifest["reused"],
        "tokenizer": manifest["tokenizer"]["hash"],
    }


def fim_line(fim: dict[str, Any]) -> str:
    """The summary's line on fill-in-the-middle: the share of train files transformed."""
    if not fim["rate"]:
        return "fim            off (--fim-rate 0)"
    return (
        f"fim            {fim['share']:.1%} of {fim['train_files']:,} train files in "
        f"fill-in-the-middle form ({fim['psm_files']:,} PSM, {fim['spm_files']:,} SPM; "
        f"--fim-rate {fim['rate']:g})"
    )


def _infill_note(parses: bool | None) -> str:
    return "" if parses is None else f", the infill {'parses' if parses else 'does not parse'}"


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
        *([fim_line(data["fim"])] if data.get("fim") else []),
        f"training       step {summary['step']}, {summary['tokens_seen']:,} tokens seen, "
        f"{summary['tokens_per_s']:,.0f} tokens/s, MFU {summary['mfu']:.1%}",
        f"loss           first {summary['train_loss_first']:.3f} -> last "
        f"{summary['train_loss_last']:.3f}; validation "
        + ("n/a (empty split)" if summary["val_loss"] is None else f"{summary['val_loss']:.3f}"),
        *(
            f"eval           {name}: last {value['last']:.3f} (step {value['last_step']}), "
            f"best {value['best']:.3f} (step {value['best_step']})"
            for name, value in summary.get("evals", {}).items()
            if name != "val_loss"
        ),
        f"goodput        {goodput_line(summary['goodput'])}",
        f"checkpoint     {summary['checkpoint']}",
        f"samples        {summary['samples_parse']}/{summary['samples']} parse"
        + _infill_note(summary.get("infill_parses"))
        + f" ({RunLayout(Path(summary['run_dir'])).samples})"
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
    if manifest.get("submitted"):
        raise PipelineError(
            "--executor slurm queues the data pipeline: run `train` again once its jobs finish "
            f"(logs in {manifest['logs']})"
        )
    layout.link_data(data_dir(language, args))
    _install_tokenizer(manifest, layout)
    loader = BatchLoader(
        open_windows(data_dir(language, args), "train", run.train.seq_len),
        run.train.batch_size,
        run.train.seed,
        jax.process_index(),
        jax.process_count(),
    )
    validation = open_windows(data_dir(language, args), "validation", run.train.seq_len)
    source = run.train.init_from
    hooks: list[Hook] = []
    if run.train.train_evals:
        tokenizer = load_tokenizer(layout.tokenizer)
        hooks.append(TrainEvalHook(language, run.model, tokenizer, run.train))
    if run.train.export_hf_every:
        hooks.append(export_hook(layout, run.model, run.train.export_hf_every))
    data_summary = _data_summary(manifest, data_dir(language, args))
    result = train(
        run.model,
        run.train,
        loader,
        lambda: eval_batches(validation, run.train.batch_size, run.train.eval_batches),
        layout.root,
        init=(lambda: initial_params(source, run.model)) if source else None,
        hooks=hooks,
        tracked_config={"data": to_dict(run.data), "data_manifest": data_summary},
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
        "data": data_summary,
        "evals": eval_summary(history),
        "goodput": result.goodput,
    }
    if result.stopped_by_signal is None:
        summary |= write_samples(language, layout, run.train.seed)
    layout.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
