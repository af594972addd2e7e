"""HumanEval+ and MBPP+ (EvalPlus, Liu et al., 2023) scored by EvalPlus 0.3.1's rules, in the sandbox.

A problem has base inputs (the original benchmark's) and plus inputs (EvalPlus's); its expected
outputs are the reference solution's on those inputs, computed once in the sandbox and cached,
with the seconds each input took. A sample is one program (evals/evalplus_check.py) that runs
the base inputs, then the plus inputs, and reports each phase: it passes "base" when every base
input matches, and passes when the plus inputs match too, as EvalPlus's base and base + plus
verdicts. EvalPlus's rules, kept exactly:

- an output matches when `output == expected`, or by the task's special oracle; a float expected
  value (a float, or a non-empty list or tuple of floats) makes the tolerance 1e-6 from then on
  when the task has none, and with a tolerance an inexact output must have the expected type
  (and length) and satisfy np.allclose(output, expected, rtol=1e-7, atol=atol);
- each input may take max(--min-time-limit 1.0 s, --gt-time-limit-factor 4.0 x the reference's
  time), a phase min(60 s, the sum of its inputs' limits) + 2 s; a phase stops at its first
  failing input, and a sample that crashes or hangs fails that phase;
- the sample runs after EvalPlus's reliability guard (4 GiB of memory; exit, open, os.kill, ...
  disabled) with its output swallowed, on a fresh exec of the solution per phase.

Every sample and reference run uses one PYTHONHASHSEED, as EvalPlus's forked workers share their
parent's, so set and dict orders of strings agree between a sample and the expected output.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import hashlib
import inspect
import json
import os
import pickle
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy

from evals import evalplus_check
from evals.errors import EvalError
from evals.harness import subset_marker
from evals.sandbox import Limits, Program, RunResult, Sandbox

RULES = "0.3.1"  # the EvalPlus release whose evaluator these rules reproduce
MIN_TIME_LIMIT = 1.0  # EvalPlus's DEFAULT_MIN_TIME_LIMIT
TIME_LIMIT_FACTOR = 4.0  # EvalPlus's DEFAULT_GT_TIME_LIMIT_FACTOR
PHASE_SECONDS = 60.0  # EvalPlus's EVALPLUS_TIMEOUT_PER_TASK default
MEMORY_MB = 4096  # EvalPlus's EVALPLUS_MAX_MEMORY_BYTES default
HASH_SEED = "0"
PHASES = ("base", "plus")
HUMANEVAL_PLUS_FILE = "humanevalplus/HumanEvalPlus-v0.1.10.jsonl.gz"
MBPP_PLUS_FILE = "mbppplus/MbppPlus-v0.1.0.jsonl"
# MBPP+ v0.1.0's reference solutions that fail the file's own `assertion` code (names the
# assertions do not import, or a wrong reference); under EvalPlus's rules they pass (Mbpp/164 and
# 295 through their special oracles).
MBPP_PLUS_ASSERTION_FAILURES = ("Mbpp/120", "Mbpp/164", "Mbpp/295", "Mbpp/442", "Mbpp/574")
DEFAULT_CACHE = Path.home() / ".cache" / "codefactory" / "evalplus"
# Interpreter start, the numpy import and reading the task, beyond the phases' own limits.
_STARTUP_S = 10.0
_REFERENCE_LIMITS = Limits(timeout=600.0, memory_mb=MEMORY_MB, max_file_mb=1024)
_CHECK_SCRIPT = "check.py"


@dataclasses.dataclass(frozen=True)
class PlusProblem:
    """One HumanEval+ or MBPP+ task as its file has it (MBPP+ inputs converted as EvalPlus does);
    `dataset` is EvalPlus's name for it ("humaneval" or "mbpp"), `digest` the record's sha256."""

    task_id: str
    dataset: str
    prompt: str
    entry_point: str
    canonical_solution: str
    atol: float
    base_input: list[Any] = dataclasses.field(repr=False, compare=False)
    plus_input: list[Any] = dataclasses.field(repr=False, compare=False)
    digest: str


@dataclasses.dataclass(frozen=True)
class PlusCheck:
    """What a sample's program needs: the task file (inputs, expected outputs, time limits), the
    sandbox limits that hold its phases, and where the sandbox sees numpy."""

    task_file: bytes = dataclasses.field(repr=False)
    limits: Limits
    numpy_dir: str


@dataclasses.dataclass(frozen=True)
class TimeLimits:
    """EvalPlus's per-input time limit: max(minimum, factor x the reference solution's time)."""

    minimum: float = MIN_TIME_LIMIT
    factor: float = TIME_LIMIT_FACTOR

    def __post_init__(self) -> None:
        if self.minimum <= 0 or self.factor <= 0:
            raise EvalError("--min-time-limit and --gt-time-limit-factor must be positive")

    def per_input(self, reference_seconds: Sequence[float]) -> list[float]:
        """Each input's limit."""
        return [max(self.minimum, self.factor * seconds) for seconds in reference_seconds]


