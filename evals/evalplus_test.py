"""HumanEval+ and MBPP+ scoring against EvalPlus's own evaluator: the same per-sample base and
plus verdicts on a mixed set of samples (reference solutions, wrong ones, ones that fail only the
plus inputs, crashing, hanging and guard-tripping ones), plus the rules' parts on their own.

EvalPlus runs in its own resolve: the `evals:evalplus_reference` pex (Pants builds it for this
test; outside Pants, CODEFACTORY_EVALPLUS_PYTHON names a Python with evalplus 0.3.1).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals import evalplus
from evals.errors import EvalError
from evals.evalplus import PlusProblem, TimeLimits, load_plus, mbpp_arguments, phase_deadline
from evals.harness import Benchmark, TaskResult, evaluate
from evals.sandbox import Limits, Program, Sandbox
from evals.shared_data import shared_data_dir
from evals.toolchain import sandbox_python

REFERENCE = Path("evals/evalplus_reference.pex")
DATA = {
    "humaneval": shared_data_dir() / evalplus.HUMANEVAL_PLUS_FILE,
    "mbpp": shared_data_dir() / evalplus.MBPP_PLUS_FILE,
}
LOOP = "    while True:\n        pass\n"
# (task id, the code after the prompt): what EvalPlus must say of each is in the reference run.
HUMANEVAL_SAMPLES = [
    ("HumanEval/0", None),  # the reference solution
    ("HumanEval/0", "    return True\n"),
    ("HumanEval/0", "    open('log.txt', 'w')\n    return False\n"),  # open() is guarded
    ("HumanEval/0", "    import os\n    os._exit(0)\n"),  # the process dies
    ("HumanEval/0", LOOP),  # each input hits its time limit
    ("HumanEval/0", "    print('thinking')\n    return input() == 'yes'\n"),  # stdin is closed
    ("HumanEval/0", "    return False\n\n\nraise RuntimeError('at import')\n"),
    ("HumanEval/2", None),
    ("HumanEval/2", "    return number % 1.0\n"),  # equal within EvalPlus's float tolerance
    ("HumanEval/2", "    return round(number % 1.0, 3)\n"),  # base only: plus has more digits
    ("HumanEval/2", "    return int(number)\n"),
    (
        "HumanEval/4",
        "    import statistics\n    m = statistics.mean(numbers)\n"
        "    return statistics.mean(abs(x - m) for x in numbers)\n",
    ),  # fmt: skip
    (
        "HumanEval/13",
        "    return max(i for i in range(1, min(a, b) + 1) if a % i == 0 and b % i == 0)\n",
    ),
    ("HumanEval/32", None),  # EvalPlus 0.3.1 never passes find_zero
    ("HumanEval/39", "    return 2\n\n\nwhile True:\n    pass\n"),  # hangs at import: the deadline
    ("HumanEval/52", "    return max(l) < t\n"),  # base only: plus has an empty list
    ("HumanEval/55", "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"),  # too slow on plus
]
MBPP_SAMPLES = [
    ("Mbpp/2", None),
    ("Mbpp/2", "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b), reverse=True))\n"),
    ("Mbpp/2", "def similar_elements(a, b):\n    return (a[0],)\n"),
    ("Mbpp/120", None),
    ("Mbpp/164", "def are_equivalent(a, b):\n    return 42\n"),  # its special oracle takes anything
    ("Mbpp/295", "def sum_div(n):\n    return 0\n"),  # its special oracle takes 0
    ("Mbpp/455", "def check_monthnumb_number(m):\n    return m in (1, 3, 5, 7, 8, 10)\n"),  # no 12
    ("Mbpp/574", None),
    ("Mbpp/574", "import math\ndef surfacearea_cylinder(r, h):\n    return 2 * math.pi * r * (r + h)\n"),
    ("Mbpp/581", None),
    ("Mbpp/737", None),  # checked as "is not None"
    ("Mbpp/737", "def check_str(string):\n    return string[:1] in 'aeiouAEIOU'\n"),
    ("Mbpp/793", None),  # no plus inputs
    ("Mbpp/793", "import sys\nsys.exit(0)\n"),
]  # fmt: skip


def reference(
    dataset: str, samples: list[dict[str, str]], tmp_path: Path, **extra: str
) -> list[dict[str, Any]]:
    """EvalPlus's statuses of `samples` (see evals/evalplus_reference.py)."""
    if REFERENCE.exists():  # a packed pex: a directory any Python 3.11 runs
        program = [sys.executable, str(REFERENCE)]
    else:
        python = os.environ.get("CODEFACTORY_EVALPLUS_PYTHON")
        assert (
            python
        ), "no evals/evalplus_reference.pex: run under Pants or set CODEFACTORY_EVALPLUS_PYTHON"
        # -P: evals/ (whose evalplus.py shadows the package) stays off sys.path.
        program = [python, "-P", str(Path(__file__).with_name("evalplus_reference.py"))]
    job = {"dataset": dataset, "data": str(DATA[dataset].resolve()), "samples": samples, **extra}
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run(
        [*program, str(tmp_path / "job.json"), str(tmp_path / "result.json")],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return json.loads((tmp_path / "result.json").read_text())["results"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout=30)) as box:
        yield box


