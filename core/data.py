"""Prepared training data: per split, flat token streams in .npy shards, plus a manifest.json.

Each split is one stream of token ids (files each followed by the EOS id that also separates them
in a row) cut into shards of `shard_tokens`, stored as uint16 while the vocabulary fits (else
uint32). The stream has no sequence length: `TokenWindows` cuts it into windows of
`seq_len + 1` tokens at train time (window i starts at token i * seq_len, so targets never skip a
token), padding the last one, so one prepared dataset serves every sequence length.

Shards are read by memory map from local disk, or through fsspec (gs://, s3://, ...) with ranged
reads. `BatchLoader` yields deterministic, resumable, process-sharded batches; `eval_batches`
gives fixed validation batches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import fsspec
import numpy as np

MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "validation")
SHARD_TOKENS = 1 << 26  # 128 MiB of uint16 tokens per shard


class DataError(ValueError):
    """Prepared data that is missing, inconsistent, or used with mismatched loader state."""


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id of a `vocab_size` vocabulary."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


class ShardWriter:
    """Writes one split's token stream as .npy shards of `shard_tokens` tokens (the last shorter),
    each to a temporary name renamed when complete."""

    def __init__(
        self, directory: Path, split: str, dtype: np.dtype, shard_tokens: int = SHARD_TOKENS
    ) -> None:
        self.directory = directory
        self.split = split
        self.dtype = np.dtype(dtype)
        self.shard_tokens = shard_tokens
        self.shards: list[dict[str, Any]] = []
        self.tokens = 0
        self._pending: list[np.ndarray] = []
        self._pending_tokens = 0

    def add(self, tokens: np.ndarray) -> None:
        """Append tokens to the stream, writing every full shard."""
        self._pending.append(np.asarray(tokens).astype(self.dtype, copy=False))
        self._pending_tokens += len(tokens)
        self.tokens += len(tokens)
        while self._pending_tokens >= self.shard_tokens:
            self._flush(self.shard_tokens)

    def _flush(self, count: int) -> None:
        stream = np.concatenate(self._pending)
        name = f"{self.split}-{len(self.shards):05d}.npy"
        partial = self.directory / f"{name}.partial"
        with open(partial, "wb") as handle:
            np.save(handle, stream[:count])
        partial.replace(self.directory / name)
        self.shards.append({"path": name, "tokens": count})
        self._pending = [stream[count:]]
        self._pending_tokens = len(stream) - count

    def close(self) -> dict[str, Any]:
        """Write the remainder and describe the split for the manifest."""
        if self._pending_tokens:
            self._flush(self._pending_tokens)
        return {"tokens": self.tokens, "dtype": self.dtype.name, "shards": self.shards}


class _Shard:
    """One .npy shard: a memory map when local, ranged reads through fsspec otherwise."""

    def __init__(self, path: str) -> None:
        self.path = path
        protocol = fsspec.utils.get_protocol(path)
        if protocol in ("file", "local"):
            self._array: np.ndarray | None = np.load(path, mmap_mode="r")
            self.dtype, self.length = self._array.dtype, len(self._array)
            return
        self._array = None
        self._file = fsspec.open(path, "rb").open()
        major, _ = np.lib.format.read_magic(self._file)
        header = (
            np.lib.format.read_array_header_1_0
            if major == 1
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = header(self._file)
        self._offset, self.dtype, self.length = self._file.tell(), np.dtype(dtype), shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        if self._array is not None:
            return np.asarray(self._array[start:stop])
        self._file.seek(self._offset + start * self.dtype.itemsize)
        data = self._file.read((stop - start) * self.dtype.itemsize)
        return np.frombuffer(data, dtype=self.dtype)


class TokenStream:
    """One split of a prepared-data directory (a local path or an fsspec URL) as one stream."""

    def __init__(self, directory: str | Path, split: str) -> None:
        root = str(directory).rstrip("/")
        try:
            with fsspec.open(f"{root}/{MANIFEST_FILE}", "rt") as handle:
                self.manifest: dict[str, Any] = json.load(handle)
        except (FileNotFoundError, OSError):
            raise DataError(
                f"{root}/{MANIFEST_FILE} not found: not a prepared-data directory"
            ) from None
        if split not in self.manifest.get("splits", {}):
            raise DataError(f"{root}/{MANIFEST_FILE} has no split {split!r}")
        self._shards = [
            _Shard(f"{root}/{s['path']}") for s in self.manifest["splits"][split]["shards"]
        ]
        self._offsets = np.cumsum([0] + [shard.length for shard in self._shards])
        self.pad_id: int = self.manifest["pad_id"]
        self.eos_id: int = self.manifest["eos_id"]

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Tokens start..stop-1 as int32, across shards."""
        stop = min(stop, len(self))
        pieces = []
        first = int(np.searchsorted(self._offsets, start, side="right")) - 1
        for index in range(max(first, 0), len(self._shards)):
            base = int(self._offsets[index])
            if base >= stop:
                break
            shard = self._shards[index]
            pieces.append(shard.read(max(start - base, 0), min(stop - base, shard.length)))
        if not pieces:
            return np.zeros(0, np.int32)
        return np.concatenate(pieces).astype(np.int32)


