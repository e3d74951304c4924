"""The classification task: its record schema, sparse labels end to end (mixup mixes the loss, not
one-hot rows), a pinned float32 reference of a few training steps, and the memory of a 450,000-class
step compiled (not run) on the CPU."""

import dataclasses
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from frx import aot, losses, sharding, tasks, tracking, train
from frx.config import DataConfig, MeshConfig, OptimConfig, ScheduleConfig, TrainConfig, ViTConfig
from frx.data import schema
from tests.support.configs import tiny_config


def test_records_are_images_and_sparse_class_ids():
    task = tasks.make(tiny_config())
    assert task.record_schema() == {"image": schema.Field((16, 16, 3), "uint8"),
                                    "label": schema.Field((), "int32", high=4)}

    class MultiHot:  # an evaluation source with ImageNet-ReaL-style labels
        label_shape = (4,)

    assert task.record_schema(MultiHot())["label"] == schema.Field((4,), "float32")


def test_mixup_mixes_the_loss_over_the_two_sparse_labels_as_the_dense_mixed_rows_would():
    cfg = tiny_config(batch_size=16)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, mixup_p=0.4))
    task = tasks.make(cfg)
    rng = np.random.default_rng(0)
    batch = schema.random_batch(schema.with_stream_fields(task.record_schema(), schema.TRAIN_STREAM_FIELDS), 16, rng)
    prepared = task.prepare(jax.tree.map(jnp.asarray, batch), jax.random.PRNGKey(3))
    assert "partner_label" in prepared and prepared["label"].dtype == jnp.int32  # no [batch, classes] rows
    a = float(prepared["mix_weight"][0])
    assert 0.5 <= a < 1 and np.all(np.asarray(prepared["mix_weight"]) == a)

    logits = jax.random.normal(jax.random.PRNGKey(1), (16, 4)) * 2

    class Fixed:
        def __call__(self, images):
            return logits

    loss, _ = task.loss(Fixed(), prepared, jax.random.PRNGKey(0))
    dense = a * jax.nn.one_hot(batch["label"], 4) + (1 - a) * jax.nn.one_hot(prepared["partner_label"], 4)
    np.testing.assert_allclose(loss, jnp.mean(losses.softmax_xent(logits, dense)), rtol=1e-6)


# Losses of the first 8 steps of `tiny_config` with lr 1e-2, warmup 1 (the first two are ln 4: a zero
# head, then a step at lr 0), and the final evaluation, measured on the dense one-hot implementation
# before labels became sparse. float32 on the CPU: machines differ in their matmul kernels (AMX or
# AVX-512), so the reference is pinned to a tolerance, not to bits.
PINNED = {
    0.0: ([1.3862943649291992, 1.3862943649291992, 1.4048656225204468, 1.3135932683944702, 1.2197563648223877,
           1.0881352424621582, 1.182096242904663, 0.9758951663970947], 0.46875, 0.9748916923999786),
    0.2: ([1.3862943649291992, 1.3862943649291992, 1.4215171337127686, 1.3686305284500122, 1.3568761348724365,
           1.2701352834701538, 1.2451270818710327, 1.0789915323257446], 0.515625, 1.0866895020008087),
}


@pytest.mark.parametrize("mixup_p", sorted(PINNED))
def test_training_matches_the_pinned_float32_reference(mixup_p):
    expected_losses, expected_acc, expected_eval_loss = PINNED[mixup_p]
    with tempfile.TemporaryDirectory() as workdir:
        cfg = tiny_config(workdir, total_steps=8, optim=OptimConfig(lr=1e-2, wd=1e-4),
                          schedule=ScheduleConfig(warmup_steps=1))
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, mixup_p=mixup_p))
        results = train.train(cfg)
        logged = [r["train/loss"] for r in tracking.read_metrics(workdir) if "train/loss" in r]
    np.testing.assert_allclose(logged, expected_losses, rtol=2e-4)
    assert results["eval/val/acc"] == pytest.approx(expected_acc, abs=1 / 64)  # one of 64 images may flip
    assert results["eval/val/loss"] == pytest.approx(expected_eval_loss, rel=2e-4)


def test_a_450k_class_step_keeps_its_temporaries_within_three_logits():
    """Compiled for 1 CPU device, never run. The temporaries are the logits, their gradient and one
    more [batch, classes] buffer (XLA:CPU materialises the masked log-probabilities that the loss
    reduces); mixup with sparse labels adds a few per-example vectors, never a [batch, classes] row
    block (with one-hot labels, mixup's mixed copy of the label rows is 115 MB here)."""
    batch, classes = 64, 450_000
    logits_bytes = batch * classes * 4
    temporaries = {}
    for mixup_p in (0.0, 0.2):
        cfg = TrainConfig(
            name="extreme", batch_size=batch, total_steps=10, mesh=MeshConfig(data=1),
            model=ViTConfig(variant="mu/4", width=32, depth=1, num_heads=2, image_size=16, num_classes=classes),
            data=DataConfig(source="folder", root="(not read)", pp_train="decode|value_range(-1, 1)", mixup_p=mixup_p),
            schedule=ScheduleConfig(warmup_steps=1),
        )
        compiled, _, abstract_batch = aot.compile_train_step(cfg, sharding.make_mesh(cfg.mesh))
        assert abstract_batch["label"].shape == (batch,) and abstract_batch["label"].dtype == jnp.int32
        temporaries[mixup_p] = compiled.memory_analysis().temp_size_in_bytes
    assert temporaries[0.2] - temporaries[0.0] < 0.001 * logits_bytes  # a few per-example vectors
    assert temporaries[0.0] <= 3.1 * logits_bytes, temporaries[0.0] / logits_bytes
