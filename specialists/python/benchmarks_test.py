"""HumanEval, MBPP, HumanEval+ and MBPP+: tasks, prompts (each protocol's) and checking programs
run through the sandbox, and the eval command end to end on samples files and a real tiny
checkpoint."""

from __future__ import annotations

import hashlib
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
from evals.shared_data import shared_data_dir
from evals.toolchain import sandbox_python
from specialists.cli import main
from specialists.python.benchmarks import (
    BIGCODE_HUMANEVAL_STOP,
    BIGCODE_MBPP_STOP,
    EVALPLUS_HUMANEVAL_STOP,
    EVALPLUS_MBPP_STOP,
    HUMANEVAL_STOP,
    canonical_sample,
    load_humaneval,
    load_humaneval_plus,
    load_mbpp,
    load_mbpp_plus,
    program_source,
    python_benchmark,
    syntax_valid,
)


def eval_main(argv: list[str]) -> int:
    """The Python specialist's eval command."""
    return main(["eval", "--language", "python", *argv])


FAST = ["--limit", "3", "--timeout", "3"]
ROUNDED = "    return round(number % 1.0, 3)\n"  # HumanEval/2: passes its base inputs, not plus
FORK_BOMB = "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n"


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def cached(tmp_path: Path) -> list[str]:
    """Expected outputs of HumanEval+/MBPP+ in the test's own directory."""
    return ["--evalplus-cache", str(tmp_path / "evalplus")]


def test_write_canonical_then_score_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    canonical = tmp_path / "canonical.jsonl"
    assert eval_main(["--write-canonical", str(canonical), *FAST]) == 0
    ids = [json.loads(line)["task_id"] for line in canonical.read_text().splitlines()]
    humaneval = ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert ids == [*humaneval, 11, 12, 13, *humaneval, "Mbpp/2", "Mbpp/3", "Mbpp/4"]

    out = tmp_path / "run"
    assert (
        eval_main(["--samples", str(canonical), "--out", str(out), *FAST, *cached(tmp_path)]) == 0
    )
    document = results(out)
    # HumanEval's ids are HumanEval+'s: each of those tasks has both reference solutions.
    assert (document["benchmark"], document["n_tasks"], document["pass@1"]) == ("all", 12, 1.0)
    assert document["benchmarks"]["mbpp"]["n_tasks"] == 3
    assert document["benchmarks"]["humaneval+"]["n_samples"] == 6
    assert document["benchmarks"]["mbpp+"]["subsets"]["base"]["pass@1"] == 1.0
    assert document["sandbox"]["network"].startswith("none")
    assert document["protocol"] is None and "evalplus" in document
    rows = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()}
    assert rows["humaneval"] == ["3", "6"] and rows["mbpp+:base"] == ["3", "3"]


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
    args += cached(tmp_path)
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
    assert document["n_tasks"] == 12 and document["n_samples"] == 24
    assert 0.0 <= document["pass@1"] <= document["pass@2"] <= 1.0
    assert document["generation"] == {
        "n_samples": 2, "max_new_tokens": 8, "seed": 0,
        "sampling": {"temperature": 0.8, "top_k": 50, "top_p": 0.95}, "max_length": None,
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
        (["--samples", "x.jsonl", "--max-length", "0"], "--max-length must be positive"),
        (
            ["--samples", "x.jsonl", "--benchmark", "mbpp+", "--mbpp-plus-path", "nowhere.jsonl"],
            "--mbpp-plus-path nowhere.jsonl: no such file",
        ),
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
    assert canonical_sample(load_mbpp_plus()[0])["task_id"] == "Mbpp/2"


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


def test_plus_benchmarks_score_base_and_plus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = load_humaneval_plus()[:3]
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": first.task_id, "completion": first.canonical},
            {"task_id": second.task_id, "completion": "    return []\n"},
            {"task_id": third.task_id, "completion": ROUNDED},
        ],
    )
    out = tmp_path / "run"
    args = ["--samples", str(samples), "--benchmark", "humaneval+", "--out", str(out)]
    assert eval_main([*args, "--protocol", "greedy", *FAST, *cached(tmp_path)]) == 0
    document = results(out)
    assert document["pass@1"] == pytest.approx(1 / 3)
    assert document["subsets"]["base"]["pass@1"] == pytest.approx(2 / 3)
    assert document["subsets"]["base"]["benchmark"] == "humaneval+:base"
    assert [sample["subsets"] for task in document["tasks"] for sample in task["samples"]] == [
        {"base": True}, {"base": False}, {"base": True},
    ]  # fmt: skip
    assert document["tasks"][2]["samples"][0]["detail"].startswith("plus: input ")
    assert document["stop"] == list(EVALPLUS_HUMANEVAL_STOP)
    prompts = [task.prompt for task in load_humaneval_plus()[:3]]
    assert document["prompts_sha256"] == hashlib.sha256(json.dumps(prompts).encode()).hexdigest()
    assert document["protocol"]["name"] == "greedy" and "generation" not in document
    assert document["evalplus"]["rules"] == "evalplus 0.3.1"
    assert document["evalplus"]["min_time_limit"] == 1.0
    rows = [line.split()[:4] for line in capsys.readouterr().out.splitlines()]
    assert ["humaneval+:base", "3", "3", "66.67%"] in rows and [
        "humaneval+",
        "3",
        "3",
        "33.33%",
    ] in rows


