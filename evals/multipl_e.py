"""MultiPL-E benchmarks (HumanEval translated to other languages): tasks and checking programs.

A task's program is prompt + completion + tests; it passes when the tests' assertions all hold.
Each language says how to run its program (`LanguageRunner`) and where its pass marker goes:
printed after the tests, so a completion that exits early with status 0 does not pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from evals.errors import EvalError
from evals.harness import Benchmark
from evals.sandbox import Limits, Program, Sandbox
from evals.shared_data import data_file
from evals.suite import EvalSuite


@dataclasses.dataclass(frozen=True)
class MultiplETask:
    """One MultiPL-E problem; `task_id` is its `name`, e.g. "HumanEval_23_strlen"."""

    task_id: str
    prompt: str
    tests: str
    stop: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class LanguageRunner:
    """How one language checks a program: `with_marker(source, marker)` makes the source print
    `marker` once its tests have passed; `program(source)` runs it; `syntax_ok(source)` parses it."""

    with_marker: Callable[[str, str], str]
    program: Callable[[str], Program]
    syntax_ok: Callable[[str], bool]


def load_multipl_e(path: Path) -> list[MultiplETask]:
    """The tasks of a MultiPL-E jsonl file (fields name, prompt, tests, stop_tokens)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise EvalError(f"cannot read MultiPL-E file {path}: {error.strerror}") from None
    tasks = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            tasks.append(
                MultiplETask(
                    record["name"], record["prompt"], record["tests"], tuple(record["stop_tokens"])
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError):
            raise EvalError(
                f"{path}:{number}: expected a MultiPL-E record with name, prompt, tests, stop_tokens"
            ) from None
    return tasks


def multipl_e_benchmark(
    name: str, tasks: Sequence[MultiplETask], runner: LanguageRunner
) -> Benchmark[MultiplETask]:
    """`tasks` as a harness benchmark checked by `runner`; stop strings are the tasks' union."""

    def program(task: MultiplETask, completion: str, pass_marker: str) -> Program:
        return runner.program(
            runner.with_marker(task.prompt + completion + task.tests, pass_marker)
        )

    def syntax_valid(task: MultiplETask, completion: str) -> bool:
        return runner.syntax_ok(task.prompt + completion + task.tests)

    stop = tuple(dict.fromkeys(token for task in tasks for token in task.stop))
    return Benchmark(name, tasks, stop, program, syntax_valid)


def multipl_e_suite(
    benchmark: str,
    default_data: str,
    toolchain: Callable[[Sandbox], str],
    runner: Callable[[str], LanguageRunner],
    limits: Limits,
) -> EvalSuite[MultiplETask]:
    """The eval suite of one MultiPL-E language: tasks from --data (default: `default_data` in
    the shared data dir), checked by `runner(toolchain(sandbox))`."""

    def add_data_argument(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--data", type=Path, help=f"{benchmark} jsonl (default: {default_data} in shared data)"
        )

    return EvalSuite(
        description=f"Score a checkpoint or a samples file on MultiPL-E {benchmark} in a sandbox.",
        benchmarks={
            benchmark: lambda args: load_multipl_e(data_file(args.data, default_data, "--data"))
        },
        toolchain=toolchain,
        make_benchmark=lambda name, tasks, tool: multipl_e_benchmark(name, tasks, runner(tool)),
        limits=limits,
        add_arguments=add_data_argument,
    )
