"""The built-in offline planner: language detection and clause splitting by rules.

A request is cut into sentences and bullet items, then into clauses at conjunctions ("and",
"then", "that", ";" ...). A clause stays a subtask of its own when it names another language,
mentions data storage, or starts with an imperative verb; otherwise it is glued back onto the
previous clause ("a function that parses CSV and returns a dict" stays one subtask). Languages come
from words ("in Rust"), file names ("main.rs"), extensions and code fences; a clause naming none
takes the previous clause's language, then the first language named anywhere, then the default.
A clause about storage ("saves to Postgres") in a programming language becomes a SQL schema plus
database code in that language, and the clause before it uses that code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from orchestrator.languages import extension_language, known_languages
from orchestrator.plan import MAX_SUBTASKS, Plan, PlanError, PlanResult, Subtask

_FENCE = re.compile(r"```([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(])")
_CONJUNCTION = re.compile(
    r"(\s*;\s*(?:(?:and then|and also|and|then|also)\s+)?"
    r"|,?\s+\b(?:and then|and also|and|then|plus|also|that|which)\b\s+)",
    re.IGNORECASE,
)
_FILE_NAME = re.compile(
    r"(?<![\w.])([A-Za-z0-9_][\w-]{0,63}(?:/[\w-]{1,64}){0,3}(\.[A-Za-z+]+))\b", re.ASCII
)
_BACK_REFERENCE = re.compile(r"\b(?:it|its|them|this|these|those|above)\b", re.IGNORECASE)
_STORAGE = re.compile(
    r"\b(database|db|postgres|postgresql|mysql|sqlite|mariadb|persist(?:s|ed)?)\b", re.IGNORECASE
)
_DATABASE_NAMES = {
    "postgres": "PostgreSQL",
    "postgresql": "PostgreSQL",
    "mysql": "MySQL",
    "sqlite": "SQLite",
    "mariadb": "MariaDB",
}
_IMPERATIVES = {
    "write",
    "build",
    "create",
    "make",
    "add",
    "implement",
    "generate",
    "design",
    "define",
    "expose",
    "fix",
    "refactor",
    "include",
    "provide",
    "give",
    "produce",
    "set",
    "setup",
    "deploy",
    "serve",
    "test",
    "document",
}
_FILLER = {
    "a",
    "an",
    "the",
    "some",
    "simple",
    "small",
    "basic",
    "new",
    "me",
    "please",
    "that",
    "which",
    "for",
    "to",
    "of",
    "with",
    "in",
    "on",
    "and",
    "code",
    "program",
    "script",
    "function",
    "using",
    "it",
    "its",
    "them",
    "this",
    "these",
    "those",
    *_IMPERATIVES,
}


def _word_pattern(word: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(r"(?<![\w+.#])" + re.escape(word) + r"(?![\w+#])", flags)


@functools.cache
def _language_words() -> frozenset[str]:
    """Every word that names a language, lower-cased."""
    return frozenset(
        word.lower()
        for language in known_languages().values()
        for word in (*language.words, *language.case_sensitive_words)
    )


@functools.cache
def _language_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(language, pattern of one word naming it) for every known language and word."""
    languages = known_languages().values()
    return tuple(
        [(language.name, _word_pattern(word)) for language in languages for word in language.words]
        + [
            (language.name, _word_pattern(word, 0))
            for language in languages
            for word in language.case_sensitive_words
        ]
    )


@functools.cache
def _named_language_phrase() -> re.Pattern[str]:
    """ "in Rust", "using Python", ...: phrases a task text loses."""
    words = sorted(_language_words(), key=len, reverse=True)
    return re.compile(
        r"\s*\b(?:in|using|with|written in)\s+(?:" + "|".join(map(re.escape, words)) + r")\b",
        re.IGNORECASE,
    )


def named_language(text: str) -> str | None:
    """The language `text` names first: by word, file name or extension; None if it names none."""
    mentions = [
        (match.start(), name)
        for name, pattern in _language_patterns()
        if (match := pattern.search(text))
    ]
    mentions += [
        (match.start(), language)
        for match in _FILE_NAME.finditer(text)
        if (language := extension_language(match.group(2)))
    ]
    return min(mentions)[1] if mentions else None


def _file_name(text: str) -> str | None:
    return next(
        (
            match.group(1)
            for match in _FILE_NAME.finditer(text)
            if extension_language(match.group(2))
        ),
        None,
    )


def _split_sentences(text: str) -> list[str]:
    items = [item for block in _BULLET.split(text) for item in _SENTENCE_END.split(block)]
    return [" ".join(item.split()).rstrip(".!?:; ") for item in items if item.strip()]


def _stands_alone(clause: str, previous: str) -> bool:
    first_word = clause.split()[0].lower() if clause.split() else ""
    language = named_language(clause)
    return (
        first_word in _IMPERATIVES
        or bool(_STORAGE.search(clause))
        or (language is not None and language != named_language(previous))
    )


def split_clauses(sentence: str) -> list[str]:
    """A sentence cut at conjunctions into the clauses that stand alone (see module docs)."""
    pieces = _CONJUNCTION.split(sentence)
    clauses = [pieces[0]]
    for joiner, piece in zip(pieces[1::2], pieces[2::2], strict=True):
        if _stands_alone(piece, clauses[-1]):
            clauses.append(piece)
        else:
            clauses[-1] += joiner + piece
    return [clause.strip(" ,") for clause in clauses if clause.strip(" ,")]


