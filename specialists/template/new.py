"""Create a specialist for a new language from this template.

    python -m specialists.template.new --language go --extensions .go --grammar go

copies this folder to specialists/<language>/ (all but this command and its test), points its
imports at the new package and writes its config.py from the flags.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from data_tools.tree_sitter_filter import tree_sitter_parser

TEMPLATE_DIR = Path(__file__).resolve().parent
_NOT_COPIED = ("new.py", "new_test.py", "README.md", "__pycache__")
_CONFIG = '''"""What makes this specialist's language."""

from __future__ import annotations

from pathlib import Path

NAME = {name!r}
EXTENSIONS = {extensions!r}
GRAMMAR = {grammar!r}  # a tree-sitter-languages grammar name
LINE_COMMENT = {line_comment!r}
DEFAULT_ROOTS: tuple[Path, ...] = ({roots})
INSTALL_HINT = {hint!r}
'''


class TemplateError(ValueError):
    """A bad flag for the new specialist."""


def create(
    specialists_dir: Path, name: str, extensions: list[str], grammar: str, line_comment: str,
    roots: list[str],
) -> Path:  # fmt: skip
    """Write specialists_dir/<name>/ from the template; returns its path."""
    if not name.isidentifier() or not name.islower():
        raise TemplateError(f"--language must be a lower-case Python identifier, got {name!r}")
    if not all(extension.startswith(".") for extension in extensions):
        raise TemplateError(f"--extensions must start with a dot, got {extensions}")
    tree_sitter_parser(grammar)  # a one-line GrammarError when the grammar is unknown
    target = specialists_dir / name
    if target.exists():
        raise TemplateError(f"{target} already exists")
    shutil.copytree(TEMPLATE_DIR, target, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    for path in target.iterdir():
        if path.suffix == ".py" or path.name == "BUILD":
            text = path.read_text().replace("specialists.template", f"specialists.{name}")
            path.write_text(text.replace("specialists/template", f"specialists/{name}"))
    build = target / "BUILD"
    build.write_text(build.read_text().split("\n# The template's own command")[0].rstrip() + "\n")
    (target / "config.py").write_text(
        _CONFIG.format(
            name=name, extensions=tuple(extensions), grammar=grammar, line_comment=line_comment,
            roots="".join(f"Path({root!r}), " for root in roots),
            hint=f"put {name} source in one of the default roots",
        )
    )  # fmt: skip
    return target


def main(argv: list[str] | None = None) -> int:
    """Entry point: errors print one line and exit 2."""
    parser = argparse.ArgumentParser(prog="python -m specialists.template.new", description=__doc__)
    parser.add_argument("--language", required=True, help="the new specialist's name, e.g. go")
    parser.add_argument("--extensions", nargs="+", required=True, help="file extensions, e.g. .go")
    parser.add_argument("--grammar", required=True, help="tree-sitter-languages grammar name")
    parser.add_argument("--line-comment", default="//", help="line comment marker (default: //)")
    parser.add_argument("--roots", nargs="*", default=[], help="default local corpus directories")
    parser.add_argument("--specialists-dir", type=Path, default=Path("specialists"),
                        help="where specialists live (default: %(default)s, from the repo root)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        target = create(args.specialists_dir, args.language, args.extensions, args.grammar,
                        args.line_comment, args.roots)  # fmt: skip
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"created {target}; train it with `python -m specialists.{args.language}.train`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
