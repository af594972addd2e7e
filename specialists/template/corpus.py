"""The specialist's data: its LanguageSpec and the default local corpus (config.DEFAULT_ROOTS)."""

from __future__ import annotations

from pathlib import Path

from data_tools.local_roots import require_roots
from data_tools.spec import LanguageSpec
from specialists.template import config
from specialists.template.filters import drop_reason


def default_roots() -> list[Path]:
    """The existing default roots, or a one-line error saying how to get a corpus."""
    return require_roots(config.NAME, list(config.DEFAULT_ROOTS), config.INSTALL_HINT)


LANGUAGE = LanguageSpec(
    name=config.NAME,
    extensions=config.EXTENSIONS,
    line_comment=config.LINE_COMMENT,
    drop_reason=drop_reason,
    default_roots=default_roots,
)
