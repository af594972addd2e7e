import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from data_tools.dedup import NearDuplicateIndex, _band_candidates
from data_tools.minhash import MinHasher
from data_tools.testing import near_copy, python_module


def _lean(signature: np.ndarray) -> LeanMinHash:
    return LeanMinHash(seed=0, hashvalues=signature, scheme="affine32")


def _signatures() -> np.ndarray:
    """Real signatures (distinct modules, near copies) plus synthetic rows that share exactly one
    LSH band, or most slots but no band, with an earlier row."""
    hasher = MinHasher(256, 5)
    texts = [python_module(seed) for seed in range(6)]
    texts += [near_copy(python_module(1)), near_copy(near_copy(python_module(4)))]
    rows = [hasher.signature(hasher.shingles(text)) for text in texts]
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**32, 256, dtype=np.uint32)
    one_band = rng.integers(0, 2**32, 256, dtype=np.uint32)
    one_band[20:30] = base[20:30]
    no_band = base.copy()
    no_band[::10] += 1  # 90% equal slots, yet every 10-slot band differs somewhere.
    return np.stack([*rows, base, one_band, no_band])


def test_index_bands_and_decides_like_a_datasketch_index() -> None:
    signatures = _signatures()
    reference = MinHashLSH(threshold=0.7, num_perm=256)
    index = NearDuplicateIndex(0.7, 256)
    assert (index.bands, index.rows) == (reference.b, reference.r)
    decisions = []
    for key, signature in enumerate(signatures):
        found = set(reference.query(_lean(signature)))
        assert index.candidates(signature) == found
        duplicate = any(np.mean(signatures[other] == signature) >= 0.7 for other in found)
        assert index.add(key, signature) is not duplicate
        if not duplicate:
            reference.insert(key, _lean(signature))
        decisions.append((bool(found), duplicate))
    # Near copies are dropped; a row sharing one band is a candidate only; 90% is missed.
    assert decisions.count((True, True)) == 2
    assert decisions[-2:] == [(True, False), (False, False)]


def test_quality_band_candidates_match_datasketch_queries() -> None:
    signatures = _signatures()
    reference = MinHashLSH(threshold=0.7, num_perm=256)
    for key, signature in enumerate(signatures):
        reference.insert(key, _lean(signature))
    candidates = _band_candidates(signatures, reference.b, reference.r)
    for row, signature in enumerate(signatures):
        assert set(np.flatnonzero(candidates[row])) == set(reference.query(_lean(signature)))
