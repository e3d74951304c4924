"""Candidate samplers of TensorFlow's candidate sampling (tensorflow/python/ops/candidate_sampling_ops.py,
tensorflow/core/kernels/range_sampler.cc), drawing with replacement on the device.

    uniform       P(k) = 1 / n
    log_uniform   P(k) = (log(k + 2) - log(k + 1)) / log(n + 1)      Zipf-like; only sensible when
                  class ids are sorted by decreasing frequency (TF's log_uniform_candidate_sampler)
    unigram       P(k) = count_k^distortion / sum_j count_j^distortion  (TF's fixed_unigram sampler;
                  distortion 1 is the class frequencies, 0 is uniform)
    all           every class exactly once (TF's all_candidate_sampler, for testing: with it the
                  sampled softmax is the full softmax)

`sample` returns the ids and their expected counts Q(k) = num_sampled * P(k) (the "expected count"
of TF's samplers with unique=False, the Q(y|x) of the Candidate Sampling reference), whose log is
what log-Q correction subtracts. Drawing with replacement keeps that correction exact; TF's default
unique=True draws until num_sampled distinct ids and reports approximate expected counts instead.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from frx.config import ConfigError

F32 = jnp.float32
SAMPLERS = ("uniform", "log_uniform", "unigram", "all")


def probabilities(name: str, num_classes: int, counts=None, distortion: float = 1.0) -> np.ndarray:
    """P(k) of sampler `name` over classes 0..num_classes-1, float64 (host, for tests and set-up)."""
    k = np.arange(num_classes, dtype=np.float64)
    if name in ("uniform", "all"):
        return np.full(num_classes, 1.0 / num_classes)
    if name == "log_uniform":
        return (np.log(k + 2) - np.log(k + 1)) / np.log(num_classes + 1)
    if name == "unigram":
        if counts is None or len(counts) != num_classes:
            raise ConfigError(f"the unigram sampler needs {num_classes} class counts, got "
                              f"{'none' if counts is None else len(counts)}")
        weights = np.asarray(counts, np.float64) ** distortion
        if not np.isfinite(weights).all() or weights.sum() <= 0 or (weights < 0).any():
            raise ConfigError("the unigram sampler needs non-negative class counts with a positive sum")
        return weights / weights.sum()
    raise ConfigError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}")


def sample(name: str, key: jax.Array, num_sampled: int, num_classes: int, table=None):
    """(ids [S] int32, expected counts [S] float32) of `num_sampled` draws with replacement.

    `table` is the unigram sampler's (cdf, probabilities) from `unigram_table`; the others need
    none. For `all`, every class comes once with expected count 1 (num_sampled is ignored).
    """
    if name == "all":
        return jnp.arange(num_classes, dtype=jnp.int32), jnp.ones((num_classes,), F32)
    u = jax.random.uniform(key, (num_sampled,), F32)
    if name == "uniform":
        ids = jnp.minimum((u * num_classes).astype(jnp.int32), num_classes - 1)
        p = jnp.full((num_sampled,), 1.0 / num_classes, F32)
    elif name == "log_uniform":
        # range_sampler.cc LogUniformSampler::Sample: floor(exp(u * log(n + 1))) - 1.
        log_range = float(np.log(num_classes + 1))
        ids = jnp.clip(jnp.floor(jnp.exp(u * log_range)).astype(jnp.int32) - 1, 0, num_classes - 1)
        k = ids.astype(F32)
        p = (jnp.log(k + 2.0) - jnp.log(k + 1.0)) / log_range
    elif name == "unigram":
        cdf, probs = table
        ids = jnp.minimum(jnp.searchsorted(cdf, u, side="right").astype(jnp.int32), num_classes - 1)
        p = probs[ids]  # exact P(k), not a float32 difference of the cdf near 1
    else:
        raise ConfigError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}")
    return ids, num_sampled * p


def unigram_table(counts, distortion: float) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative distribution the unigram sampler inverts, P(k)): float32 [num_classes] each.

    The cdf is accumulated in float64 and rounded once; a class whose probability is below float32's
    resolution near 1 (~6e-8) is drawn slightly more or less often than P says, which the log-Q
    correction, using the exact P, does not see. Classes with count 0 are never drawn."""
    probs = probabilities("unigram", len(counts), counts, distortion)
    cdf = np.cumsum(probs)
    return (cdf / cdf[-1]).astype(np.float32), probs.astype(np.float32)
