import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.config import (
    ATTENTION_BACKENDS,
    ATTENTION_IMPLEMENTATIONS,
    REMAT_POLICIES,
    SEGMENT_ATTENTION,
    ConfigError,
)
from core.model import (
    KVCache,
    Transformer,
    apply_rope,
    count_params,
    init_params,
    logical_axes,
    rope_angles,
    tied_logits,
    unstack_layers,
)
from core.testing import TINY_DECODER

TINY = TINY_DECODER
# Every training attention kernel that runs on the CPU (the Pallas kernels in interpret mode).
CPU_ATTENTION = tuple(
    name
    for name in ATTENTION_IMPLEMENTATIONS
    if name != "auto" and "cpu" in ATTENTION_BACKENDS.get(name, ("cpu",))
)
# Three documents in the first row (one crossing no boundary with the next), one in the second.
PACKED_SEGMENTS = np.array([[0] * 3 + [1] * 4 + [2] * 5, [7] * 12], dtype=np.int32)
PACKED_POSITIONS = np.array([[*range(3), *range(4), *range(5)], list(range(12))], dtype=np.int32)


@pytest.fixture(scope="module")
def params():
    return init_params(TINY, jax.random.key(0))


@functools.partial(jax.jit, static_argnames=("config", "return_hidden"))
def forward(params, tokens, config=TINY, positions=None, segment_ids=None, return_hidden=False):
    return Transformer(config).apply(
        {"params": params}, tokens, positions, segment_ids, return_hidden=return_hidden
    )


def random_tokens(seed, shape):
    return np.random.default_rng(seed).integers(0, TINY.vocab_size, shape, dtype=np.int32)


def test_output_shapes_and_dtypes(params):
    tokens = random_tokens(0, (2, 8))
    logits = forward(params, tokens)
    hidden = forward(params, tokens, return_hidden=True)
    assert logits.shape == (2, 8, TINY.vocab_size) and logits.dtype == jnp.float32
    assert hidden.shape == (2, 8, TINY.hidden_dim) and hidden.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


def test_bfloat16_compute_keeps_float32_params_and_logits(params):
    config = dataclasses.replace(TINY, dtype="bfloat16")
    shapes = jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(shapes))
    tokens = random_tokens(1, (2, 8))
    assert forward(params, tokens, config, return_hidden=True).dtype == jnp.bfloat16
    logits = forward(params, tokens, config)
    assert logits.dtype == jnp.float32
    np.testing.assert_allclose(logits, forward(params, tokens), atol=0.1)