def test_mbpp_plus_samples_use_evalplus_ids(tmp_path: Path) -> None:
    tasks = load_mbpp_plus()[:2]
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "Mbpp/2", "completion": tasks[0].canonical},
            {"task_id": "Mbpp/3", "completion": "def is_not_prime(n):\n    return False\n"},
        ],
    )
    out = tmp_path / "run"
    args = ["--samples", str(samples), "--benchmark", "mbpp+", "--limit", "2", "--out", str(out)]
    assert eval_main([*args, *cached(tmp_path)]) == 0
    document = results(out)
    assert [task["task_id"] for task in document["tasks"]] == ["Mbpp/2", "Mbpp/3"]
    assert [task["n_passed"] for task in document["tasks"]] == [1, 0]


def test_plus_prompts_are_evalplus_codegens_and_bigcodes() -> None:
    humaneval, mbpp = load_humaneval_plus(), load_mbpp_plus()
    assert (len(humaneval), len(mbpp)) == (164, 399)
    raw = humaneval[0].plus
    assert raw is not None
    assert humaneval[0].prompt == humaneval[0].prefix == raw.prompt.strip() + "\n"
    assert any(task.plus and task.plus.prompt.startswith("\n") for task in humaneval)
    assert humaneval[0].stop == EVALPLUS_HUMANEVAL_STOP and mbpp[0].stop == EVALPLUS_MBPP_STOP
    assert mbpp[0].prompt.startswith('"""\nWrite a function') and mbpp[0].prompt.endswith('"""\n')
    bigcode = load_humaneval_plus(protocol="bigcode")[0]
    assert bigcode.prompt == raw.prompt.strip() and bigcode.stop == BIGCODE_HUMANEVAL_STOP
    assert load_mbpp_plus(protocol="bigcode")[0].prompt == mbpp[0].prompt


def test_bigcode_prompts_stops_and_mbpp_checks() -> None:
    default, bigcode = load_humaneval()[0], load_humaneval(protocol="bigcode")[0]
    assert bigcode.prompt == default.prompt.strip() and default.stop == HUMANEVAL_STOP
    assert bigcode.stop == BIGCODE_HUMANEVAL_STOP
    records = {json.loads(line)["task_id"]: json.loads(line) for line in
               (shared_data_dir() / "mbpp.jsonl").read_text().splitlines()}  # fmt: skip
    task = load_mbpp(protocol="bigcode")[0]
    record = records[11]
    assert task.prompt == f'"""\n{record["text"]}\n{record["test_list"][0]}\n"""\n'
    assert task.stop == BIGCODE_MBPP_STOP
    # bigcode's harness checks test_list alone: no setup code (task 367 builds its trees there).
    tree = next(t for t in load_mbpp(protocol="bigcode") if t.sample_id == 367)
    assert tree.test == "\n".join(records[367]["test_list"]) + "\n"


def test_bigcode_protocol_end_to_end_with_overrides(tmp_path: Path) -> None:
    run_dir = tiny_run_dir(tmp_path / "run")
    out = tmp_path / "eval"
    args = ["--checkpoint", str(run_dir), "--benchmark", "humaneval", "--limit", "2"]
    overrides = ["--n-samples", "2", "--max-new-tokens", "8"]
    assert eval_main([*args, "--protocol", "bigcode", *overrides, "--out", str(out)]) == 0
    document = results(out)
    assert document["protocol"]["name"] == "bigcode"
    assert document["protocol"]["preset"]["n_samples"] == 20
    assert document["generation"] == {
        "n_samples": 2, "max_new_tokens": 8, "seed": 0,
        "sampling": {"temperature": 0.2, "top_k": 0, "top_p": 0.95}, "max_length": 512,
    }  # fmt: skip
    assert document["sandbox"]["limit_timeout"] == 3.0
    assert document["stop"] == list(BIGCODE_HUMANEVAL_STOP)
    prompts = [task.prompt for task in load_humaneval(protocol="bigcode")[:2]]
    assert document["prompts_sha256"] == hashlib.sha256(json.dumps(prompts).encode()).hexdigest()
    assert document["n_samples"] == 4
