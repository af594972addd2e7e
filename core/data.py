"""Packed training data: int32 rows [rows, seq_len + 1] in .npy shards plus a manifest.json.

`ShardWriter` writes one split; `PackedDataset` memory-maps it back; `BatchLoader` yields
deterministic, resumable, process-sharded batches; `eval_batches` gives fixed validation batches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "validation")


class DataError(ValueError):
    """Packed data that is missing, inconsistent, or used with mismatched loader state."""


class ShardWriter:
    """Accumulates a token stream and writes it as fixed-length rows in .npy shards.

    The final partial row is padded with `pad_id` on `close()`, so no token is dropped.
    """

    def __init__(self, directory: Path, split: str, row_length: int, shard_rows: int, pad_id: int):
        self.directory = directory
        self.split = split
        self.row_length = row_length
        self.shard_rows = shard_rows
        self.pad_id = pad_id
        self.shards: list[dict[str, Any]] = []
        self.rows = 0
        self.tokens = 0
        self._pending: list[np.ndarray] = []
        self._pending_tokens = 0

    def add(self, tokens: np.ndarray) -> None:
        """Append tokens to the stream, writing every full shard."""
        self._pending.append(tokens.astype(np.int32, copy=False))
        self._pending_tokens += len(tokens)
        self.tokens += len(tokens)
        while self._pending_tokens >= self.shard_rows * self.row_length:
            self._flush(self.shard_rows * self.row_length)

    def _flush(self, count: int) -> None:
        stream = np.concatenate(self._pending)
        rows = stream[:count].reshape(-1, self.row_length)
        name = f"{self.split}-{len(self.shards):05d}.npy"
        np.save(self.directory / name, rows)
        self.shards.append({"path": name, "rows": len(rows)})
        self.rows += len(rows)
        self._pending = [stream[count:]]
        self._pending_tokens = len(stream) - count

    def close(self) -> dict[str, Any]:
        """Write the remainder (padded to a whole row) and describe the split for the manifest."""
        if self._pending_tokens:
            padding = -self._pending_tokens % self.row_length
            self._pending.append(np.full(padding, self.pad_id, dtype=np.int32))
            self._pending_tokens += padding
            self._flush(self._pending_tokens)
        return {"rows": self.rows, "tokens": self.tokens, "shards": self.shards}


class PackedDataset:
    """One split of a packed-data directory: `len`, row access, `seq_len`, `manifest`."""

    def __init__(self, directory: str | Path, split: str):
        directory = Path(directory)
        manifest_path = directory / MANIFEST_FILE
        if not manifest_path.is_file():
            raise DataError(f"{manifest_path} not found: not a packed-data directory")
        self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if split not in self.manifest["splits"]:
            raise DataError(f"{manifest_path} has no split {split!r}")
        self.seq_len: int = self.manifest["seq_len"]
        self._shards = [
            np.load(directory / shard["path"], mmap_mode="r")
            for shard in self.manifest["splits"][split]["shards"]
        ]
        for shard in self._shards:
            if shard.ndim != 2 or shard.shape[1] != self.seq_len + 1 or shard.dtype != np.int32:
                raise DataError(
                    f"{directory}: shard {shard.shape} {shard.dtype} does not match "
                    f"int32 rows of seq_len + 1 = {self.seq_len + 1}"
                )
        self._offsets = np.cumsum([0] + [len(shard) for shard in self._shards])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"row {index} out of range for {len(self)} rows")
        shard = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return np.asarray(self._shards[shard][index - self._offsets[shard]])

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """Rows at `indices` as one int32 array [len(indices), seq_len + 1]."""
        out = np.empty((len(indices), self.seq_len + 1), dtype=np.int32)
        for position, index in enumerate(indices):
            out[position] = self[int(index)]
        return out


class BatchLoader:
    """Infinite shuffled batches: each epoch is a permutation keyed by (seed, epoch).

    Batches are consecutive slices of the concatenated epoch permutations, so every row appears
    exactly once per epoch; process `process_index` gets its contiguous slice of each global
    batch. `state()`/`restore()` resume exactly where the stream stopped.
    """

    def __init__(
        self,
        dataset: PackedDataset,
        batch_size: int,
        seed: int,
        process_index: int = 0,
        process_count: int = 1,
    ):
        if batch_size <= 0 or batch_size % process_count:
            raise DataError(
                f"batch_size {batch_size} must be a positive multiple of process_count {process_count}"
            )
        if not 0 <= process_index < process_count:
            raise DataError(f"process_index {process_index} not in [0, {process_count})")
        if len(dataset) == 0:
            raise DataError("cannot draw batches from an empty dataset")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.local_batch_size = batch_size // process_count
        self._local_start = process_index * self.local_batch_size
        self._position = 0
        self._epoch = -1
        self._permutation = np.empty(0, dtype=np.int64)

    def _row_index(self, position: int) -> int:
        epoch, offset = divmod(position, len(self.dataset))
        if epoch != self._epoch:
            self._permutation = np.random.default_rng([self.seed, epoch]).permutation(
                len(self.dataset)
            )
            self._epoch = epoch
        return int(self._permutation[offset])

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        start = self._position + self._local_start
        indices = [self._row_index(start + i) for i in range(self.local_batch_size)]
        self._position += self.batch_size
        return self.dataset.rows(np.asarray(indices))

    def state(self) -> dict[str, int]:
        """JSON-serialisable position in the stream."""
        return {
            "position": self._position,
            "seed": self.seed,
            "rows": len(self.dataset),
            "batch_size": self.batch_size,
        }

    def restore(self, state: dict[str, int]) -> None:
        """Continue from a `state()` taken on a loader over the same data and settings."""
        for key, current in (
            ("seed", self.seed),
            ("rows", len(self.dataset)),
            ("batch_size", self.batch_size),
        ):
            if state[key] != current:
                raise DataError(f"loader state has {key}={state[key]}, this loader has {current}")
        self._position = int(state["position"])


def eval_batches(dataset: PackedDataset, batch_size: int, max_batches: int) -> list[np.ndarray]:
    """The first `max_batches` full batches in row order (one short batch if fewer rows exist)."""
    full = min(max_batches, len(dataset) // batch_size)
    if full == 0:
        return [dataset.rows(np.arange(len(dataset)))] if len(dataset) and max_batches else []
    return [dataset.rows(np.arange(i * batch_size, (i + 1) * batch_size)) for i in range(full)]
