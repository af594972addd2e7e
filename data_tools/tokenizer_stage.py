"""Pick the tokenizer for a corpus: a given one, or a BPE trained on its first documents in key
order (cached by that sample's hash, so a rerun or another run on the same corpus reuses it)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from core.config import DataConfig
from core.tokenizer import (
    TOKENIZER_FILE,
    TokenizerError,
    check_special_ids,
    load_tokenizer,
    tokenizer_hash,
    train_tokenizer,
)

DEFAULT_CACHE = Path.home() / ".cache" / "codefactory" / "tokenizers"
Documents = Callable[[], Iterable[tuple[str, str, str]]]


def _sample(documents: Iterable[tuple[str, str, str]], max_bytes: int) -> Iterator[tuple[str, str]]:
    """(key, text) of the documents until `max_bytes` of text (0: all)."""
    total = 0
    for key, _, text in documents:
        total += len(text.encode("utf-8", "surrogatepass"))
        if max_bytes and total > max_bytes:
            return
        yield key, text


def resolve_tokenizer(
    documents: Documents, config: DataConfig, vocab_size: int
) -> tuple[Tokenizer, dict[str, Any]]:
    """The tokenizer named by `config.tokenizer`, else one of `vocab_size` ids trained on the
    first `tokenizer_train_bytes` of `documents()` (key, id, text in key order), cached."""
    if config.tokenizer:
        tokenizer = load_tokenizer(config.tokenizer)
        info: dict[str, Any] = {"source": config.tokenizer}
    else:
        digest, files, size = hashlib.sha256(), 0, 0
        for key, text in _sample(documents(), config.tokenizer_train_bytes):
            digest.update(key.encode())
            files, size = files + 1, size + len(text.encode("utf-8", "surrogatepass"))
        cache_root = (
            Path(config.tokenizer_cache_dir).expanduser()
            if config.tokenizer_cache_dir
            else DEFAULT_CACHE
        )
        path = cache_root / f"{digest.hexdigest()[:16]}-v{vocab_size}" / TOKENIZER_FILE
        cached = path.is_file()
        if cached:
            tokenizer = load_tokenizer(path)
        else:
            texts = (text for _, text in _sample(documents(), config.tokenizer_train_bytes))
            tokenizer = train_tokenizer(texts, vocab_size)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            tokenizer.save(str(partial))
            partial.replace(path)  # Atomic: concurrent runs never read a half-written file.
        info = {
            "source": "trained",
            "path": str(path),
            "trained_on_files": files,
            "trained_on_bytes": size,
        }
    info |= {"hash": tokenizer_hash(tokenizer), "vocab_size": tokenizer.get_vocab_size()}
    return tokenizer, info


def check_tokenizer(
    tokenizer: Tokenizer, info: dict[str, Any], vocab_size: int, eos_id: int, pad_id: int
) -> None:
    """Raise TokenizerError unless `tokenizer` fits a model of `vocab_size` ids with these EOS
    and PAD ids."""
    if info["vocab_size"] > vocab_size:
        raise TokenizerError(
            f"tokenizer {info['source']!r} has {info['vocab_size']} ids, more than "
            f"ModelConfig.vocab_size ({vocab_size})"
        )
    check_special_ids(tokenizer, eos_id, pad_id, info["source"])
