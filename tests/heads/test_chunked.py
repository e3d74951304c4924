"""The chunked head: losses and gradients of class labels, mixup pairs and taxonomic class ranges equal
the float64 reference for every chunk size (one class, non-dividing, exact, larger than the head),
with padding columns masked; the dense head's `logits_lse` too; and no [batch, classes] buffer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from frx.heads import chunked
from frx.heads import targets as targets_lib
from tests.support import softmax_reference as ref

NUM_VALID = 33  # of 37 columns: 4 padding columns


def _chunked_loss(x, kernel, bias, targets, chunk, num_valid=NUM_VALID):
    layout = chunked.Layout(kernel.shape[1], chunk, num_valid)
    lse = chunked.chunk_lse(x, kernel, bias, targets.lo_BT, targets.hi_BT, layout, targets.kinds)
    return jnp.mean(jnp.sum(targets_lib.losses_of(lse, targets), axis=-1))


def _targets(kind, batch, seed=1):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_VALID, size=(batch, 2))
    if kind == "label":
        return targets_lib.of_labels(jnp.asarray(labels[:, 0]))
    if kind == "mixup":  # row 0: both images of one class
        labels[0, 1] = labels[0, 0]
        a = rng.uniform(0.5, 1.0, size=batch)
        return targets_lib.of_labels(jnp.asarray(labels), jnp.asarray(np.stack([a, 1 - a], -1), jnp.float32))
    # Ranges as a taxonomy makes them: nested, some missing (0, 0), the last one the class itself.
    y = labels[:, 0]
    ranks = np.zeros((batch, 7, 2), np.int32)
    for r, width in enumerate((40, 20, 12, 8, 5, 3, 1)):
        first = (y // width) * width
        ranks[:, r] = np.stack([first, np.minimum(first + width, NUM_VALID)], -1)
    ranks[1, 5:] = 0  # known down to the family only
    ranks[2, 2] = 0   # a missing middle rank
    return targets_lib.of_ranks(jnp.asarray(ranks), jnp.asarray(y), (1.0, 0.5, 1.0, 2.0, 1.0, 1.0, 3.0))


@pytest.mark.parametrize("kind", ["label", "mixup", "ranks"])
@pytest.mark.parametrize("chunk", [1, 5, 37, 64])  # one class, non-dividing, exact, wider than the head
def test_chunked_loss_and_gradients_equal_the_float64_reference(kind, chunk):
    x, kernel, bias = ref.problem()
    targets = _targets(kind, x.shape[0])
    loss = jax.value_and_grad(lambda *head: _chunked_loss(*head, targets, chunk), argnums=(0, 1, 2))
    value, grads = jax.jit(loss)(x, kernel, bias)
    expected, expected_grads = ref.loss_and_grads(x, kernel, bias, targets.lo_BT, targets.hi_BT, targets.weight_BT,
                                                  NUM_VALID)
    np.testing.assert_allclose(value, expected, rtol=2e-6)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-7)
    assert np.all(np.asarray(grads[1])[:, NUM_VALID:] == 0) and np.all(np.asarray(grads[2])[NUM_VALID:] == 0)


@pytest.mark.parametrize("kind", ["label", "ranks"])
def test_the_dense_heads_logits_path_equals_the_reference(kind):
    x, kernel, bias = ref.problem(seed=3)
    targets = _targets(kind, x.shape[0], seed=4)

    def loss(logits):
        lse = chunked.logits_lse(logits, targets.lo_BT, targets.hi_BT, NUM_VALID, targets.kinds)
        return jnp.mean(jnp.sum(targets_lib.losses_of(lse, targets), -1))

    logits = jnp.asarray(x) @ kernel + bias
    value, d_logits = jax.jit(jax.value_and_grad(loss))(logits)
    expected, (dx, _, _) = ref.loss_and_grads(x, kernel, bias, targets.lo_BT, targets.hi_BT, targets.weight_BT,
                                              NUM_VALID)
    np.testing.assert_allclose(value, expected, rtol=2e-6)
    np.testing.assert_allclose(d_logits @ kernel.T, dx, rtol=2e-5, atol=2e-7)


def test_missing_ranks_weigh_nothing_and_keep_the_loss_finite():
    x, kernel, bias = ref.problem()
    targets = _targets("ranks", x.shape[0])
    assert np.all(np.asarray(targets.weight_BT)[1, 5:] == 0) and np.asarray(targets.weight_BT)[2, 2] == 0
    grads = jax.jit(jax.grad(lambda *head: _chunked_loss(*head, targets, 5), argnums=(0, 1, 2)))(x, kernel, bias)
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)


def test_a_chunked_step_holds_no_batch_by_classes_buffer():
    """Compiled, not run: 64 x 200,000 logits would be 51 MB; chunks of 2,048 keep the temporaries
    to a few chunk-sized blocks plus the head's own gradient (the same size as the head)."""
    batch, dim, classes, chunk = 64, 32, 200_000, 2048
    targets = targets_lib.of_labels(jnp.zeros((batch,), jnp.int32))
    grad = jax.jit(jax.grad(lambda *head: _chunked_loss(*head, targets, chunk, classes), argnums=(0, 1, 2)))
    args = (jax.ShapeDtypeStruct((batch, dim), jnp.float32), jax.ShapeDtypeStruct((dim, classes), jnp.float32),
            jax.ShapeDtypeStruct((classes,), jnp.float32))
    temporaries = grad.lower(*args).compile().memory_analysis().temp_size_in_bytes
    logits_bytes = batch * classes * 4
    head_bytes = (dim + 1) * classes * 4
    assert temporaries < 0.25 * logits_bytes, temporaries / logits_bytes
    assert temporaries < head_bytes + 20 * batch * chunk * 4, (temporaries, head_bytes)
