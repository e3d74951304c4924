"""The training loop: one loop for every objective, around one jitted step.

    config -> mesh -> task -> data -> model shapes -> optimizer -> restore-or-init -> loop(step,
    log, eval, checkpoint) -> final eval, checkpoint, plots

The objective is a task (frx.tasks): this module asks it for its batch schema, evaluators and
summary, never for anything classification-specific. The train step is a pure function of (state,
batch): all randomness comes from the loop key folded with the step number, so a resumed run is the
same computation as an uninterrupted one. Reliability hooks (docs/reliability.md) are marked
"# reliability:"; their machinery lives in frx.faults (non-finite steps, bad-record counts),
frx.preemption (signals, clock), frx.ckpt (atomic saves, retention, fallback restore) and
frx.preflight (checks before compiling).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax

from frx import (
    ckpt,
    faults,
    flops,
    hardware,
    init_from,
    models,
    preemption,
    preflight,
    runs,
    schedules,
    sharding,
    tasks,
    tracking,
    wandb_mirror,
)
from frx import mup as mup_lib
from frx import state as state_lib
from frx.config import ConfigError, TrainConfig, from_dict, model_fingerprint, to_dict, validate
from frx.config import changes as config_changes
from frx.data import fast_image, host_sizing, pipeline
from frx.data.pp import Pipeline
from frx.data.sources import EVAL_SPLITS, make_sources
from frx.run_lock import RunLock
from frx.step import jit_train_step
from frx.tasks.base import EvalContext

CHANGES_FILE = "config_changes.jsonl"


@dataclasses.dataclass(frozen=True)
class Durations:
    total_steps: int
    warmup_steps: int
    steps_per_epoch: float


def get_durations(cfg: TrainConfig, train_size: int) -> Durations:
    """Training and warmup lengths in steps (big_vision rounding)."""
    common = dict(batch_size=cfg.batch_size, data_size=train_size)
    total = schedules.to_steps(steps=cfg.total_steps, epochs=cfg.total_epochs, examples=cfg.total_examples, **common)
    s = cfg.schedule
    warmup = schedules.to_steps(steps=s.warmup_steps, epochs=s.warmup_epochs, examples=s.warmup_examples, **common)
    return Durations(total, warmup, train_size / cfg.batch_size)


def _is_due(step: int, every: int, total: int) -> bool:
    return step == total or (every > 0 and step % every == 0)


def get_workdir(cfg: TrainConfig) -> str:
    return os.path.abspath(cfg.workdir or os.path.join("runs", cfg.name))


@dataclasses.dataclass
class RunSetup:
    """Everything a run derives from its config before touching parameters."""

    cfg: TrainConfig
    mesh: jax.sharding.Mesh
    task: tasks.Task
    sources: dict
    durations: Durations
    spec: state_lib.StateSpec
    """Model graph and shapes, optimizer, init function and the state's shardings on the mesh."""

    def evaluators(self) -> list:
        cfg = self.cfg
        return self.task.evaluators(EvalContext(self.sources, self.spec.graphdef, self.mesh,
                                                batch_size=cfg.eval.batch_size or cfg.batch_size, threads=cfg.data.threads))


def make_data(cfg: TrainConfig, task: tasks.Task) -> dict:
    """The data sources of `cfg` by split, checked against the task: the data fits the model (class
    counts), and the op strings produce the task's records (run on the first record of each split)."""
    image_size = task.record_schema()["image"].shape[0]  # the resolution the embedded set is drawn at
    sources = make_sources(cfg.data, image_size, workdir=get_workdir(cfg))  # taxonomic sets keep their class index there
    unknown = [name for name in cfg.eval.splits if name not in sources and name not in EVAL_SPLITS]
    if unknown:
        raise ConfigError(f"eval.splits names {unknown}, which no data source provides; choose from "
                          f"{', '.join(EVAL_SPLITS)} (this data has {', '.join(s for s in sources if s != 'train')})")
    if not len(sources["train"]):
        raise ConfigError(f"the training split is empty after holding out data.minival_fraction="
                          f"{cfg.data.minival_fraction} of {cfg.data.root or cfg.data.source}; lower it")
    task.check_sources(sources)
    pipeline.check_host_output(sources["train"], task.train_pp, task.record_schema(), "pp_train")
    for name in cfg.eval.splits:
        if name in sources:
            pipeline.check_host_output(sources[name], task.eval_pp, task.record_schema(sources[name]), "pp_eval")
    return sources


