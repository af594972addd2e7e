import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.completion import SamplingConfig
from core.config import ConfigError
from core.generate import (
    NUCLEUS_CANDIDATES,
    GenerationError,
    _argmax,
    _inverse_cdf,
    _nucleus_of_sorted,
    _nucleus_threshold,
    admit,
    content_keys,
    decode,
    generate,
    generate_rows,
    left_pad,
    prefill,
    sample_token,
)
from core.model import Transformer, init_params
from core.testing import TINY_DECODER

TINY = TINY_DECODER
NEW_TOKENS = 10
PROMPTS = [[5, 17, 200], [9, 1, 44, 3, 250, 77, 12, 8, 31], [100, 101, 102, 103, 104]]


@pytest.fixture(scope="module")
def params():
    return init_params(TINY, jax.random.key(0))


@jax.jit
def _next_token_without_cache(params, buffer, length):
    logits = Transformer(TINY).apply({"params": params}, buffer)
    return jnp.argmax(logits[0, length - 1])


def greedy_without_cache(params, prompt, new_tokens):
    """Reference: one full forward pass over the whole sequence per new token.

    The buffer has one fixed size so that the pass compiles once; causal attention makes the
    zeros after `length` irrelevant.
    """
    buffer = np.zeros((1, TINY.max_seq_len), np.int32)
    buffer[0, : len(prompt)] = prompt
    for length in range(len(prompt), len(prompt) + new_tokens):
        buffer[0, length] = _next_token_without_cache(params, jnp.asarray(buffer), length)
    return buffer[0, len(prompt) : len(prompt) + new_tokens].tolist()


@pytest.fixture(scope="module")
def references(params):
    return [greedy_without_cache(params, prompt, NEW_TOKENS) for prompt in PROMPTS]


def test_batched_greedy_with_cache_matches_full_recompute(params, references):
    result = generate(params, TINY, PROMPTS, NEW_TOKENS, prompt_bucket=16)
    assert result.tokens.shape == (3, NEW_TOKENS) and result.tokens.dtype == np.int32
    assert result.lengths.tolist() == [NEW_TOKENS] * 3
    assert not result.stopped.any()
    assert result.token_lists() == references


def test_single_prompt_greedy_with_cache_matches_full_recompute(params, references):
    # Batch 1 reads the logits through a transposed embedding copy on the CPU.
    result = generate(params, TINY, [PROMPTS[1]], NEW_TOKENS, prompt_bucket=16)
    assert result.token_lists() == [references[1]]


def test_stop_token_ends_its_row_and_is_excluded(params, references):
    stop = references[0][3]
    result = generate(params, TINY, PROMPTS, NEW_TOKENS, stop_ids=[stop], prompt_bucket=16)
    for row, reference in enumerate(references):
        expected = reference[: reference.index(stop)] if stop in reference else reference
        assert result.token_lists()[row] == expected
        assert result.stopped[row] == (stop in reference)
        assert not result.tokens[row, len(expected) :].any()


def test_generation_ends_when_every_row_stopped(params, references):
    first_tokens = sorted({reference[0] for reference in references})
    result = generate(params, TINY, PROMPTS, NEW_TOKENS, stop_ids=first_tokens, prompt_bucket=16)
    assert result.lengths.tolist() == [0, 0, 0]
    assert result.stopped.all()
    assert not result.tokens.any()


def test_same_bucket_reuses_compiled_programs(params):
    generate(params, TINY, PROMPTS, NEW_TOKENS, stop_ids=[1], prompt_bucket=16)
    compiled = (prefill._cache_size(), decode._cache_size())
    other_lengths = [[7] * 16, [8, 9], [10] * 12]
    generate(params, TINY, other_lengths, NEW_TOKENS, stop_ids=[2], prompt_bucket=16)
    assert (prefill._cache_size(), decode._cache_size()) == compiled


def test_continuous_batching_gives_each_row_its_own_greedy_tokens(params, references):
    # 3 slots for 7 rows: finished slots take new rows, which decode beside older ones.
    rows = [PROMPTS[i % 3] for i in (0, 1, 2, 2, 1, 0, 1)]
    result, stats = generate_rows(params, TINY, rows, NEW_TOKENS, batch_size=3, check_every=4,
                                  prompt_bucket=16)  # fmt: skip
    assert result.token_lists() == [references[i % 3] for i in (0, 1, 2, 2, 1, 0, 1)]
    assert stats.batch_size == 3 and stats.prefill_calls > 1
    assert stats.generated_tokens == 7 * NEW_TOKENS
    assert stats.decode_steps < 7 * NEW_TOKENS


