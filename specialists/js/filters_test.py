"""The JavaScript filter: hand-written code that parses is kept; bundles, minified and compiled
output and syntax errors are dropped."""

from __future__ import annotations

import pytest

from specialists.js.filters import js_drop_reason

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
    assert js_drop_reason(text) == reason
