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


# --------------------------------------------------------------------------------------------------
# Contrastive losses


def _pairs(batch=16, dim=8, seed=0):
    """L2-normalised image and caption embeddings, each caption near its image."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    zimg = jax.random.normal(k1, (batch, dim))
    ztxt = zimg + 0.8 * jax.random.normal(k2, (batch, dim))
    norm = lambda z: z / jnp.linalg.norm(z, axis=1, keepdims=True)  # noqa: E731
    return norm(zimg), norm(ztxt)


def _grads(fn, zimg, ztxt, *scalars):
    return jax.value_and_grad(fn, argnums=tuple(range(2 + len(scalars))))(zimg, ztxt, *scalars)


def test_clip_loss_and_its_gradients_match_the_float64_formula():
    zimg, ztxt = _pairs()
    scale = jnp.float32(14.3)
    value, (d_img, d_txt, d_scale) = _grads(losses.clip_loss, zimg, ztxt, scale)
    x, y, s = np.asarray(zimg, np.float64), np.asarray(ztxt, np.float64), 14.3
    logits = s * x @ y.T
    b = len(x)

    def log_softmax(a, axis):
        a = a - a.max(axis, keepdims=True)
        return a - np.log(np.exp(a).sum(axis, keepdims=True))

    rows, cols = log_softmax(logits, 1), log_softmax(logits, 0)
    expected = 0.5 * (-np.mean(np.diag(rows)) - np.mean(np.diag(cols)))
    d_logits = 0.5 / b * (np.exp(rows) - np.eye(b) + np.exp(cols) - np.eye(b))  # softmax minus targets, both ways
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    np.testing.assert_allclose(d_img, s * d_logits @ y, atol=1e-6)
    np.testing.assert_allclose(d_txt, s * d_logits.T @ x, atol=1e-6)
    np.testing.assert_allclose(d_scale, np.sum(d_logits * (x @ y.T)), rtol=1e-5)


def test_siglip_loss_is_the_sum_over_all_pairs_divided_by_the_batch_in_float64():
    zimg, ztxt = _pairs(batch=12)
    scale, bias = jnp.float32(10.0), jnp.float32(-10.0)
    value, (d_img, d_txt, d_scale, d_bias) = _grads(losses.siglip_loss, zimg, ztxt, scale, bias)
    x, y = np.asarray(zimg, np.float64), np.asarray(ztxt, np.float64)
    logits = 10.0 * x @ y.T - 10.0
    signs = 2 * np.eye(12) - 1
    expected = np.sum(np.log1p(np.exp(-signs * logits))) / 12  # -log sigmoid(z) = log(1 + e^-z)
    d_logits = -signs / (1 + np.exp(signs * logits)) / 12
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    np.testing.assert_allclose(d_img, 10.0 * d_logits @ y, atol=1e-6)
    np.testing.assert_allclose(d_txt, 10.0 * d_logits.T @ x, atol=1e-6)
    np.testing.assert_allclose(d_scale, np.sum(d_logits * (x @ y.T)), rtol=1e-5)
    np.testing.assert_allclose(d_bias, np.sum(d_logits), rtol=1e-5)


SHARDED = [("clip", losses.clip_loss, losses.clip_loss_gathered),
           ("siglip", losses.siglip_loss, losses.siglip_loss_gathered),
           ("siglip", losses.siglip_loss, losses.siglip_loss_chunked)]


@pytest.mark.parametrize("mesh_shape", [(8, 1), (2, 4)])
@pytest.mark.parametrize("loss, dense, sharded", SHARDED, ids=["clip-gather", "siglip-gather", "siglip-chunked"])
def test_sharded_losses_equal_the_single_device_formula_in_value_and_gradients(mesh_shape, loss, dense, sharded):
    """8 fake devices, the batch split over data (x fsdp): the per-device rows against gathered
    columns, or SigLIP's ring, give the global batch's loss and gradients."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from frx import sharding
    from frx.config import MeshConfig

    zimg, ztxt = _pairs(batch=32, seed=1)
    scalars = (jnp.float32(9.0),) if loss == "clip" else (jnp.float32(9.0), jnp.float32(-4.0))
    value, grads = _grads(dense, zimg, ztxt, *scalars)
    mesh = sharding.make_mesh(MeshConfig(data=mesh_shape[0], fsdp=mesh_shape[1]))
    rows = NamedSharding(mesh, P(("data", "fsdp")))
    step = jax.jit(sharding.under_mesh(lambda *a: _grads(sharded, *a), mesh))
    got_value, got_grads = step(jax.device_put(zimg, rows), jax.device_put(ztxt, rows), *scalars)
    np.testing.assert_allclose(got_value, value, rtol=1e-6)
    for got, expected in zip(got_grads, grads):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dense, sharded", [(d, s) for _, d, s in SHARDED])
def test_sharded_losses_outside_a_mesh_are_the_dense_formula(dense, sharded):
    zimg, ztxt = _pairs()
    scalars = (jnp.float32(5.0),) if dense is losses.clip_loss else (jnp.float32(5.0), jnp.float32(-3.0))
    assert sharded(zimg, ztxt, *scalars) == dense(zimg, ztxt, *scalars)


def test_per_device_memory_of_the_sharded_losses_does_not_grow_with_the_batch_squared():
    """Compiled for 8 devices (never run), value and gradients at batch 4096: the gathered forms hold
    a few [b, B] blocks (CLIP: both directions and their gradients), never the [B, B] matrix (8 such
    blocks); SigLIP's ring holds b x b blocks, never a [b, B] one."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from frx import sharding
    from frx.config import MeshConfig

    mesh = sharding.make_mesh(MeshConfig(data=8))
    batch, dim = 4096, 32
    z = jax.ShapeDtypeStruct((batch, dim), jnp.float32, sharding=NamedSharding(mesh, P(("data", "fsdp"))))
    s = jax.ShapeDtypeStruct((), jnp.float32, sharding=NamedSharding(mesh, P()))

    def temporaries(fn, *scalars):
        step = jax.jit(sharding.under_mesh(jax.value_and_grad(fn, argnums=(0, 1)), mesh))
        return step.lower(z, z, *scalars).compile().memory_analysis().temp_size_in_bytes

    full, rows = batch * batch * 4, batch // 8 * batch * 4  # bytes of a [B, B] and a [b, B] float32 block
    assert temporaries(losses.clip_loss_gathered, s) < 5 * rows < full
    assert temporaries(losses.siglip_loss_gathered, s, s) < 5 * rows
    assert temporaries(losses.siglip_loss_chunked, s, s) < rows / 2
