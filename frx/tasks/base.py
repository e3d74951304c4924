"""The task protocol: what an objective provides to frx's one loop, step, checkpoints and meshes.

    schema     record_schema(source) -> {field: Field}: what one training (or evaluation) record
               holds once the host ops ran; the pipeline, `frx aot`, padding and test fixtures derive
               from it (frx.data.schema)
    pipelines  train_pp / eval_pp: the parsed op strings (host ops per record, device ops per batch)
    prepare    prepare(batch, rng) -> batch: device-side preprocessing of a whole global batch inside
               the jitted step (device ops, mixing across examples). It runs once per step, before
               the batch is split into micro-batches, so that gradient accumulation sees exactly the
               examples a single large step would
    loss       loss(model, batch, rng) -> (scalar loss, {name: scalar}) on a (micro-)batch; the
               step averages both over micro-batches and logs the extras as train/NAME
    evaluators evaluators(context) -> [Evaluator]: what runs on the evaluation splits
    describe   describe() -> str for the run header; summary(results) -> str for the last line

The step is generic: value-and-grad of `loss`, accumulation, fault accounting, the optimizer.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import jax

from frx.data.pp import Pipeline
from frx.data.schema import Schema


class Evaluator(Protocol):
    name: str

    def run(self, params) -> dict[str, float]:
        """Metrics named `eval/SPLIT/METRIC` for the parameters `params`; none for an empty split."""


@dataclasses.dataclass(frozen=True)
class EvalContext:
    """What a task's evaluators need from the run."""

    sources: dict
    """Data sources by split name (frx.data.sources.make_sources)."""
    graphdef: object
    """The model's graph (nnx.GraphDef): params -> module inside the jitted evaluation step."""
    mesh: jax.sharding.Mesh
    batch_size: int
    threads: int


class Task(Protocol):
    name: str
    train_pp: Pipeline
    eval_pp: Pipeline

    def record_schema(self, source=None) -> Schema:
        """The fields of one record after the host ops: for training (source None) or for
        evaluating `source` (whose labels may differ, e.g. multi-hot ImageNet-ReaL)."""

    def check_sources(self, sources: dict) -> None:
        """Raises ConfigError when the data does not fit the model (e.g. class counts differ)."""

    def prepare(self, batch: dict, rng: jax.Array) -> dict:
        """Device-side preprocessing of a whole batch (in the jitted step, before micro-batching)."""

    def loss(self, model, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
        """(mean loss, extra scalar metrics) of `model` on a prepared (micro-)batch."""

    def evaluators(self, context: EvalContext) -> list[Evaluator]:
        """The evaluators of the configured splits that the data provides."""

    def describe(self) -> str:
        """The objective in a few words, for the run header."""

    def summary(self, results: dict[str, float]) -> str:
        """The last line of a finished run, from its final evaluation metrics."""