def setup(cfg: TrainConfig) -> RunSetup:
    """Validates `cfg` and builds mesh, task, data sources, durations, model shapes and optimizer."""
    validate(cfg)
    mup_lib.check(cfg.model, cfg.mup)
    mesh = sharding.make_mesh(cfg.mesh)
    sharding.check_batch(cfg, mesh)
    task = tasks.make(cfg)
    sources = make_data(cfg, task)
    durations = get_durations(cfg, len(sources["train"]))
    spec = state_lib.make_state_spec(cfg, mesh, total_steps=durations.total_steps,
                                     warmup_steps=durations.warmup_steps)
    preflight.check_run(cfg, durations=durations, abstract_params=spec.abstract_params,  # reliability: checks
                        workdir=get_workdir(cfg))  # on lengths, parameter paths and the run folder
    return RunSetup(cfg, mesh, task, sources, durations, spec)


def train(cfg: TrainConfig) -> dict[str, float]:
    """Trains (or resumes) the run described by `cfg`; returns the final evaluation metrics.

    SIGTERM/SIGINT while it runs: a checkpoint at the next step boundary, then a normal return
    (a second signal ends the process at once); see frx.preemption.
    """
    with preemption.StopSignals(cfg.ckpt.save_on_signal) as signals:  # reliability: stop on a signal
        run = setup(cfg)
        workdir = get_workdir(cfg)
        os.makedirs(workdir, exist_ok=True)
        is_main = jax.process_index() == 0
        # reliability: one process per run folder (before anything in it is cleaned up or written)
        with RunLock(workdir, say=lambda m: _say(is_main, m), enabled=is_main):
            with runs.record_status(workdir, enabled=is_main):  # status.json for `frx runs`
                return _Run(run, signals).train()


