"""Stopping on a signal and saving on a clock, at step boundaries.

- `StopSignals`: the first SIGTERM or SIGINT only raises a flag; the loop sees it at the next step
  boundary, writes a checkpoint and returns, so `frx train` exits 0 and the same command resumes.
  The handler also restores the default action of both signals, so once the first signal has
  been handled (Python runs a handler between bytecodes of the main thread, so at the latest when
  the current step or compilation returns), a second one ends the process at once, even while
  the main thread waits inside a long XLA call or a checkpoint write.
- `SaveClock`: says when `every_minutes` have passed since the last checkpoint of any kind.

Processes of a multi-process run must stop and save at the same step (an Orbax save is
collective), so there the flags are combined over processes, and only at the steps where the
loop already waits for the device (log steps): one tiny all-gather per log step, none per step.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Context manager: while open, SIGTERM/SIGINT request a stop instead of killing the process."""

    def __init__(self, enabled: bool = True, say=None):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self._say = say or (lambda message: print(message, file=sys.stderr, flush=True))
        self._previous: dict[int, object] = {}
        self.received: str | None = None

    def __enter__(self) -> StopSignals:
        if self.enabled:
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        del frame
        self.received = signal.Signals(signum).name
        for sig in _SIGNALS:  # a second signal takes the default action: the process ends at once
            signal.signal(sig, signal.SIG_DFL)
        self._say(f"frx: received {self.received}; saving a checkpoint at the next step boundary, then exiting "
                  f"(send the signal again to exit at once, without saving)")


class SaveClock:
    """Due when `every_minutes` (> 0) have passed since `reset()`."""

    def __init__(self, every_minutes: float, clock=time.monotonic):
        self.seconds = every_minutes * 60.0
        self._clock = clock
        self._last = clock()

    def due(self) -> bool:
        return self.seconds > 0 and self._clock() - self._last >= self.seconds

    def reset(self) -> None:
        self._last = self._clock()


def agree(stop: bool, save: bool, *, at_sync_point: bool) -> tuple[bool, bool]:
    """(stop, save) as all processes will act on them. One process: as given, at every step.
    Several: only at sync points, stop if any process was signalled, save on process 0's clock."""
    import jax

    if jax.process_count() == 1:
        return stop, save
    if not at_sync_point:
        return False, False
    import numpy as np
    from jax.experimental import multihost_utils

    flags = np.asarray(multihost_utils.process_allgather(np.array([stop, save], np.int32)))
    return bool(flags[:, 0].any()), bool(flags[0, 1])
