"""Held-out source text for perplexity: a file, or the files with one suffix under a directory."""

from __future__ import annotations

from pathlib import Path

from evals.errors import EvalError


def read_texts(path: Path, suffix: str, max_files: int) -> tuple[list[str], int]:
    """The text of `path`, or of the first `max_files` `*suffix` files under it in sorted order.

    Returns the texts and how many files were skipped because they could not be read as UTF-8.
    """
    if not path.exists():
        raise EvalError(f"--perplexity-data {path}: no such file or directory")
    files = [path] if path.is_file() else sorted(path.rglob(f"*{suffix}"))[:max_files]
    texts, skipped = [], 0
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            skipped += 1
            continue
        if text.strip():
            texts.append(text)
    if not texts:
        raise EvalError(f"--perplexity-data {path}: no readable non-empty *{suffix} files")
    return texts, skipped
