"""What a programming language is to the factory: one `Language` per specialist.

Each `specialists/<name>/language.py` defines `LANGUAGE`; the data pipeline, the train job, the
evals and the orchestrator's routing all read their facts from it (specialists/languages.py
discovers them). Nothing here imports a language: this module only defines the shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Language:
    """One language's facts.

    `name` is also its package (`specialists/<name>`), its run directories' stem and the name
    plans and the API use; `aliases` are other lower-case words a request may name it by
    (`case_sensitive_aliases` are those that are also common English words, e.g. "Go").
    `drop_reason(text)` is the data pipeline's language filter: a short reason ("syntax_error")
    to drop a file, None to keep it; it must be a module-level function so worker processes can
    run it. `syntax_check` defaults to "drop_reason finds nothing". `nearest` lists the languages
    whose specialists should answer, in order, when this one has none loaded. `benchmarks`
    returns the language's code-executing eval suite (an evals.suite.EvalSuite), imported only
    when called; without one, its eval is held-out perplexity and the syntax-valid rate.
    `infill_sample` is the (prefix, suffix) of a fixed snippet whose middle the train job's
    samples fill in (fill-in-the-middle).
    """

    name: str
    extensions: tuple[str, ...]
    line_comment: str
    drop_reason: Callable[[str], str | None]
    default_roots: Callable[[], list[Path]]
    sample_prompts: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    case_sensitive_aliases: tuple[str, ...] = ()
    nearest: tuple[str, ...] = ()
    syntax_check: Callable[[str], bool] | None = None
    benchmarks: Callable[[], Any] | None = None
    infill_sample: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.extensions or not all(ext.startswith(".") for ext in self.extensions):
            raise ValueError(f"language {self.name!r}: extensions must start with a dot")

    def syntax_ok(self, code: str) -> bool:
        """Whether `code` is valid in this language."""
        if self.syntax_check is not None:
            return self.syntax_check(code)
        return self.drop_reason(code) is None

    @property
    def extension(self) -> str:
        """The extension of files written in this language (the first)."""
        return self.extensions[0]
