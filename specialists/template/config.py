"""What makes this specialist's language: `new.py` rewrites these values for a new language."""

from __future__ import annotations

from pathlib import Path

NAME = "go"
EXTENSIONS = (".go",)
GRAMMAR = "go"  # a tree-sitter-languages grammar name
LINE_COMMENT = "//"
DEFAULT_ROOTS = (
    Path("/usr/lib/go/src"),
    Path("/usr/local/go/src"),
    Path.home() / "go" / "pkg" / "mod",
)
INSTALL_HINT = "install some with `apt-get install golang-src`"
