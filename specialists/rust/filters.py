"""The Rust language filter: the file must parse with tree-sitter's Rust grammar, no error nodes."""

from __future__ import annotations

from data_tools.tree_sitter_filter import syntax_drop_reason

GRAMMAR = "rust"


def rust_drop_reason(text: str) -> str | None:
    """None for Rust that parses; otherwise "too_large", "parse_timeout" or "syntax_error"."""
    return syntax_drop_reason(text, GRAMMAR)