class _Run:
    """One run's loop, in the order it happens: open (restore or init), steps, wrap up."""

    def __init__(self, run: RunSetup, signals: preemption.StopSignals):
        cfg = run.cfg
        self.run, self.cfg, self.signals = run, cfg, signals
        self.total = run.durations.total_steps
        self.workdir = get_workdir(cfg)
        self.is_main = jax.process_index() == 0
        self.checkpointer = ckpt.Checkpointer(self.workdir, cfg.ckpt, total_steps=self.total)
        self.writer = tracking.MetricsWriter(self.workdir, tensorboard=cfg.log.tensorboard, enabled=self.is_main,
                                             mirrors=wandb_mirror.make_mirrors(cfg, self.workdir, enabled=self.is_main))
        rows_index, rows_count = sharding.process_batch_slice(run.mesh)  # this process's rows of each batch
        train_ds = pipeline.make_train_dataset(
            run.sources["train"], run.task.train_pp, run.task.record_schema(), batch_size=cfg.batch_size,
            seed=cfg.seed, process_index=rows_index, process_count=rows_count,
        )
        workers, sizing = host_sizing.resolve(cfg.data.workers, run.sources["train"], run.task.train_pp.host_fn(),
                                              threads=cfg.data.threads, backend=jax.default_backend())
        if sizing:
            self.say(sizing)
        for note in host_path_notes(run.task.train_pp):
            self.say(note)
        self.data_workers = workers
        self.data_iter = pipeline.make_train_iterator(train_ds, threads=cfg.data.threads, workers=workers)

    def say(self, message: str) -> None:
        _say(self.is_main, message)

    def train(self) -> dict[str, float]:
        start, state = self._restore_or_init()
        train_step = jit_train_step(self.cfg, self.run.task, self.run.spec, self.run.mesh)
        self.evaluators = self.run.evaluators()
        self.say(_describe(self.run, self.workdir))
        results = {}
        if start == self.total:  # a finished run: report what it ended with
            for record in tracking.read_metrics(self.workdir):
                results.update({k: v for k, v in record.items() if k.startswith("eval/")})
        if start == 0 and self.cfg.eval.at_start and self.evaluators:
            results = self._evaluate(0, state)
        stopped, step, results = self._loop(start, state, train_step, results)
        return self._wrap_up(stopped, step, results)

    def _restore_or_init(self):
        """(first step, state): the newest readable checkpoint, or a fresh state and run files."""
        start = self.checkpointer.latest_step()
        if start is not None:
            self._check_config_changes()  # reliability: a resumed run trains what its config.json says
            start, state, data_state = self.checkpointer.restore_latest(  # reliability: newest readable checkpoint
                self.run.spec.abstract_state, meta=model_fingerprint(self.cfg), say=self.say)
            self.data_iter.set_state(data_state)
            malformed = self.writer.truncate_after(start)
            if malformed:  # reliability: damaged lines of metrics.jsonl are dropped, not fatal
                self.say(f"metrics.jsonl: dropped {malformed} malformed line(s)")
            self.say(f"resumed {self.workdir} at step {start}/{self.total}")
            return start, state
        self.writer.truncate_after(-1)  # reliability: a run killed before its first checkpoint starts afresh
        state = init_from.init_state(self.cfg, self.run.spec, say=self.say)  # fresh, or the weights of --init.from
        if self.is_main:
            self._write_run_files()
        return 0, state

    def _check_config_changes(self) -> None:
        """Refuses to resume with settings that change the computation, unless resume.allow_changes;
        then config.json takes the new settings and config_changes.jsonl records what changed."""
        path = os.path.join(self.workdir, tracking.CONFIG_FILE)
        if not os.path.exists(path):
            return
        try:
            with open(path) as f:
                old = to_dict(from_dict(TrainConfig, json.load(f)))
        except (ValueError, TypeError, AttributeError) as e:
            raise ConfigError(f"{path} cannot be read ({type(e).__name__}: {e}); restore it or pass another --workdir") from None
        changes = config_changes.computation_changes(old, to_dict(self.cfg))
        if not changes:
            return
        if not self.cfg.resume.allow_changes:
            raise ConfigError(f"resuming {self.workdir} with settings that change the computation: "
                              f"{config_changes.describe(changes)}; use the run's settings, another --workdir, or "
                              "--resume.allow_changes True to continue with the new ones")
        if self.is_main:
            tracking.append_jsonl(os.path.join(self.workdir, CHANGES_FILE),
                                  {"time": time.time(), "resumed_at_step": self.checkpointer.latest_step(),
                                   "changes": {k: list(v) for k, v in changes.items()}})
            tracking.write_json_atomic(path, to_dict(self.cfg))
        self.say(f"resuming with changed settings (recorded in {CHANGES_FILE}): {config_changes.describe(changes)}")

    def _write_run_files(self) -> None:
        run, params = self.run, self.run.spec.abstract_params
        tracking.write_json_atomic(os.path.join(self.workdir, tracking.CONFIG_FILE), to_dict(self.cfg))
        tracking.write_json_atomic(os.path.join(self.workdir, tracking.RUN_INFO_FILE), {
            **tracking.code_version(), "devices": jax.device_count(), "processes": jax.process_count(),
            "platform": jax.devices()[0].platform, "total_steps": self.total,
            "warmup_steps": run.durations.warmup_steps, "train_size": len(run.sources["train"]),
            "num_params": int(sum(x.size for x in jax.tree.leaves(params))),
            "compute_dtype": hardware.resolve_dtype(_dtype_setting(self.cfg)), "dtype_setting": _dtype_setting(self.cfg),
            "cpu": hardware.cpu_info(),  # model and the flags that decide auto (avx512_bf16, amx_bf16)
            "data_workers": self.data_workers,  # after data.workers auto
            "host_paths": fast_image.backends(),  # which compiled decoders and resizers the host ops used
        })

    def _evaluate(self, step: int, state) -> dict[str, float]:
        results = {}
        for evaluator in self.evaluators:
            results.update(evaluator.run(state["params"]))
        self.writer.write(step, results)
        self.say(f"step {step}/{self.total} " + " ".join(f"{k}={v:.4f}" for k, v in results.items()))
        return results

    def _loop(self, start: int, state, train_step, results):
        cfg, total = self.cfg, self.total
        progress = _progress_bar(cfg, start, total, self.is_main)
        last_time, last_step, step, stopped = time.perf_counter(), start, start, None
        # reliability: fault policy checked where the loop syncs anyway; clock-based temporary checkpoints
        guard = faults.Guard(cfg.faults, on_stop=self.checkpointer.wait,
                             last_checkpoint=self.checkpointer.latest_step, say=self.say)
        clock = preemption.SaveClock(cfg.ckpt.every_minutes)
        for step in range(start + 1, total + 1):
            batch = sharding.put_batch(next(self.data_iter), self.run.mesh)
            state, metrics = train_step(state, batch)

            # Logged steps do not depend on where a run was resumed, so metrics.jsonl is identical.
            log_due = step == 1 or _is_due(step, cfg.log.every_steps, total)
            eval_due = bool(self.evaluators) and _is_due(step, cfg.eval.every_steps, total)
            # reliability: a stop signal or the clock adds a (temporary) checkpoint at this step boundary
            stop, timed = preemption.agree(self.signals.received is not None, clock.due(), at_sync_point=log_due)
            save_due = self.checkpointer.is_permanent(step) or stop or timed
            if log_due:
                metrics = faults.host_metrics(jax.device_get(metrics))  # reliability: integer counts, zeros dropped
                now = time.perf_counter()
                metrics["perf/img_per_sec"] = (step - last_step) * cfg.batch_size / (now - last_time)
                mfu = _mfu(cfg, step - last_step, now - last_time)
                if mfu is not None:
                    metrics["perf/mfu"] = mfu
                metrics["train/epoch"] = step / self.run.durations.steps_per_epoch
                last_time, last_step = now, step
                self.writer.write(step, metrics)
                if progress is not None:
                    progress.set_postfix(loss=f"{metrics['train/loss']:.4f}", img_s=f"{metrics['perf/img_per_sec']:.0f}",
                                         mfu=f"{mfu:.1%}" if mfu is not None else "n/a")
            if log_due or eval_due or save_due:
                guard.check(step, state)  # before anything is evaluated or saved from a faulty state
            if progress is not None:
                progress.update(1)
            if eval_due:
                results = self._evaluate(step, state)
            if save_due:
                self.checkpointer.save(step, state, data_state=self.data_iter.get_state(),
                                       meta=model_fingerprint(cfg))
                clock.reset()
            if stop:
                stopped = self.signals.received or "a signal to another process"
                break
        if progress is not None:
            progress.close()
        return stopped, step, results

    def _wrap_up(self, stopped, step: int, results: dict[str, float]) -> dict[str, float]:
        self.checkpointer.close()
        self.writer.close()
        self.data_iter.close()
        if stopped:
            self.say(f"frx: stopped by {stopped} after step {step}/{self.total}; checkpoint {step} is in "
                     f"{self.checkpointer.directory}; run the same command to resume")
            return results
        if self.is_main and self.cfg.log.plots:
            from frx import plots

            written = plots.write_run_plots(self.workdir)
            self.say("plots: " + ", ".join(os.path.relpath(p) for p in written))
        if results:
            self.say(f"final ({self.total} steps): {self.run.task.summary(results)}")
        return results


