"""Sparse softmax cross-entropy against the dense formula with one-hot rows: values, gradients with
respect to logits and to the target weights, mixup's two weighted targets, and a class count where a
one-hot would not fit in a test's memory budget."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from frx import losses


def _logits(batch=6, classes=11, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (batch, classes)) * 3.0


def test_one_target_gives_the_bits_of_the_dense_formula_with_one_hot_rows():
    logits, labels = _logits(), jnp.array([0, 3, 10, 3, 7, 1])

    def dense(x):
        return jnp.mean(losses.softmax_xent(x, jax.nn.one_hot(labels, x.shape[-1])))

    def sparse(x):
        return jnp.mean(losses.softmax_xent_sparse(x, labels))

    (v1, g1), (v2, g2) = jax.jit(jax.value_and_grad(dense))(logits), jax.jit(jax.value_and_grad(sparse))(logits)
    assert np.asarray(v1).tobytes() == np.asarray(v2).tobytes()
    assert np.asarray(g1).tobytes() == np.asarray(g2).tobytes()


def test_weighted_targets_equal_the_cross_entropy_against_the_mixed_rows():
    logits = _logits(classes=7)
    y1, y2 = jnp.array([0, 1, 2, 3, 4, 4]), jnp.array([1, 1, 6, 0, 4, 2])  # rows 1 and 4: both targets alike
    a = jnp.array([0.9, 0.6, 0.5, 1.0, 0.7, 0.55])
    weights = jnp.stack([a, 1 - a], axis=-1)
    mixed = a[:, None] * jax.nn.one_hot(y1, 7) + (1 - a)[:, None] * jax.nn.one_hot(y2, 7)
    labels = jnp.stack([y1, y2], axis=-1)
    reference = jax.value_and_grad(lambda x: jnp.sum(losses.softmax_xent(x, mixed)))(logits)
    value, grad = jax.value_and_grad(lambda x: jnp.sum(losses.softmax_xent_sparse(x, labels, weights)))(logits)
    np.testing.assert_allclose(value, reference[0], rtol=1e-6)
    np.testing.assert_allclose(grad, reference[1], rtol=1e-5, atol=1e-7)

    def formula(w):  # the gradient with respect to the weights is -log p of each target
        log_probs = jax.nn.log_softmax(logits)
        picks = jnp.stack([jnp.take_along_axis(log_probs, y[:, None], -1)[:, 0] for y in (y1, y2)], -1)
        return jnp.sum(-w * picks)

    d_weights = jax.grad(lambda w: jnp.sum(losses.softmax_xent_sparse(logits, labels, w)))(weights)
    np.testing.assert_allclose(d_weights, jax.grad(formula)(weights), rtol=1e-6)


def test_the_gradient_is_softmax_minus_the_target_row_in_float64():
    logits, labels = _logits(batch=4, classes=50, seed=3), jnp.array([49, 0, 25, 7])
    grad = np.asarray(jax.grad(lambda x: jnp.sum(losses.softmax_xent_sparse(x, labels)))(logits), np.float64)
    x = np.asarray(logits, np.float64)
    softmax = np.exp(x - x.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    expected = softmax - np.eye(50)[np.asarray(labels)]
    np.testing.assert_allclose(grad, expected, atol=2e-7)


@pytest.mark.parametrize("classes", [1, 450_000])
def test_sparse_labels_work_at_any_class_count(classes):
    logits = jax.random.normal(jax.random.PRNGKey(0), (2, classes))
    labels = jnp.array([0, classes - 1])
    value = losses.softmax_xent_sparse(logits, labels)
    lse = jax.nn.logsumexp(logits, axis=-1)
    np.testing.assert_allclose(value, lse - logits[jnp.arange(2), labels], rtol=1e-5, atol=1e-6)
