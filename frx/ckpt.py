"""Checkpoints: parameters, optimizer state, step, RNG and fault counters, plus the data-iterator
position and a fingerprint of the model config, written by Orbax.

Safety (docs/reliability.md, tested in tests/test_ckpt.py):
- atomic: Orbax writes a step into `<step>.orbax-checkpoint-tmp` and renames it to `<step>` once
  every file is written, so a crash or a failed write (full disk) never leaves a half-written
  checkpoint under a step name; leftover temporary folders are removed on the next start;
- nothing is deleted until a newer checkpoint is complete: Orbax keeps everything it writes and the
  retention policy below runs here, after the previous save has finished, moving a doomed
  checkpoint out of the way with one rename before removing its files;
- a run resumes from the newest checkpoint that reads back; newer unreadable ones are set aside
  (renamed `<step>.unreadable`), never deleted;
- silent corruption is caught: once a save is complete, a checksum of every file of it is written
  into it (`checksums.json`, BLAKE2b), and a restore verifies them first; a checkpoint whose bytes
  changed is set aside as `<step>.corrupt` and the previous one used (checkpoints without the file,
  written by an earlier frx or cut off right after their rename, restore unverified);
- a checkpoint written for another model config is refused;
- nothing is unpickled: the state is tensorstore/OCDBT arrays plus JSON metadata, the data
  position and the fingerprint are JSON.

Retention: permanent checkpoints are the step-based ones (every `every_steps` and the last step);
the newest `keep` of them are kept, and those at multiples of `keep_every_steps`. Temporary ones
(clock-based or on a stop signal) are kept only while they are the newest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid

import jax
import orbax.checkpoint as ocp

from frx.config import CheckpointConfig, ConfigError
from frx.errors import CheckpointReadError, CheckpointWriteError

_TRASH = ".deleting"
CHECKSUM_FILE = "checksums.json"


class CorruptCheckpoint(ValueError):
    """A checkpoint file whose bytes differ from the checksum written with it."""


def _file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()


def _checkpoint_files(step_dir: str) -> list[str]:
    files = []
    for root, _, names in os.walk(step_dir):
        files += [os.path.relpath(os.path.join(root, n), step_dir) for n in names if n != CHECKSUM_FILE]
    return sorted(files)


def write_checksums(step_dir: str) -> None:
    """Records a BLAKE2b digest of every file of a complete checkpoint, atomically, inside it."""
    digests = {name: _file_digest(os.path.join(step_dir, name)) for name in _checkpoint_files(step_dir)}
    tmp = os.path.join(step_dir, f".{CHECKSUM_FILE}.{uuid.uuid4().hex}")
    with open(tmp, "w") as f:
        json.dump(digests, f, indent=0, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(step_dir, CHECKSUM_FILE))


def verify_checksums(step_dir: str) -> bool:
    """True when every recorded file is there with its recorded bytes; False when the checkpoint has
    no checksums to check; raises CorruptCheckpoint naming the first file that differs."""
    path = os.path.join(step_dir, CHECKSUM_FILE)
    if not os.path.exists(path):
        return False
    with open(path) as f:
        recorded = json.load(f)
    for name, digest in recorded.items():
        file = os.path.join(step_dir, name)
        if not os.path.exists(file) or _file_digest(file) != digest:
            raise CorruptCheckpoint(f"{name} does not match the checksum written with the checkpoint")
    return True

# Orbax splits each replicated array over its replicas when writing ("replica parallel"), which
# compiles one slicing program per (shape, device): 72 compiles and ~9 s before the first save of a
# tiny model on 8 CPU devices (measured; BENCHMARKS.md "Reliability"). Arrays whose per-replica
# slice would be under this size are written whole by one replica; huge ones are still split.
MIN_SLICE_BYTES_FOR_REPLICA_PARALLEL = 8 * 2**20


def _state_handler() -> ocp.PyTreeCheckpointHandler:
    array_handler = ocp.type_handlers.ArrayHandler(
        min_slice_bytes_for_replica_parallel=MIN_SLICE_BYTES_FOR_REPLICA_PARALLEL
    )
    registry = ocp.type_handlers.create_type_handler_registry((jax.Array, array_handler))
    return ocp.PyTreeCheckpointHandler(type_handler_registry=registry)


def steps_to_delete(steps, *, is_permanent, keep: int, keep_every_steps: int) -> list[int]:
    """Which of the complete checkpoints `steps` the retention policy removes."""
    steps = sorted(steps)
    if not steps:
        return []
    permanent = [s for s in steps if is_permanent(s)]
    kept = {steps[-1], *permanent[-keep:]}
    if keep_every_steps:
        kept.update(s for s in permanent if s % keep_every_steps == 0)
    return [s for s in steps if s not in kept]


def read_arrays(step_dir: str) -> dict:
    """Every array of a checkpoint's training state as NumPy, keyed by its tree path; needs no
    model code (for comparing runs bit for bit: tests, benchmarks/determinism_check.py)."""
    import logging

    import numpy as np

    reader = ocp.PyTreeCheckpointer()
    path = os.path.join(step_dir, "state")
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # reading an item folder directly warns that the step metadata is elsewhere
    try:
        tree = reader.metadata(path).item_metadata.tree
    finally:
        absl_logger.setLevel(level)
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    state = reader.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(state)}


class Checkpointer:
    """The run folder's checkpoints. `read_only=True` (what `frx eval` uses on a folder that may be
    training right now) restores only: it creates, cleans up, renames and deletes nothing."""

    def __init__(self, workdir: str, cfg: CheckpointConfig, *, total_steps: int | None = None, read_only: bool = False):
        self.cfg, self.total_steps, self.read_only = cfg, total_steps, read_only
        self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=cfg.async_save and not read_only,
            create=not read_only,
            read_only=read_only,
            cleanup_tmp_directories=not read_only,  # remove what a killed save left behind (the lock says it is dead)
        )
        handlers = {"state": _state_handler(), "data": ocp.JsonCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
        self._pending: int | None = None

    def is_permanent(self, step: int) -> bool:
        every = self.cfg.every_steps
        return step == self.total_steps or (every > 0 and step % every == 0)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state, *, data_state: dict, meta: dict) -> None:
        """Starts writing `step` (in the background with async_save) once the previous write is done."""
        self._finish_pending()
        args = ocp.args.Composite(
            state=ocp.args.PyTreeSave(state),
            data=ocp.args.JsonSave(data_state),
            meta=ocp.args.JsonSave(meta),
        )
        self._pending = step
        try:
            self.manager.save(step, args=args, force=True)
        except Exception as e:  # noqa: BLE001  the synchronous part of a save (or a whole sync save)
            self._pending = None
            raise self._write_error(step, e) from e
        if not self.cfg.async_save:
            self._finish_pending()

    def restore(self, step: int, abstract_state, *, meta: dict):
        """Restores (state, data_state) into the shardings of `abstract_state`.

        Refuses a checkpoint whose model config differs from `meta["model"]`: restoring it would
        fail on shapes at best and silently train another model at worst.
        """
        verify_checksums(os.path.join(self.directory, str(step)))  # before any byte of it is trusted
        saved_meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        if saved_meta.get("model") != meta["model"]:
            changed = sorted(k for k in meta["model"] if saved_meta.get("model", {}).get(k) != meta["model"][k])
            raise ConfigError(
                f"checkpoint in {self.directory} was written for a different model (fields {changed} differ); "
                "use a new --workdir or the original model settings"
            )
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(abstract_state, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_state)),
                data=ocp.args.JsonRestore(),
            ),
        )
        return restored["state"], restored["data"]

    def restore_latest(self, abstract_state, *, meta: dict, say=print):
        """(step, state, data_state) of the newest checkpoint that reads back.

        A newer checkpoint that fails to read (damaged after it was completed, e.g. by a disk
        fault) is renamed `<step>.unreadable` once an older one has been read; when none reads,
        the newest one's error is raised and nothing is moved (a code change, not damage).
        """
        steps = self.all_steps()
        unreadable, first_error = [], None
        for step in reversed(steps):
            try:
                state, data_state = self.restore(step, abstract_state, meta=meta)
            except ConfigError:
                raise
            except Exception as e:  # noqa: BLE001  tensorstore, JSON and Orbax errors alike
                first_error = first_error or (step, e)
                unreadable.append((step, ".corrupt" if isinstance(e, CorruptCheckpoint) else ".unreadable"))
                say(f"checkpoint {step} cannot be read ({_one_line(e)}); trying an older one")
                continue
            for bad, suffix in unreadable:
                self._set_aside(bad, suffix)
                say(f"set aside checkpoint {bad} as checkpoints/{bad}{suffix}")
            return step, state, data_state
        step, error = first_error
        raise CheckpointReadError(
            f"none of the {len(steps)} checkpoints in {self.directory} can be read (the newest, step {step}: "
            f"{_one_line(error)}); if frx or the model code changed since they were written, use the version that "
            "wrote them, else pass another --workdir"
        ) from error

    def wait(self) -> None:
        self._finish_pending()

    def close(self) -> None:
        try:
            self._finish_pending()
        finally:
            self.manager.close()

    # ------------------------------------------------------------------------------------ internals

    def _finish_pending(self) -> None:
        """Waits for the save in flight; applies retention once it is known complete."""
        if self._pending is None:
            return
        step, self._pending = self._pending, None
        try:
            self.manager.wait_until_finished()
            if jax.process_index() == 0:  # the files of every process are in place once the save finished
                write_checksums(os.path.join(self.directory, str(step)))
        except Exception as e:  # noqa: BLE001
            raise self._write_error(step, e) from e
        self._apply_retention()

    def _write_error(self, step: int, error: Exception) -> CheckpointWriteError:
        self.manager.reload()
        latest = self.manager.latest_step()
        kept = f"a restart resumes from step {latest}" if latest is not None else "no earlier checkpoint exists"
        reason = _one_line(error)
        return CheckpointWriteError(
            f"writing the checkpoint of step {step} to {self.directory} failed ({reason}); earlier checkpoints are "
            f"intact and {kept}; free disk space or fix the folder's permissions, then run the same command again"
        )

    def _apply_retention(self) -> None:
        self.manager.reload()
        doomed = steps_to_delete(self.manager.all_steps(), is_permanent=self.is_permanent, keep=self.cfg.keep,
                                 keep_every_steps=self.cfg.keep_every_steps)
        if doomed and jax.process_index() == 0:
            for step in doomed:
                # One atomic rename first: a crash while removing files then cannot leave a
                # damaged checkpoint under a step name.
                trash = os.path.join(self.directory, _TRASH, str(step))
                shutil.rmtree(trash, ignore_errors=True)
                os.makedirs(os.path.dirname(trash), exist_ok=True)
                os.rename(os.path.join(self.directory, str(step)), trash)
                shutil.rmtree(trash, ignore_errors=True)
            shutil.rmtree(os.path.join(self.directory, _TRASH), ignore_errors=True)
            self.manager.reload()

    def _set_aside(self, step: int, suffix: str) -> None:
        if jax.process_index() == 0:
            target = os.path.join(self.directory, f"{step}{suffix}")
            shutil.rmtree(target, ignore_errors=True)
            os.rename(os.path.join(self.directory, str(step)), target)
        self.manager.reload()


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}"
