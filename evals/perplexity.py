"""Held-out text for perplexity: a file, the files with one suffix under a directory, or the files
of a packed data split; and the perplexity summary the eval commands report."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tokenizers import Tokenizer

from core.completion import Completer
from core.data import MANIFEST_FILE, TokenStream
from core.tokenizer import tokenizer_hash
from evals.errors import EvalError

DEFAULT_MAX_FILES = 200
# Tokens read from a prepared split at a time.
_READ_TOKENS = 1 << 16


class Scorer(Completer, Protocol):
    """A model that also scores text (core.inference.CheckpointCompleter)."""

    def perplexity(self, texts: list[str]) -> float:
        """Token-level perplexity over all of `texts`."""
        ...


def add_perplexity_arguments(parser: argparse.ArgumentParser, suffix: str) -> None:
    """--perplexity-data (a `suffix` file or directory) and --perplexity-files."""
    parser.add_argument(
        "--perplexity-data",
        type=Path,
        help=f"held-out code: a {suffix} file or a directory of them (needs --checkpoint)",
    )
    parser.add_argument(
        "--perplexity-files",
        type=int,
        default=DEFAULT_MAX_FILES,
        help="most held-out files read (default: %(default)s)",
    )


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


def packed_texts(data_dir: Path, split: str, tokenizer: Tokenizer, max_files: int) -> list[str]:
    """The first `max_files` files of a prepared split, decoded with the tokenizer it was packed
    with. A split is one token stream (core.data.TokenStream), each file followed by EOS."""
    if not (data_dir / MANIFEST_FILE).is_file():
        raise EvalError(
            f"{data_dir}: no prepared data ({MANIFEST_FILE}); pass --data-dir or --perplexity-data"
        )
    stream = TokenStream(data_dir, split)
    packed_with, model_has = stream.manifest["tokenizer"]["hash"], tokenizer_hash(tokenizer)
    if packed_with != model_has:
        raise EvalError(
            f"{data_dir} was packed with tokenizer {packed_with}, the model has {model_has}"
        )
    files: list[list[int]] = []
    pending: list[np.ndarray] = []
    for start in range(0, len(stream), _READ_TOKENS):
        if len(files) >= max_files:
            break
        chunk = stream.read(start, start + _READ_TOKENS)
        begin = 0
        for end in np.flatnonzero(chunk == stream.eos_id):
            files.append(np.concatenate([*pending, chunk[begin:end]]).tolist())
            pending, begin = [], int(end) + 1
        pending.append(chunk[begin:])
    if not files:
        raise EvalError(f"{data_dir}: the {split} split holds no file; pass --perplexity-data")
    return tokenizer.decode_batch(files[:max_files], skip_special_tokens=False)


def perplexity_summary(
    completer: Scorer, texts: list[str], data: str, skipped: int = 0
) -> dict[str, Any]:
    """The model's perplexity on `texts` (read from `data`, `skipped` files unreadable)."""
    return {
        "value": completer.perplexity(texts),
        "data": data,
        "files": len(texts),
        "skipped": skipped,
    }


def count_tokens(texts: Sequence[str], tokenizer: Tokenizer) -> int:
    """Tokens of `texts` with an EOS after each, as Scorer.perplexity packs them."""
    return sum(len(encoding.ids) + 1 for encoding in tokenizer.encode_batch(list(texts)))


def first_tokens(texts: Sequence[str], tokenizer: Tokenizer, max_tokens: int) -> list[str]:
    """`texts` in order up to `max_tokens` tokens (an EOS after each); the text that crosses the
    budget is cut at a token boundary."""
    kept: list[str] = []
    room = max_tokens
    for text, encoding in zip(texts, tokenizer.encode_batch(list(texts)), strict=True):
        if len(encoding.ids) + 1 > room:
            if room > 1:
                kept.append(tokenizer.decode(encoding.ids[: room - 1]))
            break
        kept.append(text)
        room -= len(encoding.ids) + 1
    return kept


def bits_per_byte(perplexity: float, tokens: int, texts: Sequence[str]) -> float:
    """log2(perplexity) bits per token times tokens per UTF-8 byte of `texts`. Unlike perplexity
    it does not depend on the tokenizer, so models with different vocabularies compare."""
    return math.log2(perplexity) * tokens / sum(len(text.encode("utf-8")) for text in texts)
