"""`frx aot`: the train step compiled from shapes for a mesh, and the per-device memory it reports."""

import jax
import numpy as np
import pytest

from frx import aot, cli, faults, sharding, train
from frx.config import ConfigError, MeshConfig
from frx.data import pipeline
from tests.support.configs import tiny_config
from tests.test_distributed import TINY


def _report(**overrides):
    cfg = tiny_config(**overrides)
    return aot.memory_report(cfg, sharding.make_mesh(cfg.mesh))


def test_memory_report_counts_sharded_state_batch_and_activations():
    dp = _report(batch_size=16, mesh=MeshConfig(data=8))
    fsdp = _report(batch_size=16, mesh=MeshConfig(fsdp=8))
    big_batch = _report(batch_size=64, mesh=MeshConfig(data=8))
    for report in (dp, fsdp, big_batch):
        # The compiled step's arguments are exactly the state and batch shards (+ int32 step, uint32[2] rng,
        # the fault counters).
        counters = sum(x.nbytes for x in jax.tree.leaves(faults.init_counters()))  # frx.faults, replicated
        assert report.arguments == report.params + report.opt + report.batch + 4 + 8 + counters
        assert report.total == report.arguments + report.temporaries + report.unaliased_outputs
    assert dp.params == 4 * 27_172  # the whole float32 model on every device
    assert dp.opt == 2 * dp.params + 8  # Adam's mu and nu, and two int32 counts (Adam's and the schedule's)
    assert 1 / 8 <= fsdp.params / dp.params < 1 / 8 + 0.002
    assert 1 / 8 <= fsdp.opt / dp.opt < 1 / 8 + 0.002
    assert dp.batch == fsdp.batch == 16 * (16 * 16 * 3 + 4 + 1 + 1) // 8  # uint8 image, int32 label, int8 fault codes
    # Activations kept for the backward pass grow with the batch each device processes.
    assert big_batch.temporaries > 3 * dp.temporaries
    assert dp.fits(dp.total) and not dp.fits(dp.total - 1)
    assert "fits in 75% of 80 GiB = 60.00 GiB (0% used)" in dp.format(device_memory_gb=80)


def test_the_compiled_batch_has_the_fields_of_a_training_batch():
    cfg = tiny_config(batch_size=16)
    _, _, abstract_batch = aot.compile_train_step(cfg, sharding.make_mesh(cfg.mesh))
    run = train.setup(cfg)
    batch = pipeline.make_train_dataset(run.sources["train"], run.task.train_pp, run.task.record_schema(),
                                         batch_size=cfg.batch_size, seed=0)[0]
    assert {k: (v.shape, v.dtype) for k, v in abstract_batch.items()} == \
           {k: (np.shape(v), np.asarray(v).dtype) for k, v in batch.items()}


def test_aot_command_prints_memory_and_fails_when_the_step_does_not_fit(capsys):
    args = ["demo", *TINY, "--total_steps", "10", "--mesh.fsdp", "8", "--devices", "8"]
    assert cli.cmd_aot(args + ["--device_memory_gb", "0.0001"]) == 1
    out = capsys.readouterr().out
    assert "mesh data=1 fsdp=8 tensor=1, rules fsdp" in out
    for row in ("parameters", "optimizer state", "activations + temporaries", "total"):
        assert row in out
    assert "does NOT fit in 75% of 0.0001 GiB" in out


def test_aot_refuses_a_device_count_jax_cannot_switch_to():
    with pytest.raises(ConfigError, match="JAX already started with 8 cpu devices"):
        cli.cmd_aot(["demo", *TINY, "--total_steps", "10", "--devices", "4"])


def test_fake_devices_plan_auto_dtype_as_bfloat16(monkeypatch):
    """The fake CPU devices stand for accelerators: `--model.dtype auto` must not follow this host's CPU."""
    from frx import hardware

    monkeypatch.delenv("FRX_AUTO_DTYPE")
    aot.setup_fake_devices(jax.device_count())
    assert hardware.resolve_dtype("auto") == "bfloat16"