class TokenWindows:
    """The stream cut into windows of seq_len + 1 tokens: window i is tokens i*S .. i*S+S, the last
    padded with the pad id."""

    def __init__(self, stream: TokenStream, seq_len: int) -> None:
        if seq_len <= 0:
            raise DataError(f"seq_len must be positive, got {seq_len}")
        self.stream = stream
        self.seq_len = seq_len
        self.manifest = stream.manifest

    def __len__(self) -> int:
        return math.ceil(max(len(self.stream) - 1, 0) / self.seq_len)

    def rows(self, indices: Sequence[int]) -> np.ndarray:
        """Windows at `indices` as one int32 array [len(indices), seq_len + 1]."""
        out = np.full((len(indices), self.seq_len + 1), self.stream.pad_id, dtype=np.int32)
        for position, index in enumerate(indices):
            if not 0 <= index < len(self):
                raise IndexError(f"window {index} out of range for {len(self)} windows")
            start = int(index) * self.seq_len
            window = self.stream.read(start, start + self.seq_len + 1)
            out[position, : len(window)] = window
        return out


def open_windows(directory: str | Path, split: str, seq_len: int) -> TokenWindows:
    """The `split` of the prepared data at `directory` in windows of seq_len + 1 tokens."""
    return TokenWindows(TokenStream(directory, split), seq_len)


class BatchLoader:
    """Infinite shuffled batches: each epoch is a permutation of the windows keyed by (seed, epoch).

    Batches are consecutive slices of the concatenated epoch permutations, so every window appears
    exactly once per epoch; process `process_index` gets its contiguous slice of each global
    batch. `state()`/`restore()` resume exactly where the stream stopped.
    """

    def __init__(
        self,
        windows: TokenWindows,
        batch_size: int,
        seed: int,
        process_index: int = 0,
        process_count: int = 1,
    ) -> None:
        if batch_size <= 0 or batch_size % process_count:
            raise DataError(
                f"batch_size {batch_size} must be a positive multiple of process_count {process_count}"
            )
        if not 0 <= process_index < process_count:
            raise DataError(f"process_index {process_index} not in [0, {process_count})")
        if len(windows) == 0:
            raise DataError("cannot draw batches from an empty dataset")
        self.windows = windows
        self.batch_size = batch_size
        self.seed = seed
        self.local_batch_size = batch_size // process_count
        self._local_start = process_index * self.local_batch_size
        self._position = 0
        self._epoch = -1
        self._permutation = np.empty(0, dtype=np.int64)

    def _window_index(self, position: int) -> int:
        epoch, offset = divmod(position, len(self.windows))
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._permutation = rng.permutation(len(self.windows))
            self._epoch = epoch
        return int(self._permutation[offset])

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        start = self._position + self._local_start
        indices = [self._window_index(start + i) for i in range(self.local_batch_size)]
        self._position += self.batch_size
        return self.windows.rows(indices)

    def state(self) -> dict[str, int]:
        """JSON-serialisable position in the stream."""
        return {
            "position": self._position,
            "seed": self.seed,
            "windows": len(self.windows),
            "seq_len": self.windows.seq_len,
            "batch_size": self.batch_size,
        }

    def restore(self, state: dict[str, int]) -> None:
        """Continue from a `state()` taken on a loader over the same data and settings."""
        for key, current in (
            ("seed", self.seed),
            ("windows", len(self.windows)),
            ("seq_len", self.windows.seq_len),
            ("batch_size", self.batch_size),
        ):
            if state.get(key) != current:
                raise DataError(
                    f"loader state has {key}={state.get(key)}, this loader has {current}"
                )
        self._position = int(state["position"])


def eval_batches(windows: TokenWindows, batch_size: int, max_batches: int) -> list[np.ndarray]:
    """The first `max_batches` full batches in window order (one short batch if fewer exist)."""
    full = min(max_batches, len(windows) // batch_size)
    if full == 0:
        return [windows.rows(range(len(windows)))] if len(windows) and max_batches else []
    return [windows.rows(range(i * batch_size, (i + 1) * batch_size)) for i in range(full)]
