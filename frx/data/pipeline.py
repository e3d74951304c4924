"""Grain pipelines: an infinite, deterministic training stream and finite, padded evaluation passes.

Determinism: the training order is a global shuffle of the source that is reshuffled every epoch
(from `seed`), and the host-op randomness of record `g` of the global stream is seeded by
(seed, g). Global batch `s` is records [s*B, (s+1)*B), and process `p` of `P` reads rows
[p*B/P, (p+1)*B/P) of it. So the stream does not depend on worker or thread counts, and a
multi-process run sees the same global batches as a single process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import grain
import numpy as np

from frx.data.ops import Pipeline


@dataclasses.dataclass(frozen=True)
class HostTransform(grain.transforms.RandomMap):
    """Applies the host part of a pp pipeline to one record."""

    fn: Callable

    def random_map(self, record: dict, rng: np.random.Generator) -> dict:
        return {"image": self.fn(record["image"], rng), "label": np.int32(record["label"])}


def make_train_dataset(
    source,
    pipeline: Pipeline,
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
    ds = ds.random_map(HostTransform(pipeline.host_fn()), seed=seed + 1)
    ds = ds.batch(local, drop_remainder=True)
    return ds[process_index::process_count]


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
    shape: tuple

    def map(self, index: int) -> dict:
        label_shape = getattr(self.source.source, "label_shape", ())  # () or (classes,) for multi-hot sets
        if index < self.count:
            record = self.source[index]
            image = self.fn(record["image"], np.random.default_rng(index))
            label = np.asarray(record["label"], np.float32) if label_shape else np.int32(record["label"])
            return {"image": image, "label": label, "mask": np.bool_(True)}
        label = np.zeros(label_shape, np.float32) if label_shape else np.int32(0)
        return {"image": np.zeros(self.shape, np.uint8), "label": label, "mask": np.bool_(False)}


def eval_batches(
    source,
    pipeline: Pipeline,
    *,
    batch_size: int,
    image_shape: tuple[int, int, int],
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
    ds = grain.MapDataset.range(num_batches * local).map(_EvalRecord(shard, pipeline.host_fn(), count, image_shape))
    ds = ds.batch(local, drop_remainder=True)
    return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=max(threads, 1), prefetch_buffer_size=2 * max(threads, 1))))


@dataclasses.dataclass(frozen=True)
class _Shard:
    source: object
    start: int
    count: int

    def __getitem__(self, index: int):
        return self.source[self.start + index]
