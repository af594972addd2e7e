"""MultiPL-E HumanEval-rs for the Rust specialist: each program is compiled by `rustc` in the sandbox
(under the build timeout) and the binary runs under the run timeout; std only, no Cargo."""

from __future__ import annotations

from evals.errors import EvalError
from evals.multipl_e import LanguageRunner, multipl_e_suite
from evals.sandbox import Limits, Program, Sandbox
from evals.toolchain import find_tool, rustc_root
from specialists.rust.language import LANGUAGE

BENCHMARK = "humaneval-rs"
DATA_FILE = "multiple-humaneval-rs/humaneval-rs.jsonl"
INSTALL_HINT = "install it with `apt-get install rustc`"
# rustc reserves about 2 GiB of address space and runs several threads plus the linker.
LIMITS = Limits(timeout=10, build_timeout=60, memory_mb=4096, max_processes=32)


def with_marker(source: str, marker: str) -> str:
    """`source` with `marker` printed at the end of `main`, which closes the program."""
    body = source.rstrip()
    if not body.endswith("}"):
        raise EvalError("a HumanEval-rs program must end with the closing brace of main")
    return f'{body[:-1]}    println!("{marker}");\n}}\n'


def find_rustc(sandbox: Sandbox) -> str:
    """A rustc the sandbox's uid can run: one on PATH, or the real toolchain behind a rustup
    proxy (under a private home, say) exposed to the sandbox read-only."""
    return find_tool(sandbox, "rustc", ["--version"], INSTALL_HINT, tool_root=rustc_root)


def rust_runner(rustc: str) -> LanguageRunner:
    """Programs compiled with `rustc` (edition 2021, warnings off) as the build step, then run."""

    def program(source: str) -> Program:
        build = (rustc, "--edition", "2021", "-A", "warnings", "-o", "main", "main.rs")
        return Program(("./main",), {"main.rs": source}, build=build)

    return LanguageRunner(with_marker, program, LANGUAGE.syntax_ok)


SUITE = multipl_e_suite(BENCHMARK, DATA_FILE, find_rustc, rust_runner, LIMITS)
