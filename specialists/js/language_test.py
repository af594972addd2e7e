"""The JavaScript language: hand-written code that parses is kept; bundles, minified and compiled
output and syntax errors are dropped; the train job on a small JavaScript corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from specialists.js.language import LANGUAGE, drop_reason
from specialists.testing import check_train_job

VALID = "const add = (a, b) => a + b;\nclass Box {\n  #value = 1;\n  get value() { return this.#value; }\n}\n"
JSX = 'export function Hello({ name }) {\n  return <div className="hi">Hello {name}</div>;\n}\n'
MINIFIED = "var a=1;" + "function f(b){return b*2}" * 40 + "\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (VALID, None),
        (JSX, None),
        (VALID + "//# sourceMappingURL=index.js.map\n", "compiled_output"),
        ("/******/ (() => { var __webpack_require__ = {}; })();\n", "bundle"),
        (MINIFIED, "minified"),
        ("function broken( {\n", "syntax_error"),
    ],
)
def test_filter(text: str, reason: str | None) -> None:
    assert drop_reason(text) == reason


def js_module(seed: int) -> str:
    """A distinct valid JavaScript module."""
    functions = "".join(
        f"/** Scales by {seed * 7 + index}. */\nexport function scale{seed}_{index}(values) {{\n"
        f"  return values.map((v) => v * {seed * 7 + index} + {index});\n}}\n\n"
        for index in range(8)
    )
    return f"import {{ readFile }} from 'node:fs/promises';\n\n{functions}"


def test_train_job_on_a_small_js_corpus(tmp_path: Path) -> None:
    modules = [js_module(seed) for seed in range(12)]
    check_train_job(LANGUAGE, tmp_path, modules, js_module(99) + "function broken( {\n")
