"""The JavaScript specialist as the shared jobs see it: data spec, syntax check, sample prompts."""

from __future__ import annotations

from data_tools.tree_sitter_filter import parses
from specialists.job import Specialist
from specialists.js.corpus import JAVASCRIPT
from specialists.js.filters import GRAMMAR


def js_syntax_ok(code: str) -> bool:
    """Whether `code` parses as JavaScript."""
    return parses(code, GRAMMAR)


SAMPLE_PROMPTS = (
    "/**\n * Returns the n-th Fibonacci number.\n */\nfunction fibonacci(n) {\n",
    "const fs = require('fs');\nconst path = require('path');\n\nfunction listJsFiles(root) {\n",
    "class Stack {\n  constructor() {\n",
    "// Whether text reads the same backwards.\nfunction isPalindrome(text) {\n",
    "async function fetchJson(url) {\n",
    "export function mergeSorted(a, b) {\n  const result = [];\n",
)

SPECIALIST = Specialist(language=JAVASCRIPT, syntax_ok=js_syntax_ok, sample_prompts=SAMPLE_PROMPTS)
