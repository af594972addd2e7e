"""Stage one of the pipeline: sources -> read + exact dedup -> quality and language filters +
MinHash -> near dedup, ending in a `CorpusStore` of the kept files and a statistics dict.

Exact dedup runs before the filters so the costly per-file work is done once per distinct file;
a duplicate of a bad file is therefore counted as "exact_duplicate".
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.config import DataConfig
from core.language import Language
from data_tools.dedup import NearDuplicateIndex, lsh_quality
from data_tools.minhash import MinHasher
from data_tools.sources import Document, open_source, read_text, within_budget
from data_tools.workers import WorkerPool, fingerprint, sketch

TEXTS_FILE = "texts.bin"
INDEX_FILE = "index.json"


class CorpusStore:
    """Kept files in content-hash order: UTF-8 texts concatenated in one file plus an index."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.entries: list[dict[str, Any]] = json.loads((directory / INDEX_FILE).read_text())

    @staticmethod
    def write(directory: Path, documents: Sequence[tuple[str, str, str]]) -> CorpusStore:
        """Store (id, content hash, text) triples, ordered by content hash."""
        directory.mkdir(parents=True, exist_ok=True)
        entries, offset = [], 0
        with open(directory / TEXTS_FILE, "wb") as handle:
            for doc_id, digest, text in sorted(documents, key=lambda item: item[1]):
                data = text.encode("utf-8")
                handle.write(data)
                entries.append(
                    {"id": doc_id, "hash": digest, "offset": offset, "length": len(data)}
                )
                offset += len(data)
        (directory / INDEX_FILE).write_text(json.dumps(entries))
        return CorpusStore(directory)

    def __len__(self) -> int:
        return len(self.entries)

    def texts(self) -> Iterator[tuple[dict[str, Any], str]]:
        """(index entry, text) for every kept file, in content-hash order."""
        with open(self.directory / TEXTS_FILE, "rb") as handle:
            for entry in self.entries:
                yield entry, handle.read(entry["length"]).decode("utf-8")


class _Stages:
    """Collects per-stage file counts, bytes and wall time."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._start = time.perf_counter()

    def record(self, stage: str, files_in: int, files_out: int, bytes_in: int) -> None:
        now = time.perf_counter()
        self.rows.append(
            {
                "stage": stage,
                "files_in": files_in,
                "files_out": files_out,
                "bytes_in": bytes_in,
                "seconds": round(now - self._start, 4),
            }
        )
        self._start = now


def _progress(items: Any, description: str, total: int | None, config: DataConfig) -> Any:
    return tqdm(
        items, desc=description, total=total, unit="file", disable=not config.progress, leave=False
    )


def build_corpus(
    language: Language, sources: Sequence[str], config: DataConfig, directory: Path
) -> dict[str, Any]:
    """Filter and deduplicate `sources` into a CorpusStore at `directory`; return statistics."""
    source = within_budget(
        open_source(sources, language.extensions, config.dataset_config, config.dataset_split,
                    config.text_column),
        config.max_files,
        config.max_bytes,
    )  # fmt: skip
    with WorkerPool(language, config) as pool:
        return _build(pool, source, language, config, directory)


def _build(
    pool: WorkerPool,
    source: Iterator[Document],
    language: Language,
    config: DataConfig,
    directory: Path,
) -> dict[str, Any]:
    stages = _Stages()
    dropped: collections.Counter[str] = collections.Counter()
    files_in = bytes_in = 0
    unique: list[tuple[Document, str]] = []
    seen: set[str] = set()
    for document, (reason, digest) in _progress(
        pool.map(fingerprint, source), "read+exact dedup", None, config
    ):
        files_in += 1
        bytes_in += document.size
        if reason:
            dropped[reason] += 1
        elif digest in seen:
            dropped["exact_duplicate"] += 1
        else:
            seen.add(digest)
            unique.append((document, digest))
    stages.record("list+read+exact_dedup", files_in, len(unique), bytes_in)

    index = NearDuplicateIndex(config.jaccard_threshold, config.num_perm)
    sketched: list[tuple[Document, str, np.ndarray]] = []
    survivors: list[tuple[Document, str]] = []
    sketches = pool.map(sketch, [document for document, _ in unique])
    # Near dedup runs as signatures arrive, overlapping the main process with the workers.
    for (document, digest), (_, (reason, signature)) in _progress(
        zip(unique, sketches, strict=True),
        f"filters+{language.name}+minhash+near dedup",
        len(unique),
        config,
    ):
        if reason:
            dropped[reason] += 1
            continue
        sketched.append((document, digest, signature))
        if index.add(len(sketched) - 1, signature):
            survivors.append((document, digest))
        else:
            dropped["near_duplicate"] += 1
    stages.record(
        f"filters+{language.name}+minhash+near_dedup",
        len(unique),
        len(survivors),
        sum(document.size for document, _ in unique),
    )

    kept = []
    for document, digest in survivors:
        text, reason = read_text(document, config.max_chars)
        if text is None:  # Changed or vanished since it was screened.
            dropped[reason] += 1
        else:
            kept.append((document.id, digest, text))
    store = CorpusStore.write(directory, kept)
    stages.record("write", len(survivors), len(store), 0)
    quality = _sample_quality(sketched, index, config)
    stages.record("lsh_quality_sample", quality["sample_files"], quality["sample_files"], 0)
    return {
        "files_in": files_in,
        "bytes_in": bytes_in,
        "files_kept": len(store),
        "bytes_kept": sum(entry["length"] for entry in store.entries),
        "dropped": dict(sorted(dropped.items())),
        "stages": stages.rows,
        "dedup": {
            "exact_duplicates": dropped["exact_duplicate"],
            "near_duplicates": dropped["near_duplicate"],
            "jaccard_threshold": config.jaccard_threshold,
            "num_perm": config.num_perm,
            "shingle_size": config.shingle_size,
            "lsh_quality": quality,
        },
    }


def _sample_quality(
    sketched: Sequence[tuple[Document, str, np.ndarray]],
    index: NearDuplicateIndex,
    config: DataConfig,
) -> dict[str, float | int]:
    """LSH precision/recall on the first `dedup_eval_sample` files in content-hash order."""
    sample = sorted(sketched, key=lambda item: item[1])[: config.dedup_eval_sample]
    hasher = MinHasher(config.num_perm, config.shingle_size)
    shingles = [hasher.shingles(read_text(document, config.max_chars)[0] or "")
                for document, _, _ in sample]  # fmt: skip
    signatures = np.zeros((len(sample), config.num_perm), dtype=np.uint32)
    for row, (_, _, signature) in enumerate(sample):
        signatures[row] = signature
    return lsh_quality(shingles, signatures, index)
