"""Near-duplicate removal as datatrove's bounded-memory MinHash stages, with our own first and
third stage, and its measured precision/recall.

1. `SortedSignatures` (ours; one task per shard): buffers the task's documents, orders them by
   content key, writes them as a sorted run for packing, and writes their MinHash signatures
   (our vectorised MinHasher, measured several times faster than a datasketch loop) as
   datatrove's band files plus the full signatures and keys.
2. datatrove's `MinhashDedupBuckets` (one task per band): documents sharing a whole band.
3. `ClusterNearDuplicates` (ours; one task): keeps the candidate pairs whose estimated Jaccard
   similarity (the share of equal signature slots) reaches the threshold, which removes most LSH
   false positives; joins them into connected components; keeps each component's document with
   the smallest content key and marks the rest for removal. Only duplicates are held in memory.
The kept set depends on neither the number of tasks nor the workers: bands, verification,
components and the smallest key are all properties of the documents.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.utils.hashing import HashConfig

from data_tools.minhash import MinHasher, jaccard

KEY_BYTES = 16
Node = tuple[int, int]  # (task, index in the task's sorted run)
# A sorted run's record: the key's digest and the UTF-8 lengths of the id and the text, which
# follow. Binary rather than JSON lines: escaping the texts cost a sixth of the filter stage.
_RECORD = struct.Struct(f"<{KEY_BYTES}sII")
Run = tuple[str, str, str]  # (key, id, text)


def content_key(text: str) -> str:
    """The order and identity key of a document: a hash of its exact text, hex."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES).hexdigest()


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's bands and rows per band for `threshold` (minimising its weighted errors)."""
    from datasketch import MinHashLSH  # imported here: it costs workers a second (scipy)

    reference = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return int(reference.b), int(reference.r)


def minhash_config(threshold: float, num_perm: int, shingle_size: int) -> MinhashConfig:
    """datatrove's MinHash config for our signatures: 32-bit values in datasketch's bands."""
    bands, rows = lsh_bands(threshold, num_perm)
    return MinhashConfig(
        n_grams=shingle_size,
        num_buckets=bands,
        hashes_per_bucket=rows,
        hash_config=HashConfig(precision=32),
    )


class NearDedupFiles:
    """Where the near-dedup stages keep their files under one directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.buckets = self.root / "buckets"  # datatrove's bucket_XXX/RRRRR.minhash.sig
        self.dups = self.root / "dups"  # datatrove's .dups pairs
        self.summary = self.root / "summary.json"

    def run(self, rank: int) -> Path:
        """The task's documents, sorted by key (`write_run`'s records)."""
        return self.root / "runs" / f"{rank:05d}.run"

    def signatures(self, rank: int) -> Path:
        return self.root / "signatures" / f"{rank:05d}.npy"

    def removed(self, rank: int) -> Path:
        """The run indices (uint32, ascending) of the task's near duplicates."""
        return self.root / "removed" / f"{rank:05d}.u32"


class SortedSignatures(PipelineStep):
    """Stage 1: the task's documents as a sorted run and their MinHash signatures."""

    type = "🫂 - DEDUP"
    name = "🎯 sorted runs + MinHash signatures"

    def __init__(self, root: str, config: MinhashConfig, num_perm: int) -> None:
        super().__init__()
        self.files = NearDedupFiles(root)
        self.config = config
        self.num_perm = num_perm

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        documents = sorted((content_key(doc.text), doc.id, doc.text) for doc in data)
        hasher = MinHasher(self.num_perm, self.config.n_grams)
        with self.track_time():
            signatures = np.stack(
                [hasher.signature(hasher.shingles(text)) for _, _, text in documents]
                or [np.zeros(self.num_perm, np.uint32)]
            )[: len(documents)]
            empty = np.all(signatures == np.iinfo(np.uint32).max, axis=1)
        self.stat_update("documents", value=len(documents))
        write_run(self.files.run(rank), documents)
        atomic_write(self.files.signatures(rank), lambda h: np.save(h, signatures))
        rows, bands = self.config.hashes_per_bucket, self.config.num_buckets
        record = np.dtype([(f"h{i}", "<u4") for i in range(rows)] + [("doc", "<u4")])
        for band in range(bands):
            records = np.zeros(int((~empty).sum()), dtype=record)
            band_values = signatures[~empty, band * rows : (band + 1) * rows]
            for i in range(rows):
                records[f"h{i}"] = band_values[:, i]
            records["doc"] = np.flatnonzero(~empty)
            records.sort(order=record.names)
            path = self.files.buckets / f"bucket_{band:03d}" / f"{rank:05d}.minhash.sig"
            atomic_write(path, lambda h, records=records: h.write(records.tobytes()))
        return iter(())


def _record(key: str, doc_id: str, text: str) -> bytes:
    identifier, body = (
        doc_id.encode("utf-8", "surrogatepass"),
        text.encode("utf-8", "surrogatepass"),
    )
    return _RECORD.pack(bytes.fromhex(key), len(identifier), len(body)) + identifier + body


def write_run(path: Path, documents: Sequence[Run]) -> None:
    """Write `documents` (already in key order) as a sorted run at `path`, atomically."""
    atomic_write(path, lambda h: h.writelines(_record(*document) for document in documents))


def read_run(path: Path, texts: bool = True) -> Iterator[Run]:
    """The (key, id, text) records of a sorted run, in order, streaming; with `texts` False the
    ids and texts are skipped on disk, not read (both come back empty)."""
    with open(path, "rb") as handle:
        while header := handle.read(_RECORD.size):
            digest, id_size, text_size = _RECORD.unpack(header)
            if not texts:
                handle.seek(id_size + text_size, 1)
                yield digest.hex(), "", ""
                continue
            payload = handle.read(id_size + text_size)
            yield (digest.hex(), payload[:id_size].decode("utf-8", "surrogatepass"),
                   payload[id_size:].decode("utf-8", "surrogatepass"))  # fmt: skip


