"""Errors a run stops with. Each message is one line that names the cause, what was kept, and the
fix; `frx` prints it as `frx: error: ...` and exits 1 (configuration errors, `frx.config.ConfigError`,
exit 2 before anything is compiled)."""

from __future__ import annotations


class RunError(RuntimeError):
    """A run that cannot go on; the checkpoints written before it stay usable."""


class NonFiniteError(RunError):
    """A step produced a non-finite loss or gradient (faults.nonfinite=stop), or too many did (skip)."""


class DataError(RunError):
    """The training stream cannot produce a batch, e.g. no decodable image among many consecutive records."""


class CheckpointReadError(RunError):
    """No checkpoint of a run folder can be restored (damaged, or written by other code)."""


class CheckpointWriteError(RunError):
    """A checkpoint could not be written (full disk, permissions); earlier checkpoints are intact."""
