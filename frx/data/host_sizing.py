"""`--data.workers auto`: how many host worker processes a run's input pipeline gets, from a measurement.

At start-up (not on a CPU backend, where the answer is always 0) the host ops of the training split
(decode, crop, flip, ...) run on its first records, once on one thread and once on `data.threads`
threads of this process. Decoders that release the GIL (simplejpeg, OpenCV, most of NumPy) scale with
threads; then worker processes would add only start-up time, memory and a copy of every batch. A
pipeline that holds the GIL (PIL filters, Python-level ops) stops near one core however many threads
it has; then processes are how it reaches the other cores.

The decision (`choose_workers`):
- CPU backend: 0. The train step's XLA threads already use every core; processes would compete with it.
- a target rate is known (`frx bench --input` knows the step's img/s): the fewest processes whose
  measured rate covers it with 20% to spare, at most cores - 1 (one core stays with the training process).
- otherwise (`frx train` on an accelerator, which consumes whatever the host gives): 0 when the threads
  scale (at least 60% of linear) or the ops are trivially cheap, else cores - 1.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# A pipeline faster than this per process (records/s on its threads) never needs worker processes:
# arrays already decoded, or augmentation done on the device.
TRIVIAL_RATE = 20_000.0
CPU_BACKEND = "CPU backend: the step uses every core"
THREADS_SCALE = 0.6  # threads reaching this fraction of linear speed-up count as scaling
HEADROOM = 1.2  # a target rate is covered with this margin


@dataclasses.dataclass(frozen=True)
class HostMeasurement:
    seconds_per_record: float  # host ops of one record on one thread
    threaded_records_per_s: float  # with `threads` threads in this process
    threads: int
    cores: int

    @property
    def thread_speedup(self) -> float:
        return self.threaded_records_per_s * self.seconds_per_record


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and `taskset` narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def measure(source, host_fn: Callable[[dict, np.random.Generator], dict], *, threads: int,
            budget_s: float = 1.0, cores: int | None = None) -> HostMeasurement:
    """Times `host_fn` on records of `source` (at least 4 per thread, about `budget_s` in all).
    Records the ops cannot decode are timed like the others: the stream pays for them too."""
    threads = max(threads, 1)

    def one(index: int) -> None:
        try:
            host_fn(dict(source[index % len(source)]), np.random.default_rng(index))
        except Exception:  # a bad record (the stream replaces it) or a worker-only failure: still a cost
            pass

    one(0)  # first call: imports, lazy tables
    count, start = 0, time.perf_counter()
    while count < 4 or (time.perf_counter() - start < budget_s / 2 and count < 10_000):
        one(1 + count)
        count += 1
    per_record = (time.perf_counter() - start) / count
    n = max(4 * threads, int(budget_s / 2 / max(per_record, 1e-9)))
    n = min(n, 100_000)
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(one, range(1 + count, 1 + count + n)))
        threaded = n / (time.perf_counter() - start)
    return HostMeasurement(per_record, threaded, threads, cores or available_cores())


def choose_workers(m: HostMeasurement, *, backend: str, target_records_per_s: float | None = None
                   ) -> tuple[int, str]:
    """(worker processes, the reason in a few words) for measurement `m` (see the module docstring)."""
    spare = max(m.cores - 1, 0)
    if backend == "cpu":
        return 0, CPU_BACKEND
    if m.threaded_records_per_s >= TRIVIAL_RATE:
        return 0, "host ops are trivially cheap"
    if target_records_per_s is not None:
        if m.threaded_records_per_s >= HEADROOM * target_records_per_s or spare == 0:
            return 0, f"{m.threads} threads cover {target_records_per_s:,.0f} records/s"
        needed = math.ceil(HEADROOM * target_records_per_s / m.threaded_records_per_s)
        return min(needed, spare), f"{needed} processes cover {target_records_per_s:,.0f} records/s"
    if m.thread_speedup >= THREADS_SCALE * min(m.threads, m.cores):
        return 0, f"{m.threads} threads scale ({m.thread_speedup:.1f}x one thread)"
    return spare, f"threads do not scale ({m.thread_speedup:.1f}x one thread with {m.threads}): one process per spare core"


def describe(m: HostMeasurement, workers: int, reason: str) -> str:
    return (f"data.workers auto -> {workers} ({reason}; host ops {m.seconds_per_record * 1e3:.2f} ms/record, "
            f"{m.threaded_records_per_s:,.0f} records/s on {m.threads} threads, {m.cores} cores)")


def resolve(setting: int | str, source, host_fn, *, threads: int, backend: str,
            target_records_per_s: float | None = None) -> tuple[int, str | None]:
    """`data.workers` as a number: itself, or for "auto" the measured choice and its description."""
    if setting != "auto":
        return int(setting), None
    if backend == "cpu":  # the answer does not depend on the measurement: spare the start-up second
        return 0, f"data.workers auto -> 0 ({CPU_BACKEND}; not measured)"
    m = measure(source, host_fn, threads=threads)
    workers, reason = choose_workers(m, backend=backend, target_records_per_s=target_records_per_s)
    return workers, describe(m, workers, reason)
