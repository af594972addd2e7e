"""Default corpora from code already on the machine: existing directories, each tree once."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from data_tools.sources import SourceError


def existing_roots(candidates: Iterable[Path]) -> list[Path]:
    """The candidates that are directories, resolved, without duplicates or roots nested in another."""
    resolved: list[Path] = []
    for candidate in candidates:
        path = candidate.expanduser()
        if path.is_dir() and path.resolve() not in resolved:
            resolved.append(path.resolve())
    return [
        root for root in resolved
        if not any(other != root and root.is_relative_to(other) for other in resolved)
    ]  # fmt: skip


def require_roots(language: str, candidates: Sequence[Path], hint: str) -> list[Path]:
    """`existing_roots(candidates)`, or a one-line SourceError saying how to get a corpus."""
    roots = existing_roots(candidates)
    if not roots:
        looked = ", ".join(str(path) for path in candidates) or "nowhere"
        raise SourceError(
            f"no local {language} source found (looked in {looked}): {hint}, or pass --source DIR"
        )
    return roots


def command_output(argv: Sequence[str]) -> str | None:
    """The stripped stdout of a quick command, or None when it is missing or fails."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=30, check=True, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None
