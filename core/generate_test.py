import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.completion import SamplingConfig
from core.config import ConfigError
from core.generate import (
    GenerationError,
    decode,
    generate,
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
