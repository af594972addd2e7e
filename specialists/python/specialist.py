"""The Python specialist as the shared jobs see it: data spec, syntax check, sample prompts."""

from __future__ import annotations

from specialists.job import Specialist
from specialists.python.corpus import PYTHON
from specialists.python.filters import python_drop_reason


def python_syntax_ok(code: str) -> bool:
    """Whether `code` parses as Python."""
    return python_drop_reason(code) is None


SAMPLE_PROMPTS = (
    'def fibonacci(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n',
    "import os\n\n\ndef list_python_files(root):\n",
    "class Stack:\n    def __init__(self):\n",
    'def is_palindrome(text: str) -> bool:\n    """Check whether text reads the same backwards."""\n',
    "import json\n\n\ndef load_config(path):\n",
    "def merge_sorted(a, b):\n    result = []\n",
)

SPECIALIST = Specialist(language=PYTHON, syntax_ok=python_syntax_ok, sample_prompts=SAMPLE_PROMPTS)
