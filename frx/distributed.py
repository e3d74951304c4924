"""Joining a multi-process run: `jax.distributed.initialize()` before JAX touches any device.

Every process runs the same `frx train` command. In "auto" mode a process joins a cluster when a
coordinator address is given or its launcher is recognised from the environment (the variables JAX's
own cluster detection reads, ../shared/spec/performance_anchors.md section 6):

    SLURM        srun with several tasks (SLURM_STEP_NODELIST, SLURM_STEP_NUM_TASKS or SLURM_NTASKS > 1)
    Open MPI     mpirun with several ranks (OMPI_COMM_WORLD_SIZE > 1)
    TPU VM       libtpu installed and TPU chips present, or a multi-host TPU_WORKER_HOSTNAMES list
    Kubernetes   an indexed Job (JOB_COMPLETION_INDEX), with the `kubernetes` package installed

Which accelerators a process drives: JAX gives each SLURM / Open MPI process only GPU number
LOCAL_RANK, which is right for one process per GPU with all GPUs visible. With one process per host,
or when the launcher already hid the other GPUs (one visible), frx passes all visible GPUs instead.
Under Open MPI 5 JAX detects no cluster (frx fills in the ranks), so frx picks GPU LOCAL_RANK itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from importlib.util import find_spec

from frx import process_env
from frx.config import ConfigError, DistConfig


def detect_launcher(env: Mapping[str, str]) -> str | None:
    """"slurm", "ompi", "tpu" or "kubernetes" when this process is one of several started by that
    launcher (or runs on a TPU VM), else None."""
    slurm_tasks = env.get("SLURM_STEP_NUM_TASKS", env.get("SLURM_NTASKS", "1"))
    if "SLURM_STEP_NODELIST" in env and "SLURM_PROCID" in env and _int(slurm_tasks) > 1:
        return "slurm"
    if _int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
        return "ompi"
    hosts = env.get("TPU_PROCESS_ADDRESSES") or env.get("TPU_WORKER_HOSTNAMES") or ""
    if len([h for h in hosts.split(",") if h]) > 1 or _on_tpu_vm():
        return "tpu"
    if "KUBERNETES_SERVICE_HOST" in env and "JOB_COMPLETION_INDEX" in env:
        return "kubernetes"
    return None


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 1


def _on_tpu_vm() -> bool:
    return find_spec("libtpu") is not None and bool(process_env.tpu_chip_files())


def visible_gpus(env: Mapping[str, str]) -> int:
    """Number of NVIDIA GPUs this process may use, without initialising JAX."""
    if "CUDA_VISIBLE_DEVICES" in env:
        return len([d for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip() not in ("", "-1")])
    return len(process_env.nvidia_gpu_files())


def one_process_per_host(launcher: str | None, env: Mapping[str, str]) -> bool:
    if launcher == "slurm":
        per_node = env.get("SLURM_STEP_TASKS_PER_NODE", env.get("SLURM_TASKS_PER_NODE", ""))
        counts = [int(m) for m in re.findall(r"(\d+)(?:\(x\d+\))?", per_node)]
        return bool(counts) and all(c == 1 for c in counts)
    if launcher == "ompi":
        return env.get("OMPI_COMM_WORLD_LOCAL_SIZE") == "1"
    return False


def get_initialize_kwargs(cfg: DistConfig, env: Mapping[str, str]) -> dict | None:
    """Arguments for jax.distributed.initialize, or None when this run is a single process."""
    if cfg.mode == "off":
        return None
    launcher = detect_launcher(env)
    if cfg.mode == "auto" and cfg.coordinator_address is None and launcher is None:
        return None
    kwargs = {
        "coordinator_address": cfg.coordinator_address,
        "num_processes": cfg.num_processes,
        "process_id": cfg.process_id,
        "local_device_ids": list(cfg.local_device_ids) if cfg.local_device_ids is not None else None,
        "initialization_timeout": cfg.initialization_timeout,
    }
    # Open MPI 5 (PMIx) no longer exports the ORTE URI that JAX reads; the ranks are still known.
    ompi_without_jax = launcher == "ompi" and "OMPI_MCA_orte_hnp_uri" not in env
    if ompi_without_jax:
        kwargs["num_processes"] = kwargs["num_processes"] or int(env["OMPI_COMM_WORLD_SIZE"])
        if kwargs["process_id"] is None:
            kwargs["process_id"] = int(env["OMPI_COMM_WORLD_RANK"])
        if cfg.coordinator_address is None:
            raise ConfigError("this Open MPI does not export OMPI_MCA_orte_hnp_uri; pass --dist.coordinator_address "
                              "HOST:PORT of rank 0")
    if launcher == "kubernetes" and cfg.coordinator_address is None and find_spec("kubernetes") is None:
        raise ConfigError("a Kubernetes indexed Job was detected but the `kubernetes` package is missing; "
                          "pip install 'jax[k8s]' or pass --dist.coordinator_address/num_processes/process_id")
    # Without a coordinator ("--dist.mode on" alone) jax.distributed.initialize detects the rest itself.
    explicit = launcher is None and cfg.coordinator_address is not None
    if explicit and (cfg.num_processes is None or cfg.process_id is None):
        raise ConfigError("no cluster launcher detected: with --dist.coordinator_address also pass "
                          "--dist.num_processes and --dist.process_id")
    if kwargs["local_device_ids"] is None and launcher in ("slurm", "ompi"):
        gpus = visible_gpus(env)
        if gpus and (gpus == 1 or one_process_per_host(launcher, env)):
            kwargs["local_device_ids"] = list(range(gpus))
        elif gpus > 1 and ompi_without_jax and "OMPI_COMM_WORLD_LOCAL_RANK" in env:
            # One process per GPU: what JAX's OmpiCluster would pick, had it recognised the run.
            kwargs["local_device_ids"] = [int(env["OMPI_COMM_WORLD_LOCAL_RANK"])]
    return kwargs


def setup_distributed(cfg: DistConfig, env: Mapping[str, str] | None = None,
                      initialize: Callable[..., None] | None = None) -> bool:
    """Initialises jax.distributed when `cfg` / the environment call for it; True when it did.

    Must run before anything touches a JAX device (`jax.devices()`, creating an array).
    """
    kwargs = get_initialize_kwargs(cfg, os.environ if env is None else env)
    if kwargs is None:
        return False
    if initialize is None:
        import jax

        initialize = jax.distributed.initialize
    initialize(**kwargs)
    return True
