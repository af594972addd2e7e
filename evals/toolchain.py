"""Find an interpreter or compiler that sandboxed samples can actually run.

The harness's own interpreter may sit where an unprivileged sample uid cannot reach it (under a
mode-700 /root, say), so candidates are tried inside the sandbox, in order of preference. A tool
that knows where its real toolchain lives (rustc's sysroot behind a rustup proxy) can instead have
that directory exposed read-only inside the sandbox and run from there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from evals.errors import EvalError
from evals.sandbox import Program, Sandbox

_SYSTEM_DIRS = ("/usr/local/bin", "/usr/bin", "/bin")
# Benchmarks need only the standard library: isolated mode, no site-packages.
PYTHON_FLAGS = ("-I", "-S")
# host executable -> (the toolchain directory to expose, the executable relative to it), or None
ToolRoot = Callable[[str], tuple[str, str] | None]


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


def find_tool(
    sandbox: Sandbox,
    name: str,
    check_args: Sequence[str],
    install_hint: str,
    tool_root: ToolRoot | None = None,
) -> str:
    """The first `name` on this machine that runs inside the sandbox, as the sandbox sees it; a
    one-line error with `install_hint` (e.g. "apt-get install rustc") when there is none.

    When no candidate runs as it is, `tool_root` finds each one's toolchain directory, which is
    exposed read-only in the sandbox (where namespaces allow) so that its executable runs there."""
    candidates = executables_named(name)
    if not candidates:
        raise EvalError(f"{name} not found: {install_hint}")
    tried = list(candidates)
    try:
        return find_runnable(sandbox, candidates, check_args)
    except EvalError:
        pass
    if tool_root is not None and sandbox.protections.namespaces:
        roots = filter(None, map(tool_root, candidates))
        for root, executable in dict.fromkeys(roots):
            try:
                inside = str(Path(sandbox.expose(root)) / executable)
            except EvalError as error:
                tried.append(f"{Path(root) / executable} ({error})")
                continue
            if sandbox.run(Program((inside, *check_args))).passed:
                return inside
            tried.append(f"{inside} (exposed {Path(root) / executable})")
    raise EvalError(
        f"no executable among {tried} runs inside the sandbox "
        f"(the sandbox's unprivileged uid needs one: {install_hint})"
    )


def sysroot_tool_root(name: str) -> ToolRoot:
    """A ToolRoot for a tool that prints its toolchain with `--print sysroot` (rustc): the sysroot,
    and `bin/<name>` in it, which is the real compiler even where `candidate` is a rustup proxy."""

    def tool_root(candidate: str) -> tuple[str, str] | None:
        try:
            # On the host, with the harness's environment: rustup finds its toolchains by it.
            completed = subprocess.run(
                [candidate, "--print", "sysroot"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        sysroot = completed.stdout.strip()
        executable = os.path.join("bin", name)
        found = os.path.isabs(sysroot) and os.path.isfile(os.path.join(sysroot, executable))
        if completed.returncode != 0 or not found:
            return None
        return sysroot, executable

    return tool_root


# Rust: `find_tool(sandbox, "rustc", ["--version"], hint, tool_root=rustc_root)`.
rustc_root = sysroot_tool_root("rustc")


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
