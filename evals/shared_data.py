"""Where the evaluation data lives: $CODEFACTORY_SHARED_DATA, else ../shared/data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

from evals.errors import EvalError


def shared_data_dir() -> Path:
    """Evaluation data: $CODEFACTORY_SHARED_DATA, else ../shared/data beside the repo root (the cwd)."""
    return Path(os.environ.get("CODEFACTORY_SHARED_DATA", Path.cwd().parent / "shared" / "data"))


def data_file(path: Path | None, default: str, flag: str) -> Path:
    """`path` when given, else `default` under the shared data dir; a one-line error naming `flag`
    when the file is missing."""
    chosen = path or shared_data_dir() / default
    if not chosen.exists():
        raise EvalError(f"{flag} {chosen}: no such file or directory")
    return chosen
