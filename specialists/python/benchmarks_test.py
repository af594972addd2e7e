"""HumanEval and MBPP: tasks, prompts and checking programs run through the sandbox, and the eval
command end to end on samples files and a real tiny checkpoint."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from core.inference import load_completer
from core.model import Transformer
from core.testing import tiny_run_dir
from core.tokenizer import EOS_ID
from evals.errors import EvalError
from evals.harness import evaluate
from evals.sandbox import Limits, Sandbox
from evals.toolchain import sandbox_python
from specialists.cli import main
from specialists.python.benchmarks import (
    canonical_sample,
    load_humaneval,
    load_mbpp,
    program_source,
    python_benchmark,
    syntax_valid,
)


def eval_main(argv: list[str]) -> int:
    """The Python specialist's eval command."""
    return main(["eval", "--language", "python", *argv])


FAST = ["--limit", "3", "--timeout", "3"]
FORK_BOMB = "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n"


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def test_write_canonical_then_score_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    canonical = tmp_path / "canonical.jsonl"
    assert eval_main(["--write-canonical", str(canonical), *FAST]) == 0
    ids = [json.loads(line)["task_id"] for line in canonical.read_text().splitlines()]
    assert ids == ["HumanEval/0", "HumanEval/1", "HumanEval/2", 11, 12, 13]

    assert eval_main(["--samples", str(canonical), "--out", str(tmp_path / "run"), *FAST]) == 0
    document = results(tmp_path / "run")
    assert (document["benchmark"], document["n_tasks"], document["pass@1"]) == ("all", 6, 1.0)
    assert document["benchmarks"]["mbpp"]["n_tasks"] == 3
    assert document["sandbox"]["network"].startswith("none")
    assert "humaneval  3" in capsys.readouterr().out


def test_correct_wrong_and_hostile_samples(tmp_path: Path) -> None:
    first, second, third = load_humaneval()[:3]
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": first.task_id, "completion": first.canonical},
            {"task_id": second.task_id, "completion": "    return ['wrong']\n"},
            {"task_id": third.task_id, "completion": FORK_BOMB},
            {"task_id": "HumanEval/100", "completion": "outside --limit"},
        ],
    )
    out = tmp_path / "run"
    args = ["--samples", str(samples), "--benchmark", "humaneval", "--out", str(out), *FAST]
    assert eval_main(args) == 0
    document = results(out)
    assert (document["benchmark"], document["n_tasks"]) == ("humaneval", 3)
    assert document["pass@1"] == pytest.approx(1 / 3)
    assert [task["samples"][0]["status"] for task in document["tasks"]] == [
        "passed",
        "failed",
        "timeout",
    ]
    assert document["timeouts"] == 1


def test_mbpp_samples_use_integer_ids_and_the_chosen_split(tmp_path: Path) -> None:
    tasks = load_mbpp(split="validation")[:2]
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": tasks[0].sample_id, "completion": tasks[0].canonical},
            {"task_id": tasks[1].sample_id, "completion": "def nothing():\n    pass\n"},
        ],
    )
    out = tmp_path / "run"
    args = [
        "--samples",
        str(samples),
        "--benchmark",
        "mbpp",
        "--split",
        "validation",
        "--out",
        str(out),
    ]
    assert eval_main([*args, "--limit", "2"]) == 0
    document = results(out)
    assert [task["task_id"] for task in document["tasks"]] == ["511", "512"]
    assert [task["n_passed"] for task in document["tasks"]] == [1, 0]


def test_checkpoint_generation_and_perplexity(tmp_path: Path) -> None:
    run_dir = tiny_run_dir(tmp_path / "run")
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    text = "def f():\n    return 1\n"
    (held_out / "module.py").write_text(text)
    out = tmp_path / "eval"
    args = ["--checkpoint", str(run_dir), "--perplexity-data", str(held_out), "--out", str(out)]
    sampling = [
        "--n-samples",
        "2",
        "--temperature",
        "0.8",
        "--top-k",
        "50",
        "--max-new-tokens",
        "8",
    ]
    assert eval_main([*args, *sampling, *FAST]) == 0
    document = results(out)
    assert document["n_tasks"] == 6 and document["n_samples"] == 12
    assert 0.0 <= document["pass@1"] <= document["pass@2"] <= 1.0
    assert document["generation"] == {
        "n_samples": 2, "max_new_tokens": 8, "seed": 0,
        "sampling": {"temperature": 0.8, "top_k": 50, "top_p": 0.95},
    }  # fmt: skip
    # Perplexity from the full logits of one forward pass over the file and its EOS.
    completer = load_completer(run_dir)
    stream = np.array([[*completer.tokenizer.encode(text).ids, EOS_ID]])
    logits = Transformer(completer.config).apply({"params": completer.params}, stream[:, :-1])
    log_probs = np.asarray(jax.nn.log_softmax(logits))[0]
    nll = -log_probs[np.arange(stream.shape[1] - 1), stream[0, 1:]].mean()
    assert document["perplexity"]["value"] == pytest.approx(math.exp(nll), rel=1e-4)
    assert document["perplexity"]["files"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--samples", "missing.jsonl"],
            "cannot read samples file missing.jsonl: No such file or directory",
        ),
        (
            ["--samples", "x.jsonl", "--perplexity-data", "d"],
            "--perplexity-data needs --checkpoint",
        ),
        (["--write-canonical", "x.jsonl", "--limit", "0"], "--limit must be positive"),
        (["--samples", "x.jsonl", "--timeout", "-1"], "--timeout must be positive"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert eval_main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {message}") and error.count("\n") == 1


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
