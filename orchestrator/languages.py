"""What the orchestrator knows about programming languages without a specialist package.

Specialists describe their own language (specialists/<lang>/specialist.py); this table covers
the words people use to name languages, file extensions for suggested file names, comment
syntax for prompts, and which trained language is nearest when one has no specialist.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class KnownLanguage:
    """One language as requests name it and as its files look."""

    name: str  # canonical name, also the code-fence tag
    words: tuple[str, ...]  # lower-case words or phrases that name it in a request
    extensions: tuple[str, ...]  # the first is used for suggested file names
    line_comment: str
    case_sensitive_words: tuple[str, ...] = ()  # names that are also common English words


KNOWN_LANGUAGES: tuple[KnownLanguage, ...] = (
    KnownLanguage("python", ("python", "python3", "django", "flask", "fastapi", "pandas",
                             "numpy", "pytest"), (".py",), "#"),
    KnownLanguage("rust", ("rust", "cargo", "tokio", "serde"), (".rs",), "//"),
    KnownLanguage("javascript", ("javascript", "js", "nodejs", "node.js", "react",
                                 "npm", "jsx"), (".js", ".mjs", ".jsx"), "//"),
    KnownLanguage("typescript", ("typescript", "ts", "tsx"), (".ts", ".tsx"), "//"),
    # Database products (Postgres, SQLite, ...) mean storage, not SQL code: see rules_planner.
    KnownLanguage("sql", ("sql", "plpgsql", "t-sql"), (".sql",), "--"),
    KnownLanguage("go", ("golang",), (".go",), "//", case_sensitive_words=("Go",)),
    KnownLanguage("java", ("java", "maven"), (".java",), "//"),
    KnownLanguage("c", (), (".c", ".h"), "//", case_sensitive_words=("C",)),
    KnownLanguage("cpp", ("c++", "cpp"), (".cpp", ".hpp", ".cc"), "//"),
    KnownLanguage("bash", ("bash", "shell script"), (".sh",), "#"),
    KnownLanguage("ruby", ("ruby",), (".rb",), "#"),
)  # fmt: skip

BY_NAME: dict[str, KnownLanguage] = {language.name: language for language in KNOWN_LANGUAGES}

# Names specialists or users may use for a canonical language.
ALIASES: dict[str, str] = {
    "js": "javascript",
    "py": "python",
    "ts": "typescript",
    "golang": "go",
    "c++": "cpp",
    "shell": "bash",
}

# Which trained language to answer in when a language has no specialist, nearest first.
NEAREST: dict[str, tuple[str, ...]] = {
    "typescript": ("javascript",),
    "javascript": ("typescript",),
    "go": ("rust", "c", "javascript"),
    "c": ("cpp", "rust", "go"),
    "cpp": ("c", "rust", "go"),
    "java": ("javascript", "rust"),
    "rust": ("cpp", "c", "go"),
    "bash": ("python",),
    "ruby": ("python",),
    "sql": ("python",),
}


def canonical_language(name: str) -> str:
    """The table's name for `name` (case-insensitive; aliases resolved; unknown names kept)."""
    lowered = name.strip().lower()
    return ALIASES.get(lowered, lowered)


def extension_language(extension: str) -> str | None:
    """The language whose files end in `extension` (with its dot), if the table knows one."""
    return next(
        (language.name for language in KNOWN_LANGUAGES if extension.lower() in language.extensions),
        None,
    )
