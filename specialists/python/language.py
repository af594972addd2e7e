"""Python: the first specialist's language.

The data filter rejects pathological input before `ast.parse` (deep indentation, sizes that make
the parser's recursion crash a process). The default corpus is the code already on the machine:
the running interpreter's stdlib and site-packages plus the stdlib of every pyenv interpreter
(many versions of the same modules, which exercises near-duplicate removal). Its benchmarks are
HumanEval, MBPP, their EvalPlus versions HumanEval+ and MBPP+, and HumanEval infilling
(benchmarks.py).
"""

from __future__ import annotations

import ast
import os
import re
import sysconfig
import warnings
from pathlib import Path
from typing import Any

from core.language import Language
from data_tools.local_roots import existing_roots

# Indentation this deep means generated or adversarial code; the parser's recursion on such
# input is what can crash a process, so it is rejected before parsing.
MAX_INDENT_COLUMNS = 400
_DEEP_INDENT = re.compile(rb"^[ \t]{%d}" % MAX_INDENT_COLUMNS, re.MULTILINE)
MAX_PARSE_CHARS = 1_000_000


def drop_reason(text: str) -> str | None:
    """None for Python that parses; otherwise "too_large", "too_deeply_nested" or "syntax_error"."""
    if len(text) > MAX_PARSE_CHARS:
        return "too_large"
    if _DEEP_INDENT.search(text.encode("utf-8", "surrogatepass")):
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


def _pyenv_stdlibs() -> list[Path]:
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    return sorted(pyenv_root.glob("versions/*/lib/python3.*"))


def default_roots() -> list[Path]:
    """Existing source roots, without roots nested inside another root: the running stdlib,
    then every pyenv stdlib (near-duplicates across versions come early, so a byte budget still
    sees them), then the running interpreter's site-packages."""
    candidates = [Path(sysconfig.get_path("stdlib")), *_pyenv_stdlibs()]
    candidates += [Path(sysconfig.get_path(name)) for name in ("purelib", "platlib")]
    return existing_roots(candidates)


def benchmarks() -> Any:
    """HumanEval and MBPP (imported only when evaluating)."""
    from specialists.python.benchmarks import SUITE

    return SUITE


LANGUAGE = Language(
    name="python",
    extensions=(".py",),
    line_comment="#",
    drop_reason=drop_reason,
    default_roots=default_roots,
    sample_prompts=(
        'def fibonacci(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n',
        "import os\n\n\ndef list_python_files(root):\n",
        "class Stack:\n    def __init__(self):\n",
        'def is_palindrome(text: str) -> bool:\n    """Check whether text reads the same backwards."""\n',
        "import json\n\n\ndef load_config(path):\n",
        "def merge_sorted(a, b):\n    result = []\n",
    ),
    aliases=("py", "python3", "django", "flask", "fastapi", "pandas", "numpy", "pytest"),
    benchmarks=benchmarks,
    infill_sample=(
        'def mean(values: list[float]) -> float:\n    """The arithmetic mean of values."""\n'
        "    total = ",
        "\n    return total / len(values)\n",
    ),
)
