"""The languages requests can name: every specialist's (from its package, specialists/languages.py)
and a few more that have no specialist, so a request for them can be routed to the nearest one.

A specialist's facts (words that name it, extensions, comment syntax, syntax check, fallbacks)
come only from its `LANGUAGE`; the table below holds languages without a package, and a package
of the same name replaces its row.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from data_tools.tree_sitter_filter import parses
from specialists.languages import discover


@dataclasses.dataclass(frozen=True)
class KnownLanguage:
    """One language as requests name it, as its files look, and whom to ask in its place."""

    name: str  # canonical name: plans, routes and code fences use it
    words: tuple[str, ...]  # lower-case words or phrases that name it in a request
    extensions: tuple[str, ...]  # the first is used for suggested file names
    line_comment: str
    syntax_ok: Callable[[str], bool] | None  # None: no parser known
    nearest: tuple[str, ...] = ()  # who answers when it has no specialist loaded, nearest first
    case_sensitive_words: tuple[str, ...] = ()  # names that are also common English words


def _tree_sitter(grammar: str) -> Callable[[str], bool]:
    return functools.partial(parses, grammar=grammar)


OTHER_LANGUAGES: tuple[KnownLanguage, ...] = (
    KnownLanguage("typescript", ("typescript", "ts", "tsx"), (".ts", ".tsx"), "//",
                  _tree_sitter("typescript"), ("js",)),
    KnownLanguage("go", ("golang",), (".go",), "//", _tree_sitter("go"), ("rust", "c", "js"),
                  case_sensitive_words=("Go",)),
    KnownLanguage("java", ("java", "maven"), (".java",), "//", _tree_sitter("java"),
                  ("js", "rust")),
    KnownLanguage("c", (), (".c", ".h"), "//", _tree_sitter("c"), ("cpp", "rust", "go"),
                  case_sensitive_words=("C",)),
    KnownLanguage("cpp", ("c++", "cpp"), (".cpp", ".hpp", ".cc"), "//", _tree_sitter("cpp"),
                  ("c", "rust", "go")),
    KnownLanguage("bash", ("bash", "shell", "shell script"), (".sh",), "#", _tree_sitter("bash"),
                  ("python",)),
    KnownLanguage("ruby", ("ruby",), (".rb",), "#", _tree_sitter("ruby"), ("python",)),
)  # fmt: skip


@functools.cache
def known_languages() -> dict[str, KnownLanguage]:
    """Every language requests can name, by canonical name: the specialists' first."""
    table = {
        language.name: KnownLanguage(
            name=language.name,
            words=(language.name, *language.aliases),
            extensions=language.extensions,
            line_comment=language.line_comment,
            syntax_ok=language.syntax_ok,
            nearest=language.nearest,
            case_sensitive_words=language.case_sensitive_aliases,
        )
        for language in discover().values()
    }
    return table | {other.name: other for other in OTHER_LANGUAGES if other.name not in table}


def canonical_language(name: str) -> str:
    """The canonical name for `name` or any word naming a language (any case); unknown names are
    kept, lower-cased."""
    lowered = name.strip().lower()
    for language in known_languages().values():
        words = (*language.words, *(word.lower() for word in language.case_sensitive_words))
        if lowered == language.name or lowered in words:
            return language.name
    return lowered


def extension_language(extension: str) -> str | None:
    """The language whose files end in `extension` (with its dot), if one is known."""
    return next(
        (
            language.name
            for language in known_languages().values()
            if extension.lower() in language.extensions
        ),
        None,
    )
