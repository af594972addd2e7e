"""The JavaScript language filter: no bundles, minified or compiled output, and a clean parse
with tree-sitter's JavaScript grammar (which covers JSX)."""

from __future__ import annotations

import re

from data_tools.tree_sitter_filter import syntax_drop_reason

GRAMMAR = "javascript"
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


def js_drop_reason(text: str) -> str | None:
    """None for hand-written JavaScript that parses; otherwise "compiled_output", "bundle",
    "minified", "too_large", "parse_timeout" or "syntax_error"."""
    if _SOURCE_MAP.search(text):
        return "compiled_output"
    if any(marker in text for marker in _BUNDLER_MARKERS):
        return "bundle"
    if minified_share(text) > MAX_MINIFIED_SHARE:
        return "minified"
    return syntax_drop_reason(text, GRAMMAR)
