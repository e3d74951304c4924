"""Predictions of a large softmax head without a [batch, classes] array: the top-k classes and the
probability of every taxonomic node (marginalisation: p(node) = sum of the probabilities of the
classes under it, as pybioclip's TreeOfLifeClassifier groups species probabilities by rank).

Both are computed chunk by chunk over one device's classes (the chunks of frx.heads.chunked), given
the *global* log-sum-exp of each row, so that the class-sharded head can run the same loop on its
shard and combine: top-k candidates are gathered (k per device) and marginals summed over devices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from frx.heads import blocks, chunked
from frx.heads.blocks import F32, NEG_INF


def merge_top_k(values_a, ids_a, values_b, ids_b, k: int):
    """The k largest of two candidate sets [B, *] (ties: the smaller class id first, as lax.top_k
    on the full row would order them)."""
    values = jnp.concatenate([values_a, values_b], axis=-1)
    ids = jnp.concatenate([ids_a, ids_b], axis=-1)
    # Sort by (value desc, id asc): lax.top_k alone would prefer the earlier position.
    order = jnp.lexsort((ids, -values), axis=-1)[..., :k]
    return jnp.take_along_axis(values, order, axis=-1), jnp.take_along_axis(ids, order, axis=-1)


def local_predictions(x_BD, kernel_DC, bias_C, offset, lse_all_B, node_maps_RC, num_nodes: tuple[int, ...],
                      layout: chunked.Layout, k: int):
    """(top-k logits [B, k], their global class ids [B, k], per-rank node probabilities [[B, n_r]])
    from this device's classes. `node_maps_RC[r, c]` is the node of local class c at rank r."""
    batch = x_BD.shape[0]
    kk = min(k, layout.block)
    init = (jnp.full((batch, k), NEG_INF, F32), jnp.full((batch, k), -1, jnp.int32),
            tuple(jnp.zeros((batch, n), F32) for n in num_nodes))

    def body(carry, i):
        top_v, top_i, marginals = carry
        start, classes, valid = chunked._chunk(layout, i, offset)
        w, b = chunked._slice(kernel_DC, bias_C, start, layout.block)
        z = jnp.where(valid[None, :], blocks.block_logits(x_BD, w, b), NEG_INF)
        v, j = jax.lax.top_k(z, kk)
        top_v, top_i = merge_top_k(top_v, top_i, v, jnp.where(jnp.isfinite(v), classes[j], -1), k)
        probs_KB = jnp.exp(z - lse_all_B[:, None]).T
        marginals = tuple(
            m + jax.ops.segment_sum(probs_KB, jax.lax.dynamic_slice_in_dim(node_maps_RC[r], start, layout.block),
                                    num_segments=n, indices_are_sorted=True).T
            for r, (m, n) in enumerate(zip(marginals, num_nodes)))
        return (top_v, top_i, marginals), None

    if layout.num_chunks == 1:
        return body(init, 0)[0]
    return jax.lax.scan(body, init, jnp.arange(layout.num_chunks))[0]
