"""The harness on a toy shell benchmark: no language of its own, just programs and exit statuses."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from evals.errors import EvalError
from evals.harness import Benchmark, GenerationSettings, evaluate, generate, truncate_at_stop
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
        self.calls: list[dict[str, object]] = []

    def complete(self, prompts: list[str], **settings: object) -> list[list[str]]:
        self.calls.append({"prompts": prompts, **settings})
        return [list(self.texts) for _ in prompts]

    def perplexity(self, texts: list[str]) -> float:
        return float(len(texts))


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


def test_generate_passes_settings_and_cuts_at_stop_strings() -> None:
    completer = FakeCompleter(["answer=4\n# next task", "answer=5"])
    settings = GenerationSettings(n_samples=2, temperature=0.8, seed=7)
    completions = generate(BENCHMARK, completer, settings)
    assert completions == {"add": ["answer=4", "answer=5"], "mul": ["answer=4", "answer=5"]}
    (call,) = completer.calls
    assert call["prompts"] == ["# 2 + 2\n", "# 3 * 3\n"]
    assert (call["n_samples"], call["temperature"], call["seed"], call["stop"]) == (
        2,
        0.8,
        7,
        ["\n#"],
    )


def test_truncate_at_stop_uses_the_earliest_stop() -> None:
    assert truncate_at_stop("a\nb\ndef c\nif d", ["\nif", "\ndef"]) == "a\nb"
    assert truncate_at_stop("no stop here", ["\nif"]) == "no stop here"


def test_greedy_sampling_of_several_samples_is_refused() -> None:
    with pytest.raises(EvalError, match="--n-samples > 1 needs --temperature > 0"):
        GenerationSettings(n_samples=5, temperature=0.0)
