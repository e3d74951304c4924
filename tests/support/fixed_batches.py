"""Training a few steps of a config on fixed random batches, exactly the way frx.train steps."""

import numpy as np

from frx import step
from frx import train as train_lib
from frx.data import schema


def random_batches(run, count: int, seed: int = 0):
    """`count` random global batches of the run's task: its record schema plus the stream fields."""
    fields = schema.with_stream_fields(run.task.record_schema(), schema.TRAIN_STREAM_FIELDS)
    rng = np.random.default_rng(seed)
    return [schema.random_batch(fields, run.cfg.batch_size, rng) for _ in range(count)]


def train_steps(cfg, steps: int = 3):
    """(final state, per-step losses) of `cfg` on `steps` fixed random batches."""
    from frx import sharding

    run = train_lib.setup(cfg)
    state = run.spec.init_state()
    step_fn = step.jit_train_step(cfg, run.task, run.spec, run.mesh)
    losses = []
    for batch in random_batches(run, steps):
        state, metrics = step_fn(state, sharding.put_batch(batch, run.mesh))
        losses.append(float(metrics["train/loss"]))
    return state, losses