@pytest.fixture(scope="module")
def problems() -> dict[str, PlusProblem]:
    return {
        problem.task_id: problem
        for dataset, path in DATA.items()
        for problem in load_plus(path, dataset)
    }


def solution(problem: PlusProblem, body: str | None) -> str:
    """The prompt as EvalPlus's codegen sends it, then `body` (default: the reference solution)."""
    return problem.prompt.strip() + "\n" + (problem.canonical_solution if body is None else body)


def score(
    samples: list[tuple[str, str | None]],
    problems: dict[str, PlusProblem],
    sandbox: Sandbox,
    cache: Path,
) -> list[TaskResult]:
    """Our verdicts: one harness task per sample, each with its solution as the completion."""
    interpreter = sandbox_python(sandbox)
    used = [problems[task_id] for task_id in dict.fromkeys(task_id for task_id, _ in samples)]
    checks = evalplus.prepare_checks(used, sandbox, interpreter, cache, TimeLimits())
    tasks = [_Task(str(index), task_id) for index, (task_id, _) in enumerate(samples)]

    def program(task: _Task, completion: str, marker: str) -> Program:
        return evalplus.check_program(checks[task.plus_id], interpreter, completion, marker)

    benchmark = Benchmark("plus", tasks, (), program, lambda task, text: True, ("base",))
    completions = {
        str(index): [solution(problems[task_id], body)]
        for index, (task_id, body) in enumerate(samples)
    }
    return evaluate(benchmark, completions, sandbox)


@dataclasses.dataclass(frozen=True)
class _Task:
    """One sample's harness task: its own id, its EvalPlus task's, and no prompt (not generated)."""

    task_id: str
    plus_id: str
    prompt: str = ""


