"""Language-agnostic benchmark harness: generate completions, run them in the sandbox, score them.

A specialist describes each benchmark as a `Benchmark`: its tasks, its stop strings, and how a task
plus a completion becomes a checking program and whether it parses. A sample passes when its program
exits with status 0 after printing the pass marker it was given: a completion that exits early with
status 0 (sys.exit(0), os._exit(0)) has skipped the checks and fails.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from core.completion import Completer, CompletionRequest, cut_at_stop
from evals.errors import EvalError
from evals.sandbox import Program, RunResult, Sandbox

_DETAIL_CHARS = 200


class Task(Protocol):
    """What the harness reads from a task; specialists add whatever their programs need."""

    @property
    def task_id(self) -> str: ...

    @property
    def prompt(self) -> str: ...


TaskT = TypeVar("TaskT", bound=Task)


@dataclasses.dataclass(frozen=True)
class Benchmark(Generic[TaskT]):
    """A benchmark's tasks and how one completion of a task is checked.

    `program(task, completion, pass_marker)` must print `pass_marker` once all checks have passed.
    """

    name: str
    tasks: Sequence[TaskT]
    stop: tuple[str, ...]
    program: Callable[[TaskT, str, str], Program]
    syntax_valid: Callable[[TaskT, str], bool]


@dataclasses.dataclass(frozen=True)
class SampleResult:
    """One completion's outcome; `detail` is the last output line (the failed assert, say)."""

    status: str  # "passed", "failed" or "timeout"
    syntax_valid: bool
    seconds: float
    detail: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """All sample outcomes for one task."""

    task_id: str
    samples: tuple[SampleResult, ...]

    @property
    def n_passed(self) -> int:
        return sum(sample.passed for sample in self.samples)


def generate(
    benchmark: Benchmark[TaskT], completer: Completer, request: CompletionRequest
) -> dict[str, list[str]]:
    """`request.n_samples` completions for every task of `benchmark`, keyed by task id."""
    return complete_tasks(benchmark.tasks, benchmark.stop, completer, request)


def complete_tasks(
    tasks: Sequence[Task], stop: Sequence[str], completer: Completer, request: CompletionRequest
) -> dict[str, list[str]]:
    """Completions of every task's prompt with `request`'s settings, cut at `stop`, keyed by
    task id."""
    outputs = completer.complete(
        dataclasses.replace(request, prompts=tuple(task.prompt for task in tasks), stop=tuple(stop))
    ).texts
    # A completer promises to cut at the stops; cutting again keeps scores independent of that.
    return {
        task.task_id: [cut_at_stop(text, stop) for text in completions]
        for task, completions in zip(tasks, outputs, strict=True)
    }


def evaluate(
    benchmark: Benchmark[TaskT], completions: Mapping[str, Sequence[str]], sandbox: Sandbox
) -> list[TaskResult]:
    """Run every completion of every task in the sandbox; results follow the task order."""
    missing = [task.task_id for task in benchmark.tasks if not completions.get(task.task_id)]
    if missing:
        raise EvalError(
            f"no completions for {len(missing)} {benchmark.name} task(s), e.g. {missing[0]!r}"
        )
    pairs = [(task, text) for task in benchmark.tasks for text in completions[task.task_id]]
    markers = [secrets.token_hex(16) for _ in pairs]
    programs = [
        benchmark.program(task, text, marker)
        for (task, text), marker in zip(pairs, markers, strict=True)
    ]
    outcomes = iter(zip(sandbox.run_all(programs, benchmark.name), markers, strict=True))
    return [
        TaskResult(
            task.task_id,
            tuple(
                _sample_result(*next(outcomes), benchmark.syntax_valid(task, text))
                for text in completions[task.task_id]
            ),
        )
        for task in benchmark.tasks
    ]


def _sample_result(run: RunResult, marker: str, syntax_valid: bool) -> SampleResult:
    lines = [line for line in run.output.strip().splitlines() if line != marker]
    if run.timed_out:
        status = "timeout"
    else:
        status = "passed" if run.passed and marker in run.output else "failed"
    detail = lines[-1][:_DETAIL_CHARS] if lines else ""
    return SampleResult(status, syntax_valid, round(run.duration_s, 3), detail)
