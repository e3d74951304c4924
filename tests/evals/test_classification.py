"""Classification evaluation as big_vision's: top-1 / top-5 and loss over masked, padded batches;
multi-hot ImageNet-ReaL labels; one compiled step shared by the splits."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from frx import sharding
from frx.config import MeshConfig
from frx.data.arrays import ArraySource
from frx.data.pp import make_pipeline
from frx.evals.classification import ClassificationEvaluator, make_eval_step
from tests.support.data_fixtures import image_schema


def test_eval_scores_multi_hot_labels_like_big_vision():
    class FixedLogits(nnx.Module):
        def __init__(self, logits):
            self.logits = nnx.Param(jnp.asarray(logits, jnp.float32))

        def __call__(self, images):
            return self.logits[...]

    logits = [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.0]]
    graphdef, params = nnx.split(FixedLogits(logits))
    step = make_eval_step(graphdef, lambda batch, rng: batch)
    batch = {"image": jnp.zeros((4, 2, 2, 3)), "mask": jnp.array([True, True, True, False]),
             "label": jnp.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]], jnp.float32),
             "skipped": jnp.zeros(4, bool)}
    sums = step(params, batch)
    # Row 0: top-1 (class 0) is in {0, 1}; row 1: class 1 not in {0}; row 2 has no label; row 3 is padding.
    assert float(sums["count"]) == 2 and float(sums["correct"]) == 1
    log_softmax = jax.nn.log_softmax(jnp.asarray(logits[:2]))
    expected_loss = -(log_softmax[0, 0] + log_softmax[0, 1]) - log_softmax[1, 0]
    assert float(sums["loss"]) == pytest.approx(float(expected_loss), rel=1e-5)


class _FixedLogits(nnx.Module):
    def __init__(self):
        self.logits = nnx.Param(jnp.asarray([5.0, 0.0, 0.0]))

    def __call__(self, images):
        return jnp.broadcast_to(self.logits[...], (images.shape[0], 3))


def test_eval_splits_share_one_compiled_step_and_an_empty_split_reports_nothing():
    graphdef, params = nnx.split(_FixedLogits())
    mesh, pp = sharding.make_mesh(MeshConfig()), make_pipeline("decode|value_range(-1, 1)")
    images = np.zeros((3, 8, 8, 3), np.uint8)

    def evaluator(name, source):
        return ClassificationEvaluator(name, source, pp, image_schema(8), graphdef=graphdef, batch_size=8, mesh=mesh,
                                       threads=1)

    val = evaluator("val", ArraySource(images, np.array([0, 0, 1]), 3, "val"))
    empty = evaluator("minival", ArraySource(images[:0], np.zeros(0, np.int64), 3, "empty"))
    assert empty.step is val.step  # compiled once for both splits
    results = val.run(params)
    assert results["eval/val/acc"] == pytest.approx(2 / 3)
    assert empty.run(params) == {}  # no made-up accuracy 0.0 and loss 0.0


def test_top1_and_top5_count_class_ids_among_the_highest_logits():
    class Logits(nnx.Module):
        def __init__(self):
            self.table = nnx.Param(jnp.asarray(np.random.default_rng(0).normal(size=(6, 9)), jnp.float32))

        def __call__(self, images):
            return self.table[...]

    graphdef, params = nnx.split(Logits())
    table = np.asarray(params["table"][...])
    ranks = np.argsort(-table, axis=1)
    labels = np.array([ranks[0, 0], ranks[1, 1], ranks[2, 4], ranks[3, 5], ranks[4, 8], ranks[5, 0]])
    mask = np.array([True, True, True, True, True, False])  # the last row is padding
    batch = {"image": jnp.zeros((6, 2, 2, 3)), "label": jnp.asarray(labels, jnp.int32), "mask": jnp.asarray(mask),
             "skipped": jnp.zeros(6, bool)}
    sums = jax.jit(make_eval_step(graphdef, lambda batch, rng: batch))(params, batch)
    assert float(sums["correct"]) == 1 and float(sums["correct_top5"]) == 3 and float(sums["count"]) == 5
    log_probs = table - np.log(np.exp(table).sum(axis=1, keepdims=True))
    expected = -sum(log_probs[i, labels[i]] for i in range(5))
    assert float(sums["loss"]) == pytest.approx(expected, rel=1e-5)