@pytest.mark.parametrize(
    ("dataset", "samples"), [("humaneval", HUMANEVAL_SAMPLES), ("mbpp", MBPP_SAMPLES)]
)
def test_verdicts_match_evalplus(
    dataset: str,
    samples: list[tuple[str, str | None]],
    problems: dict[str, PlusProblem],
    sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    ours = score(samples, problems, sandbox, tmp_path / "cache")
    theirs = reference(
        dataset,
        [
            {"task_id": task_id, "solution": solution(problems[task_id], body)}
            for task_id, body in samples
        ],
        tmp_path,
    )
    ours_verdicts = [
        (task_id, result.samples[0].subsets["base"], result.samples[0].passed)
        for (task_id, _), result in zip(samples, ours, strict=True)
    ]
    # EvalPlus: a sample passes plus when it passes both its base and its plus inputs.
    theirs_verdicts = [
        (r["task_id"], r["base"] == "pass", r["base"] == r["plus"] == "pass") for r in theirs
    ]
    assert ours_verdicts == theirs_verdicts
    # The mix covers every verdict: both pass, base only, neither.
    assert {(base, plus) for _, base, plus in ours_verdicts} == {
        (True, True),
        (True, False),
        (False, False),
    }


def test_known_reference_failures_fail_only_the_files_assertions(
    problems: dict[str, PlusProblem], sandbox: Sandbox, tmp_path: Path
) -> None:
    """Mbpp/120, 164, 295, 442, 574: the file's `assertion` code fails their reference solutions
    (names it does not import, a wrong reference), EvalPlus's differential testing does not."""
    known = evalplus.MBPP_PLUS_ASSERTION_FAILURES
    records = {
        record["task_id"]: record
        for record in map(json.loads, DATA["mbpp"].read_text().splitlines())
        if record["task_id"] in known
    }
    interpreter = sandbox_python(sandbox)
    runs = sandbox.run_all(
        [
            Program(
                (interpreter, "-I", "-S", "main.py"),
                {"main.py": solution(problems[task_id], None) + records[task_id]["assertion"]},
            )
            for task_id in known
        ]
    )
    assert [run.passed for run in runs] == [False] * len(known)
    results = score([(task_id, None) for task_id in known], problems, sandbox, tmp_path)
    assert [result.samples[0].passed for result in results] == [True] * len(known)


def test_expected_outputs_are_cached_by_record(
    problems: dict[str, PlusProblem],
    sandbox: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chosen = [problems["HumanEval/0"], problems["Mbpp/2"]]
    interpreter = sandbox_python(sandbox)
    first = evalplus.expected_outputs(chosen, sandbox, interpreter, tmp_path)
    assert "computed" in capsys.readouterr().out
    again = evalplus.expected_outputs(chosen, sandbox, interpreter, tmp_path)
    assert capsys.readouterr().out == ""
    assert again["HumanEval/0"]["base"][0] == first["HumanEval/0"]["base"][0] == [
        True, False, True, False, True, True, False
    ]  # fmt: skip
    assert len(first["Mbpp/2"]["plus"][1]) == len(problems["Mbpp/2"].plus_input)


def test_a_reference_solution_that_fails_is_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    broken = PlusProblem("Mbpp/9999", "mbpp", '"""\n"""\n', "f", "def f(x):\n    return 1 / x\n",
                         0, [[1]], [[0]], "digest")  # fmt: skip
    with pytest.raises(EvalError, match=r"reference solution of Mbpp/9999 fails .*ZeroDivision"):
        evalplus.expected_outputs([broken], sandbox, sandbox_python(sandbox), tmp_path)


def test_time_limits_follow_evalplus() -> None:
    limits = TimeLimits().per_input([0.001, 0.5, 2.0])
    assert limits == [1.0, 2.0, 8.0]
    assert phase_deadline(limits) == 13.0
    assert phase_deadline([1.0] * 100) == 62.0
    assert TimeLimits(0.1, 2.0).per_input([0.001, 1.0]) == [0.1, 2.0]
    with pytest.raises(EvalError, match="--min-time-limit and --gt-time-limit-factor"):
        TimeLimits(0.0, 4.0)


def strictly_equal(ours: Any, theirs: Any) -> bool:
    """Equal values of the same types all the way down (a tuple is not a list, {} not set())."""
    if type(ours) is not type(theirs):
        return False
    if isinstance(ours, list | tuple):
        return len(ours) == len(theirs) and all(map(strictly_equal, ours, theirs))
    if isinstance(ours, dict):
        return ours.keys() == theirs.keys() and all(
            strictly_equal(ours[k], theirs[k]) for k in ours
        )
    return bool(ours == theirs) or (ours != ours and theirs != theirs)  # NaN is NaN


def test_mbpp_plus_inputs_are_evalplus_arguments_for_every_task(
    problems: dict[str, PlusProblem], tmp_path: Path
) -> None:
    reference("mbpp", [], tmp_path, inputs=str(tmp_path / "inputs.pkl"))
    theirs = pickle.loads((tmp_path / "inputs.pkl").read_bytes())
    mbpp = {task_id: p for task_id, p in problems.items() if p.dataset == "mbpp"}
    assert sorted(theirs) == sorted(mbpp)
    assert [
        task_id
        for task_id, (base, plus) in theirs.items()
        if not strictly_equal([mbpp[task_id].base_input, mbpp[task_id].plus_input], [base, plus])
    ] == []


def test_mbpp_plus_inputs_become_the_arguments_the_tasks_take() -> None:
    assert mbpp_arguments("Mbpp/2", [[[3, 4], [5]]]) == [[(3, 4), (5,)]]
    assert mbpp_arguments("Mbpp/63", [[[[1, 2], [3, 4]]]]) == [[[(1, 2), (3, 4)]]]
    assert mbpp_arguments("Mbpp/115", [[[[1], []]]]) == [[[{1}, {}]]]
    assert mbpp_arguments("Mbpp/124", [[3, "1+2j"]]) == [(3.0, 1 + 2j)]
    assert mbpp_arguments("Mbpp/580", [[[1, [2, 3]], 4]]) == [((1, (2, 3)), 4)]
    assert mbpp_arguments("Mbpp/722", [[{"a": [1, 2]}, 3]]) == [[{"a": (1, 2)}, 3]]
    assert mbpp_arguments("Mbpp/3", [[2]]) == [[2]]


def test_plus_files_load_and_bad_records_are_one_line(tmp_path: Path) -> None:
    humaneval = load_plus(DATA["humaneval"], "humaneval")
    mbpp = load_plus(DATA["mbpp"], "mbpp")
    assert (len(humaneval), len(mbpp)) == (164, 399)
    assert humaneval[0].task_id == "HumanEval/0" and mbpp[0].task_id == "Mbpp/2"
    assert mbpp[0].base_input[0] == [(3, 4, 5, 6), (5, 7, 4, 10)]
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"task_id": "Mbpp/2"}\n')
    with pytest.raises(EvalError, match=r"broken.jsonl:1: expected an EvalPlus record"):
        load_plus(broken, "mbpp")
    with pytest.raises(EvalError, match=r"cannot read .*missing.jsonl"):
        load_plus(tmp_path / "missing.jsonl", "mbpp")
