"""Device mesh and data placement. One code path for one CPU and many accelerators: global
`jax.Array`s with `NamedSharding`, never pmap.

The mesh axes use AxisType.Auto: jax.make_mesh defaults to Explicit axes since jax 0.7, under which
a plain jit of a batch-sharded gradient fails (../shared/spec/environment_notes.md section 2).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from frx.config import ConfigError, MeshConfig, TrainConfig

DATA_AXIS = "data"


def make_mesh(cfg: MeshConfig, devices=None) -> Mesh:
    """A 1-D ("data",) mesh over `cfg.data` devices (-1: all of them)."""
    devices = jax.devices() if devices is None else devices
    size = len(devices) if cfg.data == -1 else cfg.data
    if size > len(devices):
        raise ConfigError(f"mesh.data={size} but only {len(devices)} devices are visible; lower --mesh.data")
    return Mesh(np.asarray(devices[:size]), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def check_batch(cfg: TrainConfig, mesh: Mesh) -> None:
    """Each micro-batch must split evenly over the data-parallel devices and the processes."""
    shards = mesh.shape[DATA_AXIS]
    micro = cfg.batch_size // cfg.grad_accum
    if micro % shards:
        raise ConfigError(
            f"batch_size {cfg.batch_size} / grad_accum {cfg.grad_accum} = {micro} is not divisible by "
            f"{shards} data-parallel devices; use a batch size that is a multiple of {shards * cfg.grad_accum}"
        )
    if cfg.eval.batch_size % (shards * jax.process_count()):
        raise ConfigError(
            f"eval.batch_size {cfg.eval.batch_size} is not divisible by {shards} data-parallel devices "
            f"x {jax.process_count()} processes; pick a multiple of {shards * jax.process_count()}"
        )
    if cfg.batch_size % jax.process_count():
        raise ConfigError(f"batch_size {cfg.batch_size} is not divisible by {jax.process_count()} processes")


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the data axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def put_batch(batch: dict, mesh: Mesh) -> dict:
    """This process's rows of a global batch -> global arrays sharded on the batch axis."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}
