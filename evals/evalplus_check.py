"""The program that runs inside the sandbox for HumanEval+ and MBPP+ (see evals/evalplus.py).

Standalone: the standard library, plus numpy in `check` mode (EvalPlus compares floats with
np.allclose). Two modes, each reading `task.pkl` from the working directory:

    python check.py expected          run the reference solution on every input: expected.pkl
    python check.py check NUMPY_DIR   check one sample (sample.json) as EvalPlus 0.3.1 does

`check` runs the base inputs, then (only when they all passed) the plus inputs, each phase on a
fresh exec of the solution, under EvalPlus's per-input time limits and its reliability guard, and
stops a phase at its first failing input (EvalPlus's default fast check). It prints each phase's
marker once the phase passed, else one line saying which input failed and why, and exits 1.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import faulthandler
import io
import json
import math
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# EvalPlus's special oracles (evalplus/eval/_special_oracle.py), by entry point.
MBPP_OUTPUT_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
MBPP_OUTPUT_SET_EQUAL = (
    "similar_elements",
    "find_char_long",
    "common_in_nested_lists",
    "extract_singly",
    "larg_nnum",
    "intersection_array",
    "find_dissimilar",
    "Diff",
)
# What EvalPlus's reliability_guard disables before it runs a sample.
_DISABLED = {
    "builtins": ("exit", "quit", "open", "help"),
    "os": (
        "kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
        "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod",
        "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir",
    ),
    "shutil": ("rmtree", "move", "chown"),
    "subprocess": ("Popen",),
}  # fmt: skip
_BLOCKED_MODULES = ("ipdb", "joblib", "resource", "psutil", "tkinter")
_GIB = 1 << 30


class TimeLimitExceeded(Exception):
    """An input ran past its time limit."""


class _WriteOnly(io.StringIO):
    """The sample's stdin, stdout and stderr: writes vanish, reads fail (as in EvalPlus)."""

    def read(self, *args: Any, **kwargs: Any) -> str:
        raise OSError("stdin is not readable")

    def readline(self, *args: Any, **kwargs: Any) -> str:
        raise OSError("stdin is not readable")

    def readlines(self, *args: Any, **kwargs: Any) -> list[str]:
        raise OSError("stdin is not readable")

    def readable(self) -> bool:
        return False


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    stream = _WriteOnly()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = sys.stdout = sys.stderr = stream
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(f"over its {seconds:g} s limit")

    signal.setitimer(signal.ITIMER_REAL, seconds)
    signal.signal(signal.SIGALRM, expire)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _function(solution: str, entry_point: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(solution, namespace)
    return namespace[entry_point]


def expected_outputs() -> None:
    """Run the reference solution on every input (a fresh copy of each, timed); expected.pkl
    holds per phase the outputs (or whether each is not None, for the tasks EvalPlus checks that
    way) and the seconds each call took."""
    with open("task.pkl", "rb") as file:
        task = pickle.load(file)
    result = {}
    for phase, inputs in task["inputs"].items():
        function = _function(task["solution"], task["entry_point"])
        outputs, seconds = [], []
        for arguments in inputs:
            arguments = copy.deepcopy(arguments)
            start = time.time()
            outputs.append(function(*arguments))
            seconds.append(time.time() - start)
        if task["output_not_none"]:
            outputs = [output is not None for output in outputs]
        result[phase] = (outputs, seconds)
    with open("expected.pkl", "wb") as file:
        pickle.dump(result, file)


def _is_floats(value: Any, np: Any) -> bool:
    """EvalPlus's is_floats: a float, a non-empty list or tuple of floats, or a float array."""
    if isinstance(value, float):
        return True
    if isinstance(value, list | tuple) and value:
        return all(isinstance(item, float) for item in value)
    if isinstance(value, np.ndarray):
        return value.dtype in (np.float64, np.float32)
    return False


def _polynomial(coefficients: Sequence[float], x: float) -> float:
    return sum([c * math.pow(x, i) for i, c in enumerate(coefficients)])


def _pyramid_surface(base_edge: float, height: float) -> int:
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)


def _digit_distance(first: int, second: int) -> int:
    a, b = str(first), str(second)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width), strict=True))


