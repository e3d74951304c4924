"""How busy the rest of the machine was while a benchmark sample ran.

This project's CPU machines are shared, so the CPU benchmarks keep, per sample, the share of the CPU
that other processes used meanwhile (from /proc/stat, minus this process's own CPU time), and report
medians over the clean samples (others under 10%) next to the medians over all of them.
"""

import os
import time


def busy_seconds(core: int | None = None) -> float:
    """CPU seconds spent busy (neither idle nor waiting for I/O) since boot: all cores, or one."""
    name = "cpu" if core is None else f"cpu{core}"
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields[0] == name:
                ticks = [int(v) for v in fields[1:]]
                return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError(f"no {name} line in /proc/stat")


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    times = os.times()
    return times.user + times.system


def timed(fn) -> tuple[float, float]:
    """(wall seconds of fn(), share 0..1 of the machine's CPU that other processes used meanwhile)."""
    start, busy, own = time.perf_counter(), busy_seconds(), own_cpu_seconds()
    fn()
    wall = time.perf_counter() - start
    others = max(0.0, busy_seconds() - busy - (own_cpu_seconds() - own))
    return wall, others / (wall * (os.cpu_count() or 1))