def evaluate_run(workdir: str, splits: list[str] | None = None) -> dict[str, float]:
    """Evaluates the latest checkpoint of a run folder (`frx eval WORKDIR`)."""
    config_path = os.path.join(workdir, tracking.CONFIG_FILE)
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{config_path} not found; is {workdir!r} a run folder written by `frx train`?")
    with open(config_path) as f:
        cfg = from_dict(TrainConfig, json.load(f))
    if splits:
        cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, splits=tuple(splits)))
    run = setup(cfg)
    checkpointer = ckpt.Checkpointer(workdir, cfg.ckpt, read_only=True)  # the run may be training right now
    step = checkpointer.latest_step()
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {checkpointer.directory}")
    state, _ = checkpointer.restore(step, run.spec.abstract_state, meta=model_fingerprint(cfg))
    checkpointer.close()
    results = {"step": float(step)}
    for evaluator in run.evaluators():
        results.update(evaluator.run(state["params"]))
    return results


def host_path_notes(train_pp: Pipeline) -> list[str]:
    """What the run should know about the compiled host paths its ops will miss on this install."""
    if any(op.name == "decode_jpeg_and_inception_crop" for op in train_pp.host) and not fast_image.has_crop_decode():
        return ["decode_jpeg_and_inception_crop: frx.data._jpeg_crop was not compiled at install time, so windows are "
                "cropped from a full decode (TF's pixels except each window's edge columns; docs/data.md#decoding)"]
    return []


def _describe(run: RunSetup, workdir: str) -> str:
    cfg, params = run.cfg, run.spec.abstract_params
    n = sum(x.size for x in jax.tree.leaves(params))
    mup_note = ""
    if cfg.mup.param == "mup":
        mup_note = f" muP (base width {mup_lib.base_model_config(cfg.model, cfg.mup).dims().width})"
    d = run.durations
    return (
        f"frx train {cfg.name}: {run.task.describe()}, {models.describe(cfg.model)}{mup_note} ({n:,} params) | "
        f"{d.total_steps} steps of batch {cfg.batch_size} (warmup {d.warmup_steps}) | "
        f"compute {hardware.describe_dtype(_dtype_setting(cfg))} | {sharding.describe(cfg.mesh, run.mesh)} | "
        f"{hardware.describe_machine(jax.devices()[0])} | {workdir}"
    )


def _mfu(cfg: TrainConfig, steps: int, seconds: float) -> float | None:
    """Model FLOPs utilisation over `steps` steps: frx.flops' count against frx.hardware's peak (a
    datasheet for GPUs and TPUs, a measured matmul on CPUs, taken once per process); None for a model
    without a FLOP count."""
    step_flops = flops.train_step_flops(cfg)
    if step_flops is None:
        return None
    dtype = hardware.resolve_dtype(_dtype_setting(cfg))
    return step_flops * steps / seconds / hardware.peak_flops(dtype)[0]


def _dtype_setting(cfg: TrainConfig) -> str:
    """The model's dtype setting (the image tower's for two towers), "auto" unresolved."""
    return getattr(cfg.model, "dtype", None) or cfg.model.image.dtype


def _progress_bar(cfg, start, total, is_main):
    if not (cfg.log.progress and is_main):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, mininterval=1.0)


def _say(is_main: bool, message: str) -> None:
    if is_main:
        from tqdm.auto import tqdm

        tqdm.write(message)
