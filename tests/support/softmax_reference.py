"""The softmax head's loss and gradients in float64 NumPy, written from the definitions: the reference
every head (dense, chunked, sharded, sampled with all classes) is compared with."""

import numpy as np


def logits(x, kernel, bias, num_valid):
    z = np.asarray(x, np.float64) @ np.asarray(kernel, np.float64) + np.asarray(bias, np.float64)
    z[:, num_valid:] = -np.inf
    return z


def _lse(z, mask):
    z = np.where(mask, z, -np.inf)
    top = z.max(-1, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(-1, keepdims=True)))[:, 0]


def loss_and_grads(x, kernel, bias, lo, hi, weights, num_valid):
    """mean over rows of sum_t w_t (lse_all - lse_[lo_t, hi_t)) and its gradients (dx, dkernel, dbias)."""
    z = logits(x, kernel, bias, num_valid)
    classes = np.arange(z.shape[1])
    valid = classes < num_valid
    lse_all = _lse(z, valid[None])
    p = np.exp(z - lse_all[:, None])
    rows, targets = np.asarray(lo).shape
    loss = np.zeros(rows)
    dz = np.zeros_like(z)
    for t in range(targets):
        inside = valid[None] & (classes[None] >= np.asarray(lo)[:, t : t + 1]) & (classes[None] < np.asarray(hi)[:, t : t + 1])
        lse_t = _lse(z, inside)
        w = np.asarray(weights, np.float64)[:, t]
        loss += w * (lse_all - lse_t)
        dz += w[:, None] * (p - np.where(inside, np.exp(z - lse_t[:, None]), 0.0))
    dz /= rows
    x64, k64 = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    return loss.mean(), (dz @ k64.T, x64.T @ dz, dz.sum(0))


def problem(batch=8, dim=6, classes=37, seed=0, scale=2.0):
    """Random features, head and labels (float32), as the heads see them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, dim)).astype(np.float32)
    kernel = (scale * rng.normal(size=(dim, classes)) / np.sqrt(dim)).astype(np.float32)
    bias = rng.normal(size=classes).astype(np.float32)
    return x, kernel, bias
