"""Per-file work run in worker processes on batches of documents, results in input order.

Two passes: `fingerprint` (read, normalised content hash) runs on every file; `sketch` (quality
and language filters, MinHash signature) runs only on the first copy of each exact duplicate, so
the costly work is done once per distinct file. Texts never travel back to the main process,
which reads the kept files again: shipping every screened text cost as much, in more memory.
"""

from __future__ import annotations

import collections
import hashlib
import multiprocessing
import multiprocessing.pool
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import TypeVar

import numpy as np

from core.config import DataConfig
from core.language import Language
from data_tools.filters import quality_drop_reason
from data_tools.minhash import MinHasher
from data_tools.sources import Document, read_text

R = TypeVar("R")

# Set once per worker process by `_initialize` (or in-process when running without workers).
_language: Language
_config: DataConfig
_hasher: MinHasher


def _initialize(language: Language, config: DataConfig) -> None:
    global _language, _config, _hasher
    _language, _config = language, config
    _hasher = MinHasher(config.num_perm, config.shingle_size)


_WHITESPACE = b" \t\n\r\x0b\x0c"


def content_hash(text: str) -> str:
    """Hash of `text` with all ASCII whitespace removed: formatting-only copies collide."""
    normalised = text.encode("utf-8").translate(None, _WHITESPACE)
    return hashlib.blake2b(normalised, digest_size=16).hexdigest()


def _fingerprint_one(document: Document) -> tuple[str | None, str]:
    text, reason = read_text(document, _config.max_chars)
    return (reason, "") if text is None else (None, content_hash(text))


def fingerprint(batch: Sequence[Document]) -> list[tuple[str | None, str]]:
    """(reason the file cannot be read, or None; normalised content hash) for each document."""
    return [_fingerprint_one(document) for document in batch]


def _sketch_one(document: Document) -> tuple[str | None, np.ndarray | None]:
    text, reason = read_text(document, _config.max_chars)
    if text is None:
        return reason, None
    try:
        reason = quality_drop_reason(
            text, _language.line_comment, _config
        ) or _language.drop_reason(text)
    except Exception:  # A filter bug must cost one file, not the run.
        reason = "filter_error"
    if reason:
        return reason, None
    return None, _hasher.signature(_hasher.shingles(text))


def sketch(batch: Sequence[Document]) -> list[tuple[str | None, np.ndarray | None]]:
    """(drop reason from the quality or language filter, or None; MinHash signature) per file."""
    return [_sketch_one(document) for document in batch]


def _batched(items: Iterable[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def worker_count(config: DataConfig) -> int:
    """How many processes to use: `config.workers`, or one per available CPU."""
    return config.workers or len(os.sched_getaffinity(0))


class WorkerPool:
    """Worker processes for one corpus build; with one worker, work runs in the calling process.

    Use as a context manager; the processes end on exit.
    """

    def __init__(self, language: Language, config: DataConfig):
        self._batch_files = config.batch_files
        self._pool: multiprocessing.pool.Pool | None = None
        if worker_count(config) == 1:
            _initialize(language, config)
        else:
            context = multiprocessing.get_context("fork")
            self._pool = context.Pool(
                worker_count(config), initializer=_initialize, initargs=(language, config)
            )

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()

    def map(
        self, function: Callable[[list[Document]], list[R]], documents: Iterable[Document]
    ) -> Iterator[tuple[Document, R]]:
        """(document, its result) in input order; `function` maps a batch to per-file results.

        `documents` is consumed in the pool's feeder thread, so a lazy source overlaps with the
        workers.
        """
        batches = _batched(documents, self._batch_files)
        if self._pool is None:
            for batch in batches:
                yield from zip(batch, function(batch), strict=True)
            return
        sent: collections.deque[list[Document]] = collections.deque()

        def sending() -> Iterator[list[Document]]:
            for batch in batches:
                sent.append(batch)  # Before a worker can take it, so before its result.
                yield batch

        for results in self._pool.imap(function, sending()):
            yield from zip(sent.popleft(), results, strict=True)
