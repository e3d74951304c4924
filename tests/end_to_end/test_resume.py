"""Determinism across processes: the same config on the same topology gives a bitwise-identical
run, and a run killed (SIGKILL, at random moments, also in the middle of a checkpoint write) or
stopped (SIGTERM) and restarted with the same folder ends bit for bit where an uninterrupted run
ends: every checkpoint, every parameter and every logged metric (wall-clock fields aside).

These tests run `python -m frx train demo` with a tiny model on 2 CPU devices (tests/test_train.py),
and `siglip_demo` with a tiny two-tower model (tests/support/configs.py).
The reference run and the first process of the kill trials compile afresh, so their bitwise
agreement also covers recompilation; later processes share a JAX compilation cache for speed."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from frx import tracking
from frx.ckpt import read_arrays
from tests.support.configs import TINY_CLI, TINY_CONTRASTIVE_CLI
from tests.support.run_folders import assert_same_bits, complete_steps

ARGS = ("--total_steps", "60", "--ckpt.every_steps", "10", "--ckpt.keep", "100", "--eval.every_steps", "30")
TOTAL = 60


def assert_matches_reference(workdir, reference, *, finished: bool) -> None:
    """Metrics so far are a prefix of the reference's (all of it when finished); every complete
    checkpoint equals the reference's checkpoint of the same step, bit for bit."""
    ref_records = tracking.comparable_metrics(str(reference))
    records = tracking.comparable_metrics(str(workdir))
    assert records == (ref_records if finished else ref_records[: len(records)])
    for step in set(complete_steps(workdir)) & set(complete_steps(reference)):  # not temporary ones
        assert_same_bits(read_arrays(workdir / "checkpoints" / str(step)),
                         read_arrays(reference / "checkpoints" / str(step)), f"checkpoint {step}")
    if finished:
        assert complete_steps(workdir) == complete_steps(reference)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    _finish(folder / "run", folder / "run.log", cache=None)
    assert complete_steps(folder / "run") == list(range(10, TOTAL + 1, 10))
    return folder / "run"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax-cache")


DEMO = ("demo", *TINY_CLI, *ARGS)
TWO_TOWER = ("siglip_demo", *TINY_CONTRASTIVE_CLI, "--total_steps", "24", "--ckpt.every_steps", "6", "--ckpt.keep",
             "100", "--eval.every_steps", "12")


def _start(workdir, log_path, cache, command=DEMO, extra=()):
    """`frx train` in the background, its output going to `log_path` (readable while it runs)."""
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2", "FRX_LAUNCHED": "1"}
    if cache is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    cmd = [sys.executable, "-m", "frx", "train", command[0], "--workdir", str(workdir), *command[1:], *extra]
    with open(log_path, "w") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def _finish(workdir, log_path, cache, command=DEMO) -> str:
    proc = _start(workdir, log_path, cache, command)
    proc.wait(timeout=600)
    out = log_path.read_text()
    assert proc.returncode == 0, out
    return out


def _training(log_path) -> bool:
    """The process has restored (or initialised) its state and entered the loop."""
    with open(log_path) as f:
        return "frx train " in f.read()


def _last_logged_step(workdir) -> int:
    records = tracking.read_metrics(str(workdir))
    return max((r["step"] for r in records), default=-1)


def _wait_for(proc, condition, timeout=240.0) -> bool:
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return False


def _temporary_folders(workdir) -> set[tuple[str, int]]:
    """(name, inode) of the folders Orbax writes a checkpoint into before renaming it."""
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return set()
    found = set()
    for entry in os.scandir(folder):
        if ".orbax-checkpoint-tmp" in entry.name:
            try:
                found.add((entry.name, entry.inode()))
            except FileNotFoundError:
                pass
    return found


