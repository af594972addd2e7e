"""The language filter: the file must parse with the language's tree-sitter grammar, no error nodes."""

from __future__ import annotations

from data_tools.tree_sitter_filter import syntax_drop_reason
from specialists.template.config import GRAMMAR


def drop_reason(text: str) -> str | None:
    """None for code that parses; otherwise "too_large", "parse_timeout" or "syntax_error"."""
    return syntax_drop_reason(text, GRAMMAR)
