"""Sampled softmax (Jean et al. 2015) with TensorFlow's `_compute_sampled_logits` semantics
(tensorflow/python/ops/nn_impl.py, `sampled_softmax_loss`): for training only.

One set of S negatives is drawn per step and shared by every example of the (micro-)batch
(frx.heads.samplers, with replacement). Per example the candidates are [its K true classes | the S
sampled ones]; their logits are x.W[:, c] + b[c], minus log Q(c) (the expected count of c in the
sample) when `subtract_log_q`; a sampled candidate equal to one of the example's true classes (an
"accidental hit") gets the most negative float (TF adds -FLOAT_MAX) when `remove_accidental_hits`.
The loss is the cross-entropy of the candidates against the true classes' weights (1 for a label,
mixup's a and 1 - a for two), i.e. a softmax over K + S columns instead of all classes.

The bias it leaves (TF's docstring: "generally an underestimate of the full softmax loss"): with
log-Q correction the sum of exp over the sampled negatives is an unbiased estimate of the full
partition function's negative part, but the loss is its logarithm and the gradient a ratio of
such sums, so both are biased for finite S, by O(1/S) (tests/heads/test_sampled.py measures it).
Without log-Q correction the model learns log(P/Q) instead of log P (negative sampling). Evaluate
with the full softmax (frx.heads.chunked / sharded).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from frx.heads import samplers

F32 = jnp.float32
MOST_NEGATIVE = float(jnp.finfo(F32).min)  # TF's -FLOAT_MAX


def _dedupe_true(labels_BK, weights_BK):
    """Weights of repeated true classes (mixup of two images of one class) moved to the first
    occurrence, so that a class is one candidate; returns (weights, mask of repeated columns)."""
    same = (labels_BK[:, :, None] == labels_BK[:, None, :]).astype(F32)  # [B, K, K]
    k = labels_BK.shape[1]
    duplicate = jnp.any((same * jnp.tril(jnp.ones((k, k), F32), -1)[None]) > 0, axis=-1)  # an earlier column
    return jnp.where(duplicate, 0.0, jnp.einsum("bij,bj->bi", same, weights_BK.astype(F32))), duplicate


def candidate_logits(x_BD, kernel_DC, bias_C, labels_BK, sampled_S, true_count_BK, sampled_count_S, *,
                     subtract_log_q: bool, remove_accidental_hits: bool):
    """[B, K + S] logits of the candidates (true classes first), corrected as TF's
    `_compute_sampled_logits` corrects them."""
    true_w = jnp.take(kernel_DC, labels_BK, axis=1)           # [D, B, K]
    true_logits = jnp.einsum("bd,dbk->bk", x_BD, true_w) + jnp.take(bias_C, labels_BK)
    sampled_logits = jnp.einsum("bd,ds->bs", x_BD, jnp.take(kernel_DC, sampled_S, axis=1)) + jnp.take(bias_C, sampled_S)
    if subtract_log_q:
        true_logits = true_logits - jnp.log(true_count_BK)
        sampled_logits = sampled_logits - jnp.log(sampled_count_S)[None, :]
    if remove_accidental_hits:
        hits = jnp.any(sampled_S[None, None, :] == labels_BK[:, :, None], axis=1)  # [B, S]
        sampled_logits = jnp.where(hits, MOST_NEGATIVE, sampled_logits)
    return jnp.concatenate([true_logits, sampled_logits], axis=-1)


def sampled_softmax_xent(x_BD, kernel_DC, bias_C, labels_BK, weights_BK, key, *, sampler: str, num_sampled: int,
                         num_classes: int, table=None, subtract_log_q: bool = True,
                         remove_accidental_hits: bool = True):
    """Per-example sampled softmax cross-entropy [B] (see the module docstring). `labels_BK` are
    class ids < num_classes (the head may be wider: padding columns are never sampled), `key`
    draws the negatives, `table` is the unigram sampler's (frx.heads.samplers.unigram_table)."""
    sampled, sampled_count = samplers.sample(sampler, key, num_sampled, num_classes, table)
    if sampler == "all":
        true_count = jnp.ones(labels_BK.shape, F32)
    else:
        true_count = num_sampled * _probability(sampler, labels_BK, num_classes, table)
    weights, duplicate = _dedupe_true(labels_BK, weights_BK)
    logits = candidate_logits(x_BD, kernel_DC, bias_C, labels_BK, sampled, true_count, sampled_count,
                              subtract_log_q=subtract_log_q, remove_accidental_hits=remove_accidental_hits)
    k = labels_BK.shape[1]
    logits = logits.at[:, :k].set(jnp.where(duplicate, MOST_NEGATIVE, logits[:, :k]))
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(weights * log_probs[:, :k], axis=-1)


def _probability(sampler: str, ids, num_classes: int, table):
    if sampler == "uniform":
        return jnp.full(ids.shape, 1.0 / num_classes, F32)
    if sampler == "log_uniform":
        k = ids.astype(F32)
        return (jnp.log(k + 2.0) - jnp.log(k + 1.0)) / float(np.log(num_classes + 1.0))
    return table[1][ids]
