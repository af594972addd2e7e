import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core.loss
from core.loss import chunk_length, tied_cross_entropy


def plain_cross_entropy(hidden, embedding, targets, mask):
    log_probs = jax.nn.log_softmax(jnp.einsum("bsd,vd->bsv", hidden, embedding), axis=-1)
    return -jnp.sum(jnp.take_along_axis(log_probs, targets[..., None], -1)[..., 0] * mask)


@pytest.fixture
def inputs():
    rng = np.random.default_rng(0)
    hidden = jnp.asarray(rng.normal(size=(2, 12, 8)), jnp.float32)
    embedding = jnp.asarray(rng.normal(size=(30, 8)) * 0.5, jnp.float32)
    targets = jnp.asarray(rng.integers(0, 30, (2, 12)), jnp.int32)
    mask = jnp.asarray(rng.random((2, 12)) > 0.3, jnp.float32)
    return hidden, embedding, targets, mask


def test_chunk_length_divides_the_sequence_within_the_token_budget():
    assert chunk_length(512, 4) == 512
    assert chunk_length(512, 8) == 256
    assert chunk_length(2048, 16) == 128
    assert chunk_length(6, 1024) == 2
    assert chunk_length(7, 1024) == 1


@pytest.mark.parametrize("chunk_tokens", [4, 2048])
def test_loss_and_gradients_match_autodiff_of_full_logits(inputs, monkeypatch, chunk_tokens):
    monkeypatch.setattr(core.loss, "CHUNK_TOKENS", chunk_tokens)  # 6 chunks, or 1
    fused = jax.jit(jax.value_and_grad(tied_cross_entropy, argnums=(0, 1)))
    plain = jax.jit(jax.value_and_grad(plain_cross_entropy, argnums=(0, 1)))
    (loss, grads), (want_loss, want_grads) = fused(*inputs), plain(*inputs)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    for got, want in zip(grads, want_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(jax.jit(tied_cross_entropy)(*inputs), want_loss, rtol=1e-5)


def test_gradients_scale_with_the_cotangent_and_keep_input_dtypes(inputs):
    hidden, embedding, targets, mask = inputs
    half = hidden.astype(jnp.bfloat16)

    def scaled(h, e):
        return 3.0 * tied_cross_entropy(h, e, targets, mask)

    d_hidden, d_embedding = jax.grad(scaled, argnums=(0, 1))(half, embedding)
    assert (d_hidden.dtype, d_embedding.dtype) == (jnp.bfloat16, jnp.float32)
    _, (want_hidden, want_embedding) = jax.value_and_grad(plain_cross_entropy, argnums=(0, 1))(
        half.astype(jnp.float32), embedding, targets, mask
    )
    np.testing.assert_allclose(d_embedding, 3.0 * want_embedding, rtol=0.05, atol=0.05)
    np.testing.assert_allclose(
        d_hidden.astype(jnp.float32), 3.0 * want_hidden, rtol=0.05, atol=0.05
    )
