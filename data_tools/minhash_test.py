import numpy as np

from data_tools.dedup import lsh_bands, lsh_quality
from data_tools.minhash import MinHasher, jaccard
from data_tools.testing import near_copy, python_module


def test_tokens_are_identifier_runs_and_hash_by_content() -> None:
    hasher = MinHasher(num_perm=16, shingle_size=5)
    hashes = hasher.token_hashes("foo(bar_1, foo) + é.foo")
    assert len(hashes) == 4  # foo, bar_1, foo, foo: "é" and punctuation separate tokens.
    assert hashes[0] == hashes[2] == hashes[3] != hashes[1]


def test_same_text_same_signature_across_instances() -> None:
    text = python_module(1)
    first, second = MinHasher(256, 5), MinHasher(256, 5)
    np.testing.assert_array_equal(
        first.signature(first.shingles(text)), second.signature(second.shingles(text))
    )


def test_shingles_are_a_sorted_set_and_repeats_do_not_change_the_signature() -> None:
    hasher = MinHasher(256, 5)
    shingles = hasher.shingles(python_module(11) * 2)
    assert len(shingles) > 100 and (shingles[1:] > shingles[:-1]).all()
    shuffled = np.random.default_rng(0).permutation(np.repeat(shingles, 3))
    np.testing.assert_array_equal(hasher.signature(shuffled), hasher.signature(shingles))
    assert len(hasher.shingles("a b")) == 1 and len(hasher.shingles("+ -")) == 0
    assert (hasher.signature(hasher.shingles("")) == 2**32 - 1).all()


def test_signature_of_long_input_equals_chunk_free_minimum() -> None:
    hasher = MinHasher(64, 5)
    shingles = hasher.shingles(python_module(2, functions=200))
    assert len(shingles) > 2048  # Several blocks.
    products = shingles[:, None] * hasher._multipliers
    np.testing.assert_array_equal(hasher.signature(shingles), products.min(axis=0))


def test_estimate_tracks_exact_jaccard() -> None:
    hasher = MinHasher(256, 5)
    base = python_module(3, functions=40)
    variants = [base, near_copy(base), base[: len(base) // 2], python_module(4, functions=40)]
    shingles = [hasher.shingles(text) for text in variants]
    signatures = [hasher.signature(s) for s in shingles]
    for other in range(1, 4):
        exact = jaccard(shingles[0], shingles[other])
        estimate = np.mean(signatures[0] == signatures[other])
        assert abs(estimate - exact) < 0.1, (other, exact, estimate)


def test_lsh_quality_counts_pairs_against_exact_jaccard() -> None:
    hasher = MinHasher(256, 5)
    texts = [python_module(8), near_copy(python_module(8)), python_module(9), python_module(10)]
    shingles = [hasher.shingles(text) for text in texts]
    signatures = np.stack([hasher.signature(s) for s in shingles])
    bands, rows = lsh_bands(0.7, 256)
    quality = lsh_quality(shingles, signatures, 0.7, bands, rows)
    assert quality["pairs"] == 6 and quality["true_pairs"] == 1
    assert quality["precision"] == 1.0 and quality["recall"] == 1.0
