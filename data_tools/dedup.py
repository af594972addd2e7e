"""Near-duplicate removal with datasketch's MinHash LSH, and its measured precision/recall."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from data_tools.minhash import jaccard


class NearDuplicateIndex:
    """Keeps the first of each group of near duplicates, in insertion order.

    A file is a near duplicate when an LSH candidate's estimated Jaccard similarity (the share of
    equal signature slots) reaches the threshold; checking the estimate removes most LSH false
    positives. Insertion order alone decides what is kept, so the result is deterministic.
    """

    def __init__(self, threshold: float, num_perm: int):
        self.threshold = threshold
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._signatures: dict[int, np.ndarray] = {}

    def add(self, key: int, signature: np.ndarray) -> bool:
        """Index `signature` under `key` and return True, or return False for a near duplicate."""
        minhash = LeanMinHash(seed=0, hashvalues=signature, scheme="affine32")
        for candidate in self.lsh.query(minhash):
            if np.mean(self._signatures[candidate] == signature) >= self.threshold:
                return False
        self.lsh.insert(key, minhash, check_duplication=False)
        self._signatures[key] = signature
        return True


def _band_candidates(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """[n, n] bool: pairs sharing at least one whole LSH band."""
    banded = signatures[:, : bands * rows].reshape(len(signatures), bands, rows)
    equal = np.zeros((len(signatures), len(signatures)), dtype=bool)
    for band in range(bands):
        keys = banded[:, band, :]
        equal |= (keys[:, None, :] == keys[None, :, :]).all(axis=-1)
    return equal


def lsh_quality(
    shingles: Sequence[np.ndarray], signatures: np.ndarray, index: NearDuplicateIndex
) -> dict[str, float | int]:
    """Precision and recall of the index's duplicate decision against exact Jaccard, over all
    pairs of a sample. Pairs whose set sizes alone rule out the threshold skip the exact check.
    """
    threshold = index.threshold
    candidates = _band_candidates(signatures, index.lsh.b, index.lsh.r)
    sets = [np.unique(s) for s in shingles]
    sizes = np.array([len(s) for s in sets], dtype=np.float64)
    predicted = true = both = 0
    for i, j in itertools.combinations(range(len(shingles)), 2):
        is_predicted = bool(
            candidates[i, j] and np.mean(signatures[i] == signatures[j]) >= threshold
        )
        could_be_true = min(sizes[i], sizes[j]) >= threshold * max(sizes[i], sizes[j])
        is_true = bool(could_be_true and jaccard(sets[i], sets[j]) >= threshold)
        predicted += is_predicted
        true += is_true
        both += is_predicted and is_true
    return {
        "sample_files": len(shingles),
        "pairs": len(shingles) * (len(shingles) - 1) // 2,
        "true_pairs": true,
        "predicted_pairs": predicted,
        "precision": both / predicted if predicted else 1.0,
        "recall": both / true if true else 1.0,
        "bands": int(index.lsh.b),
        "rows_per_band": int(index.lsh.r),
    }
