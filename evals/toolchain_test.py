"""Finding an executable that sandboxed samples can run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.errors import EvalError
from evals.sandbox import Sandbox
from evals.toolchain import executables_named, find_runnable, find_tool, sandbox_python


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=1) as box:
        yield box


def test_executables_named_finds_each_real_file_once() -> None:
    found = executables_named("sh")
    assert found and all(Path(path).name == "sh" for path in found)
    assert len({Path(path).resolve() for path in found}) == len(found)


def test_find_runnable_skips_candidates_that_fail_in_the_sandbox(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o755)
    candidates = [str(tmp_path / "absent"), str(failing), "/bin/sh"]
    assert find_runnable(sandbox, candidates, ["-c", "true"]) == "/bin/sh"


def test_find_runnable_names_what_it_tried(sandbox: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(EvalError, match=r"no executable among .*absent.* runs inside the sandbox"):
        find_runnable(sandbox, [str(tmp_path / "absent")], [])


def test_find_tool_says_how_to_install_a_missing_tool(sandbox: Sandbox) -> None:
    assert find_tool(sandbox, "sh", ["-c", "true"], "apt-get install dash") in executables_named(
        "sh"
    )
    with pytest.raises(EvalError, match=r"^no-such-tool not found: apt-get install it$"):
        find_tool(sandbox, "no-such-tool", [], "apt-get install it")


def test_sandbox_python_runs_isolated(sandbox: Sandbox) -> None:
    assert Path(sandbox_python(sandbox)).name.startswith("python3")
