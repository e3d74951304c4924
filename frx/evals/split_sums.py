"""One pass over an evaluation split: padded batches (frx.data.pipeline.eval_batches) through a jitted
function of (params, batch) that returns per-batch sums, added up on the host.

Every process reads its own rows of each batch; the sums are global (the jitted function reduces over
the sharded batch), so each process gets the same totals. Dispatching every batch before fetching any
result keeps the device busy while the host prepares the next batches.
"""

from __future__ import annotations

import jax
import numpy as np

from frx import sharding
from frx.data import pipeline
from frx.data.pp import Pipeline
from frx.data.schema import Schema


def sum_over_split(step, params, source, pp: Pipeline, record_schema: Schema, *, batch_size: int, mesh,
                   threads: int) -> dict[str, float]:
    """{name: total} of `step(params, batch)`'s sums over every batch of `source`."""
    index, count = sharding.process_batch_slice(mesh)
    batches = pipeline.eval_batches(source, pp, record_schema, batch_size=batch_size, process_index=index,
                                    process_count=count, threads=threads)
    pending = [step(params, sharding.put_batch(b, mesh)) for b in batches]
    totals: dict[str, float] = {}
    for sums in jax.device_get(pending):
        for k, v in sums.items():
            totals[k] = totals.get(k, 0.0) + float(np.asarray(v))
    return totals
