"""Grain pipelines: an infinite, deterministic training stream and finite, padded evaluation passes.

Determinism: the training order is a global shuffle of the source that is reshuffled every epoch
(from `seed`), and the host-op randomness of record `g` of the global stream is seeded by
(seed, g). Global batch `s` is records [s*B, (s+1)*B), and process `p` of `P` reads rows
[p*B/P, (p+1)*B/P) of it. So the stream does not depend on worker or thread counts, and a
multi-process run sees the same global batches as a single process.

Bad records: when record g cannot be decoded (`frx.data.decode.BadImage`), position g of the
stream takes the first decodable record after it, g+1, g+2, ... (with the host-op randomness of
position g). Element g therefore stays a pure function of (seed, g): batches keep their size,
the iterator state stays one index, and a resumed run reads exactly what an uninterrupted one
reads. Each element carries the skip reason of record g and the conversion applied to the record
it used; the train step adds them up into counters in the training state (frx.faults).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import grain
import numpy as np

from frx.config import ConfigError
from frx.data import decode, schema
from frx.data.pp import Pipeline
from frx.data.schema import Schema
from frx.errors import DataError

# How far past a bad record the stream looks for a decodable one before it gives up with an error
# (a folder of non-images must stop the run, not spin forever).
MAX_CONSECUTIVE_BAD = 1000


class ReplaceBadRecords(grain.MapDataset):
    """Element g: the host ops applied to record g of `parent` and projected onto the task's batch
    schema, or, when record g cannot be decoded, the same for the first decodable record after it;
    plus the skip reason of record g and the conversion applied (codes into `decode.SKIP_REASONS` /
    `decode.CONVERSIONS`, 0 = none)."""

    def __init__(self, parent: grain.MapDataset, fn: Callable, record_schema: Schema, seed: int):
        super().__init__(parent)
        self._fn, self._schema, self._seed = fn, record_schema, seed

    def __len__(self) -> int:
        return len(self._parent)

    def __str__(self) -> str:
        return "ReplaceBadRecords"

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        skipped, error = 0, None
        for offset in range(MAX_CONSECUTIVE_BAD):
            rng = np.random.default_rng((self._seed, index))  # position g's randomness, whichever record fills it
            try:  # reading the record can fail too: a file that is gone, a pipe, no permission (frx.data.files)
                record = self._parent[index + offset]
                with decode.conversions() as seen:
                    out = self._fn(dict(record), rng)
            except decode.BadImage as e:
                skipped = skipped or e.code
                error = e
                continue
            converted = decode.CONVERSIONS.index(seen[0]) + 1 if seen else 0
            return {**_conform(out, self._schema, index + offset),
                    "skipped": np.int8(skipped), "converted": np.int8(converted)}
        raise DataError(
            f"none of {MAX_CONSECUTIVE_BAD} consecutive training records from stream position {index} could be "
            f"decoded (last: {error}); check that the data source points at images"
        )


def _conform(record: dict, record_schema: Schema, position: int) -> dict:
    try:
        return schema.conform(record, record_schema)
    except schema.SchemaError as e:  # a source with mixed sizes and no resize op, say: a data problem
        raise DataError(f"training record at stream position {position}: {e}") from None


def make_train_dataset(
    source,
    pipeline: Pipeline,
    record_schema: Schema,
    *,
    batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
) -> grain.MapDataset:
    """A random-access dataset whose element k is this process's part of global batch k.

    `batch_size` is the global batch; each element holds batch_size // process_count rows.
    """
    local = batch_size // process_count
    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
    ds = ReplaceBadRecords(ds, pipeline.host_fn(), record_schema, seed=seed + 1)
    ds = ds.batch(local, drop_remainder=True)
    return ds[process_index::process_count]


def check_host_output(source, pipeline: Pipeline, record_schema: Schema, field: str) -> None:
    """Runs the host ops of `data.FIELD` on the first decodable record of `source` and checks the
    result against the schema, so that a wrong op string stops the run at set-up with one line
    (ConfigError) instead of inside a worker."""
    host_fn = pipeline.host_fn()
    for index in range(min(len(source), MAX_CONSECUTIVE_BAD)):
        try:  # the first decodable record: bad ones are the stream's business (ReplaceBadRecords)
            record = host_fn(dict(source[index]), np.random.default_rng(0))
        except decode.BadImage:
            continue
        except ValueError as e:  # an op that reads a field the records lack, a bad op argument
            raise ConfigError(f"data.{field}: {e}") from None
        try:
            schema.conform(record, record_schema, where=f"data.{field}")
        except schema.SchemaError as e:
            raise ConfigError(str(e)) from None
        return


def make_train_iterator(ds: grain.MapDataset, *, threads: int, workers: int) -> grain.DatasetIterator:
    """A checkpointable iterator (`get_state()` / `set_state()`) with background prefetching."""
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(threads, 1), prefetch_buffer_size=max(2 * threads, 2)))
    if workers:
        setup_grain_workers()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return iter(it)


def setup_grain_workers() -> None:
    """Grain's worker processes read absl flags; outside absl.app they must be marked parsed
    (../shared/spec/environment_notes.md section 4)."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


@dataclasses.dataclass(frozen=True)
class _EvalRecord(grain.transforms.Map):
    source: object
    fn: Callable
    count: int
    record_schema: Schema

    def map(self, index: int) -> dict:
        if index < self.count:
            try:
                record = self.fn(dict(self.source[index]), np.random.default_rng(index))  # reading fails like decoding
            except decode.BadImage:  # counted, and left out of the metrics like padding
                return self._padding(skipped=True)
            try:
                example = schema.conform(record, self.record_schema)
            except schema.SchemaError as e:
                raise DataError(f"evaluation record {index}: {e}") from None
            return {**example, "mask": np.bool_(True), "skipped": np.bool_(False)}
        return self._padding(skipped=False)

    def _padding(self, *, skipped: bool) -> dict:
        return {**schema.zeros(self.record_schema), "mask": np.bool_(False), "skipped": np.bool_(skipped)}


def eval_batches(
    source,
    pipeline: Pipeline,
    record_schema: Schema,
    *,
    batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    threads: int = 2,
) -> Iterator[dict]:
    """One pass over `source` in batches of `batch_size // process_count` rows per process.

    Each process reads a contiguous shard; all processes yield the same number of batches, padded
    with zero images whose `mask` is False (big_vision's `make_for_inference`).
    """
    local = batch_size // process_count
    n = len(source)
    per_process = -(-n // process_count)
    start = min(process_index * per_process, n)
    count = min(per_process, n - start)
    num_batches = -(-per_process // local)
    shard = _Shard(source, start, count)
    ds = grain.MapDataset.range(num_batches * local).map(_EvalRecord(shard, pipeline.host_fn(), count, record_schema))
    ds = ds.batch(local, drop_remainder=True)
    return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=max(threads, 1), prefetch_buffer_size=2 * max(threads, 1))))


@dataclasses.dataclass(frozen=True)
class _Shard:
    source: object
    start: int
    count: int

    def __getitem__(self, index: int):
        return self.source[self.start + index]
