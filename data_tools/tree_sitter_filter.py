"""Syntax filters on tree-sitter grammars: a file is kept when it parses without ERROR or MISSING
nodes. Each thread (of each worker process) builds one parser per grammar, with a time limit per
file: a tree-sitter parser must not be shared between threads (the orchestrator checks parts in
a thread pool)."""

from __future__ import annotations

import threading
import warnings

from tree_sitter import Parser
from tree_sitter_languages import get_parser

MAX_PARSE_CHARS = 1_000_000
PARSE_TIMEOUT_MICROS = 5_000_000


class GrammarError(ValueError):
    """A grammar name that tree-sitter-languages does not ship."""


_parsers = threading.local()


def tree_sitter_parser(grammar: str) -> Parser:
    """This thread's parser for `grammar` (a tree-sitter-languages name, e.g. "rust")."""
    cache: dict[str, Parser] = _parsers.__dict__.setdefault("by_grammar", {})
    if grammar not in cache:
        cache[grammar] = _new_parser(grammar)
    return cache[grammar]


def _new_parser(grammar: str) -> Parser:
    with warnings.catch_warnings():  # tree-sitter-languages uses a deprecated Language() form.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            parser = get_parser(grammar)
        except (AttributeError, OSError):
            raise GrammarError(f"tree-sitter-languages has no grammar {grammar!r}") from None
    parser.set_timeout_micros(PARSE_TIMEOUT_MICROS)
    return parser


def parses(text: str, grammar: str) -> bool:
    """Whether `text` parses under `grammar` with no error or missing node."""
    return syntax_drop_reason(text, grammar) is None


def syntax_drop_reason(text: str, grammar: str) -> str | None:
    """None when `text` parses cleanly; else "too_large", "parse_timeout" or "syntax_error"."""
    if len(text) > MAX_PARSE_CHARS:
        return "too_large"
    parser = tree_sitter_parser(grammar)
    try:
        tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    except ValueError:  # the time limit struck: forget the half-done parse
        parser.reset()
        return "parse_timeout"
    return "syntax_error" if tree.root_node.has_error else None
