"""The specialist as the shared jobs see it: data spec, syntax check, sample prompts.

The sample prompts are task descriptions in comments; write prompts in the language's idiom.
"""

from __future__ import annotations

from data_tools.tree_sitter_filter import parses
from specialists.job import Specialist
from specialists.template.config import GRAMMAR, LINE_COMMENT
from specialists.template.corpus import LANGUAGE


def syntax_ok(code: str) -> bool:
    """Whether `code` parses with the language's grammar."""
    return parses(code, GRAMMAR)


SAMPLE_PROMPTS = tuple(
    f"{LINE_COMMENT} {task}\n"
    for task in (
        "Return the n-th Fibonacci number.",
        "Check whether a string reads the same backwards.",
        "Merge two sorted lists into one sorted list.",
        "Count how often each word occurs in a text.",
    )
)

SPECIALIST = Specialist(language=LANGUAGE, syntax_ok=syntax_ok, sample_prompts=SAMPLE_PROMPTS)