def test_logits_method_matches_full_forward(params):
    tokens = random_tokens(2, (2, 8))
    hidden = forward(params, tokens, return_hidden=True)
    logits = jax.jit(Transformer(TINY).apply, static_argnames="method")(
        {"params": params}, hidden, method=Transformer.logits
    )
    np.testing.assert_allclose(logits, forward(params, tokens), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", CPU_ATTENTION)
def test_causal_future_tokens_do_not_change_past_logits(params, attention):
    config = dataclasses.replace(TINY, attention=attention)
    tokens = random_tokens(3, (2, 8))
    changed = tokens.copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % TINY.vocab_size
    original, perturbed = forward(params, tokens, config), forward(params, changed, config)
    np.testing.assert_allclose(original[:, :5], perturbed[:, :5], rtol=1e-5, atol=1e-5)
    assert not np.allclose(original[:, 5:], perturbed[:, 5:], atol=1e-3)


@pytest.mark.parametrize("attention", CPU_ATTENTION)
def test_packed_row_equals_separate_rows(params, attention):
    config = dataclasses.replace(TINY, attention=attention)
    first, second = random_tokens(4, (1, 5)), random_tokens(5, (1, 7))
    packed = np.concatenate([first, second], axis=1)
    segment_ids = np.array([[1] * 5 + [2] * 7], dtype=np.int32)
    positions = np.array([list(range(5)) + list(range(7))], dtype=np.int32)
    logits = forward(params, packed, config, positions, segment_ids)
    np.testing.assert_allclose(logits[:, :5], forward(params, first), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits[:, 5:], forward(params, second), rtol=1e-5, atol=1e-5)


def test_library_attention_matches_einsum_attention_on_packed_rows(params):
    tokens = random_tokens(6, (2, 12))
    segment_ids = np.array([[1] * 5 + [2] * 7, [3] * 12], dtype=np.int32)
    positions = np.array([list(range(5)) + list(range(7)), list(range(12))], dtype=np.int32)
    library = dataclasses.replace(TINY, attention="xla")
    np.testing.assert_allclose(
        forward(params, tokens, library, positions, segment_ids),
        forward(params, tokens, TINY, positions, segment_ids),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("attention", SEGMENT_ATTENTION)
def test_segment_kernels_match_einsum_attention_forward_and_gradients(params, attention):
    # float32 throughout: logits within 1e-5, parameter gradients within rtol 1e-4 / atol 1e-6.
    tokens = random_tokens(12, (2, 12))
    kernel = dataclasses.replace(TINY, attention=attention)

    @functools.partial(jax.jit, static_argnums=1)
    def logits_and_grads(p, config):
        def loss(p):
            logits = forward(p, tokens, config, PACKED_POSITIONS, PACKED_SEGMENTS)
            return jnp.mean(logits**2), logits

        return jax.grad(loss, has_aux=True)(p)

    grads, logits = logits_and_grads(params, kernel)
    einsum_grads, einsum_logits = logits_and_grads(params, TINY)
    np.testing.assert_allclose(logits, einsum_logits, rtol=1e-5, atol=1e-5)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(einsum_grads), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("attention", CPU_ATTENTION)
def test_only_dense_mask_kernels_build_the_dense_mask(params, attention):
    config = dataclasses.replace(TINY, attention=attention)
    tokens = random_tokens(13, (2, 12))

    def loss(p):
        return jnp.sum(forward(p, tokens, config, PACKED_POSITIONS, PACKED_SEGMENTS))

    jaxpr = str(jax.make_jaxpr(jax.grad(loss))(params))
    assert ("bool[2,12,12]" in jaxpr) == (attention not in SEGMENT_ATTENTION)


def test_tied_logits_gradients_match_autodiff_and_keep_the_compute_dtype():
    rng = np.random.default_rng(7)
    hidden = jnp.asarray(rng.normal(size=(2, 3, 8)), jnp.float32)
    embedding = jnp.asarray(rng.normal(size=(11, 8)), jnp.float32)
    weights = jnp.asarray(rng.normal(size=(2, 3, 11)), jnp.float32)

    def plain(h, e):
        return jnp.sum(jnp.einsum("bsd,vd->bsv", h, e) * weights)

    def custom(h, e):
        return jnp.sum(tied_logits(h, e) * weights)

    for got, want in zip(
        jax.grad(custom, (0, 1))(hidden, embedding),
        jax.grad(plain, (0, 1))(hidden, embedding),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    half = hidden.astype(jnp.bfloat16), embedding.astype(jnp.bfloat16)
    assert tied_logits(*half).dtype == jnp.float32
    assert [g.dtype for g in jax.grad(custom, (0, 1))(*half)] == [jnp.bfloat16] * 2


def test_rope_scores_depend_only_on_relative_position():
    rng = np.random.default_rng(6)
    query = jnp.asarray(rng.normal(size=(1, 1, 1, 16)), jnp.float32)
    key = jnp.asarray(rng.normal(size=(1, 1, 1, 16)), jnp.float32)

    def score(query_position, key_position):
        rotate = lambda x, p: apply_rope(x, rope_angles(jnp.array([[p]]), 16, 10000.0))  # noqa: E731
        return float(jnp.sum(rotate(query, query_position) * rotate(key, key_position)))

    assert score(7, 3) == pytest.approx(score(104, 100), rel=1e-4)
    assert score(7, 3) != pytest.approx(score(7, 5), rel=1e-2)


def test_shifting_all_positions_leaves_logits_unchanged(params):
    tokens = random_tokens(7, (2, 8))
    shifted = jnp.broadcast_to(jnp.arange(8) + 40, (2, 8))
    np.testing.assert_allclose(
        forward(params, tokens, positions=shifted), forward(params, tokens), rtol=1e-4, atol=1e-4
    )


def test_multi_query_attention_has_one_kv_head(params):
    attention = params["layers"]["attention"]
    layers, dim, heads, head_dim = TINY.num_layers, TINY.hidden_dim, TINY.num_heads, TINY.head_dim
    assert attention["query"]["kernel"].shape == (layers, dim, heads, head_dim)
    assert attention["key"]["kernel"].shape == (layers, dim, 1, head_dim)
    assert attention["value"]["kernel"].shape == (layers, dim, 1, head_dim)
    assert attention["out"]["kernel"].shape == (layers, heads, head_dim, dim)


def test_duplicated_kv_heads_match_single_kv_head(params):
    config = dataclasses.replace(TINY, num_kv_heads=2)
    grouped = jax.tree.map(lambda x: x, params)
    for name in ("key", "value"):
        kernel = params["layers"]["attention"][name]["kernel"]
        grouped["layers"]["attention"][name]["kernel"] = jnp.concatenate([kernel, kernel], axis=2)
    shapes = jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))
    assert jax.tree.map(jnp.shape, grouped) == jax.tree.map(jnp.shape, shapes)
    tokens = random_tokens(8, (2, 8))
    np.testing.assert_allclose(
        forward(grouped, tokens, config), forward(params, tokens), rtol=1e-5, atol=1e-5
    )


def test_parameter_count_is_the_size_of_the_initialised_parameters():
    tiny = init_params(TINY, jax.random.key(0))
    assert count_params(TINY) == sum(leaf.size for leaf in jax.tree.leaves(tiny))
    unrolled = dataclasses.replace(TINY, scan_layers=False)
    assert count_params(unrolled) == count_params(TINY)


def test_logical_axis_names():
    axes = logical_axes(TINY)
    layer = axes["layers"]
    assert tuple(axes["embed"]["embedding"]) == ("vocab", "embed")
    assert tuple(axes["final_norm"]["scale"]) == ("norm",)
    assert tuple(layer["attention"]["query"]["kernel"]) == ("layers", "embed", "heads", "head_dim")
    assert tuple(layer["attention"]["key"]["kernel"]) == ("layers", "embed", "kv_heads", "head_dim")
    assert tuple(layer["attention"]["out"]["kernel"]) == ("layers", "heads", "head_dim", "embed")
    assert tuple(layer["mlp"]["gate"]["kernel"]) == ("layers", "embed", "mlp")
    assert tuple(layer["mlp"]["down"]["kernel"]) == ("layers", "mlp", "embed")
    assert tuple(layer["mlp_norm"]["scale"]) == ("layers", "norm")


def test_unscanned_layers_match_scanned(params):
    unstacked, config = unstack_layers(params, TINY)
    assert not config.scan_layers
    assert jax.tree.map(jnp.shape, unstacked) == jax.tree.map(
        jnp.shape, jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))
    )
    tokens = random_tokens(9, (2, 8))
    np.testing.assert_allclose(
        forward(unstacked, tokens, config), forward(params, tokens), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("policy", REMAT_POLICIES)
def test_remat_keeps_outputs_and_gradients(params, policy):
    tokens = random_tokens(10, (2, 8))

    def loss(p, config):
        return jnp.mean(forward(p, tokens, config) ** 2)

    remat = dataclasses.replace(TINY, remat=True, remat_policy=policy)
    np.testing.assert_allclose(loss(params, remat), loss(params, TINY), rtol=1e-6)
    grad_fn = jax.jit(jax.grad(loss), static_argnums=1)
    grads, remat_grads = grad_fn(params, TINY), grad_fn(params, remat)
    for grad, remat_grad in zip(jax.tree.leaves(grads), jax.tree.leaves(remat_grads), strict=True):
        np.testing.assert_allclose(remat_grad, grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("attention", ["einsum", *SEGMENT_ATTENTION])
def test_prefill_then_decode_matches_full_forward(params, attention):
    tokens = jnp.asarray(random_tokens(11, (2, 8)))
    config = dataclasses.replace(TINY, attention=attention)  # prefill's kernel; decode: einsum
    apply = jax.jit(Transformer(config).apply, static_argnames="method")
    positions = jnp.broadcast_to(jnp.arange(8), (2, 8))
    last_logits, cache = apply(
        {"params": params},
        tokens[:, :6],
        positions[:, :6],
        jnp.ones((2, 6), jnp.int32),
        method=Transformer.prefill,
    )
    assert cache.keys.shape == (TINY.num_layers, 2, 6, TINY.num_kv_heads, TINY.head_dim)
    step_logits, new_kv = apply(
        {"params": params},
        tokens[:, 6:],
        positions[:, 6:],
        cache,
        jnp.ones((2, 6), bool),
        method=Transformer.decode,
    )
    assert isinstance(new_kv, KVCache) and new_kv.values.shape[2] == 2
    full = forward(params, tokens)
    np.testing.assert_allclose(last_logits, full[:, 5], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(step_logits, full[:, 6:], rtol=1e-5, atol=1e-5)


def test_dropout_applies_only_when_not_deterministic(params):
    noisy = dataclasses.replace(TINY, dropout=0.5)
    tokens = random_tokens(7, (2, 8))
    served = Transformer(noisy).apply({"params": params}, tokens)
    np.testing.assert_array_equal(served, forward(params, tokens))  # inference: no dropout

    def training(seed):
        return Transformer(noisy, deterministic=False).apply(
            {"params": params}, tokens, return_hidden=True, rngs={"dropout": jax.random.key(seed)}
        )

    np.testing.assert_array_equal(training(1), training(1))
    assert not np.allclose(training(1), training(2))
    assert not np.allclose(training(1), forward(params, tokens, return_hidden=True))
    with pytest.raises(ConfigError, match="dropout"):
        dataclasses.replace(TINY, dropout=1.0)


def test_invalid_config_is_rejected_with_config_error():
    with pytest.raises(ConfigError, match="head_dim must be even"):
        dataclasses.replace(TINY, head_dim=15)
    with pytest.raises(ConfigError, match="attention"):
        dataclasses.replace(TINY, attention="flash")


def test_untied_model_has_its_own_output_projection():
    untied = dataclasses.replace(TINY, tie_embeddings=False)
    params = init_params(untied, jax.random.key(0))
    assert params["lm_head"].shape == params["embed"]["embedding"].shape
    assert count_params(untied) == count_params(TINY) + TINY.vocab_size * TINY.hidden_dim
    tokens = random_tokens(3, (1, 6))
    logits = forward(params, tokens, config=untied)
    hidden = forward(params, tokens, config=untied, return_hidden=True)
    np.testing.assert_allclose(logits, hidden @ params["lm_head"].T, rtol=1e-5, atol=1e-5)
    assert logical_axes(untied)["lm_head"] == jax.sharding.PartitionSpec("vocab", "embed")
