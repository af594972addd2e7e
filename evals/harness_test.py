"""The harness on a toy shell benchmark: no language of its own, just programs and exit statuses,
subsets of the checks, the prompt + completion token budget, and an infilling variant."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator

import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit

from core.completion import CompletionRequest, Completions, SamplingConfig
from evals.errors import EvalError
from evals.harness import Benchmark, evaluate, generate, prompts_sha256, subset_marker
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


def graded_program(task: ShellTask, completion: str, pass_marker: str) -> Program:
    """Passes "close" within 1 of the answer, and passes outright on the answer itself."""
    close = subset_marker(pass_marker, "close")
    checks = (
        f"test $((answer - {task.expected})) -le 1 && test $(({task.expected} - answer)) -le 1 "
        f"&& echo {close}; "
        f'test "$answer" = {task.expected} && echo {pass_marker}'
    )
    return Program(("sh", "-c", f"{completion}\n{checks}"))


def test_subsets_of_the_checks_pass_on_their_own(sandbox: Sandbox) -> None:
    graded = dataclasses.replace(BENCHMARK, program=graded_program, subsets=("close",))
    add, mul = evaluate(graded, {"add": ["answer=4", "answer=5"], "mul": ["answer=1"]}, sandbox)
    assert [(s.status, dict(s.subsets)) for s in add.samples] == [
        ("passed", {"close": True}),
        ("failed", {"close": True}),
    ]
    assert [(s.status, dict(s.subsets)) for s in mul.samples] == [("failed", {"close": False})]
    assert add.samples[1].detail == ""  # the subset marker is not a detail


class TokenizingFake(FakeCompleter):
    """A fake completer with a word-level tokenizer (one token per space-separated word)."""

    def __init__(self, texts: list[str], words: list[str]) -> None:
        super().__init__(texts)
        self.tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="?"))
        self.tokenizer.pre_tokenizer = WhitespaceSplit()


def test_max_length_bounds_prompt_and_completion_together() -> None:
    completer = TokenizingFake(["w x y z"], ["#", "2", "+", "*", "3", "w", "x", "y", "z", "?"])
    request = CompletionRequest(max_new_tokens=100)
    # "# 2 + 2" is 4 tokens, "# 3 * 3" 4: with 6 in all, each completion keeps 2.
    completions = generate(BENCHMARK, completer, request, max_length=6)
    assert completions == {"add": ["w x"], "mul": ["w x"]}
    assert completer.calls[0].max_new_tokens == 2
    # A prompt that fills the budget gets an empty completion.
    assert generate(BENCHMARK, completer, request, max_length=4) == {"add": [""], "mul": [""]}


def test_max_length_needs_a_tokenizer() -> None:
    with pytest.raises(EvalError, match="--max-length needs a model whose tokenizer"):
        generate(BENCHMARK, FakeCompleter(["answer=4"]), CompletionRequest(), max_length=8)


def test_prompts_hash_is_sha256_of_the_ordered_prompts() -> None:
    expected = hashlib.sha256(json.dumps(["# 2 + 2\n", "# 3 * 3\n"]).encode()).hexdigest()
    assert prompts_sha256(BENCHMARK.tasks) == expected
    assert prompts_sha256(list(reversed(BENCHMARK.tasks))) != expected


class BatchingFake(FakeCompleter):
    """A fake completer that also takes several requests at once (core.completion.BatchCompleter)."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__(texts)
        self.batches: list[list[CompletionRequest]] = []

    def complete_each(self, requests: list[CompletionRequest]) -> list[Completions]:
        self.batches.append(list(requests))
        return [FakeCompleter.complete(self, request) for request in requests]


INFILL = dataclasses.replace(
    BENCHMARK,
    stop=(),
    suffix=lambda task: f"\ntest $answer = {task.expected}\n",
    reference=lambda task: f"answer={task.expected}",
)


def test_an_infilling_benchmark_asks_each_task_for_its_middle(sandbox: Sandbox) -> None:
    for completer in (FakeCompleter(["answer=4"]), BatchingFake(["answer=4"])):
        assert generate(INFILL, completer, CompletionRequest()) == {
            "add": ["answer=4"],
            "mul": ["answer=4"],
        }
        assert [(c.prompts, c.suffix) for c in completer.calls] == [
            (("# 2 + 2\n",), "\ntest $answer = 4\n"),
            (("# 3 * 3\n",), "\ntest $answer = 9\n"),
        ]
    assert len(completer.batches) == 1  # the batching completer got every task at once
    add, mul = evaluate(INFILL, {"add": ["answer=4", "\nanswer=4\n"], "mul": ["answer=4"]}, sandbox)
    assert [s.exact_match for s in add.samples] == [True, True]  # blank lines at the ends aside
    assert mul.samples[0].exact_match is False
    plain, _ = evaluate(BENCHMARK, {"add": ["answer=4"], "mul": ["answer=9"]}, sandbox)
    assert plain.samples[0].exact_match is None
