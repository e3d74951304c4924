"""Multi-process start-up: when jax.distributed is initialised and with which arguments; and two
processes on localhost (gloo CPU collectives) that train, checkpoint and resume exactly like one."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from frx import distributed, tracking
from frx.cli import parse_train_args
from frx.config import ConfigError, DistConfig, validate
from frx.train import train
from tests.support.configs import tiny_config
from tests.support.run_folders import free_port

SLURM = {"SLURM_JOB_ID": "77", "SLURM_STEP_NODELIST": "gpu[01-02]", "SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2",
         "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}


def _kwargs(env, **cfg):
    return distributed.get_initialize_kwargs(DistConfig(**cfg), env)


def test_a_single_process_is_left_alone():
    assert _kwargs({}) is None
    assert _kwargs({**SLURM, "SLURM_NTASKS": "1", "SLURM_STEP_NUM_TASKS": "1"}) is None  # srun -n 1
    assert _kwargs({**SLURM}, mode="off") is None
    calls = []
    assert distributed.setup_distributed(DistConfig(), env={}, initialize=lambda **kw: calls.append(kw)) is False
    assert calls == []


def test_an_explicit_coordinator_is_passed_through():
    calls = []
    cfg = DistConfig(coordinator_address="10.0.0.1:1234", num_processes=4, process_id=3, local_device_ids=(0, 1))
    assert distributed.setup_distributed(cfg, env={}, initialize=lambda **kw: calls.append(kw)) is True
    assert calls == [{"coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 3,
                      "local_device_ids": [0, 1], "initialization_timeout": 300}]
    with pytest.raises(ConfigError, match="also pass --dist.num_processes and --dist.process_id"):
        _kwargs({}, coordinator_address="10.0.0.1:1234")


def test_launchers_are_detected_and_jax_detects_the_rest():
    assert distributed.detect_launcher(SLURM) == "slurm"
    assert distributed.detect_launcher({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_MCA_orte_hnp_uri": "1.0;tcp://x:1"}) == "ompi"
    assert distributed.detect_launcher({"TPU_WORKER_HOSTNAMES": "t0,t1,t2,t3"}) == "tpu"
    assert distributed.detect_launcher({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "JOB_COMPLETION_INDEX": "0"}) == "kubernetes"
    assert distributed.detect_launcher({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None  # a lone pod
    kwargs = _kwargs({**SLURM, "CUDA_VISIBLE_DEVICES": "", "SLURM_TASKS_PER_NODE": "1(x2)"})
    assert kwargs["coordinator_address"] is None and kwargs["process_id"] is None  # left to JAX's SLURM detection


def test_gpus_per_process_follow_the_launch_layout():
    one_per_host = {**SLURM, "SLURM_TASKS_PER_NODE": "1(x2)", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    assert _kwargs(one_per_host)["local_device_ids"] == [0, 1, 2, 3]
    one_per_gpu = {**SLURM, "SLURM_TASKS_PER_NODE": "4(x2)", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    assert _kwargs(one_per_gpu)["local_device_ids"] is None  # JAX picks GPU SLURM_LOCALID
    gpus_per_task = {**SLURM, "SLURM_TASKS_PER_NODE": "4(x2)", "CUDA_VISIBLE_DEVICES": "3"}
    assert _kwargs(gpus_per_task)["local_device_ids"] == [0]  # srun --gpus-per-task=1 hid the others
    assert _kwargs(one_per_host, local_device_ids=(1,))["local_device_ids"] == [1]


def test_open_mpi_without_the_orte_uri_needs_a_coordinator():
    env = {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1", "CUDA_VISIBLE_DEVICES": ""}
    with pytest.raises(ConfigError, match="--dist.coordinator_address"):
        _kwargs(env)
    kwargs = _kwargs(env, coordinator_address="node0:5000")
    assert (kwargs["num_processes"], kwargs["process_id"]) == (2, 1)


def test_open_mpi_5_gives_each_rank_its_own_gpu():
    # mpirun -np 16 over 2 hosts with 8 GPUs each: JAX detects no cluster, so frx must pick the GPU.
    env = {"OMPI_COMM_WORLD_SIZE": "16", "OMPI_COMM_WORLD_RANK": "11", "OMPI_COMM_WORLD_LOCAL_RANK": "3",
           "OMPI_COMM_WORLD_LOCAL_SIZE": "8", "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"}
    assert _kwargs(env, coordinator_address="node0:5000") == {
        "coordinator_address": "node0:5000", "num_processes": 16, "process_id": 11, "local_device_ids": [3],
        "initialization_timeout": 300}
    one_per_host = {**env, "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_LOCAL_RANK": "0",
                    "OMPI_COMM_WORLD_LOCAL_SIZE": "1"}
    assert _kwargs(one_per_host, coordinator_address="node0:5000")["local_device_ids"] == list(range(8))
    open_mpi_4 = {**env, "OMPI_MCA_orte_hnp_uri": "1.0;tcp://10.0.0.1:1"}
    assert _kwargs(open_mpi_4)["local_device_ids"] is None  # JAX's OmpiCluster picks LOCAL_RANK


def test_mode_on_without_a_launcher_leaves_detection_to_jax():
    kwargs = _kwargs({}, mode="on")
    assert kwargs["coordinator_address"] is None
    assert kwargs["num_processes"] is None and kwargs["process_id"] is None
    with pytest.raises(ConfigError, match="also pass --dist.num_processes and --dist.process_id"):
        _kwargs({}, mode="on", coordinator_address="10.0.0.1:1234")


def test_bad_distributed_settings_are_refused():
    with pytest.raises(ConfigError, match="host:port"):
        validate(tiny_config(dist=DistConfig(coordinator_address="node0")))
    with pytest.raises(ConfigError, match=r"process_id 2 must lie in \[0, dist.num_processes=2\)"):
        validate(tiny_config(dist=DistConfig(num_processes=2, process_id=2)))


# ---------------------------------------------------------------------------------------------- 2 processes

TINY = (
    "--batch_size 16 --model.variant mu/4 --model.width 32 --model.depth 2 --model.num_heads 2 "
    "--model.image_size 16 --model.num_classes 4 --model.dtype float32 --data.synthetic.train_size 256 "
    "--data.synthetic.val_size 64 "
    "--data.synthetic.num_shapes 2 --data.synthetic.num_textures 1 --data.threads 1 "
    # A constant schedule after warmup, so that a run stopped at step 3 and extended to 6 is the same
    # computation as one run of 6 steps.
    "--schedule.warmup_steps 2 --schedule.decay constant --ckpt.every_steps 3 --eval.every_steps 3 "
    "--log.every_steps 1 --log.progress False --log.plots False --log.tensorboard False"
).split()


def _launch_two_processes(workdir, total_steps: int, mesh: list[str]) -> list[str]:
    """`frx train demo` twice on localhost, 2 CPU devices each; returns their outputs."""
    port = free_port()
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2", "JAX_PLATFORMS": "cpu", "FRX_LAUNCHED": "1"}
    procs = [
        subprocess.Popen(
            ["timeout", "240", sys.executable, "-m", "frx", "train", "demo", *TINY, "--workdir", str(workdir),
             "--total_steps", str(total_steps), *mesh,
             "--dist.coordinator_address", f"127.0.0.1:{port}", "--dist.num_processes", "2", "--dist.process_id", str(i),
             "--dist.initialization_timeout", "120"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate()[0] for p in procs]
    for i, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"process {i} failed:\n{out[-3000:]}"
    assert "frx train demo" not in outputs[1]  # only process 0 reports
    return outputs


@pytest.mark.slow
def test_two_processes_train_checkpoint_and_resume_like_one_process(tmp_path):
    two = tmp_path / "two"
    # One FSDP axis across both processes: every parameter is split between them.
    out = _launch_two_processes(two, total_steps=3, mesh=["--mesh.fsdp", "4"])
    assert "4 cpu device(s) in 2 process(es), mesh data=1 fsdp=4 tensor=1, rules fsdp" in out[0]
    state_dir = two / "checkpoints" / "3" / "state"
    assert (state_dir / "ocdbt.process_0").exists() and (state_dir / "ocdbt.process_1").exists()  # both wrote shards
    # A second launch resumes from step 3, on another mesh: Orbax reshards on restore. (A longer run is
    # a change of the computation, which a resume must allow explicitly.)
    out = _launch_two_processes(two, total_steps=6, mesh=["--mesh.data", "2", "--mesh.fsdp", "2",
                                                          "--resume.allow_changes", "True"])
    assert "resumed" in out[0] and "mesh data=2 fsdp=2 tensor=1" in out[0]
    assert json.loads((two / "run_info.json").read_text())["processes"] == 2

    one = tmp_path / "one"
    train(validate(parse_train_args("demo", [*TINY, "--workdir", str(one), "--total_steps", "6"])))

    def curves(workdir):
        records = tracking.read_metrics(str(workdir))
        losses = {r["step"]: r["train/loss"] for r in records if "train/loss" in r}
        evals = {r["step"]: r["eval/val/loss"] for r in records if "eval/val/loss" in r}
        return losses, evals

    (losses2, evals2), (losses1, evals1) = curves(two), curves(one)
    assert sorted(losses2) == sorted(losses1) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([losses2[s] for s in range(1, 7)], [losses1[s] for s in range(1, 7)], rtol=1e-5)
    assert sorted(evals2) == sorted(evals1) == [0, 3, 6]
    np.testing.assert_allclose([evals2[s] for s in (0, 3, 6)], [evals1[s] for s in (0, 3, 6)], rtol=1e-5)
    assert losses1[6] != losses1[2]  # the parameters moved
