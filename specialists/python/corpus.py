"""The Python specialist's data: its LanguageSpec and the default local corpus.

The default corpus is the code already on the machine: the running interpreter's stdlib and
site-packages plus the stdlib of every pyenv interpreter (many versions of the same modules,
which exercises near-duplicate removal).
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from data_tools.local_roots import existing_roots
from data_tools.spec import LanguageSpec
from specialists.python.filters import python_drop_reason


def _pyenv_stdlibs() -> list[Path]:
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    return sorted(pyenv_root.glob("versions/*/lib/python3.*"))


def default_roots() -> list[Path]:
    """Existing source roots, without roots nested inside another root: the running stdlib,
    then every pyenv stdlib (near-duplicates across versions come early, so a byte budget still
    sees them), then the running interpreter's site-packages."""
    candidates = [Path(sysconfig.get_path("stdlib")), *_pyenv_stdlibs()]
    candidates += [Path(sysconfig.get_path(name)) for name in ("purelib", "platlib")]
    return existing_roots(candidates)


PYTHON = LanguageSpec(
    name="python",
    extensions=(".py",),
    line_comment="#",
    drop_reason=python_drop_reason,
    default_roots=default_roots,
)
