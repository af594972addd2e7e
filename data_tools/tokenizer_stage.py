"""Pick the tokenizer for a corpus: a given one, or a BPE trained on it and cached by sample hash."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from core.config import DataConfig
from core.tokenizer import TOKENIZER_FILE, load_tokenizer, tokenizer_hash, train_tokenizer
from data_tools.corpus import CorpusStore

DEFAULT_CACHE = Path.home() / ".cache" / "codefactory" / "tokenizers"


def _training_sample(store: CorpusStore, max_bytes: int) -> list[dict[str, Any]]:
    """Kept files in content-hash order until `max_bytes` (0: all)."""
    if not max_bytes:
        return list(store.entries)
    sizes = itertools.accumulate(entry["length"] for entry in store.entries)
    return [entry for entry, total in zip(store.entries, sizes, strict=True) if total <= max_bytes]


def resolve_tokenizer(
    store: CorpusStore, config: DataConfig, vocab_size: int
) -> tuple[Tokenizer, dict[str, Any]]:
    """The tokenizer named by `config.tokenizer`, else one of `vocab_size` ids trained on the
    corpus (cached)."""
    if config.tokenizer:
        tokenizer = load_tokenizer(config.tokenizer)
        info: dict[str, Any] = {"source": config.tokenizer}
    else:
        sample = _training_sample(store, config.tokenizer_train_bytes)
        digest = hashlib.sha256()
        for entry in sample:
            digest.update(entry["hash"].encode())
        key = f"{digest.hexdigest()[:16]}-v{vocab_size}"
        cache_root = (
            Path(config.tokenizer_cache_dir).expanduser()
            if config.tokenizer_cache_dir
            else DEFAULT_CACHE
        )
        path = cache_root / key / TOKENIZER_FILE
        cached = path.is_file()
        if cached:
            tokenizer = load_tokenizer(path)
        else:
            wanted = {entry["hash"] for entry in sample}
            texts = (text for entry, text in store.texts() if entry["hash"] in wanted)
            tokenizer = train_tokenizer(texts, vocab_size)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            tokenizer.save(str(partial))
            partial.replace(path)  # Atomic: concurrent runs never read a half-written file.
        info = {
            "source": "trained",
            "path": str(path),
            "reused": cached,
            "trained_on_files": len(sample),
            "trained_on_bytes": sum(entry["length"] for entry in sample),
        }
    info |= {"hash": tokenizer_hash(tokenizer), "vocab_size": tokenizer.get_vocab_size()}
    return tokenizer, info
