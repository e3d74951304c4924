"""Per-example outputs of a model over a whole split, collected on the host: what zero-shot, retrieval
and few-shot evaluators score (they need every example's embedding, not per-batch sums).

The split is read in padded batches (frx.data.pipeline.eval_batches), run through a jitted function
whose outputs are replicated (so every process receives every row), and padding and undecodable
images (mask False) are dropped. Rows come back in one fixed order, the same for every output of a
record, which is all that pairing images with their captions or labels needs.

Outputs by name (the methods frx image-text models provide, frx.models.two_tower):
    image_embeddings   model.embed_images(batch["image"])        L2-normalised (N, D)
    text_embeddings    model.embed_texts(batch["tokens"])        L2-normalised (N, D)
    features           model.features(batch["image"])["pre_logits"]   any frx image model
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from frx import sharding
from frx.data import pipeline
from frx.data.pp import Pipeline, make_pipeline
from frx.data.schema import Schema

OUTPUTS = {
    "image_embeddings": lambda model, batch: model.embed_images(batch["image"]),
    "text_embeddings": lambda model, batch: model.embed_texts(batch["tokens"]),
    "features": lambda model, batch: model.features(batch["image"])["pre_logits"],
}


@functools.lru_cache(maxsize=32)
def _jitted(graphdef, device_pp: str, mesh, outputs: tuple[str, ...], keep: tuple[str, ...]):
    device_fn = make_pipeline(device_pp).device_fn()

    def step(params, batch):
        batch = device_fn(batch, jax.random.PRNGKey(0))
        model = nnx.merge(graphdef, params)
        out = {name: OUTPUTS[name](model, batch).astype(jnp.float32) for name in outputs}
        return {**out, **{k: batch[k] for k in keep}, "mask": batch["mask"]}

    return jax.jit(sharding.under_mesh(step, mesh), out_shardings=sharding.replicated(mesh))


def collect(params, source, pp: Pipeline, record_schema: Schema, *, graphdef, outputs: tuple[str, ...],
            keep: tuple[str, ...] = (), batch_size: int, mesh, threads: int = 2) -> dict[str, np.ndarray]:
    """{output name: (N, ...) float32, kept field: (N, ...)} over the decodable records of `source`."""
    step = _jitted(graphdef, pp.device_key(), mesh, tuple(outputs), tuple(keep))
    index, count = sharding.process_batch_slice(mesh)
    batches = pipeline.eval_batches(source, pp, record_schema, batch_size=batch_size, process_index=index,
                                    process_count=count, threads=threads)
    pending = [step(params, sharding.put_batch(b, mesh)) for b in batches]
    results = jax.device_get(pending)
    names = tuple(outputs) + tuple(keep)
    if not results:
        return {name: np.zeros((0,)) for name in names}
    mask = np.concatenate([np.asarray(r["mask"], bool) for r in results])
    return {name: np.concatenate([np.asarray(r[name]) for r in results])[mask] for name in names}