def phase_deadline(limits: Sequence[float]) -> float:
    """How long EvalPlus lets a phase's process run: min(60, sum of limits) + 1, joined + 1."""
    return min(PHASE_SECONDS, sum(limits)) + 2.0


def load_plus(path: Path, dataset: str) -> list[PlusProblem]:
    """The problems of a HumanEval+ (`dataset` "humaneval") or MBPP+ ("mbpp") file, .jsonl or
    .jsonl.gz, in file order."""
    try:
        opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as error:
        raise EvalError(f"cannot read {path}: {error.strerror or error}") from None
    problems = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            task_id = record["task_id"]
            inputs = [record["base_input"], record["plus_input"]]
            if dataset == "mbpp":
                inputs = [mbpp_arguments(task_id, phase) for phase in inputs]
            problems.append(
                PlusProblem(
                    task_id=task_id,
                    dataset=dataset,
                    prompt=record["prompt"],
                    entry_point=record["entry_point"],
                    canonical_solution=record["canonical_solution"],
                    atol=record["atol"],
                    base_input=inputs[0],
                    plus_input=inputs[1],
                    digest=hashlib.sha256(line.encode()).hexdigest(),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise EvalError(
                f"{path}:{number}: expected an EvalPlus record (task_id, prompt, entry_point, "
                "canonical_solution, atol, base_input, plus_input)"
            ) from None
    return problems


def _deep_tuple(value: Any) -> Any:
    return tuple(_deep_tuple(item) for item in value) if isinstance(value, list) else value


def _each_argument(convert: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    return lambda arguments: [convert(argument) for argument in arguments]


def _mbpp_115(arguments: list[Any]) -> list[Any]:
    # EvalPlus turns an empty list into {} (a dict), a non-empty one into a set.
    return [[set(item) if isinstance(item, list) and item else {} for item in arguments[0]]]


def _mbpp_278(arguments: list[Any]) -> list[Any]:
    return [tuple(tuple(item) if isinstance(item, list) else item for item in arguments[0])]


# How EvalPlus turns MBPP+'s JSON inputs into the arguments the tasks take (tuples, sets,
# complex numbers), by task number: evalplus/data/mbpp.py's mbpp_deserialize_inputs.
_MBPP_CONVERSIONS: dict[int, Callable[[list[Any]], Any]] = {
    **dict.fromkeys(
        (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630,
         726, 740, 744, 809),
        _each_argument(tuple),
    ),
    **dict.fromkeys(
        (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
        _each_argument(lambda argument: [tuple(item) for item in argument]),
    ),
    **dict.fromkeys(
        (75, 413, 444, 753), lambda a: [[tuple(item) for item in a[0]], a[1]]
    ),
    **dict.fromkeys((106, 750), lambda a: [a[0], tuple(a[1])]),
    115: _mbpp_115,
    124: lambda a: (float(a[0]), complex(a[1])),
    **dict.fromkeys((250, 405, 446, 617, 720, 763, 808), lambda a: [tuple(a[0]), a[1]]),
    **dict.fromkeys(
        (259, 401, 445), _each_argument(lambda argument: tuple(tuple(x) for x in argument))
    ),
    278: _mbpp_278,
    307: lambda a: [tuple(a[0]), a[1], a[2]],
    722: lambda a: [{key: tuple(value) for key, value in a[0].items()}, *a[1:]],
    252: lambda a: [complex(a[0])],
    **dict.fromkeys((580, 615, 791), _deep_tuple),
}  # fmt: skip


def mbpp_arguments(task_id: str, inputs: list[Any]) -> list[Any]:
    """MBPP+ inputs of `task_id` ("Mbpp/2") as the arguments its function takes."""
    convert = _MBPP_CONVERSIONS.get(int(task_id.split("/")[-1]))
    return inputs if convert is None else [convert(arguments) for arguments in inputs]


def add_evalplus_arguments(parser: argparse.ArgumentParser) -> None:
    """EvalPlus's time-limit flags (its own names) and where expected outputs are cached."""
    parser.add_argument(
        "--min-time-limit",
        type=float,
        default=MIN_TIME_LIMIT,
        help=f"EvalPlus: least seconds per input (default: {MIN_TIME_LIMIT})",
    )
    parser.add_argument(
        "--gt-time-limit-factor",
        type=float,
        default=TIME_LIMIT_FACTOR,
        help="EvalPlus: seconds per input as a multiple of the reference solution's "
        f"(default: {TIME_LIMIT_FACTOR})",
    )
    parser.add_argument(
        "--evalplus-cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"expected outputs of HumanEval+/MBPP+ (default: {DEFAULT_CACHE})",
    )


def time_limits_from_args(args: argparse.Namespace) -> TimeLimits:
    """The --min-time-limit and --gt-time-limit-factor flags."""
    return TimeLimits(args.min_time_limit, args.gt_time_limit_factor)


def evalplus_record(args: argparse.Namespace) -> dict[str, Any]:
    """The EvalPlus settings a result depends on."""
    return {
        "rules": f"evalplus {RULES}",
        "min_time_limit": args.min_time_limit,
        "gt_time_limit_factor": args.gt_time_limit_factor,
        "phase_seconds": PHASE_SECONDS,
        "memory_mb": MEMORY_MB,
        "hash_seed": HASH_SEED,
        "expected_outputs": str(args.evalplus_cache),
    }


def _python(interpreter: str, *args: str) -> tuple[str, ...]:
    # Not -I (it ignores PYTHONHASHSEED): -s -S keep site-packages out all the same.
    return ("env", f"PYTHONHASHSEED={HASH_SEED}", "OPENBLAS_NUM_THREADS=1", interpreter, "-s",
            "-S", _CHECK_SCRIPT, *args)  # fmt: skip


@functools.cache
def _check_source() -> str:
    return inspect.getsource(evalplus_check)


def sandbox_numpy(sandbox: Sandbox, interpreter: str) -> str:
    """Where samples find numpy (EvalPlus's checks need it): this interpreter's numpy directory,
    exposed read-only in the sandbox where it can be; a one-line error when samples cannot
    import it."""
    site = str(Path(numpy.__file__).resolve().parent.parent)
    inside = sandbox.expose(site) if sandbox.protections.namespaces else site
    probe = f"import sys; sys.path.append({inside!r}); import numpy"
    env = ("env", f"PYTHONHASHSEED={HASH_SEED}", "OPENBLAS_NUM_THREADS=1")
    if not sandbox.run(Program((*env, interpreter, "-s", "-S", "-c", probe))).passed:
        raise EvalError(
            f"EvalPlus's checks need numpy, which {interpreter} cannot import from {site}"
        )
    return inside


def _cache_file(cache_dir: Path, dataset: str) -> Path:
    return cache_dir / f"{dataset}plus-evalplus{RULES}-seed{HASH_SEED}.pkl"


def expected_outputs(
    problems: Sequence[PlusProblem], sandbox: Sandbox, interpreter: str, cache_dir: Path
) -> dict[str, dict[str, tuple[list[Any], list[float]]]]:
    """Per task id, per phase, the reference solution's outputs and seconds per input: from the
    cache where it has the problem (by record digest), else run in the sandbox and cached."""
    by_dataset: dict[str, list[PlusProblem]] = {}
    for problem in problems:
        by_dataset.setdefault(problem.dataset, []).append(problem)
    found: dict[str, dict[str, tuple[list[Any], list[float]]]] = {}
    for dataset, group in by_dataset.items():
        path = _cache_file(cache_dir, dataset)
        cache = _read_cache(path)
        missing = [problem for problem in group if problem.digest not in cache]
        if missing:
            started = time.monotonic()
            runs = sandbox.run_all(
                [_reference_program(p, interpreter) for p in missing], "expected outputs"
            )
            for problem, run in zip(missing, runs, strict=True):
                cache[problem.digest] = _reference_outputs(problem, run)
            _write_cache(path, cache)
            print(
                f"expected outputs of {len(missing)} {dataset}+ tasks computed in "
                f"{time.monotonic() - started:.1f} s, cached in {path}"
            )
        found |= {problem.task_id: cache[problem.digest] for problem in group}
    return found


def _reference_program(problem: PlusProblem, interpreter: str) -> Program:
    task = {
        "solution": problem.prompt + problem.canonical_solution,
        "entry_point": problem.entry_point,
        "inputs": {"base": problem.base_input, "plus": problem.plus_input},
        "output_not_none": problem.dataset == "mbpp"
        and problem.entry_point in evalplus_check.MBPP_OUTPUT_NOT_NONE,
    }
    return Program(
        _python(interpreter, "expected"),
        {_CHECK_SCRIPT: _check_source(), "task.pkl": pickle.dumps(task)},
        limits=_REFERENCE_LIMITS,
        outputs=("expected.pkl",),
    )


def _reference_outputs(problem: PlusProblem, run: RunResult) -> dict[str, Any]:
    if not run.passed or "expected.pkl" not in run.files:
        lines = run.output.strip().splitlines()
        why = "timed out" if run.timed_out else (lines[-1] if lines else f"exit {run.returncode}")
        raise EvalError(f"the reference solution of {problem.task_id} fails on its inputs: {why}")
    return pickle.loads(run.files["expected.pkl"])


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return pickle.load(file)
    except (OSError, pickle.UnpicklingError, EOFError):
        return {}


def _write_cache(path: Path, cache: Mapping[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
        partial.write_bytes(pickle.dumps(dict(cache)))
        os.replace(partial, path)
    except OSError as error:
        raise EvalError(f"cannot write --evalplus-cache {path}: {error.strerror}") from None


def prepare_checks(
    problems: Sequence[PlusProblem],
    sandbox: Sandbox,
    interpreter: str,
    cache_dir: Path,
    time_limits: TimeLimits,
) -> dict[str, PlusCheck]:
    """Per task id, what its samples' programs need: expected outputs (see expected_outputs),
    EvalPlus's time limits from them, and numpy inside the sandbox."""
    numpy_dir = sandbox_numpy(sandbox, interpreter)
    oracles = expected_outputs(problems, sandbox, interpreter, cache_dir)
    checks = {}
    for problem in problems:
        oracle = oracles[problem.task_id]
        limits = {phase: time_limits.per_input(oracle[phase][1]) for phase in PHASES}
        deadlines = {phase: phase_deadline(limits[phase]) for phase in PHASES}
        task = {
            "rules": RULES,
            "dataset": problem.dataset,
            "entry_point": problem.entry_point,
            "atol": problem.atol,
            "inputs": {"base": problem.base_input, "plus": problem.plus_input},
            "expected": {phase: oracle[phase][0] for phase in PHASES},
            "limits": limits,
            "deadlines": deadlines,
        }
        sandbox_limits = Limits(timeout=_STARTUP_S + sum(deadlines.values()), memory_mb=MEMORY_MB)
        checks[problem.task_id] = PlusCheck(pickle.dumps(task), sandbox_limits, numpy_dir)
    return checks


def check_program(check: PlusCheck, interpreter: str, solution: str, pass_marker: str) -> Program:
    """The program that checks `solution` (the prompt and the completion): it prints the "base"
    subset marker once the base inputs pass and `pass_marker` once the plus inputs pass too."""
    markers = {"base": subset_marker(pass_marker, "base"), "plus": pass_marker}
    return Program(
        _python(interpreter, "check", check.numpy_dir),
        {
            _CHECK_SCRIPT: _check_source(),
            "task.pkl": check.task_file,
            "sample.json": json.dumps({"solution": solution, "markers": markers}),
        },
        limits=check.limits,
    )
