"""Find an interpreter or compiler that sandboxed samples can actually run.

The harness's own interpreter may sit where an unprivileged sample uid cannot reach it (under a
mode-700 /root, say), so candidates are tried inside the sandbox, in order of preference.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from evals.errors import EvalError
from evals.sandbox import Program, Sandbox

_SYSTEM_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")


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