def _exact(
    dataset: str, entry_point: str, arguments: Any, output: Any, expected: Any, atol: float
) -> Any:
    """EvalPlus's exact match: `output == expected`, or the task's special oracle."""
    exact = output == expected
    if dataset != "mbpp":
        return exact
    if entry_point == "are_equivalent":  # Mbpp/164: any answer
        return exact or True
    if entry_point == "sum_div":  # Mbpp/295: 0 accepted too
        return exact or output == 0
    if entry_point == "surface_Area":  # Mbpp/581: the slant-height reading too
        return exact or abs(output - _pyramid_surface(*arguments)) <= atol
    if entry_point == "digit_distance_nums":  # Mbpp/558: zero-padded digits too
        return exact or output == _digit_distance(*arguments)
    if entry_point in MBPP_OUTPUT_SET_EQUAL:
        return set(output) == set(expected)
    if entry_point in MBPP_OUTPUT_NOT_NONE:
        return output == expected if isinstance(output, bool) else expected == (output is not None)
    return exact


def run_phase(task: dict[str, Any], phase: str, solution: str, np: Any) -> str | None:
    """None when every input of `phase` matched its expected output in time, else why not.

    EvalPlus 0.3.1 never records a pass for HumanEval's find_zero (its special oracle skips the
    bookkeeping), so that task fails whatever the sample returns; this keeps that rule."""
    dataset, entry_point = task["dataset"], task["entry_point"]
    inputs, expected, limits = task["inputs"][phase], task["expected"][phase], task["limits"][phase]
    atol = task["atol"]
    try:
        with _quiet():
            function = _function(solution, entry_point)
    except BaseException as error:  # whatever the sample raises fails it
        return f"{phase}: the solution does not load: {_describe(error)}"
    unrecorded = False
    for index, arguments in enumerate(inputs):
        try:
            with _time_limit(limits[index]), _quiet():
                output = function(*arguments)
            want = expected[index]
            exact = _exact(dataset, entry_point, arguments, output, want, atol)
            if dataset == "humaneval" and entry_point == "find_zero":
                assert abs(_polynomial(*arguments, output)) <= atol
                unrecorded = True
                continue
            if atol == 0 and _is_floats(want, np):
                atol = 1e-6  # EvalPlus's float tolerance, from here on for this phase
            if not exact and atol != 0:
                assert type(output) == type(want)
                if isinstance(want, list | tuple):
                    assert len(output) == len(want)
                assert np.allclose(output, want, rtol=1e-07, atol=atol)
            else:
                assert exact
        except BaseException as error:
            return f"{phase}: input {index + 1} of {len(inputs)}: {_describe(error)}"
    if unrecorded:
        return f"{phase}: EvalPlus {task['rules']} records no pass for find_zero"
    return None


def _describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:160] if text else type(error).__name__


def _guard() -> None:
    """EvalPlus's reliability_guard: memory limits, and the functions it disables."""
    import resource

    memory = min(4 * _GIB, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA, resource.RLIMIT_STACK):
        hard = resource.getrlimit(limit)[1]
        value = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
        resource.setrlimit(limit, (value, value))
    faulthandler.disable()
    os.environ["OMP_NUM_THREADS"] = "1"
    import shutil
    import subprocess

    modules = {"builtins": builtins, "os": os, "shutil": shutil, "subprocess": subprocess}
    for module, names in _DISABLED.items():
        for name in names:
            setattr(modules[module], name, None)
    for name in _BLOCKED_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]


def check(numpy_dir: str) -> int:
    """Check sample.json's solution on task.pkl's phases; 0 when every phase passed."""
    with open("task.pkl", "rb") as file:
        task = pickle.load(file)
    with open("sample.json") as file:
        sample = json.load(file)
    for name in ("task.pkl", "sample.json"):
        os.remove(name)
    sys.path.append(numpy_dir)
    import numpy as np

    report = os.fdopen(os.dup(1), "w")
    _guard()
    for phase, marker in sample["markers"].items():
        deadline = task["deadlines"][phase]
        # EvalPlus kills a phase's process at its deadline; a sample that ignores its time limits
        # (a loop at module level, say) ends here then, or at the sandbox's limit.
        watchdog = threading.Timer(deadline, _expire, (report, phase, deadline))
        watchdog.daemon = True
        start = time.monotonic()
        watchdog.start()
        failure = run_phase(task, phase, sample["solution"], np)
        watchdog.cancel()
        elapsed = time.monotonic() - start
        if failure is None and elapsed > deadline:
            failure = f"{phase}: took {elapsed:.1f} s, over its {deadline:g} s"
        print(failure or marker, file=report, flush=True)
        if failure is not None:
            return 1
    return 0


def _expire(report: io.TextIOBase, phase: str, deadline: float) -> None:
    print(f"{phase}: still running after its {deadline:g} s", file=report, flush=True)
    os._exit(1)


if __name__ == "__main__":
    if sys.argv[1] == "expected":
        expected_outputs()
    else:
        sys.exit(check(sys.argv[2]))
