"""The harness on a toy shell benchmark: no language of its own, just programs and exit statuses."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from core.completion import CompletionRequest, Completions, SamplingConfig
from evals.errors import EvalError
from evals.harness import Benchmark, evaluate, generate
from evals.sandbox import Limits, Program, Sandbox


@dataclasses.dataclass(frozen=True)
class ShellTask:
    task_id: str
    prompt: str
    expected: int


def shell_program(task: ShellTask, completion: str, pass_marker: str) -> Program:
    check = f'test "$answer" = {task.expected} && echo {pass_marker}'
    return Program(("sh", "-c", f"{completion}\n{check}"))


BENCHMARK = Benchmark(
    name="toy",
    tasks=[ShellTask("add", "# 2 + 2\n", 4), ShellTask("mul", "# 3 * 3\n", 9)],
    stop=("\n#",),
    program=shell_program,
    syntax_valid=lambda task, completion: completion.startswith("answer="),
)


class FakeCompleter:
    """Answers every prompt with fixed texts and records how it was called."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.calls: list[CompletionRequest] = []

    def complete(self, request: CompletionRequest) -> Completions:
        self.calls.append(request)
        count = len(request.prompts)
        return Completions([list(self.texts) for _ in request.prompts], [0] * count, [0] * count)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout=2)) as box:
        yield box


def test_correct_wrong_and_hostile_completions(sandbox: Sandbox) -> None:
    completions = {
        "add": ["answer=4", "answer=5", "while :; do :; done", "exit 0"],
        "mul": ["answer=$((3*3))", ": > /etc/hijacked; answer=9"],
    }
    add, mul = evaluate(BENCHMARK, completions, sandbox)
    assert [sample.status for sample in add.samples] == ["passed", "failed", "timeout", "failed"]
    assert [sample.syntax_valid for sample in add.samples] == [True, True, False, False]
    assert [sample.status for sample in mul.samples] == ["passed", "failed"]
    assert "Permission denied" in mul.samples[1].detail or "Read-only" in mul.samples[1].detail
    assert (add.task_id, add.n_passed, mul.n_passed) == ("add", 1, 1)


def test_every_task_needs_completions(sandbox: Sandbox) -> None:
    with pytest.raises(EvalError, match=r"no completions for 1 toy task.*'mul'"):
        evaluate(BENCHMARK, {"add": ["answer=4"]}, sandbox)


def test_generate_sends_every_prompt_in_one_request_and_cuts_at_the_benchmarks_stops() -> None:
    completer = FakeCompleter(["answer=4\n# next task", "answer=5"])
    settings = CompletionRequest(n_samples=2, sampling=SamplingConfig(temperature=0.8), seed=7)
    completions = generate(BENCHMARK, completer, settings)
    assert completions == {"add": ["answer=4", "answer=5"], "mul": ["answer=4", "answer=5"]}
    (call,) = completer.calls
    assert call == CompletionRequest(
        ("# 2 + 2\n", "# 3 * 3\n"), 2, settings.max_new_tokens, settings.sampling, ("\n#",), 7
    )
