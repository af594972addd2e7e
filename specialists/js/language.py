"""JavaScript: hand-written source only (no bundles, minified or compiled output), and a clean
parse with tree-sitter's JavaScript grammar (which covers JSX).

The default corpus is JavaScript already on the machine: globally installed packages
(`npm root -g`: npm's own tree and its dependencies), Debian's packaged modules and any
node_modules under the current directory. Its benchmark is MultiPL-E HumanEval-js
(benchmarks.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.language import Language
from data_tools.local_roots import command_output, require_roots
from data_tools.tree_sitter_filter import syntax_drop_reason

GRAMMAR = "javascript"
INSTALL_HINT = "install some with `apt-get install npm` (or `npm install -g PACKAGE`)"
# Lines this long are machine-written; when they hold most of a file, the file is minified.
MINIFIED_LINE_CHARS = 300
MAX_MINIFIED_SHARE = 0.5
# A source-map reference marks the output of a compiler or bundler, not the source it came from.
_SOURCE_MAP = re.compile(r"^\s*//[#@]\s*sourceMappingURL=", re.MULTILINE)
_BUNDLER_MARKERS = (
    "__webpack_require__", "webpackBootstrap", "webpackChunk", "parcelRequire",
    "__commonJS(", "__toESM(", "System.register(", "For license information please see",
)  # fmt: skip


def minified_share(text: str) -> float:
    """The fraction of `text`'s characters that sit on lines of MINIFIED_LINE_CHARS or more."""
    long_chars = sum(len(line) for line in text.splitlines() if len(line) >= MINIFIED_LINE_CHARS)
    return long_chars / max(len(text), 1)


def drop_reason(text: str) -> str | None:
    """None for hand-written JavaScript that parses; otherwise "compiled_output", "bundle",
    "minified", "too_large", "parse_timeout" or "syntax_error"."""
    if _SOURCE_MAP.search(text):
        return "compiled_output"
    if any(marker in text for marker in _BUNDLER_MARKERS):
        return "bundle"
    if minified_share(text) > MAX_MINIFIED_SHARE:
        return "minified"
    return syntax_drop_reason(text, GRAMMAR)


def syntax_check(code: str) -> bool:
    """Whether `code` parses as JavaScript (generated code is judged by its grammar alone)."""
    return syntax_drop_reason(code, GRAMMAR) is None


def candidate_roots() -> list[Path]:
    """Where JavaScript packages usually lie, whether or not they exist here."""
    global_root = command_output(["npm", "root", "-g"])
    return [
        *([Path(global_root)] if global_root else []),
        Path("/usr/lib/node_modules"),
        Path("/usr/local/lib/node_modules"),
        Path("/usr/share/nodejs"),
        Path.cwd() / "node_modules",
    ]


def default_roots() -> list[Path]:
    """The existing JavaScript package trees, or a one-line error saying how to get one."""
    return require_roots("JavaScript", candidate_roots(), INSTALL_HINT)


def benchmarks() -> Any:
    """MultiPL-E HumanEval-js (imported only when evaluating)."""
    from specialists.js.benchmarks import SUITE

    return SUITE


LANGUAGE = Language(
    name="js",
    extensions=(".js", ".mjs", ".cjs", ".jsx"),
    line_comment="//",
    drop_reason=drop_reason,
    default_roots=default_roots,
    sample_prompts=(
        "/**\n * Returns the n-th Fibonacci number.\n */\nfunction fibonacci(n) {\n",
        "const fs = require('fs');\nconst path = require('path');\n\nfunction listJsFiles(root) {\n",
        "class Stack {\n  constructor() {\n",
        "// Whether text reads the same backwards.\nfunction isPalindrome(text) {\n",
        "async function fetchJson(url) {\n",
        "export function mergeSorted(a, b) {\n  const result = [];\n",
    ),
    aliases=("javascript", "nodejs", "node.js", "react", "npm", "jsx"),
    nearest=("typescript",),
    syntax_check=syntax_check,
    benchmarks=benchmarks,
    infill_sample=(
        "// The arithmetic mean of values.\nfunction mean(values) {\n  const total = ",
        ";\n  return total / values.length;\n}\n",
    ),
)
