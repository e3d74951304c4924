"""Top-1 accuracy and cross-entropy over a finite split (big_vision evaluators/classification.py):
padded examples (mask False) are excluded; the loss is summed and divided by the number seen.
Multi-hot labels (ImageNet-ReaL) follow big_vision too: mask * max(labels) drops images with no
label, top-1 counts when it is in the set, and the loss is softmax_xent against the multi-hot row.
Images that cannot be decoded are excluded like padding and reported as `eval/NAME/skipped`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from frx import losses, sharding
from frx.data import pipeline
from frx.data.ops import Pipeline


def make_eval_step(graphdef, device_pp, num_classes: int):
    def eval_step(params, batch):
        images = device_pp(batch["image"], jax.random.PRNGKey(0))
        logits = nnx.merge(graphdef, params)(images)
        mask = batch["mask"].astype(jnp.float32)
        if batch["label"].ndim == 2:  # multi-hot (ImageNet-ReaL): images without labels are not scored,
            labels = batch["label"].astype(jnp.float32)  # and top-1 is correct when it is in the set
            mask = mask * jnp.max(labels, axis=-1)
            correct = jnp.take_along_axis(labels, jnp.argmax(logits, axis=-1)[:, None], axis=-1)[:, 0]
        else:
            labels = jax.nn.one_hot(batch["label"], num_classes)
            correct = (jnp.argmax(logits, axis=-1) == batch["label"]).astype(jnp.float32)
        return {
            "correct": jnp.sum(correct * mask),
            "loss": jnp.sum(losses.softmax_xent(logits, labels) * mask),
            "count": jnp.sum(mask),
            "skipped": jnp.sum(batch["skipped"].astype(jnp.float32)),
        }

    return eval_step


@functools.lru_cache(maxsize=16)
def _jitted_eval_step(graphdef, device_pp: str, num_classes: int, mesh):
    """One jitted step per (model, device ops, classes, mesh): the splits of a run (val, minival, v2)
    share it, so a program is compiled once per batch signature, not once per split. The label kind
    (class index or multi-hot row) is part of that signature, so jit retraces for it by itself."""
    from frx.data.ops import make_pipeline

    return jax.jit(sharding.under_mesh(make_eval_step(graphdef, make_pipeline(device_pp).device_fn(), num_classes),
                                       mesh))


class ClassificationEvaluator:
    """Evaluates params on one split; `run(params)` returns {"eval/NAME/acc": ..., "eval/NAME/loss": ...},
    without them when no example was scored."""

    def __init__(self, name: str, source, pp: Pipeline, *, graphdef, num_classes: int, batch_size: int,
                 image_size: int, mesh, threads: int = 2):
        self.name, self.source, self.pp, self.mesh = name, source, pp, mesh
        self.batch_size, self.image_size, self.threads = batch_size, image_size, threads
        device_pp = "|".join(str(call) for call in pp.device)  # OpCall holds a dict: not hashable itself
        self.step = _jitted_eval_step(graphdef, device_pp, num_classes, mesh)

    def run(self, params) -> dict[str, float]:
        totals = {"correct": 0.0, "loss": 0.0, "count": 0.0, "skipped": 0.0}
        index, count = sharding.process_batch_slice(self.mesh)
        batches = pipeline.eval_batches(
            self.source, self.pp, batch_size=self.batch_size, image_shape=(self.image_size, self.image_size, 3),
            process_index=index, process_count=count, threads=self.threads,
        )
        pending = [self.step(params, sharding.put_batch(b, self.mesh)) for b in batches]
        for sums in jax.device_get(pending):
            for k in totals:
                totals[k] += float(np.asarray(sums[k]))
        results = {}
        if totals["count"]:  # an empty split (or one with every image bad or unlabelled) has no score, not 0.0
            results[f"eval/{self.name}/acc"] = totals["correct"] / totals["count"]
            results[f"eval/{self.name}/loss"] = totals["loss"] / totals["count"]
        if totals["skipped"]:
            results[f"eval/{self.name}/skipped"] = totals["skipped"]
        return results
