"""Parser-based syntax checks for known languages: ast, sqlglot and tree-sitter.

Used when a language's specialist brings no `syntax_ok` of its own (a checkpoint registered for a
language that has no specialists/<lang> package).
"""

from __future__ import annotations

import ast
import functools
import warnings
from collections.abc import Callable

import sqlglot
import tree_sitter
from sqlglot import exp
from sqlglot.errors import SqlglotError
from tree_sitter_languages import get_language

SyntaxCheck = Callable[[str], bool]

# Canonical language name -> tree-sitter-languages grammar name.
_TREE_SITTER_GRAMMARS = {
    "rust": "rust",
    "javascript": "javascript",
    "typescript": "typescript",
    "go": "go",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
    "bash": "bash",
    "ruby": "ruby",
}


def python_ok(code: str) -> bool:
    """Whether `code` parses as Python."""
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def sql_ok(code: str) -> bool:
    """Whether `code` parses as SQL statements (sqlglot's fallback to opaque commands fails)."""
    try:
        statements = sqlglot.parse(code)
    except SqlglotError:
        return False
    parsed = [statement for statement in statements if statement is not None]
    return bool(parsed) and not any(isinstance(s, exp.Command) for s in parsed)


@functools.cache
def _grammar(name: str) -> tree_sitter.Language:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # tree-sitter 0.21's Language(path) note
        return get_language(name)


def tree_sitter_check(grammar: str) -> SyntaxCheck:
    """A check that parses with tree-sitter's `grammar` and fails on any error node."""

    def check(code: str) -> bool:
        parser = tree_sitter.Parser()  # one per call: parsers are not shared across threads
        parser.set_language(_grammar(grammar))
        return not parser.parse(code.encode("utf-8")).root_node.has_error

    return check


def syntax_check(language: str) -> SyntaxCheck | None:
    """The parser-based check for a canonical language name, or None when none is known."""
    if language == "python":
        return python_ok
    if language == "sql":
        return sql_ok
    grammar = _TREE_SITTER_GRAMMARS.get(language)
    return tree_sitter_check(grammar) if grammar else None
