"""HumanEval and MBPP tasks, prompts and checking programs, run through the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.errors import EvalError
from evals.harness import evaluate
from evals.sandbox import Limits, Sandbox
from evals.toolchain import sandbox_python
from specialists.python.benchmarks import (
    canonical_sample,
    load_humaneval,
    load_mbpp,
    program_source,
    python_benchmark,
    syntax_valid,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout=5)) as box:
        yield box


def test_humaneval_tasks_and_program() -> None:
    tasks = load_humaneval()
    first = tasks[0]
    assert len(tasks) == 164 and first.task_id == first.sample_id == "HumanEval/0"
    assert first.prompt.startswith("from typing import List") and first.prefix == first.prompt
    source = program_source(first, first.canonical, "MARKER")
    assert source.startswith(first.prompt + first.canonical)
    assert source.endswith("check(has_close_elements)\nprint('MARKER')\n")


@pytest.mark.parametrize(
    ("split", "count", "first_id"),
    [
        ("test", 500, 11),
        ("validation", 90, 511),
        ("train", 374, 601),
        ("prompt", 10, 1),
        ("all", 974, 1),
    ],
)
def test_mbpp_splits(split: str, count: int, first_id: int) -> None:
    tasks = load_mbpp(split=split)
    assert (
        len(tasks) == count and tasks[0].sample_id == first_id and tasks[0].task_id == str(first_id)
    )


def test_mbpp_prompt_is_the_standard_text_in_a_docstring() -> None:
    task = load_mbpp(split="test")[0]
    assert task.prompt.startswith(
        '"""\nYou are an expert Python programmer, and here is your task: '
    )
    assert "Your code should pass these tests:\n\nassert " in task.prompt
    assert task.prompt.count("\nassert ") == 3 and task.prompt.endswith('\n"""\n')


def test_mbpp_few_shot_prompt_solves_tasks_2_to_4_first() -> None:
    examples = {task.sample_id: task for task in load_mbpp(split="prompt")}
    task = load_mbpp(split="test", few_shot=True)[0]
    for example_id in (2, 3, 4):
        assert examples[example_id].canonical.replace("\r\n", "\n") in task.prompt
    assert task.prompt.endswith(load_mbpp(split="test")[0].prompt)


def test_mbpp_setup_code_follows_the_solution() -> None:
    task = next(task for task in load_mbpp(split="test") if task.sample_id == 367)
    source = program_source(task, task.canonical, "MARKER")
    assert source.index("class Node") < source.index("root = Node(1)") < source.index("assert ")


def test_mbpp_data_errors_name_the_flag(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="--split must be one of"):
        load_mbpp(split="dev")
    with pytest.raises(EvalError, match=r"--mbpp-path .*: no such file"):
        load_mbpp(path=tmp_path / "missing.jsonl")


def test_mbpp_falls_back_to_the_hub_and_says_so_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEFACTORY_SHARED_DATA", str(tmp_path))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        EvalError, match=r"MBPP not found at .*mbpp.jsonl and the hub is unreachable"
    ):
        load_mbpp()


def test_canonical_samples_use_each_benchmarks_ids() -> None:
    humaneval = canonical_sample(load_humaneval()[0])
    mbpp = canonical_sample(load_mbpp(split="test")[0])
    assert humaneval["task_id"] == "HumanEval/0" and mbpp["task_id"] == 11
    assert mbpp["completion"] == load_mbpp(split="test")[0].canonical


def test_syntax_valid_checks_the_prompt_with_the_completion() -> None:
    task = load_humaneval()[0]
    assert syntax_valid(task, task.canonical)
    assert not syntax_valid(task, "    return (\n")
    assert not syntax_valid(task, "\0")


def test_canonical_pass_and_wrong_or_hostile_fail(sandbox: Sandbox) -> None:
    humaneval = load_humaneval()[:2]
    mbpp = [task for task in load_mbpp(split="all") if task.sample_id in (2, 367)]
    hostile = [
        "    import sys\n    sys.exit(0)\n",
        "    while True:\n        pass\n",
        "    import os\n    os.kill(os.getppid(), 9)\n    return []\n",
        "    open('/etc/passwd', 'a').write('x')\n",
    ]
    interpreter = sandbox_python(sandbox)
    humaneval_results = evaluate(
        python_benchmark("humaneval", humaneval, interpreter),
        {
            humaneval[0].task_id: [humaneval[0].canonical, "    return True\n", *hostile],
            humaneval[1].task_id: [humaneval[1].canonical],
        },
        sandbox,
    )
    mbpp_results = evaluate(
        python_benchmark("mbpp", mbpp, interpreter),
        {task.task_id: [task.canonical, "def f(:\n"] for task in mbpp},
        sandbox,
    )
    statuses = [[sample.status for sample in result.samples] for result in humaneval_results]
    assert statuses == [["passed", "failed", "failed", "timeout", "failed", "failed"], ["passed"]]
    for result in mbpp_results:
        assert [sample.passed for sample in result.samples] == [True, False]
        assert [sample.syntax_valid for sample in result.samples] == [True, False]
