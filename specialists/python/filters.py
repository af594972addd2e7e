"""The Python language filter: the file must parse with `ast.parse`, without pathological input."""

from __future__ import annotations

import ast
import re
import warnings

# Indentation this deep means generated or adversarial code; the parser's recursion on such
# input is what can crash a process, so it is rejected before parsing.
MAX_INDENT_COLUMNS = 400
_DEEP_INDENT = re.compile(rb"^[ \t]{%d}" % MAX_INDENT_COLUMNS, re.MULTILINE)
MAX_PARSE_CHARS = 1_000_000


def python_drop_reason(text: str) -> str | None:
    """None for Python that parses; otherwise "too_large", "too_deeply_nested" or "syntax_error"."""
    if len(text) > MAX_PARSE_CHARS:
        return "too_large"
    if _DEEP_INDENT.search(text.encode("utf-8")):
        return "too_deeply_nested"
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning for "1if x": noise, not a drop.
            warnings.simplefilter("ignore")
            ast.parse(text)
    except (RecursionError, MemoryError):
        return "too_deeply_nested"
    except (SyntaxError, ValueError):  # ValueError: null bytes in the source.
        return "syntax_error"
    return None
