"""Which specialist answers which language: discovered from specialists/*, loaded from run dirs.

Every `specialists/<lang>/specialist.py` defines `SPECIALIST` (specialists.job.Specialist); its
LanguageSpec gives the prompt format (line comment, file extension) and its `syntax_ok` checks the
parts it writes. A checkpoint may also be registered for a language with no specialist package;
then the orchestrator's own language and parser tables stand in. A language with no checkpoint
is answered by the nearest one that has one (languages.NEAREST), and the route says so.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from orchestrator.languages import BY_NAME, NEAREST, canonical_language
from orchestrator.sharing import CoalescingModel, SerialModel, SpecialistModel
from orchestrator.syntax import SyntaxCheck, syntax_check
from specialists.job import Specialist

SPECIALISTS_PACKAGE = "specialists"
NOT_A_LANGUAGE = {"template"}  # specialists/template is the copyable example, not a language


class RegistryError(ValueError):
    """A specialist that cannot be registered; the message names the language or flag."""


@dataclasses.dataclass(frozen=True)
class LanguageProfile:
    """How to prompt a language's specialist and check what it writes."""

    name: str
    extension: str
    line_comment: str
    syntax_ok: SyntaxCheck | None  # None: no parser known for this language


@dataclasses.dataclass(frozen=True)
class SpecialistEntry:
    """A loaded specialist; `model` is safe to call from many threads (see sharing.py)."""

    profile: LanguageProfile
    model: SerialModel | CoalescingModel


@dataclasses.dataclass(frozen=True)
class Route:
    """The specialist that answers a requested language; `note` says when it is a fallback."""

    requested: str
    entry: SpecialistEntry
    note: str | None = None

    def file_name(self, planned: str) -> str:
        """The planned file name, with the answering language's extension after a fallback."""
        if self.note is None:
            return planned
        stem = planned.rpartition(".")[0] or planned
        return stem + self.entry.profile.extension


def discover_specialists() -> dict[str, Specialist]:
    """Every `specialists/<dir>/specialist.py`'s SPECIALIST, keyed by canonical language name."""
    spec = importlib.util.find_spec(SPECIALISTS_PACKAGE)
    roots = list(spec.submodule_search_locations or []) if spec else []
    found: dict[str, Specialist] = {}
    for root in roots:
        for module_file in sorted(Path(root).glob("*/specialist.py")):
            directory = module_file.parent.name
            if directory in NOT_A_LANGUAGE:
                continue
            module = importlib.import_module(f"{SPECIALISTS_PACKAGE}.{directory}.specialist")
            specialist: Specialist = module.SPECIALIST
            found[canonical_language(specialist.language.name)] = specialist
    return found


def language_profile(language: str, specialists: Mapping[str, Specialist]) -> LanguageProfile:
    """The profile of a canonical language: from its specialist, else the built-in tables."""
    specialist = specialists.get(language)
    if specialist is not None:
        spec = specialist.language
        return LanguageProfile(
            language, spec.extensions[0], spec.line_comment, specialist.syntax_ok
        )
    known = BY_NAME.get(language)
    if known is None:
        raise RegistryError(
            f"unknown language {language!r}: no specialists/{language} package "
            "and not in orchestrator/languages.py"
        )
    return LanguageProfile(
        language, known.extensions[0], known.line_comment, syntax_check(language)
    )


class Registry:
    """Loaded specialists by canonical language, with nearest-language fallback routing."""

    def __init__(self, entries: Mapping[str, SpecialistEntry], default_language: str) -> None:
        if not entries:
            raise RegistryError("no specialist checkpoints registered")
        self.entries = dict(entries)
        default = canonical_language(default_language)
        self.default_language = default if default in self.entries else next(iter(self.entries))

    @property
    def languages(self) -> list[str]:
        """Languages with a loaded specialist, in registration order."""
        return list(self.entries)

    def route(self, language: str) -> Route:
        """The specialist for `language`, or the nearest available one with a note saying so."""
        language = canonical_language(language)
        if language in self.entries:
            return Route(language, self.entries[language])
        nearest = next(
            (n for n in NEAREST.get(language, ()) if n in self.entries), self.default_language
        )
        note = (
            f"no {language} specialist: {language} parts are written by the {nearest} "
            "specialist"
            + (" (nearest available)" if nearest in NEAREST.get(language, ()) else " (the default)")
        )
        return Route(language, self.entries[nearest], note)

    def fallback_notes(self, languages: Iterable[str]) -> list[str]:
        """The notes of the fallback routes among `languages`, once each, in order."""
        notes = (self.route(language).note for language in languages)
        return list(dict.fromkeys(note for note in notes if note))


def build_registry(
    models: Mapping[str, SpecialistModel],
    specialists: Mapping[str, Specialist],
    default_language: str = "python",
    coalesce_prompts: int = 0,
) -> Registry:
    """A registry over loaded `models` keyed by language name (aliases allowed).

    With `coalesce_prompts`, concurrent calls on a model are merged up to that many prompts
    (CoalescingModel); otherwise each model runs one call at a time (SerialModel).
    """
    entries = {}
    for name, model in models.items():
        language = canonical_language(name)
        shared = (
            CoalescingModel(model, coalesce_prompts) if coalesce_prompts else SerialModel(model)
        )
        entries[language] = SpecialistEntry(language_profile(language, specialists), shared)
    return Registry(entries, default_language)


def parse_specialist_flags(flags: Sequence[str]) -> dict[str, Path]:
    """`lang=run_dir` flags as {canonical language: run dir}."""
    run_dirs: dict[str, Path] = {}
    for flag in flags:
        language, sep, path = flag.partition("=")
        if not sep or not language.strip() or not path.strip():
            raise RegistryError(f"--specialist {flag!r}: expected LANGUAGE=RUN_DIR")
        run_dirs[canonical_language(language)] = Path(path.strip())
    return run_dirs


def default_run_dirs(
    specialists: Mapping[str, Specialist], config: str = "test"
) -> dict[str, Path]:
    """Where each discovered specialist's train job writes by default, for the runs that exist."""
    candidates = {
        language: Path("outputs") / f"{specialist.language.name}-{config}"
        for language, specialist in specialists.items()
    }
    return {language: path for language, path in candidates.items() if path.is_dir()}
