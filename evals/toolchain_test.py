"""Finding an executable that sandboxed samples can run."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.errors import EvalError
from evals.sandbox import Limits, Program, Sandbox
from evals.toolchain import (
    ToolRoot,
    executables_named,
    find_runnable,
    find_tool,
    rustc_root,
    sandbox_python,
)

TOOL = "evals-test-tool"
# rustc reserves about 2 GiB of address space and runs several threads plus the linker.
RUST_LIMITS = Limits(timeout=30, build_timeout=300, memory_mb=4096, max_processes=32)
HELLO_RS = 'fn main() {\n    println!("hello from rust");\n}\n'


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


@pytest.fixture()
def proxied_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A TOOL on PATH that fails in the sandbox, like a rustup proxy, and the working toolchain it
    stands for, in a world-readable directory under a mode-700 parent the sample uid cannot pass."""
    tmp_path.chmod(0o700)
    proxy = tmp_path / "proxy" / TOOL
    real = tmp_path / "toolchain" / "bin" / TOOL
    for path, body in ((proxy, "exit 1"), (real, 'echo "real $*"')):
        path.parent.mkdir(parents=True)
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    (tmp_path / "toolchain").chmod(0o755)
    monkeypatch.setenv("PATH", f"{proxy.parent}{os.pathsep}{os.environ['PATH']}")
    return proxy, tmp_path / "toolchain"


def toolchain_of(root: Path) -> ToolRoot:
    """A ToolRoot that maps TOOL to the toolchain at `root`."""

    def tool_root(candidate: str) -> tuple[str, str]:
        assert Path(candidate).name == TOOL
        return str(root), f"bin/{TOOL}"

    return tool_root


def test_find_tool_exposes_the_toolchain_behind_a_proxy(proxied_tool: tuple[Path, Path]) -> None:
    _, root = proxied_tool
    with Sandbox(workers=1) as box:
        if not box.protections.namespaces:
            pytest.fail("this machine has no unshare: mount namespaces are needed to expose")
        found = find_tool(box, TOOL, ["--version"], "apt-get install it", toolchain_of(root))
        assert found == f"{box.exposed[str(root)]}/bin/{TOOL}"
        result = box.run(Program((found, "works")))
    assert result.passed and result.output == "real works\n"


def test_find_tool_without_namespaces_says_how_to_install(
    proxied_tool: tuple[Path, Path],
) -> None:
    proxy, root = proxied_tool
    with Sandbox(workers=1) as box:
        box.protections = dataclasses.replace(box.protections, namespaces=False)
        with pytest.raises(EvalError) as raised:
            find_tool(box, TOOL, ["--version"], "apt-get install it", toolchain_of(root))
        assert box.exposed == {}
    assert str(raised.value) == (
        f"no executable among [{str(proxy)!r}] runs inside the sandbox "
        "(the sandbox's unprivileged uid needs one: apt-get install it)"
    )


def installed_rustc() -> str:
    found = executables_named("rustc")
    if not found:
        pytest.fail("rustc is not on PATH: install rustup (or `apt-get install rustc`)")
    return found[0]


def test_rustc_root_is_the_real_compiler_behind_rustup() -> None:
    rustc = installed_rustc()
    found = rustc_root(rustc)
    assert found is not None, f"`{rustc} --print sysroot` names no toolchain with bin/rustc"
    root, executable = found
    assert executable == "bin/rustc" and (Path(root) / executable).is_file()
    assert rustc_root("/bin/false") is None


def test_rustc_compiles_and_runs_hello_world_in_the_sandbox() -> None:
    installed_rustc()
    with Sandbox(RUST_LIMITS, workers=1) as box:
        rustc = find_tool(box, "rustc", ["--version"], "install rustup", tool_root=rustc_root)
        build = (rustc, "--edition", "2021", "-o", "main", "main.rs")
        result = box.run(Program(("./main",), {"main.rs": HELLO_RS}, build=build))
    assert result.passed, result.output
    assert result.output == "hello from rust\n"
