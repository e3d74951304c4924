"""Evaluation of a softmax head over many classes, never holding [batch, classes] logits when the head
is chunked or class-sharded (frx.heads.predictions): per split

    eval/SPLIT/acc, top5, loss        top-1 / top-5 accuracy and cross-entropy of the class, over the
                                      images with a class the head knows (label >= 0)
    eval/SPLIT/RANK_acc, RANK_top5    with a taxonomy: top-1 / top-5 of the sample's node at each rank
                                      (kingdom ... species), the node probabilities being the summed
                                      probabilities of their classes (marginalisation, as pybioclip
                                      groups species probabilities by rank), over the images that have
                                      a name at that rank

Padded and undecodable images are excluded as in frx.evals.classification. The evaluation always uses
the full softmax, also for a model trained with a sampled softmax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from frx import heads, sharding
from frx.config.head import RANKS
from frx.data.pp import Pipeline, make_pipeline
from frx.evals.split_sums import sum_over_split

TOP_K = 5
F32 = jnp.float32


def _hits(top_BK, truth_B, mask_B):
    """(top-1 hits, top-k hits) summed over the rows of `mask_B`."""
    first = jnp.sum(jnp.where(mask_B, top_BK[:, 0] == truth_B, False).astype(F32))
    any_k = jnp.sum(jnp.where(mask_B, jnp.any(top_BK == truth_B[:, None], axis=-1), False).astype(F32))
    return first, any_k


def make_eval_step(task, graphdef, device_fn, kind: str, num_nodes: tuple[int, ...]):
    """(params, node maps [R, C], batch) -> per-batch sums of hits, loss and counts."""
    layout = task.layout(task.cfg.head.chunk_size if kind in ("chunked", "sharded", "sampled") else 0)
    k = min(TOP_K, task.num_classes)

    def eval_step(params, maps_RC, batch):
        batch = device_fn(batch, jax.random.PRNGKey(0))
        x, kernel, bias = task.head_inputs(nnx.merge(graphdef, params), batch["image"])
        labels = batch["label"].astype(jnp.int32)
        loss, top, marginals = heads.predictions("sharded" if kind == "sharded" else "chunked", x, kernel, bias,
                                                 labels, maps_RC, num_nodes, layout=layout, k=k,
                                                 class_axes=task.class_axes)
        seen = batch["mask"] & (labels >= 0)
        correct, correct_k = _hits(top, labels, seen)
        sums = {"correct": correct, "correct_top5": correct_k, "loss": jnp.sum(jnp.where(seen, loss, 0.0)),
                "count": jnp.sum(seen.astype(F32)), "skipped": jnp.sum(batch["skipped"].astype(F32))}
        if "ranks" in batch:
            sums.update(_rank_sums(batch, maps_RC, top, marginals, labels, k))
        return sums

    return eval_step


def _rank_sums(batch, maps_RC, top_classes, marginals, labels, k):
    ranks = batch["ranks"]
    known = batch["mask"][:, None] & (ranks[..., 1] > ranks[..., 0])  # [B, R]
    sums = {}
    for r, rank in enumerate(RANKS):
        if r == len(RANKS) - 1:  # a species is a class: its top-k is the head's
            truth, top = labels, top_classes
        else:
            truth = jnp.take(maps_RC[r], jnp.maximum(ranks[:, r, 0], 0))
            top = jax.lax.top_k(marginals[r], min(k, marginals[r].shape[-1]))[1]
        correct, correct_k = _hits(top, truth, known[:, r])
        sums.update({f"{rank}_correct": correct, f"{rank}_correct_top5": correct_k,
                     f"{rank}_count": jnp.sum(known[:, r].astype(F32))})
    return sums


_STEPS: dict = {}


def _jitted(task, graphdef, device_pp: str, kind: str, num_nodes, mesh):
    """One jitted step per (config, model, device ops, mesh): the splits of a run share it."""
    key = (repr(task.cfg), graphdef, device_pp, kind, num_nodes, mesh)
    if key not in _STEPS:
        if len(_STEPS) >= 8:
            _STEPS.clear()
        step = make_eval_step(task, graphdef, make_pipeline(device_pp).device_fn(), kind, num_nodes)
        _STEPS[key] = jax.jit(sharding.under_mesh(step, mesh))
    return _STEPS[key]


class ExtremeEvaluator:
    """Evaluates params on one split; see the module docstring for the metrics."""

    def __init__(self, name: str, source, task, pp: Pipeline, *, graphdef, batch_size: int, mesh, threads: int = 2):
        self.name, self.source, self.pp, self.mesh = name, source, pp, mesh
        self.batch_size, self.threads = batch_size, threads
        self.record_schema = task.record_schema(source)
        index = getattr(source, "label_index", None)
        kind = task.cfg.head.kind
        if index is not None and "ranks" in self.record_schema:
            maps, num_nodes = index.node_maps(task.head_width)[:-1], index.num_nodes[:-1]  # species: the classes
        else:
            maps, num_nodes = np.zeros((0, task.head_width), np.int32), ()
        place = heads.placement(mesh, task.class_axes) if kind == "sharded" else None
        if place is not None:
            place.local(task.layout())  # the head splits evenly over the class axes, or a one-line error
        spec = P(None, place.class_axes) if place is not None else P()
        self.maps = jax.device_put(maps, NamedSharding(mesh, spec))
        self.step = _jitted(task, graphdef, pp.device_key(), kind, num_nodes, mesh)

    def run(self, params) -> dict[str, float]:
        totals = sum_over_split(lambda p, batch: self.step(p, self.maps, batch), params, self.source, self.pp, self.record_schema,
                                batch_size=self.batch_size, mesh=self.mesh, threads=self.threads)
        prefix = f"eval/{self.name}"
        results = {}
        if totals.get("count"):  # an empty split has no score, not 0.0
            results.update({f"{prefix}/acc": totals["correct"] / totals["count"],
                            f"{prefix}/top5": totals["correct_top5"] / totals["count"],
                            f"{prefix}/loss": totals["loss"] / totals["count"]})
        for rank in RANKS:
            if totals.get(f"{rank}_count"):
                count = totals[f"{rank}_count"]
                results[f"{prefix}/{rank}_acc"] = totals[f"{rank}_correct"] / count
                results[f"{prefix}/{rank}_top5"] = totals[f"{rank}_correct_top5"] / count
        if totals.get("skipped"):
            results[f"{prefix}/skipped"] = totals["skipped"]
        return results


def make(task, context) -> list[ExtremeEvaluator]:
    """One evaluator per configured split that the data provides (`eval.splits`)."""
    return [ExtremeEvaluator(split, context.sources[split], task, task.eval_pp, graphdef=context.graphdef,
                             batch_size=context.batch_size, mesh=context.mesh, threads=context.threads)
            for split in task.cfg.eval.splits if split in context.sources]
