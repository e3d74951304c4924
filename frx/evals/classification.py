"""Top-1 and top-5 accuracy and cross-entropy over a finite split (big_vision evaluators/classification.py):
padded examples (mask False) are excluded; the loss is summed and divided by the number seen.
Multi-hot labels (ImageNet-ReaL) follow big_vision too: mask * max(labels) drops images with no
label, top-1 counts when it is in the set, and the loss is softmax_xent against the multi-hot row
(top-5 is reported for class-id labels only, as big_vision does). Images that cannot be decoded are
excluded like padding and reported as `eval/NAME/skipped`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from frx import losses, sharding
from frx.data.pp import Pipeline, make_pipeline
from frx.data.schema import Schema
from frx.evals.split_sums import sum_over_split

TOP_K = 5


def make_eval_step(graphdef, device_fn):
    """(params, batch) -> per-batch sums of correct top-1 / top-5, loss, count and skipped images."""

    def eval_step(params, batch):
        batch = device_fn(batch, jax.random.PRNGKey(0))
        logits = nnx.merge(graphdef, params)(batch["image"])
        mask = batch["mask"].astype(jnp.float32)
        sums = {}
        if batch["label"].ndim == 2:  # multi-hot (ImageNet-ReaL): images without labels are not scored,
            labels = batch["label"].astype(jnp.float32)  # and top-1 is correct when it is in the set
            mask = mask * jnp.max(labels, axis=-1)
            correct = jnp.take_along_axis(labels, jnp.argmax(logits, axis=-1)[:, None], axis=-1)[:, 0]
            loss = losses.softmax_xent(logits, labels)
        else:
            labels = batch["label"]
            correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
            loss = losses.softmax_xent_sparse(logits, labels)
            if logits.shape[-1] > TOP_K:
                top = jax.lax.top_k(logits, TOP_K)[1]
                sums["correct_top5"] = jnp.sum(jnp.any(top == labels[:, None], axis=-1).astype(jnp.float32) * mask)
        return {
            **sums,
            "correct": jnp.sum(correct * mask),
            "loss": jnp.sum(loss * mask),
            "count": jnp.sum(mask),
            "skipped": jnp.sum(batch["skipped"].astype(jnp.float32)),
        }

    return eval_step


@functools.lru_cache(maxsize=16)
def _jitted_eval_step(graphdef, device_pp: str, mesh):
    """One jitted step per (model, device ops, mesh): the splits of a run (val, minival, v2) share it,
    so a program is compiled once per batch signature, not once per split. The label kind (class index
    or multi-hot row) is part of that signature, so jit retraces for it by itself."""
    return jax.jit(sharding.under_mesh(make_eval_step(graphdef, make_pipeline(device_pp).device_fn()), mesh))


class ClassificationEvaluator:
    """Evaluates params on one split; `run(params)` returns {"eval/NAME/acc": ..., "eval/NAME/top5": ...,
    "eval/NAME/loss": ...}, without them when no example was scored."""

    def __init__(self, name: str, source, pp: Pipeline, record_schema: Schema, *, graphdef, batch_size: int,
                 mesh, threads: int = 2):
        self.name, self.source, self.pp, self.record_schema, self.mesh = name, source, pp, record_schema, mesh
        self.batch_size, self.threads = batch_size, threads
        self.step = _jitted_eval_step(graphdef, pp.device_key(), mesh)

    def run(self, params) -> dict[str, float]:
        totals = sum_over_split(self.step, params, self.source, self.pp, self.record_schema,
                                batch_size=self.batch_size, mesh=self.mesh, threads=self.threads)
        results = {}
        if totals.get("count"):  # an empty split (or one with every image bad or unlabelled) has no score, not 0.0
            results[f"eval/{self.name}/acc"] = totals["correct"] / totals["count"]
            if "correct_top5" in totals:
                results[f"eval/{self.name}/top5"] = totals["correct_top5"] / totals["count"]
            results[f"eval/{self.name}/loss"] = totals["loss"] / totals["count"]
        if totals.get("skipped"):
            results[f"eval/{self.name}/skipped"] = totals["skipped"]
        return results


def make(task, context) -> list[ClassificationEvaluator]:
    """One evaluator per configured split that the data provides (`eval.splits`)."""
    return [
        ClassificationEvaluator(split, context.sources[split], task.eval_pp, task.record_schema(context.sources[split]),
                                graphdef=context.graphdef, batch_size=context.batch_size, mesh=context.mesh,
                                threads=context.threads)
        for split in task.cfg.eval.splits if split in context.sources
    ]
