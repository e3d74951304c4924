"""Training a few steps of a config on fixed random batches, exactly the way frx.train steps."""

import numpy as np

from frx import sharding, step
from frx import train as train_lib


def train_steps(cfg, steps: int = 3):
    """(final state, per-step losses) of `cfg` on `steps` fixed random 16x16 batches."""
    run = train_lib.setup(cfg)
    state = run.spec.init_state()
    step_fn = step.jit_train_step(cfg, run.spec, run.mesh, run.train_pp.device_fn())
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        batch = {"image": rng.integers(0, 256, (cfg.batch_size, 16, 16, 3), dtype=np.uint8),
                 "label": rng.integers(0, cfg.model.num_classes, (cfg.batch_size,), dtype=np.int32)}
        state, metrics = step_fn(state, sharding.put_batch(batch, run.mesh))
        losses.append(float(metrics["train/loss"]))
    return state, losses
