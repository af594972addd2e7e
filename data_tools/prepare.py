"""The whole data pipeline as one function: sources -> filtered, deduplicated corpus ->
tokenizer -> packed shards + manifest.json. Each stage is reused when its inputs are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.config import DataConfig, RunConfig, to_dict
from core.data import MANIFEST_FILE
from core.language import Language
from core.tokenizer import TokenizerError, check_special_ids
from data_tools.corpus import CorpusStore, build_corpus
from data_tools.pack import pack
from data_tools.sources import walk_tree
from data_tools.tokenizer_stage import resolve_tokenizer

# Bump when a change in the code alters what a stage produces, so caches are not reused.
PIPELINE_VERSION = 1
_NOT_CORPUS_FIELDS = frozenset({
    "tokenizer", "tokenizer_train_bytes", "tokenizer_cache_dir", "max_tokens",
    "validation_fraction", "shard_rows", "workers", "batch_files", "progress",
})  # fmt: skip
_STATS_FILE = "stats.json"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _source_fingerprint(source: str, extensions: Sequence[str]) -> Any:
    """A local tree's listing with sizes and mtimes; a dataset's name (remote data is opaque)."""
    path = Path(source).expanduser()
    if path.is_dir():
        listing = []
        for document in walk_tree(path, extensions):
            try:
                mtime = os.stat(document.id).st_mtime_ns
            except OSError:
                mtime = 0
            listing.append((document.id, document.size, mtime))
        return _digest(listing)
    if path.is_file():
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    return source


def _write_json(path: Path, value: Any) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(value, indent=2))
    partial.replace(path)


def _corpus(
    language: Language, sources: list[str], config: DataConfig, directory: Path
) -> dict[str, Any]:
    settings = {k: v for k, v in to_dict(config).items() if k not in _NOT_CORPUS_FIELDS}
    key = _digest({
        "version": PIPELINE_VERSION, "language": language.name, "extensions": language.extensions,
        "sources": [_source_fingerprint(source, language.extensions) for source in sources],
        "settings": settings,
    })  # fmt: skip
    stats_path = directory / _STATS_FILE
    if stats_path.is_file():
        stats = json.loads(stats_path.read_text())
        if stats.get("key") == key:
            return stats | {"reused": True}
    stats = build_corpus(language, sources, config, directory) | {"key": key}
    _write_json(stats_path, stats)
    return stats | {"reused": False}


def prepare(
    language: Language, run: RunConfig, out_dir: Path, sources: Sequence[str] = ()
) -> dict[str, Any]:
    """Run the pipeline for `language` with `run`'s data config (default sources:
    `language.default_roots()`): a tokenizer of `run.model.vocab_size` ids unless one is given,
    rows of `run.train.seq_len + 1` tokens, `run.token_budget()` train tokens. Returns the
    manifest.

    Raises ValueError subclasses (SourceError, TokenizerError, ConfigError) with one-line messages.
    """
    config = run.data
    source_list = list(sources) or [str(root) for root in language.default_roots()]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = _corpus(language, source_list, config, out_dir / "corpus")
    store = CorpusStore(out_dir / "corpus")
    tokenizer, tokenizer_info = resolve_tokenizer(store, config, run.model.vocab_size)
    if tokenizer_info["vocab_size"] > run.model.vocab_size:
        raise TokenizerError(
            f"tokenizer {tokenizer_info['source']!r} has {tokenizer_info['vocab_size']} ids, more "
            f"than ModelConfig.vocab_size ({run.model.vocab_size})"
        )
    check_special_ids(tokenizer, run.model.eos_id, run.model.pad_id, tokenizer_info["source"])
    seq_len, budget = run.train.seq_len, run.token_budget()
    pack_key = _digest({"corpus": stats["key"], "tokenizer": tokenizer_info["hash"],
                        "seq_len": seq_len, "max_tokens": budget,
                        "eos_id": run.model.eos_id, "pad_id": run.model.pad_id,
                        "validation_fraction": config.validation_fraction,
                        "shard_rows": config.shard_rows})  # fmt: skip
    manifest_path = out_dir / MANIFEST_FILE
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("pack_key") == pack_key:
            return manifest | {"reused": True}
    for old_shard in out_dir.glob("*.npy"):
        old_shard.unlink()
    model = run.model
    splits, round_trip_files = pack(
        store, tokenizer, config, out_dir, seq_len + 1, budget, model.eos_id, model.pad_id
    )
    manifest = {
        "language": language.name,
        "sources": source_list,
        "files_in": stats["files_in"],
        "files_kept": stats["files_kept"],
        "files_packed": sum(split["files"] for split in splits.values()),
        "dropped": stats["dropped"],
        "seq_len": seq_len,
        "row_length": seq_len + 1,
        "eos_id": run.model.eos_id,
        "pad_id": run.model.pad_id,
        "max_tokens": budget,
        "splits": splits,
        "tokenizer": tokenizer_info | {"round_trip_files": round_trip_files},
        "stages": stats["stages"],
        "dedup": stats["dedup"],
        "corpus": {"key": stats["key"], "bytes_in": stats["bytes_in"],
                   "bytes_kept": stats["bytes_kept"], "reused": stats["reused"]},
        "config": to_dict(config),
        "pack_key": pack_key,
    }  # fmt: skip
    _write_json(manifest_path, manifest)
    return manifest | {"reused": False}