def atomic_write(path: Path, write: Any, text: bool = False) -> None:
    """Write `path` through `write(handle)` under a temporary name, renamed when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w" if text else "wb") as handle:
        write(handle)
    partial.replace(path)


class ClusterNearDuplicates(PipelineStep):
    """Stage 3: verified candidate pairs joined into components; all but each component's
    smallest-key document are removed."""

    type = "🫂 - DEDUP"
    name = "🎯 verify + cluster"

    def __init__(self, root: str, threshold: float, tasks: int) -> None:
        super().__init__()
        self.files = NearDedupFiles(root)
        self.threshold = threshold
        self.tasks = tasks

    def _pairs(self) -> set[tuple[Node, Node]]:
        pairs = set()
        for path in sorted(self.files.dups.glob("*.dups")):
            values = np.fromfile(path, dtype="<u4").reshape(-1, 4)
            for f1, d1, f2, d2 in values.tolist():
                a, b = (f1, d1), (f2, d2)
                pairs.add((min(a, b), max(a, b)))
        return pairs

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        signatures = [
            np.load(self.files.signatures(task), mmap_mode="r") for task in range(self.tasks)
        ]
        candidates = self._pairs()
        verified = [
            (a, b)
            for a, b in sorted(candidates)
            if np.mean(signatures[a[0]][a[1]] == signatures[b[0]][b[1]]) >= self.threshold
        ]
        keys = self._keys({node for pair in verified for node in pair})
        parent: dict[Node, Node] = {}

        def find(node: Node) -> Node:
            parent.setdefault(node, node)
            while parent[node] != node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        for a, b in verified:
            root_a, root_b = find(a), find(b)
            if root_a != root_b:  # the smaller key becomes the root, so it is the one kept
                keep, drop = sorted((root_a, root_b), key=keys.__getitem__)
                parent[drop] = keep
        removed: list[list[int]] = [[] for _ in range(self.tasks)]
        for node in parent:
            if find(node) != node:
                removed[node[0]].append(node[1])
        for task, indices in enumerate(removed):
            array = np.array(sorted(indices), dtype="<u4")
            atomic_write(self.files.removed(task), lambda h, array=array: h.write(array.tobytes()))
        summary = {"candidate_pairs": len(candidates), "verified_pairs": len(verified),
                   "near_duplicates": sum(map(len, removed))}  # fmt: skip
        atomic_write(self.files.summary, lambda h: json.dump(summary, h), text=True)
        self.stat_update("near_duplicates", value=summary["near_duplicates"])
        return iter(())

    def _keys(self, nodes: set[Node]) -> dict[Node, str]:
        """The content keys of `nodes`, read from the runs (only duplicates are held)."""
        keys = {}
        for task in sorted({task for task, _ in nodes}):
            wanted = {index for owner, index in nodes if owner == task}
            for index, (key, _, _) in enumerate(read_run(self.files.run(task), texts=False)):
                if index in wanted:
                    keys[(task, index)] = key
        return keys


def read_removed(files: NearDedupFiles, rank: int) -> np.ndarray:
    """The run indices stage 3 removed from task `rank`'s run."""
    return np.fromfile(files.removed(rank), dtype="<u4")


def _band_candidates(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """[n, n] bool: pairs sharing at least one whole LSH band."""
    count = len(signatures)
    banded = signatures[:, : bands * rows].reshape(count, bands, rows)
    band_type = np.dtype((np.void, banded.itemsize * rows))  # A whole band as one value.
    equal = np.zeros((count, count), dtype=bool)
    for band in range(bands):
        keys = np.ascontiguousarray(banded[:, band]).view(band_type)[:, 0]
        ids = np.unique(keys, return_inverse=True)[1]
        equal |= ids[:, None] == ids[None, :]
    return equal


def lsh_quality(
    shingles: Sequence[np.ndarray],
    signatures: np.ndarray,
    threshold: float,
    bands: int,
    rows: int,
) -> dict[str, float | int]:
    """Precision and recall of the pipeline's duplicate decision (a shared band, then the
    estimated similarity) against exact Jaccard, over all pairs of a sample of shingle sets.
    Pairs whose set sizes alone rule out the threshold skip the exact check.
    """
    first, second = np.triu_indices(len(shingles), k=1)
    shared = np.flatnonzero(_band_candidates(signatures, bands, rows)[first, second])
    predicted = np.zeros(len(first), dtype=bool)
    predicted[shared] = (
        np.mean(signatures[first[shared]] == signatures[second[shared]], axis=1) >= threshold
    )
    sizes = np.array([len(s) for s in shingles], dtype=np.float64)
    possible = np.minimum(sizes[first], sizes[second]) >= threshold * np.maximum(
        sizes[first], sizes[second]
    )
    true = np.zeros(len(first), dtype=bool)
    for pair in np.flatnonzero(possible):
        true[pair] = jaccard(shingles[first[pair]], shingles[second[pair]]) >= threshold
    both = int(np.count_nonzero(predicted & true))
    predicted_pairs, true_pairs = int(predicted.sum()), int(true.sum())
    return {
        "sample_files": len(shingles),
        "pairs": len(first),
        "true_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "precision": both / predicted_pairs if predicted_pairs else 1.0,
        "recall": both / true_pairs if true_pairs else 1.0,
        "bands": bands,
        "rows_per_band": rows,
    }
