"""Tokenize kept files and pack them into fixed-length int32 rows, split by file hash."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer
from tqdm import tqdm

from core.config import DataConfig
from core.data import SPLITS, ShardWriter
from core.tokenizer import TokenizerError
from data_tools.corpus import CorpusStore

_ENCODE_BATCH_FILES = 256
ROUND_TRIP_FILES = 64
_MIN_BYTES_PER_TOKEN = 2


def split_of(content_hash: str, validation_fraction: float) -> str:
    """The split a file belongs to, decided by its content hash alone.

    Files are packed in hash order, so the split reads the hash's last digits: validation files
    are spread over that order, and a token budget cuts both splits in proportion.
    """
    return "validation" if int(content_hash[-8:], 16) < validation_fraction * 16**8 else "train"


def validation_budget(train_tokens: int, validation_fraction: float) -> int:
    """Validation tokens to pack beside `train_tokens` train tokens: the validation fraction's
    share of the total."""
    return math.ceil(train_tokens * validation_fraction / (1 - validation_fraction))


def pack(
    store: CorpusStore,
    tokenizer: Tokenizer,
    config: DataConfig,
    directory: Path,
    row_length: int,
    max_tokens: int | None,
    eos_id: int,
    pad_id: int,
) -> tuple[dict[str, dict[str, Any]], int]:
    """Write train/validation shards of `row_length`-token rows to `directory`; with a
    `max_tokens` budget, stop once train holds that many tokens and validation its share
    (`validation_budget`); None packs every file.

    Files go in content-hash order, each followed by `eos_id`; the last row is padded with
    `pad_id`; `encode_batch` tokenizes a batch of
    files on all cores. Special-token text inside a file is encoded as plain text, so only the
    separators this function adds are EOS. The first `ROUND_TRIP_FILES` files are decoded
    again: a lossy tokenizer raises TokenizerError naming the file.

    Returns the per-split manifest entries and the number of files checked for round trip.
    """
    tokenizer.encode_special_tokens = True
    writers = {
        split: ShardWriter(directory, split, row_length, config.shard_rows, pad_id)
        for split in SPLITS
    }
    files = dict.fromkeys(SPLITS, 0)
    batch: list[tuple[str, str, str]] = []
    round_trips = 0
    progress = tqdm(
        total=max_tokens,
        desc="pack",
        unit="tok",
        disable=not config.progress,
        leave=False,
    )

    def flush() -> None:
        nonlocal round_trips
        encodings = tokenizer.encode_batch([text for *_, text in batch], add_special_tokens=False)
        for (split, file_id, text), encoding in zip(batch, encodings, strict=True):
            if round_trips < ROUND_TRIP_FILES:
                if tokenizer.decode(encoding.ids, skip_special_tokens=False) != text:
                    raise TokenizerError(f"tokenizer does not round-trip file {file_id}")
                round_trips += 1
            writers[split].add(np.append(np.asarray(encoding.ids, dtype=np.int32), eos_id))
            files[split] += 1
            if split == "train":
                progress.update(len(encoding.ids) + 1)
        batch.clear()

    budgets = {
        "train": max_tokens or 0,
        "validation": validation_budget(max_tokens or 0, config.validation_fraction),
    }
    pending_bytes = dict.fromkeys(SPLITS, 0)
    for entry, text in store.texts():
        split = split_of(entry["hash"], config.validation_fraction)
        remaining = {name: budgets[name] - writers[name].tokens for name in SPLITS}
        if max_tokens:
            if all(left <= 0 for left in remaining.values()):
                break
            if remaining[split] <= 0:
                continue
        batch.append((split, entry["id"], text))
        pending_bytes[split] += entry["length"]
        # Code runs at more than 2 bytes per token: flushing here keeps the overshoot small.
        if len(batch) == _ENCODE_BATCH_FILES or (
            max_tokens and pending_bytes[split] >= _MIN_BYTES_PER_TOKEN * remaining[split]
        ):
            flush()
            pending_bytes = dict.fromkeys(SPLITS, 0)
    if batch:
        flush()
    progress.close()
    splits = {split: {**writers[split].close(), "files": files[split]} for split in SPLITS}
    return splits, round_trips
