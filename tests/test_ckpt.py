"""Checkpoint safety: a write that fails midway (a full disk) leaves every earlier checkpoint
loadable, and a restart resumes from the newest complete one to the bitwise-identical end; an
unreadable newest checkpoint is set aside, not trusted and not deleted; nothing is unpickled."""

import errno
import json
import os
import pickle
import shutil

import orbax.checkpoint as ocp
import pytest

from frx import ckpt, tracking
from frx import train as train_lib
from frx.ckpt import read_arrays, steps_to_delete
from frx.config import CheckpointConfig, model_fingerprint
from frx.errors import CheckpointReadError, CheckpointWriteError
from tests.support.configs import tiny_config
from tests.support.run_folders import assert_same_bits, complete_steps


def _config(workdir):
    return tiny_config(workdir, total_steps=9, ckpt=CheckpointConfig(every_steps=3, keep=10, async_save=True))


def _assert_same_run(workdir, reference):
    assert tracking.comparable_metrics(str(workdir)) == tracking.comparable_metrics(str(reference))
    assert complete_steps(workdir) == complete_steps(reference) == [3, 6, 9]
    for step in (3, 6, 9):
        assert_same_bits(read_arrays(workdir / "checkpoints" / str(step)),
                         read_arrays(reference / "checkpoints" / str(step)), f"checkpoint {step}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference") / "run"
    train_lib.train(_config(workdir))
    return workdir


def test_a_write_failing_midway_leaves_the_previous_checkpoint_and_the_run_resumes_from_it(reference, tmp_path,
                                                                                            monkeypatch):
    """The data-position item of checkpoint 6 is half written when the disk reports ENOSPC, in
    Orbax's background write: the error surfaces at the next save, names the step and what is kept."""
    original = ocp.JsonCheckpointHandler._save_fn

    async def full_disk_during_step_6(self, item, directory):
        if "6.orbax-checkpoint-tmp" in str(directory):
            (directory / "metadata").write_text(json.dumps(item)[:5])
            raise OSError(errno.ENOSPC, "No space left on device")
        return await original(self, item, directory)

    monkeypatch.setattr(ocp.JsonCheckpointHandler, "_save_fn", full_disk_during_step_6)
    workdir = tmp_path / "run"
    with pytest.raises(CheckpointWriteError, match=r"writing the checkpoint of step 6 to .* failed \(OSError: \[Errno 28\] "
                                                   r"No space left on device\); earlier checkpoints are intact and a "
                                                   r"restart resumes from step 3") as info:
        train_lib.train(_config(workdir))
    assert "\n" not in str(info.value)
    assert complete_steps(workdir) == [3]
    assert os.listdir(workdir / "checkpoints" / "6.orbax-checkpoint-tmp")  # the half-written attempt
    assert_same_bits(read_arrays(workdir / "checkpoints" / "3"), read_arrays(reference / "checkpoints" / "3"), "3")

    monkeypatch.setattr(ocp.JsonCheckpointHandler, "_save_fn", original)
    train_lib.train(_config(workdir))
    assert not [n for n in os.listdir(workdir / "checkpoints") if "tmp" in n]
    _assert_same_run(workdir, reference)


@pytest.mark.slow
def test_an_unreadable_newest_checkpoint_is_set_aside_and_the_previous_one_used(reference, tmp_path, capsys):
    workdir = tmp_path / "run"
    shutil.copytree(reference, workdir)
    shutil.rmtree(workdir / "checkpoints" / "9")  # the run stopped after writing 6 ...
    os.remove(workdir / "checkpoints" / "6" / ckpt.CHECKSUM_FILE)  # (unverified: as if written by an older frx)
    for root, _, files in os.walk(workdir / "checkpoints" / "6" / "state"):  # ... whose arrays the disk then lost
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(0)
    train_lib.train(_config(workdir))
    out = capsys.readouterr().out
    assert "checkpoint 6 cannot be read" in out and "set aside checkpoint 6 as checkpoints/6.unreadable" in out
    assert "at step 3/9" in out
    assert os.path.isdir(workdir / "checkpoints" / "6.unreadable")
    _assert_same_run(workdir, reference)


def test_restoring_a_checkpoint_unpickles_nothing(reference, monkeypatch):
    """The state is OCDBT/tensorstore arrays plus JSON metadata; the data position and the model
    fingerprint are JSON. Restore with every pickle entry point disabled."""

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used while restoring a checkpoint")

    import _pickle

    for module in (pickle, _pickle):
        for name in ("load", "loads", "Unpickler"):
            monkeypatch.setattr(module, name, refuse)
    cfg = _config(reference)
    run = train_lib.setup(cfg)
    checkpointer = ckpt.Checkpointer(str(reference), cfg.ckpt)
    abstract = run.spec.abstract_state
    step, state, data_state = checkpointer.restore_latest(abstract, meta=model_fingerprint(cfg))
    checkpointer.close()
    assert step == 9 and int(state["step"]) == 9
    assert json.loads(json.dumps(data_state)) == data_state  # plain JSON: Grain's iterator position
    with open(reference / "checkpoints" / "9" / "data" / "metadata") as f:
        assert json.load(f) == data_state
    for root, _, files in os.walk(reference):  # and no file anywhere in the run folder is a pickle
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                head = f.read(2)
            assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), name


