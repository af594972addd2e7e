"""The JavaScript specialist's data: its LanguageSpec and the default local corpus.

The default corpus is JavaScript already on the machine: globally installed packages
(`npm root -g`: npm's own tree and its dependencies), Debian's packaged modules and any
node_modules under the current directory.
"""

from __future__ import annotations

from pathlib import Path

from data_tools.local_roots import command_output, require_roots
from data_tools.spec import LanguageSpec
from specialists.js.filters import js_drop_reason

INSTALL_HINT = "install some with `apt-get install npm` (or `npm install -g PACKAGE`)"


def candidate_roots() -> list[Path]:
    """Where JavaScript packages usually lie, whether or not they exist here."""
    global_root = command_output(["npm", "root", "-g"])
    return [
        *([Path(global_root)] if global_root else []),
        Path("/usr/lib/node_modules"),
        Path("/usr/local/lib/node_modules"),
        Path("/usr/share/nodejs"),
        Path.cwd() / "node_modules",
    ]


def default_roots() -> list[Path]:
    """The existing JavaScript package trees, or a one-line error saying how to get one."""
    return require_roots("JavaScript", candidate_roots(), INSTALL_HINT)


JAVASCRIPT = LanguageSpec(
    name="js",
    extensions=(".js", ".mjs", ".cjs", ".jsx"),
    line_comment="//",
    drop_reason=js_drop_reason,
    default_roots=default_roots,
)
