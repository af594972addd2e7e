"""MultiPL-E HumanEval-js for the JavaScript specialist: each program runs under `node` in the
sandbox; the tests use `node:assert`."""

from __future__ import annotations

import json

from evals.multipl_e import LanguageRunner, multipl_e_suite
from evals.sandbox import Limits, Program, Sandbox
from evals.toolchain import find_tool
from specialists.js.language import LANGUAGE

BENCHMARK = "humaneval-js"
DATA_FILE = "multiple-humaneval-js/humaneval-js.jsonl"
INSTALL_HINT = "install it with `apt-get install nodejs`"
# V8 reserves address space up front and starts worker threads.
LIMITS = Limits(timeout=10, memory_mb=4096, max_processes=32)


def with_marker(source: str, marker: str) -> str:
    """`source` followed by a print of `marker`: reached only when the tests threw nothing."""
    return f"{source}\nconsole.log({json.dumps(marker)});\n"


def find_node(sandbox: Sandbox) -> str:
    """A node the sandbox's uid can run."""
    return find_tool(sandbox, "node", ["--version"], INSTALL_HINT)


def js_runner(node: str) -> LanguageRunner:
    """Programs run with `node`."""

    def program(source: str) -> Program:
        return Program((node, "main.js"), {"main.js": source})

    return LanguageRunner(with_marker, program, LANGUAGE.syntax_ok)


SUITE = multipl_e_suite(BENCHMARK, DATA_FILE, find_node, js_runner, LIMITS)
