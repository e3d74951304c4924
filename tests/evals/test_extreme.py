"""Evaluation of a many-class head: class and per-rank top-1 / top-5 by marginalisation and the loss equal
a brute-force NumPy count over the full logits, for the dense, chunked and class-sharded heads."""

import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

from frx import sharding, tasks
from frx.config import HeadConfig, MeshConfig
from frx.config.head import RANKS
from frx.data import synthetic_taxa
from frx.evals.extreme import make
from frx.tasks.base import EvalContext
from tests.tasks.test_extreme import CLASSES, TAXA, _model_state, taxa_config


def _brute_force(task, graphdef, params, source):
    images = np.stack([source[i]["image"] for i in range(len(source))])
    run = jax.jit(lambda p, x: nnx.merge(graphdef, p)(task.eval_pp.device_fn()({"image": x}, jax.random.PRNGKey(0))["image"]))
    z = np.asarray(run(params, images), np.float64)[:, : task.num_classes]
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    labels, index = source.labels, source.label_index
    top5 = np.argsort(-z, axis=-1, kind="stable")[:, :5]
    results = {"acc": np.mean(top5[:, 0] == labels), "top5": np.mean((top5 == labels[:, None]).any(-1)),
               "loss": np.mean(-np.log(p[np.arange(len(labels)), labels]))}
    for r, rank in enumerate(RANKS):
        known = index.known[r, labels]
        marginal = np.stack([p[:, index.node_ids[r] == n].sum(-1) for n in range(index.num_nodes[r])], -1)
        truth = index.node_ids[r, labels]
        order = np.argsort(-marginal, axis=-1, kind="stable")[:, :5]
        results[f"{rank}_acc"] = np.mean((order[:, 0] == truth)[known])
        results[f"{rank}_top5"] = np.mean((order == truth[:, None]).any(-1)[known])
    return results


@pytest.mark.parametrize("kind, mesh_cfg", [("dense", MeshConfig(data=8)), ("chunked", MeshConfig(data=8)),
                                            ("sharded", MeshConfig(data=2, tensor=4)),
                                            ("sharded", MeshConfig(data=8, rules="classes"))])
def test_metrics_per_rank_equal_a_brute_force_count(kind, mesh_cfg):
    head = HeadConfig(kind=kind, objective="taxonomic", chunk_size=64, num_classes=CLASSES)
    cfg = taxa_config(head=head, num_classes=CLASSES + 8, mesh=mesh_cfg)  # padded to a multiple of 8
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, splits=("val",)))
    task = tasks.make(cfg)
    graphdef, params = _model_state(cfg.model)
    source = synthetic_taxa.TaxaSource(TAXA, "val", 16)
    mesh = sharding.make_mesh(cfg.mesh)
    (evaluator,) = make(task, EvalContext({"val": source}, graphdef, mesh, batch_size=24, threads=1))  # the last batch is padded
    results = evaluator.run(params)
    expected = _brute_force(task, graphdef, params, source)
    assert set(results) == {f"eval/val/{k}" for k in expected}
    for key, value in expected.items():
        assert results[f"eval/val/{key}"] == pytest.approx(value, rel=1e-5, abs=1e-9), key
    assert results["eval/val/kingdom_top5"] == 1.0 and 0 < results["eval/val/kingdom_acc"] < 1  # 2 kingdoms