@pytest.mark.slow
def test_five_runs_killed_at_random_moments_resume_to_the_bitwise_identical_end(reference, cache, tmp_path):
    """One run folder, SIGKILLed five times: at random training steps (plus a random delay, so
    kills land in steps, metric writes, evaluations and saves), and once deliberately while a
    checkpoint is being written. After every kill, what is on disk matches the reference (the first
    process is a fresh run: same config, same topology, same bits); the last restart finishes, and
    the run equals the uninterrupted one."""
    rng = random.Random(6)
    workdir = tmp_path / "killed"
    targets = sorted(rng.sample(range(2, TOTAL - 4), 4))
    mid_save_kills = 0
    for trial in range(5):
        log_path = tmp_path / f"trial{trial}.log"
        proc = _start(workdir, log_path, cache)
        if trial == 2:  # kill while Orbax is writing a checkpoint into its temporary folder
            stale = _temporary_folders(workdir)  # left by an earlier kill; not this process's write
            hit = _wait_for(proc, lambda: _training(log_path) and _temporary_folders(workdir) - stale)
            writing = _temporary_folders(workdir) - stale
        else:
            target = targets.pop(0)
            hit = _wait_for(proc, lambda: _training(log_path) and _last_logged_step(workdir) >= target)
            time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert hit and proc.returncode == -signal.SIGKILL, f"trial {trial}: the run ended before the kill:\n" + log_path.read_text()
        if trial == 2:
            mid_save_kills += bool(writing & _temporary_folders(workdir))  # the half-written folder is still there
        assert_matches_reference(workdir, reference, finished=False)
    assert mid_save_kills == 1, "the kill aimed at a checkpoint write landed after the write finished"

    out = _finish(workdir, tmp_path / "final.log", cache)
    assert "resumed" in out and "run folder lock: taking over from pid" in out  # the killed run's lock
    assert not _temporary_folders(workdir)  # the killed writes' leftovers were cleaned up
    assert_matches_reference(workdir, reference, finished=True)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_at_the_next_step_boundary_and_exits_0(reference, cache, tmp_path):
    workdir, log_path = tmp_path / "stopped", tmp_path / "stopped.log"
    proc = _start(workdir, log_path, cache)
    assert _wait_for(proc, lambda: _training(log_path) and _last_logged_step(workdir) >= 23)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    out = log_path.read_text()
    assert proc.returncode == 0, out
    assert "received SIGTERM; saving a checkpoint at the next step boundary" in out
    stopped_at = _last_logged_step(workdir)
    assert f"stopped by SIGTERM after step {stopped_at}/{TOTAL}; checkpoint {stopped_at} is in" in out
    assert stopped_at < TOTAL and complete_steps(workdir)[-1] == stopped_at
    assert_matches_reference(workdir, reference, finished=False)

    out = _finish(workdir, tmp_path / "resumed.log", cache)
    assert f"at step {stopped_at}/{TOTAL}" in out
    if stopped_at % 10:  # the stop's checkpoint was temporary: gone once a newer one was complete
        assert stopped_at not in complete_steps(workdir)
    assert_matches_reference(workdir, reference, finished=True)


@pytest.mark.slow
def test_a_second_run_on_a_live_folder_is_refused_and_nothing_is_lost(cache, tmp_path):
    """Two processes, one folder: the second stops with one line naming the first, which trains on
    to its end untouched: no checkpoint deleted, every step logged once and in order."""
    workdir, longer = tmp_path / "shared", ("--total_steps", "300")
    first = _start(workdir, tmp_path / "first.log", cache, extra=longer)
    assert _wait_for(first, lambda: _training(tmp_path / "first.log") and _last_logged_step(workdir) >= 12)
    second = _start(workdir, tmp_path / "second.log", cache, extra=longer)
    second.wait(timeout=300)
    lines = (tmp_path / "second.log").read_text().strip().splitlines()
    assert first.poll() is None, "the first run ended before the second one tried: make it longer"
    assert second.returncode == 2 and lines[-1].startswith(f"frx: error: the run folder {workdir} is in use by "
                                                           f"pid {first.pid}")
    first.wait(timeout=600)
    assert first.returncode == 0, (tmp_path / "first.log").read_text()
    steps = [r["step"] for r in tracking.read_metrics(str(workdir)) if "train/loss" in r]
    assert steps == list(range(1, 301))
    assert complete_steps(workdir)[-1] == 300 and not _temporary_folders(workdir)


@pytest.mark.slow
def test_a_two_tower_run_killed_twice_resumes_to_the_bitwise_identical_end(cache, tmp_path):
    """SigLIP (its chunked loss's ring of ppermutes on 2 devices, the learnt bias) on the embedded
    captioned set: killed at two random steps and restarted, it ends bit for bit where an
    uninterrupted run ends, evaluations included."""
    reference = tmp_path / "reference"
    _finish(reference, tmp_path / "reference.log", cache=None, command=TWO_TOWER)
    assert complete_steps(reference) == [6, 12, 18, 24]
    rng = random.Random(10)
    workdir = tmp_path / "killed"
    for trial, target in enumerate(sorted(rng.sample(range(2, 22), 2))):
        log_path = tmp_path / f"trial{trial}.log"
        proc = _start(workdir, log_path, cache, TWO_TOWER)
        hit = _wait_for(proc, lambda: _training(log_path) and _last_logged_step(workdir) >= target)
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert hit and proc.returncode == -signal.SIGKILL, log_path.read_text()
        assert_matches_reference(workdir, reference, finished=False)
    out = _finish(workdir, tmp_path / "final.log", cache, TWO_TOWER)
    assert "resumed" in out
    assert_matches_reference(workdir, reference, finished=True)