def _task_text(clause: str) -> str:
    text = _named_language_phrase().sub("", clause).strip(" ,:;") or clause
    return text[:1].upper() + text[1:]


def _slug(task: str) -> str:
    words = [
        w
        for w in re.findall(r"[a-z0-9]+", task.lower())
        if w not in _FILLER and w not in _language_words()
    ]
    return "_".join(word[:32] for word in words[:2]) or "main"


class _PlanBuilder:
    """Accumulates subtasks with unique ids and file names."""

    def __init__(self) -> None:
        self.subtasks: list[Subtask] = []
        self.files: set[str] = set()

    def unique_file(self, file: str) -> str:
        stem, dot, extension = file.rpartition(".")
        candidate, number = file, 1
        while candidate in self.files:
            number += 1
            candidate = f"{stem}_{number}{dot}{extension}"
        self.files.add(candidate)
        return candidate

    def add(
        self, language: str, task: str, file: str, depends_on: tuple[str, ...] = (), code: str = ""
    ) -> str:
        subtask_id = f"t{len(self.subtasks) + 1}"
        self.subtasks.append(
            Subtask(
                id=subtask_id,
                language=language,
                task=task[:2000],
                file=self.unique_file(file),
                depends_on=depends_on,
                code=code,
            )
        )
        return subtask_id

    def depend(self, subtask_id: str, on: str) -> None:
        index = next(i for i, s in enumerate(self.subtasks) if s.id == subtask_id)
        subtask = self.subtasks[index]
        self.subtasks[index] = subtask.model_copy(update={"depends_on": (*subtask.depends_on, on)})


def _extension(language: str) -> str:
    known = known_languages().get(language)
    return known.extensions[0] if known else ".txt"


class RulePlanner:
    """Offline rules planner; `default_language` answers requests that name no language."""

    name = "rules"

    def __init__(self, default_language: str = "python") -> None:
        self.default_language = default_language

    def plan(self, request: str) -> PlanResult:
        """A plan for `request`; raises PlanError only for a request with no text at all."""
        fences: list[tuple[str, str]] = _FENCE.findall(request)
        prose = _FENCE.sub(" ", request)
        clauses = [c for sentence in _split_sentences(prose) for c in split_clauses(sentence)]
        if not clauses and not fences:
            raise PlanError("empty request: nothing to plan", "empty request")
        notes: tuple[str, ...] = ()
        if len(clauses) > MAX_SUBTASKS:
            notes = (f"request has {len(clauses)} parts; planned the first {MAX_SUBTASKS}",)
        builder = _PlanBuilder()
        self._add_clauses(builder, clauses, fences, request)
        subtasks = builder.subtasks[:MAX_SUBTASKS]
        kept = {s.id for s in subtasks}
        subtasks = [
            s.model_copy(update={"depends_on": tuple(d for d in s.depends_on if d in kept)})
            for s in subtasks
        ]
        return PlanResult(Plan(subtasks=tuple(subtasks)), self.name, notes)

    def _add_clauses(
        self, builder: _PlanBuilder, clauses: list[str], fences: list[tuple[str, str]], request: str
    ) -> None:
        fence_languages = [lang for tag, _ in fences if tag and (lang := named_language(tag))]
        first_named = named_language(_FENCE.sub(" ", request)) or next(iter(fence_languages), None)
        first_program = next(
            (lang for lang in self._languages(clauses, fence_languages) if lang != "sql"), None
        )
        # The first fence's code starts the first subtask in its language (e.g. "finish this").
        code = fences[0][1] if fences else ""
        code_language = named_language(fences[0][0]) if fences and fences[0][0] else None
        previous_language: str | None = None
        previous_id: str | None = None
        last_sql_id: str | None = None
        for clause in clauses or ["Complete this code"]:
            explicit = named_language(clause)
            language = explicit or previous_language or first_named or self.default_language
            depends = (previous_id,) if previous_id and _BACK_REFERENCE.search(clause) else ()
            storage = _STORAGE.search(clause)
            program = (
                explicit
                if explicit and explicit != "sql"
                else (previous_language if previous_language != "sql" else first_program)
            )
            if storage and explicit != "sql" and program:
                database = _DATABASE_NAMES.get(storage.group(1).lower(), "SQL")
                if last_sql_id is None:
                    last_sql_id = builder.add(
                        "sql", f"{database} schema for: {request_summary(request)}", "schema.sql"
                    )
                db_id = builder.add(
                    program,
                    f"{program.capitalize()} database code for {database}: {_task_text(clause)}",
                    f"db{_extension(program)}",
                    (last_sql_id,),
                )
                if previous_id and previous_language == program:
                    builder.depend(previous_id, db_id)
                previous_language, previous_id = program, db_id
                continue
            if storage and not explicit:
                language = "sql"
            task = _task_text(clause)
            file = _file_name(clause) or f"{_slug(task)}{_extension(language)}"
            start = code if code_language in (None, language) else ""
            if language == "sql" and last_sql_id and not depends:
                depends = (last_sql_id,)  # later SQL builds on the schema before it
            previous_id = builder.add(language, task, file, depends, start)
            code = "" if start else code
            previous_language = language
            if language == "sql":
                last_sql_id = previous_id

    @staticmethod
    def _languages(clauses: list[str], fence_languages: list[str]) -> Iterator[str]:
        yield from (lang for clause in clauses if (lang := named_language(clause)))
        yield from fence_languages


def request_summary(request: str, limit: int = 200) -> str:
    """The request's prose on one line, cut to `limit` characters."""
    text = " ".join(_FENCE.sub(" ", request).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
