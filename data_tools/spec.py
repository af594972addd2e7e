"""The hook through which a language specialist plugs into the generic data pipeline."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class LanguageSpec:
    """What the pipeline needs to know about one language.

    `drop_reason(text)` is the language filter: it returns a short reason string when the file
    must be dropped (e.g. "syntax_error") and None to keep it. It must be a module-level
    function so worker processes can receive it.
    """

    name: str
    extensions: tuple[str, ...]
    line_comment: str
    drop_reason: Callable[[str], str | None]
    default_roots: Callable[[], list[Path]]
