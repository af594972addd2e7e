"""Which specialist answers which language: loaded models by language, with nearest-language
fallback routing.

A specialist is a local run directory or an OpenAI-compatible endpoint (endpoint_completer.py).

A language's prompt format (line comment, file extension) and the check of what its specialist
writes come from orchestrator/languages.py (a specialist's own `LANGUAGE`, or the table of
languages without one). A language with no model loaded is answered by the nearest one that has
one (its `nearest`), else by the default language, and the route says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from core.completion import Completer
from core.layout import default_run_dir
from orchestrator.endpoint_completer import EndpointCompleter, EndpointError, EndpointSpec
from orchestrator.languages import KnownLanguage, canonical_language, known_languages
from orchestrator.sharing import CoalescingModel, SerialModel
from specialists.languages import discover


class RegistryError(ValueError):
    """A specialist that cannot be registered; the message names the language or flag."""


@dataclasses.dataclass(frozen=True)
class SpecialistEntry:
    """A loaded specialist; `model` is safe to call from many threads (see sharing.py)."""

    language: KnownLanguage
    model: Completer


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
        return stem + self.entry.language.extensions[0]


def known_language(name: str) -> KnownLanguage:
    """The table entry of a language name or alias."""
    language = known_languages().get(canonical_language(name))
    if language is None:
        raise RegistryError(
            f"unknown language {name!r}: no specialists/{name} package and not among the "
            "orchestrator's other languages (orchestrator/languages.py)"
        )
    return language


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
        known = known_languages().get(language)
        candidates = known.nearest if known else ()
        nearest = next((n for n in candidates if n in self.entries), self.default_language)
        note = (
            f"no {language} specialist: {language} parts are written by the {nearest} "
            "specialist" + (" (nearest available)" if nearest in candidates else " (the default)")
        )
        return Route(language, self.entries[nearest], note)

    def fallback_notes(self, languages: Iterable[str]) -> list[str]:
        """The notes of the fallback routes among `languages`, once each, in order."""
        notes = (self.route(language).note for language in languages)
        return list(dict.fromkeys(note for note in notes if note))


def build_registry(
    models: Mapping[str, Completer],
    default_language: str = "python",
    coalesce_prompts: int = 0,
) -> Registry:
    """A registry over loaded `models` keyed by language name (aliases allowed).

    With `coalesce_prompts`, concurrent calls on a local model are merged up to that many
    prompts (CoalescingModel); otherwise each runs one call at a time (SerialModel). An
    EndpointCompleter is used as it is: its server batches concurrent requests itself.
    """
    entries = {}
    for name, model in models.items():
        language = known_language(name)
        if isinstance(model, EndpointCompleter):
            shared: Completer = model
        elif coalesce_prompts:
            shared = CoalescingModel(model, coalesce_prompts)
        else:
            shared = SerialModel(model)
        entries[language.name] = SpecialistEntry(language, shared)
    return Registry(entries, default_language)


SpecialistSource = Path | EndpointSpec


def parse_specialist_flags(flags: Sequence[str]) -> dict[str, SpecialistSource]:
    """`LANG=RUN_DIR` and `LANG=URL[#MODEL]` flags as {canonical language: source}."""
    sources: dict[str, SpecialistSource] = {}
    for flag in flags:
        language, sep, source = flag.partition("=")
        source = source.strip()
        if not sep or not language.strip() or not source:
            raise RegistryError(f"--specialist {flag!r}: expected LANGUAGE=RUN_DIR or LANGUAGE=URL")
        if source.startswith(("http://", "https://")):
            try:
                sources[canonical_language(language)] = EndpointSpec.parse(source)
            except EndpointError as error:
                raise RegistryError(f"--specialist {flag!r}: {error}") from None
        else:
            sources[canonical_language(language)] = Path(source)
    return sources


def default_run_dirs(preset: str = "test") -> dict[str, Path]:
    """Where each specialist's train job writes a preset's run by default, for the runs that
    exist."""
    candidates = {name: default_run_dir(name, preset) for name in discover()}
    return {language: path for language, path in candidates.items() if path.is_dir()}
