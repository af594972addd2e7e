"""Near-duplicate removal with MinHash LSH banding, and its measured precision/recall."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasketch import MinHashLSH

from data_tools.minhash import jaccard


class NearDuplicateIndex:
    """Keeps the first of each group of near duplicates, in insertion order.

    Banding is datasketch's `MinHashLSH` (its bands and rows per band for the threshold; a
    candidate shares at least one whole band), kept in plain dicts of band bytes: datasketch's
    per-file overhead (a LeanMinHash, byte-swapped band copies) was most of the main process's
    time. A file is a near duplicate when a candidate's estimated Jaccard similarity (the share
    of equal signature slots) reaches the threshold; checking the estimate removes most LSH false
    positives. Insertion order alone decides what is kept, so the result is deterministic.
    """

    def __init__(self, threshold: float, num_perm: int):
        reference = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.threshold = threshold
        self.bands, self.rows = int(reference.b), int(reference.r)
        self._tables: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self._signatures: dict[int, np.ndarray] = {}

    def _band_keys(self, signature: np.ndarray) -> list[bytes]:
        data = signature[: self.bands * self.rows].tobytes()
        width = signature.itemsize * self.rows
        return [data[start : start + width] for start in range(0, len(data), width)]

    def _candidates(self, bands: list[bytes]) -> set[int]:
        found: set[int] = set()
        for table, band in zip(self._tables, bands, strict=True):
            found.update(table.get(band, ()))
        return found

    def candidates(self, signature: np.ndarray) -> set[int]:
        """Keys of indexed signatures that share at least one band with `signature`."""
        return self._candidates(self._band_keys(signature))

    def add(self, key: int, signature: np.ndarray) -> bool:
        """Index `signature` under `key` and return True, or return False for a near duplicate."""
        bands = self._band_keys(signature)
        for candidate in self._candidates(bands):
            # count / size: the same float as np.mean, at a fraction of its overhead.
            equal = np.count_nonzero(self._signatures[candidate] == signature) / len(signature)
            if equal >= self.threshold:
                return False
        for table, band in zip(self._tables, bands, strict=True):
            table.setdefault(band, []).append(key)
        self._signatures[key] = signature
        return True


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
    shingles: Sequence[np.ndarray], signatures: np.ndarray, index: NearDuplicateIndex
) -> dict[str, float | int]:
    """Precision and recall of the index's duplicate decision against exact Jaccard, over all
    pairs of a sample of shingle sets. Pairs whose set sizes alone rule out the threshold skip
    the exact check.
    """
    threshold = index.threshold
    first, second = np.triu_indices(len(shingles), k=1)
    shared = np.flatnonzero(_band_candidates(signatures, index.bands, index.rows)[first, second])
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
        "bands": index.bands,
        "rows_per_band": index.rows,
    }