def test_retention_keeps_recent_permanent_checkpoints_and_only_the_newest_temporary_one():
    permanent = lambda step: step % 10 == 0 or step == 95  # noqa: E731  every_steps=10, 95 steps
    delete = lambda steps, **kw: steps_to_delete(steps, is_permanent=permanent, **kw)  # noqa: E731
    assert delete([10, 20, 25, 30, 37], keep=2, keep_every_steps=0) == [10, 25]
    assert delete([10, 20, 25, 30], keep=2, keep_every_steps=0) == [10, 25]
    assert delete([10, 20, 30, 37, 40, 50, 95], keep=1, keep_every_steps=20) == [10, 30, 37, 50]
    assert delete([7], keep=1, keep_every_steps=0) == []  # a lone temporary checkpoint is the newest
    assert delete([], keep=3, keep_every_steps=0) == []


def _largest_array_file(step_dir):
    files = [os.path.join(root, n) for root, _, names in os.walk(step_dir / "state") for n in names]
    return max(files, key=os.path.getsize)


def test_every_complete_checkpoint_carries_checksums_of_all_its_files(reference):
    for step in (3, 6, 9):
        step_dir = reference / "checkpoints" / str(step)
        with open(step_dir / ckpt.CHECKSUM_FILE) as f:
            recorded = json.load(f)
        on_disk = {os.path.relpath(os.path.join(root, n), step_dir) for root, _, names in os.walk(step_dir)
                   for n in names if n != ckpt.CHECKSUM_FILE}
        assert set(recorded) == on_disk and ckpt.verify_checksums(str(step_dir))


def test_flipped_bytes_of_the_same_size_are_caught_and_the_previous_checkpoint_used(reference, tmp_path, capsys):
    workdir = tmp_path / "run"
    shutil.copytree(reference, workdir)
    shutil.rmtree(workdir / "checkpoints" / "9")
    target = _largest_array_file(workdir / "checkpoints" / "6")
    with open(target, "r+b") as f:  # 64 bytes flipped in place: same size, still a valid container
        f.seek(os.path.getsize(target) // 2)
        middle = f.read(64)
        f.seek(-64, os.SEEK_CUR)
        f.write(bytes(b ^ 0xFF for b in middle))
    train_lib.train(_config(workdir))
    out = capsys.readouterr().out
    assert "does not match the checksum written with the checkpoint" in out
    assert "set aside checkpoint 6 as checkpoints/6.corrupt" in out and "at step 3/9" in out
    _assert_same_run(workdir, reference)


def test_when_no_checkpoint_reads_the_run_stops_with_one_line(reference, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(reference, workdir)
    for step in (3, 6, 9):
        with open(_largest_array_file(workdir / "checkpoints" / str(step)), "r+b") as f:
            f.write(b"\0" * 16)
    with pytest.raises(CheckpointReadError, match="none of the 3 checkpoints in .* can be read \\(the newest, step 9: "
                                                  "CorruptCheckpoint: .*\\); if frx or the model code") as info:
        train_lib.train(_config(workdir))
    assert "\n" not in str(info.value)
    assert sorted(os.listdir(workdir / "checkpoints")) == ["3", "6", "9"]  # nothing renamed when nothing reads


def test_a_read_only_checkpointer_creates_cleans_and_deletes_nothing(reference, tmp_path):
    """`frx eval` on a live run: the save in progress (a temporary folder) must survive."""
    workdir = tmp_path / "run"
    shutil.copytree(reference, workdir)
    in_progress = workdir / "checkpoints" / "12.orbax-checkpoint-tmp-1234"
    in_progress.mkdir()
    before = sorted(os.listdir(workdir / "checkpoints"))
    checkpointer = ckpt.Checkpointer(str(workdir), _config(workdir).ckpt, read_only=True)
    assert checkpointer.latest_step() == 9
    checkpointer.close()
    assert sorted(os.listdir(workdir / "checkpoints")) == before
    nowhere = ckpt.Checkpointer(str(tmp_path / "no-run"), _config(workdir).ckpt, read_only=True)
    assert nowhere.latest_step() is None and not (tmp_path / "no-run").exists()
    nowhere.close()
