"""Find an interpreter or compiler that sandboxed samples can actually run.

The harness's own interpreter may sit where an unprivileged sample uid cannot reach it (under a
mode-700 /root, say), so candidates are tried inside the sandbox, in order of preference.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence

from evals.errors import EvalError
from evals.sandbox import Program, Sandbox

_SYSTEM_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")
# Benchmarks need only the standard library: isolated mode, no site-packages.
PYTHON_FLAGS = ("-I", "-S")


def executables_named(name: str) -> list[str]:
    """Every executable file called `name` on PATH and in the system directories, in search order."""
    directories = [*os.environ.get("PATH", "").split(os.pathsep), *_SYSTEM_DIRS]
    found: dict[str, str] = {}
    for directory in filter(None, directories):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            found.setdefault(os.path.realpath(path), path)
    return list(found.values())


def find_runnable(sandbox: Sandbox, candidates: Iterable[str], check_args: Sequence[str]) -> str:
    """The first candidate for which `candidate *check_args` succeeds inside the sandbox."""
    tried = []
    for candidate in dict.fromkeys(candidates):
        if sandbox.run(Program((candidate, *check_args))).passed:
            return candidate
        tried.append(candidate)
    raise EvalError(f"no executable among {tried} runs inside the sandbox")


def find_tool(sandbox: Sandbox, name: str, check_args: Sequence[str], install_hint: str) -> str:
    """The first `name` on this machine that runs inside the sandbox; a one-line error with
    `install_hint` (e.g. "apt-get install rustc") when there is none."""
    candidates = executables_named(name)
    if not candidates:
        raise EvalError(f"{name} not found: {install_hint}")
    try:
        return find_runnable(sandbox, candidates, check_args)
    except EvalError as error:
        raise EvalError(
            f"{error} (the sandbox's unprivileged uid needs one: {install_hint})"
        ) from None


def sandbox_python(sandbox: Sandbox) -> str:
    """A Python the sandbox's sample uid can run: this one's base interpreter if reachable, else
    another of the same version, else any python3."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        os.path.join(sys.base_prefix, "bin", version),
        *executables_named(version),
        *executables_named("python3"),
    ]
    return find_runnable(sandbox, candidates, [*PYTHON_FLAGS, "-c", "import ast"])
