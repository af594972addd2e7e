import json
from pathlib import Path

import numpy as np
from datasketch import LeanMinHash, MinHashLSH
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets

from data_tools.dedup import (
    ClusterNearDuplicates,
    NearDedupFiles,
    SortedSignatures,
    _band_candidates,
    content_key,
    lsh_bands,
    minhash_config,
    read_removed,
    read_run,
    write_run,
)
from data_tools.minhash import MinHasher
from data_tools.testing import near_copy, python_module

THRESHOLD, PERMUTATIONS = 0.7, 256


def _lean(signature: np.ndarray) -> LeanMinHash:
    return LeanMinHash(seed=0, hashvalues=signature, scheme="affine32")


def _texts() -> list[str]:
    """Distinct modules, a near copy of one and a chain of near copies of another."""
    texts = [python_module(seed) for seed in range(8)]
    chain = near_copy(python_module(4))
    return [*texts, near_copy(python_module(1)), chain, near_copy(chain)]


def _run_stages(texts: list[str], root: Path, tasks: int) -> set[str]:
    """The three near-dedup stages run in-process over `texts` split into `tasks` tasks; the
    removed documents' keys."""
    config = minhash_config(THRESHOLD, PERMUTATIONS, 5)
    files = NearDedupFiles(root)
    for rank in range(tasks):
        documents = (Document(text=t, id=str(i)) for i, t in enumerate(texts) if i % tasks == rank)
        SortedSignatures(str(root), config, PERMUTATIONS).run(documents, rank, tasks)
    for band in range(config.num_buckets):
        buckets = MinhashDedupBuckets(str(files.buckets), str(files.dups), config=config)
        buckets.run(None, band, config.num_buckets)
    ClusterNearDuplicates(str(root), THRESHOLD, tasks).run(None, 0, 1)
    removed = set()
    for rank in range(tasks):
        keys = [key for key, _, _ in read_run(files.run(rank))]
        removed |= {keys[index] for index in read_removed(files, rank)}
    return removed


def _reference(texts: list[str]) -> set[str]:
    """Removed keys by a datasketch index: pairs sharing a band whose estimated similarity
    reaches the threshold, joined into components, each keeping its smallest key."""
    hasher = MinHasher(PERMUTATIONS, 5)
    keys = [content_key(text) for text in texts]
    signatures = [hasher.signature(hasher.shingles(text)) for text in texts]
    index = MinHashLSH(threshold=THRESHOLD, num_perm=PERMUTATIONS)
    for key, signature in zip(keys, signatures, strict=True):
        index.insert(key, _lean(signature))
    component = {key: {key} for key in keys}
    for key, signature in zip(keys, signatures, strict=True):
        for other in index.query(_lean(signature)):
            similar = np.mean(signatures[keys.index(other)] == signature) >= THRESHOLD
            if other != key and similar and component[key] is not component[other]:
                merged = component[key] | component[other]
                for member in merged:
                    component[member] = merged
    return {key for key in keys if key != min(component[key])}


def test_near_dedup_stages_match_a_datasketch_reference_whatever_the_tasks(tmp_path: Path) -> None:
    texts = _texts()
    expected = _reference(texts)
    assert len(expected) == 3  # the near copy and both links of the chain
    for tasks in (1, 3):
        assert _run_stages(texts, tmp_path / f"tasks{tasks}", tasks) == expected


def test_candidates_below_the_threshold_are_kept(tmp_path: Path) -> None:
    """A pair that shares a band but not 70% of its slots is an LSH false positive."""
    files = NearDedupFiles(tmp_path)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**32, PERMUTATIONS, dtype=np.uint32)
    one_band, close = rng.integers(0, 2**32, PERMUTATIONS, dtype=np.uint32), base.copy()
    one_band[20:30] = base[20:30]
    close[::5] += 1  # 80% equal slots
    for path in (files.signatures(0), files.dups / "00000_00.dups"):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_run(files.run(0), [(f"{k:032x}", "", "") for k in range(3)])
    np.save(files.signatures(0), np.stack([base, one_band, close]))
    np.array([[0, 0, 0, 1], [0, 0, 0, 2]], dtype="<u4").tofile(files.dups / "00000_00.dups")
    ClusterNearDuplicates(str(tmp_path), THRESHOLD, 1).run(None, 0, 1)
    assert read_removed(files, 0).tolist() == [2]
    summary = json.loads(files.summary.read_text())
    assert summary == {"candidate_pairs": 2, "verified_pairs": 1, "near_duplicates": 1}


def test_bands_are_datasketchs_and_quality_candidates_match_its_queries() -> None:
    hasher = MinHasher(PERMUTATIONS, 5)
    signatures = np.stack([hasher.signature(hasher.shingles(text)) for text in _texts()])
    reference = MinHashLSH(threshold=THRESHOLD, num_perm=PERMUTATIONS)
    assert lsh_bands(THRESHOLD, PERMUTATIONS) == (reference.b, reference.r)
    for key, signature in enumerate(signatures):
        reference.insert(key, _lean(signature))
    candidates = _band_candidates(signatures, reference.b, reference.r)
    for row, signature in enumerate(signatures):
        assert set(np.flatnonzero(candidates[row])) == set(reference.query(_lean(signature)))


def test_a_sorted_run_reads_back_what_was_written(tmp_path: Path) -> None:
    documents = [(content_key(text), f"id-{i}", text) for i, text in enumerate(
        ["", "plain", "é ∑ 🎯\r\n\x00", "lone \udc80 surrogate"])]  # fmt: skip
    write_run(tmp_path / "run", sorted(documents))
    assert list(read_run(tmp_path / "run")) == sorted(documents)
    assert [key for key, _, _ in read_run(tmp_path / "run", texts=False)] == sorted(
        key for key, _, _ in documents
    )