def test_continuous_batching_stop_ids_match_the_single_batch(params, references):
    stop = references[0][3]
    rows = PROMPTS * 2
    single = generate(params, TINY, rows, NEW_TOKENS, stop_ids=[stop], prompt_bucket=16)
    result, _ = generate_rows(params, TINY, rows, NEW_TOKENS, stop_ids=[stop], batch_size=2,
                              check_every=3, prompt_bucket=16)  # fmt: skip
    assert result.token_lists() == single.token_lists()
    assert result.stopped.tolist() == single.stopped.tolist()


def test_stop_check_ends_rows_between_decode_runs(params, references):
    seen = []

    def stop_after_four(rows, ids):
        seen.extend(rows)
        return [len(row_ids) >= 4 for row_ids in ids]

    result, stats = generate_rows(params, TINY, PROMPTS, NEW_TOKENS, stop_check=stop_after_four,
                                  batch_size=2, check_every=3, prompt_bucket=16)  # fmt: skip
    assert set(seen) == {0, 1, 2}
    for row, reference in enumerate(references):
        length = result.lengths[row]
        assert 4 <= length < 4 + 3 and result.token_lists()[row] == reference[:length]
    assert result.stopped.all()
    assert stats.generated_tokens == int(result.lengths.sum()) < 3 * NEW_TOKENS


def test_sampled_rows_depend_only_on_their_own_key(params):
    sampling = SamplingConfig(temperature=1.0, top_p=0.9)
    keys = content_keys(3, PROMPTS, [0, 0, 0])
    together, _ = generate_rows(params, TINY, PROMPTS, NEW_TOKENS, sampling=sampling, keys=keys,
                                prompt_bucket=16)  # fmt: skip
    for row, prompt in enumerate(PROMPTS):
        alone, _ = generate_rows(params, TINY, [prompt], NEW_TOKENS, sampling=sampling,
                                 keys=keys[row : row + 1], prompt_bucket=16)  # fmt: skip
        assert alone.token_lists()[0] == together.token_lists()[row]
    # The key is the prompt's content and sample number: the same prompt twice draws alike.
    twice = content_keys(3, [PROMPTS[0], PROMPTS[0]], [1, 1])
    assert jax.random.key_data(twice[0]).tolist() == jax.random.key_data(twice[1]).tolist()
    assert jax.random.key_data(twice[0]).tolist() != jax.random.key_data(keys[0]).tolist()


def test_admit_drops_rows_sent_past_the_batch(params):
    state = prefill(params, jnp.asarray([[0, 5, 6]]), jnp.asarray([2]), jax.random.key(0),
                    config=TINY, max_new_tokens=4, sampling=SamplingConfig())  # fmt: skip
    before = jax.tree.map(np.array, state)  # copies: admit donates the state
    keys = jax.random.key_data(jax.random.split(jax.random.key(1), 1))
    after = admit(params, state, jnp.asarray([[7, 8, 9]]), jnp.asarray([3]), keys,
                  jnp.asarray([1]), config=TINY, sampling=SamplingConfig())  # fmt: skip
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(after), before)


def test_left_pad_aligns_prompts_right_in_a_bucket():
    tokens, lengths = left_pad([[1, 2, 3], [4]], prompt_bucket=4)
    np.testing.assert_array_equal(tokens, [[0, 1, 2, 3], [0, 0, 0, 4]])
    np.testing.assert_array_equal(lengths, [3, 1])


def test_sampling_is_reproducible_and_depends_on_key(params):
    sampling = SamplingConfig(temperature=1.0)
    runs = [
        generate(params, TINY, PROMPTS, NEW_TOKENS, sampling=sampling, rng=jax.random.key(seed))
        for seed in (1, 1, 2)
    ]
    assert runs[0].token_lists() == runs[1].token_lists()
    assert runs[0].token_lists() != runs[2].token_lists()


LOGITS = jnp.log(jnp.array([[0.05, 0.5, 0.1, 0.3, 0.05]]))


def draw(sampling, count=2000):
    keys = jax.random.split(jax.random.key(3), count)
    draws = jax.vmap(lambda key: sample_token(LOGITS, key, sampling))(keys)
    return np.bincount(np.asarray(draws).ravel(), minlength=5) / count


def test_greedy_picks_argmax():
    assert sample_token(LOGITS, jax.random.key(0), SamplingConfig()).tolist() == [1]


def test_temperature_one_follows_the_distribution():
    np.testing.assert_allclose(draw(SamplingConfig(temperature=1.0)), jnp.exp(LOGITS[0]), atol=0.04)


