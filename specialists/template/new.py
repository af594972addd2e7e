"""Create the package of a new language from this template.

    python -m specialists.template.new --language lua --extensions .lua --grammar lua --line-comment=--

writes specialists/<language>/ (a BUILD, language.py and language_test.py, from files/):
the language is then discovered by every command and by the orchestrator, and has its
`:prepare`, `:train`, `:eval` and `:sft` targets and tests.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path

from core.cli import run_main
from data_tools.tree_sitter_filter import tree_sitter_parser

TEMPLATE_DIR = Path(__file__).resolve().parent / "files"
# Written file -> its template in TEMPLATE_DIR (a template named BUILD.* would be a BUILD file).
TEMPLATES = {
    "BUILD": "build.template",
    "language.py": "language.py.template",
    "language_test.py": "language_test.py.template",
}


class TemplateError(ValueError):
    """A bad flag for the new language."""


def _string(value: str) -> str:
    """A double-quoted Python string literal (the repo's format)."""
    return json.dumps(value)


def _tuple(items: list[str]) -> str:
    """A Python tuple literal of already-written item literals."""
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def create(
    specialists_dir: Path,
    name: str,
    extensions: list[str],
    grammar: str,
    line_comment: str,
    roots: list[str],
) -> Path:
    """Write specialists_dir/<name>/ from the template; returns its path."""
    if not name.isidentifier() or not name.islower():
        raise TemplateError(f"--language must be a lower-case Python identifier, got {name!r}")
    if not extensions or not all(extension.startswith(".") for extension in extensions):
        raise TemplateError(f"--extensions must start with a dot, got {extensions}")
    if not line_comment.strip():
        raise TemplateError("--line-comment must not be empty")
    tree_sitter_parser(grammar)  # a one-line GrammarError when the grammar is unknown
    target = specialists_dir / name
    if target.exists():
        raise TemplateError(f"{target} already exists")
    values = {
        "name": name,
        "grammar": grammar,
        "name_literal": _string(name),
        "grammar_literal": _string(grammar),
        "line_comment_literal": _string(line_comment),
        "extensions_literal": _tuple([_string(extension) for extension in extensions]),
        "roots_literal": _tuple([f"Path({_string(root)})" for root in roots]) if roots else "()",
        "install_hint_literal": _string(f"put {name} source in one of DEFAULT_ROOTS"),
    }
    target.mkdir(parents=True)
    for name, template in TEMPLATES.items():
        text = string.Template((TEMPLATE_DIR / template).read_text()).substitute(values)
        (target / name).write_text(text)
    return target


def _take_line_comment(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--line-comment VALUE` or `--line-comment=VALUE` taken out of `argv` before argparse sees
    it: Lua's and SQL's marker is "--", which argparse (3.11) drops as the end-of-options mark."""
    rest: list[str] = []
    value = None
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--line-comment":
            value = next(arguments, None)
            if value is None:
                raise TemplateError("--line-comment needs a value")
        elif argument.startswith("--line-comment="):
            value = argument.removeprefix("--line-comment=")
        else:
            rest.append(argument)
    return value, rest


def main(argv: list[str] | None = None) -> int:
    """Entry point: errors print one line and exit 2."""
    parser = argparse.ArgumentParser(prog="python -m specialists.template.new", description=__doc__)
    parser.add_argument("--language", required=True, help="the new language's name, e.g. lua")
    parser.add_argument("--extensions", nargs="+", required=True, help="file extensions, e.g. .lua")
    parser.add_argument("--grammar", required=True, help="tree-sitter-languages grammar name")
    parser.add_argument(
        "--line-comment",
        default="//",
        help="line comment marker (default: //), e.g. --line-comment=-- for Lua",
    )
    parser.add_argument("--roots", nargs="*", default=[], help="default local corpus directories")
    parser.add_argument(
        "--specialists-dir",
        type=Path,
        default=Path("specialists"),
        help="where language packages live (default: %(default)s, from the repo root)",
    )
    arguments = sys.argv[1:] if argv is None else argv

    def run() -> int:
        line_comment, rest = _take_line_comment(arguments)
        args = parser.parse_args(rest)
        target = create(
            args.specialists_dir, args.language, args.extensions, args.grammar,
            line_comment or args.line_comment, args.roots,
        )  # fmt: skip
        print(
            f"created {target}: test it with `./pants test {target}::`, train it with "
            f"`./pants run {target}:train`"
        )
        return 0

    return run_main(run)


if __name__ == "__main__":
    sys.exit(main())
