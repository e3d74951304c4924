"""Preemption: a stop signal gives a checkpoint at the next step boundary and a clean return; a
second signal ends the process at once; clock-based temporary checkpoints and the retention policy."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

from frx import ckpt, preemption, sharding, tracking
from frx.config import CheckpointConfig
from frx.train import train
from tests.support.configs import tiny_config
from tests.support.run_folders import free_port


def test_first_signal_asks_for_a_stop_and_leaves_the_default_action_for_the_second():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    messages = []
    with preemption.StopSignals(say=messages.append) as signals:
        assert signals.received is None
        os.kill(os.getpid(), signal.SIGINT)  # without the handler: KeyboardInterrupt here
        time.sleep(0.01)
        assert signals.received == "SIGINT"
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert messages == ["frx: received SIGINT; saving a checkpoint at the next step boundary, then exiting "
                        "(send the signal again to exit at once, without saving)"]


def test_disabled_stop_signals_leave_the_handlers_alone():
    before = signal.getsignal(signal.SIGTERM)
    with preemption.StopSignals(enabled=False):
        assert signal.getsignal(signal.SIGTERM) is before


_BUSY_AFTER_FIRST_SIGNAL = """
import time
from frx.preemption import StopSignals
with StopSignals() as signals:
    print("ready", flush=True)
    deadline = time.time() + 60
    while time.time() < deadline:   # e.g. a long checkpoint write after the first signal
        time.sleep(0.01)
print("finished cleanly", flush=True)
"""


def test_a_second_signal_ends_the_process_at_once():
    proc = subprocess.Popen([sys.executable, "-c", _BUSY_AFTER_FIRST_SIGNAL], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline().startswith("frx: received SIGTERM; saving a checkpoint")
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM and "finished cleanly" not in rest


def test_a_stop_signal_checkpoints_at_the_step_boundary_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    cfg = tiny_config(tmp_path / "run", ckpt=CheckpointConfig(every_steps=4, async_save=True))
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, splits=()))
    put_batch, calls = sharding.put_batch, []

    def put_batch_then_signal_at_step_3(batch, mesh):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while step 3 is being prepared
        return put_batch(batch, mesh)

    monkeypatch.setattr(sharding, "put_batch", put_batch_then_signal_at_step_3)
    handler_before = signal.getsignal(signal.SIGTERM)
    train(cfg)
    assert "frx: stopped by SIGTERM after step 3/6; checkpoint 3 is in" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["3"]
    assert max(r["step"] for r in tracking.read_metrics(str(tmp_path / "run"))) == 3
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the caller's handler is back

    # Resume with the clock due at every step: temporary checkpoints 5 (clock) and 3 (signal) are
    # removed once a newer checkpoint is complete; the permanent 4 and 6 stay (keep=2).
    monkeypatch.setattr(sharding, "put_batch", put_batch)
    saved, save = [], ckpt.Checkpointer.save
    monkeypatch.setattr(ckpt.Checkpointer, "save", lambda self, step, *a, **k: (saved.append(step), save(self, step, *a, **k)))
    train(dataclasses.replace(cfg, ckpt=dataclasses.replace(cfg.ckpt, every_minutes=1e-9)))
    assert saved == [4, 5, 6]
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["4", "6"]
    assert [r["step"] for r in tracking.read_metrics(str(tmp_path / "run")) if "train/loss" in r] == [1, 2, 3, 4, 5, 6]




def test_save_clock_is_due_after_its_interval_and_resets():
    now = [0.0]
    clock = preemption.SaveClock(every_minutes=2.0, clock=lambda: now[0])
    now[0] = 119.0
    assert not clock.due()
    now[0] = 120.0
    assert clock.due()
    clock.reset()
    assert not clock.due()
    assert not preemption.SaveClock(every_minutes=0.0, clock=lambda: 1e9).due()


_AGREE = """
import sys
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2, process_id=int(sys.argv[2]),
                           initialization_timeout=60)
from frx.preemption import agree
me = jax.process_index()
# Process 1 was signalled; process 0's clock is due; process 1's clock is not.
print("sync", agree(stop=me == 1, save=me == 0, at_sync_point=True), flush=True)
print("between", agree(stop=me == 1, save=True, at_sync_point=False), flush=True)
jax.distributed.shutdown()
"""


def test_processes_agree_to_stop_and_save_at_the_same_step():
    """Two JAX processes on CPU: a stop signal on any process stops all, process 0's clock decides
    saves, and nothing is decided between sync points (all must call Orbax's save together)."""
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _AGREE, address, str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out
        lines = [line for line in out.splitlines() if not line.startswith("[Gloo]")]
        assert lines == ["sync (True, True)", "between (False, False)"]
