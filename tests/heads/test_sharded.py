"""The class-sharded head on 8 fake CPU devices, classes over `tensor` or over every device (Partial FC,
rows gathered): loss and gradients equal the float64 reference of the dense softmax (class labels
and taxonomic ranges, padding columns masked); top-k and node marginals equal those of the full
logits; and the compiled step never holds [batch, classes] on a device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from frx import heads, sharding
from frx.config import MeshConfig
from frx.heads import chunked
from frx.heads import targets as targets_lib
from tests.heads.test_chunked import _targets
from tests.support import softmax_reference as ref

WIDTH, NUM_VALID = 40, 33  # the head is padded to a multiple of 8 devices


TENSOR, EVERY_DEVICE = ("tensor",), sharding.MESH_AXES  # mesh.rules tensor / classes (Partial FC)


def _placed(mesh, x, kernel, bias, class_axes=TENSOR):
    rows = NamedSharding(mesh, sharding.batch_spec(mesh))
    axes = heads.placement(mesh, class_axes).class_axes
    return (jax.device_put(x, rows), jax.device_put(kernel, NamedSharding(mesh, P(None, axes))),
            jax.device_put(bias, NamedSharding(mesh, P(axes))))


def _loss(x, kernel, bias, targets, chunk, class_axes):
    lse = heads.log_sum_exps("sharded", x, kernel, bias, targets.lo_BT, targets.hi_BT,
                             layout=chunked.Layout(WIDTH, chunk, NUM_VALID), kinds=targets.kinds, class_axes=class_axes)
    return jnp.mean(jnp.sum(targets_lib.losses_of(lse, targets), -1))


@pytest.mark.parametrize("mesh_cfg, class_axes, chunk, kind", [
    (MeshConfig(data=1, tensor=8), TENSOR, 0, "label"),        # 5 classes per device, one block
    (MeshConfig(data=2, tensor=4), TENSOR, 3, "ranks"),        # 10 per device in chunks of 3 (the last pulled back)
    (MeshConfig(data=1, fsdp=4, tensor=2), TENSOR, 0, "mixup"),
    (MeshConfig(data=2, fsdp=2, tensor=2), EVERY_DEVICE, 2, "ranks"),  # Partial FC: rows gathered over data x fsdp
])
def test_sharded_loss_and_gradients_equal_the_dense_softmax(mesh_cfg, class_axes, chunk, kind):
    assert jax.device_count() == 8
    mesh = sharding.make_mesh(mesh_cfg)
    x, kernel, bias = ref.problem(batch=16, classes=WIDTH, seed=5)
    targets = _targets(kind, 16, seed=6)
    loss = jax.value_and_grad(lambda *h: _loss(*h, targets, chunk, class_axes), argnums=(0, 1, 2))
    value, grads = jax.jit(sharding.under_mesh(loss, mesh))(*_placed(mesh, x, kernel, bias, class_axes))
    expected, expected_grads = ref.loss_and_grads(x, kernel, bias, targets.lo_BT, targets.hi_BT, targets.weight_BT,
                                                  NUM_VALID)
    np.testing.assert_allclose(value, expected, rtol=2e-6)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-7)
    assert grads[1].sharding.spec == P(None, heads.placement(mesh, class_axes).class_axes)  # stays class-sharded


@pytest.mark.parametrize("class_axes", [TENSOR, EVERY_DEVICE])
def test_sharded_predictions_equal_those_of_the_full_logits(class_axes):
    mesh = sharding.make_mesh(MeshConfig(data=2, tensor=4))
    x, kernel, bias = ref.problem(batch=16, classes=WIDTH, seed=7)
    kernel[:, 12] = kernel[:, 30]  # a tie across devices (classes 12 and 30 live on different devices)
    bias[12] = bias[30] = 20.0     # at the top of every row: the smaller class id comes first
    labels = np.random.default_rng(0).integers(0, NUM_VALID, 16)
    labels[3] = -1  # a class the head does not know
    maps = np.stack([np.arange(WIDTH) // 10, np.minimum(np.arange(WIDTH), NUM_VALID - 1) // 4]).astype(np.int32)
    num_nodes = (4, 9)

    def predict(x, kernel, bias, labels, maps):
        return heads.predictions("sharded", x, kernel, bias, labels, maps, num_nodes,
                                 layout=chunked.Layout(WIDTH, 4, NUM_VALID), k=5, class_axes=class_axes)

    placed = _placed(mesh, x, kernel, bias, class_axes)
    labels_dev = jax.device_put(labels.astype(np.int32), NamedSharding(mesh, sharding.batch_spec(mesh)))
    maps_dev = jax.device_put(maps, NamedSharding(mesh, P(None, heads.placement(mesh, class_axes).class_axes)))
    loss, top, marginals = jax.jit(sharding.under_mesh(predict, mesh))(*placed, labels_dev, maps_dev)

    z = ref.logits(x, kernel, bias, NUM_VALID)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    expected_top = np.argsort(-z, axis=-1, kind="stable")[:, :5]
    np.testing.assert_array_equal(top, expected_top)
    assert (np.asarray(top)[:, :2] == [12, 30]).all()
    lse = np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1)) + z.max(-1)
    seen = labels >= 0
    np.testing.assert_allclose(np.asarray(loss)[seen], (lse - z[np.arange(16), labels])[seen], rtol=1e-5)
    assert np.isinf(np.asarray(loss)[3])
    for r, n in enumerate(num_nodes):
        brute = np.stack([p[:, maps[r] == node].sum(-1) for node in range(n)], -1)
        np.testing.assert_allclose(marginals[r], brute, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(np.asarray(marginals[r]).sum(-1), 1.0, rtol=1e-5)


def test_no_device_holds_the_batch_by_classes_logits():
    """Compiled for 8 devices (tensor=8), never run: 128 x 400,000 logits are 205 MB; each device's
    temporaries stay well under that, near its own 50,000 classes."""
    mesh = sharding.make_mesh(MeshConfig(data=1, tensor=8))
    batch, dim, classes = 128, 32, 400_000
    targets = targets_lib.of_labels(jnp.zeros((batch,), jnp.int32))

    def loss(x, kernel, bias):
        lse = heads.log_sum_exps("sharded", x, kernel, bias, targets.lo_BT, targets.hi_BT,
                                 layout=chunked.Layout(classes, 0, classes), kinds=targets.kinds)
        return jnp.mean(jnp.sum(targets_lib.losses_of(lse, targets), -1))

    shapes = (jax.ShapeDtypeStruct((batch, dim), jnp.float32, sharding=NamedSharding(mesh, P())),
              jax.ShapeDtypeStruct((dim, classes), jnp.float32, sharding=NamedSharding(mesh, P(None, "tensor"))),
              jax.ShapeDtypeStruct((classes,), jnp.float32, sharding=NamedSharding(mesh, P("tensor"))))
    step = jax.jit(sharding.under_mesh(jax.grad(loss, argnums=(0, 1, 2)), mesh))
    temporaries = step.lower(*shapes).compile().memory_analysis().temp_size_in_bytes
    logits_bytes = batch * classes * 4
    assert temporaries < 0.5 * logits_bytes, temporaries / logits_bytes
