"""The languages of the factory: every `specialists/<name>/language.py` and its `LANGUAGE`.

Adding a language is adding its package (`./pants run specialists/template:new`); everything
that needs the list of languages (the generic commands, the orchestrator's routing) asks here.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from pathlib import Path

from core.language import Language

PACKAGE = "specialists"


class UnknownLanguageError(ValueError):
    """A language name that no specialist package answers to."""


@functools.cache
def discover() -> dict[str, Language]:
    """Every specialist package's LANGUAGE, by name, in package-name order.

    A package's name must be its language's name: specialists/<name>/language.py.
    """
    spec = importlib.util.find_spec(PACKAGE)
    roots = list(spec.submodule_search_locations or []) if spec else []
    found: dict[str, Language] = {}
    for module_file in sorted(path for root in roots for path in Path(root).glob("*/language.py")):
        package = module_file.parent.name
        language = importlib.import_module(f"{PACKAGE}.{package}.language").LANGUAGE
        if language.name != package:
            raise ValueError(
                f"{module_file}: LANGUAGE.name is {language.name!r}, the package is {package!r}"
            )
        found[language.name] = language
    return found


def language_named(name: str) -> Language:
    """The language called `name` or one of its aliases (any case)."""
    wanted = name.strip().lower()
    for language in discover().values():
        if wanted == language.name or wanted in language.aliases:
            return language
        if wanted in (alias.lower() for alias in language.case_sensitive_aliases):
            return language
    raise UnknownLanguageError(
        f"--language {name!r}: no specialists/<name> package for it; "
        f"languages: {', '.join(discover())}"
    )