def test_top_k_keeps_only_the_k_most_likely():
    frequencies = draw(SamplingConfig(temperature=1.0, top_k=2))
    np.testing.assert_allclose(frequencies, [0, 0.5 / 0.8, 0, 0.3 / 0.8, 0], atol=0.04)


def test_top_p_keeps_the_smallest_set_reaching_p():
    frequencies = draw(SamplingConfig(temperature=1.0, top_p=0.85))
    np.testing.assert_allclose(frequencies, [0, 0.5 / 0.9, 0.1 / 0.9, 0.3 / 0.9, 0], atol=0.04)


def test_argmax_is_the_first_maximum():
    logits = jnp.asarray([[1.0, 3.0, 3.0, 0.0], [-1.0, -2.0, -1.0, -5.0], [0.0, 0.0, 0.0, 0.0]])
    assert _argmax(logits).tolist() == jnp.argmax(logits, axis=-1).tolist() == [1, 0, 0]


def test_inverse_cdf_never_picks_a_zero_weight():
    weights = jnp.zeros((3, 1000)).at[:, 700].set(0.25).at[:, 3].set(0.75)
    uniform = jnp.asarray([0.0, 0.7, 1.0 - 2.0**-24])
    assert _inverse_cdf(weights, uniform).tolist() == [3, 3, 700]
    short = jnp.asarray([[0.5, 0.0, 0.5, 0.0]] * 3)
    assert _inverse_cdf(short, uniform).tolist() == [0, 2, 2]


def test_nucleus_threshold_keeps_exactly_the_sorted_nucleus():
    logits = jax.random.normal(jax.random.key(0), (16, 3000)) * 2.0
    probs = jax.nn.softmax(logits, axis=-1)
    for top_p in (0.3, 0.9, 0.99):
        threshold = _nucleus_threshold(probs, top_p)
        order = jnp.argsort(-probs, axis=-1)
        kept = _nucleus_of_sorted(jnp.take_along_axis(probs, order, axis=-1), top_p) > 0
        expected = jnp.zeros_like(kept).at[jnp.arange(16)[:, None], order].set(kept)
        np.testing.assert_array_equal(probs >= threshold[:, None], expected)


# A nucleus of ~200 tokens: larger than NUCLEUS_CANDIDATES, so the exact fallback draws it.
WIDE = jnp.linspace(0.0, -3.0, 400)[None]


def test_wide_nucleus_follows_the_distribution():
    sampling = SamplingConfig(temperature=1.0, top_p=0.8)
    probs = np.asarray(jax.nn.softmax(WIDE[0]))
    nucleus = np.cumsum(probs) - probs < 0.8
    assert nucleus.sum() > NUCLEUS_CANDIDATES
    keys = jax.random.split(jax.random.key(5), 40000)
    draws = jax.vmap(lambda key: sample_token(WIDE, key[None], sampling))(keys)
    frequencies = np.bincount(np.asarray(draws).ravel(), minlength=400) / 40000
    assert not frequencies[~nucleus].any()
    expected = np.where(nucleus, probs, 0.0) / probs[nucleus].sum()
    np.testing.assert_allclose(frequencies, expected, atol=0.003)


def test_a_row_draws_the_same_whether_its_batch_takes_the_fallback_or_not():
    sampling = SamplingConfig(temperature=1.0, top_p=0.8)
    peaked = jnp.zeros((1, 400)).at[0, 17].set(8.0).at[0, 90].set(7.0)
    keys = jax.random.split(jax.random.key(2), 200)
    alone = jax.vmap(lambda key: sample_token(peaked, key[None], sampling))(keys)
    mixed = jax.vmap(
        lambda key: sample_token(jnp.concatenate([peaked, WIDE]), jnp.stack([key, key]), sampling)
    )(keys)
    np.testing.assert_array_equal(alone[:, 0], mixed[:, 0])
    assert set(np.asarray(alone).ravel().tolist()) == {17, 90}


def test_bad_sampling_config_is_rejected():
    with pytest.raises(ConfigError, match="top_p"):
        SamplingConfig(top_p=0.0)
    with pytest.raises(ConfigError, match="temperature"):
        SamplingConfig(temperature=-1.0)


@pytest.mark.parametrize(
    ("prompts", "new_tokens", "message"),
    [
        ([], 4, "no prompts"),
        ([[1], []], 4, "prompt 1 is empty"),
        ([[1, 256]], 4, "outside"),
        ([[1] * 60], 5, "max_seq_len"),
        ([[1]], 0, "max_new_tokens"),
    ],
)
def test_bad_requests_raise_generation_error(params, prompts, new_tokens, message):
    with pytest.raises(GenerationError, match=message):
        generate(params, TINY, prompts, new_tokens)
