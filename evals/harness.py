"""Language-agnostic benchmark harness: generate completions, run them in the sandbox, score them.

A specialist describes each benchmark as a `Benchmark`: its tasks, its stop strings, and how a task
plus a completion becomes a checking program and whether it parses. An infilling benchmark also
gives each task's suffix (a completion is then the middle between the prompt and it) and its
reference middle, which a sample exactly matches or not. A sample passes when its program
exits with status 0 after printing the pass marker it was given: a completion that exits early with
status 0 (sys.exit(0), os._exit(0)) has skipped the checks and fails. A benchmark may also score
named subsets of its checks (EvalPlus's base inputs beside base + plus): the program prints
`subset_marker(pass_marker, name)` once a subset's checks have passed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from tokenizers import Tokenizer

from core.completion import Completer, CompletionRequest, complete_each, cut_at_stop
from core.fim import infill_prompt
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

    `program(task, completion, pass_marker)` must print `pass_marker` once all checks have passed,
    and `subset_marker(pass_marker, name)` once the checks of each of `subsets` have. With
    `suffix`, the benchmark is fill-in-the-middle: a task's completion is the middle between its
    prompt and `suffix(task)`, and samples equal to `reference(task)` count as exact matches.
    """

    name: str
    tasks: Sequence[TaskT]
    stop: tuple[str, ...]
    program: Callable[[TaskT, str, str], Program]
    syntax_valid: Callable[[TaskT, str], bool]
    subsets: tuple[str, ...] = ()
    suffix: Callable[[TaskT], str] | None = None
    reference: Callable[[TaskT], str] | None = None


@dataclasses.dataclass(frozen=True)
class SampleResult:
    """One completion's outcome; `detail` is the last output line (the failed assert, say),
    `subsets` says which of the benchmark's subsets of checks passed, and `exact_match` whether
    the completion is the reference (None: the benchmark has none)."""

    status: str  # "passed", "failed" or "timeout"
    syntax_valid: bool
    seconds: float
    detail: str
    subsets: Mapping[str, bool] = dataclasses.field(default_factory=dict)
    exact_match: bool | None = None

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


def subset_marker(pass_marker: str, subset: str) -> str:
    """What a program prints once the checks of `subset` have passed (see Benchmark.subsets)."""
    return hashlib.sha256(f"{pass_marker}/{subset}".encode()).hexdigest()[:32]


def prompts_sha256(tasks: Sequence[Task]) -> str:
    """sha256 of the tasks' prompts in order, as the JSON list of strings (json.dumps defaults)."""
    return hashlib.sha256(json.dumps([task.prompt for task in tasks]).encode()).hexdigest()


def generate(
    benchmark: Benchmark[TaskT],
    completer: Completer,
    request: CompletionRequest,
    max_length: int | None = None,
) -> dict[str, list[str]]:
    """`request.n_samples` completions for every task of `benchmark`, keyed by task id."""
    suffixes = None if benchmark.suffix is None else [benchmark.suffix(t) for t in benchmark.tasks]
    return complete_tasks(benchmark.tasks, benchmark.stop, completer, request, max_length, suffixes)


def complete_tasks(
    tasks: Sequence[Task],
    stop: Sequence[str],
    completer: Completer,
    request: CompletionRequest,
    max_length: int | None = None,
    suffixes: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """Completions of every task's prompt with `request`'s settings, cut at `stop`, keyed by
    task id; with `suffixes`, task i's completions are the middle between its prompt and
    suffixes[i] (one request per task, batched where the completer can). With `max_length`, a
    prompt and its completion hold at most that many tokens together
    (bigcode-evaluation-harness's max_length_generation; an infill's prompt is its PSM prompt):
    each completion keeps its first max_length - prompt tokens (counted by re-encoding it), none
    when the prompt fills them."""
    prompts = tuple(task.prompt for task in tasks)
    budgets: list[int] | None = None
    if max_length is not None:
        tokenizer = _tokenizer_of(completer)
        read = list(prompts) if suffixes is None else list(map(infill_prompt, prompts, suffixes))
        budgets = [max(0, max_length - len(e.ids)) for e in tokenizer.encode_batch(read)]
        longest = max(1, min(request.max_new_tokens, max(budgets)))
        request = dataclasses.replace(request, max_new_tokens=longest)
    request = dataclasses.replace(request, stop=tuple(stop))
    if suffixes is None:
        outputs = completer.complete(request.for_prompts(prompts)).texts
    else:
        requests = [
            dataclasses.replace(request, prompts=(prompt,), suffix=suffix)
            for prompt, suffix in zip(prompts, suffixes, strict=True)
        ]
        outputs = [answer.texts[0] for answer in complete_each(completer, requests)]
    # A completer promises to cut at the stops; cutting again keeps scores independent of that.
    cut = [[cut_at_stop(text, stop) for text in completions] for completions in outputs]
    if budgets is not None:
        cut = [
            [_first_tokens(tokenizer, text, budget) for text in completions]
            for completions, budget in zip(cut, budgets, strict=True)
        ]
    return {task.task_id: texts for task, texts in zip(tasks, cut, strict=True)}


def _tokenizer_of(completer: Completer) -> Tokenizer:
    """The completer's tokenizer (core.inference.CheckpointCompleter has one)."""
    tokenizer = getattr(completer, "tokenizer", None)
    if not isinstance(tokenizer, Tokenizer):
        raise EvalError("--max-length needs a model whose tokenizer counts the prompt's tokens")
    return tokenizer


def _first_tokens(tokenizer: Tokenizer, text: str, count: int) -> str:
    ids = tokenizer.encode(text).ids
    return text if len(ids) <= count else tokenizer.decode(ids[:count])


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
                dataclasses.replace(
                    _sample_result(
                        *next(outcomes), benchmark.syntax_valid(task, text), benchmark.subsets
                    ),
                    exact_match=None
                    if benchmark.reference is None
                    else exact_match(text, benchmark.reference(task)),
                )
                for text in completions[task.task_id]
            ),
        )
        for task in benchmark.tasks
    ]


def exact_match(completion: str, reference: str) -> bool:
    """Whether a completion is the reference, up to blank lines at either end (as InCoder's
    infilling evaluation compares lines)."""
    return completion.strip("\n") == reference.strip("\n")


def _sample_result(
    run: RunResult, marker: str, syntax_valid: bool, subsets: Sequence[str]
) -> SampleResult:
    subset_markers = {name: subset_marker(marker, name) for name in subsets}
    hidden = {marker, *subset_markers.values()}
    lines = [line for line in run.output.strip().splitlines() if line not in hidden]
    if run.timed_out:
        status = "timeout"
    else:
        status = "passed" if run.passed and marker in run.output else "failed"
    detail = lines[-1][:_DETAIL_CHARS] if lines else ""
    passed_subsets = {name: found in run.output for name, found in subset_markers.items()}
    return SampleResult(status, syntax_valid, round(run.duration_s, 3), detail, passed_subsets)
