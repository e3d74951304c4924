"""The training loop: one readable function in labelled sections around one jitted step.

    config -> mesh -> data -> model shapes -> optimizer -> restore-or-init -> loop(step, log,
    eval, checkpoint) -> final eval, checkpoint, plots

The train step is a pure function of (state, batch): all randomness comes from the loop key folded
with the step number, so a resumed run is the same computation as an uninterrupted one.
Reliability hooks (docs/reliability.md) are marked "# reliability:"; their machinery lives in
frx.faults (non-finite steps, bad-record counts), frx.preemption (signals, clock), frx.ckpt
(atomic saves, retention, fallback restore) and frx.preflight (checks before compiling).
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import numpy as np

from frx import ckpt, faults, init_from, mup, preemption, preflight, runs, schedules, sharding, tracking, wandb_mirror
from frx import state as state_lib
from frx.config import ConfigError, TrainConfig, from_dict, to_dict, validate
from frx.data import pipeline
from frx.data.decode import BadImage
from frx.data.ops import make_pipeline
from frx.data.sources import make_sources
from frx.evals.classification import ClassificationEvaluator
from frx.step import jit_train_step


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


def _model_fingerprint(cfg: TrainConfig) -> dict:
    model = to_dict(cfg.model)
    if cfg.mup.param != "sp":  # SP runs keep the fingerprint they had before muP existed
        model["mup"] = to_dict(cfg.mup)
    return {"model": model}


@dataclasses.dataclass
class RunSetup:
    """Everything a run derives from its config before touching parameters."""

    cfg: TrainConfig
    mesh: jax.sharding.Mesh
    sources: dict
    train_pp: object
    eval_pp: object
    durations: Durations
    spec: state_lib.StateSpec
    """Model graph and shapes, optimizer, init function and the state's shardings on the mesh."""

    def evaluators(self) -> list[ClassificationEvaluator]:
        cfg = self.cfg
        return [
            ClassificationEvaluator(
                name, self.sources[name], self.eval_pp, graphdef=self.spec.graphdef, num_classes=cfg.model.num_classes,
                batch_size=cfg.eval.batch_size or cfg.batch_size, image_size=cfg.model.image_size, mesh=self.mesh,
                threads=cfg.data.threads,
            )
            for name in cfg.eval.splits if name in self.sources
        ]


def make_data(cfg: TrainConfig):
    """(sources, train pipeline, eval pipeline) of `cfg`, checked against the model: its class count
    and image size."""
    sources = make_sources(cfg.data, cfg.model.image_size)
    train_source = sources["train"]
    if train_source.num_classes != cfg.model.num_classes:
        raise ConfigError(
            f"the training data has {train_source.num_classes} classes but model.num_classes is "
            f"{cfg.model.num_classes}; set --model.num_classes {train_source.num_classes}"
        )
    train_pp, eval_pp = make_pipeline(cfg.data.pp_train), make_pipeline(cfg.data.pp_eval)
    _check_image_size(train_source, train_pp, cfg.model.image_size, "pp_train")
    for name in cfg.eval.splits:
        if name in sources:
            _check_image_size(sources[name], eval_pp, cfg.model.image_size, "pp_eval")
    return sources, train_pp, eval_pp


def setup(cfg: TrainConfig) -> RunSetup:
    """Validates `cfg` and builds mesh, data sources, pipelines, durations, model shapes and optimizer."""
    validate(cfg)
    mesh = sharding.make_mesh(cfg.mesh)
    sharding.check_batch(cfg, mesh)
    sources, train_pp, eval_pp = make_data(cfg)
    durations = get_durations(cfg, len(sources["train"]))
    spec = state_lib.make_state_spec(cfg, mesh, total_steps=durations.total_steps,
                                     warmup_steps=durations.warmup_steps)
    preflight.check_run(cfg, durations=durations, abstract_params=spec.abstract_params,  # reliability: checks
                        workdir=get_workdir(cfg))  # on lengths, parameter paths and the run folder
    return RunSetup(cfg, mesh, sources, train_pp, eval_pp, durations, spec)


def train(cfg: TrainConfig) -> dict[str, float]:
    """Trains (or resumes) the run described by `cfg`; returns the final evaluation metrics.

    SIGTERM/SIGINT while it runs: a checkpoint at the next step boundary, then a normal return
    (a second signal ends the process at once); see frx.preemption.
    """
    with preemption.StopSignals(cfg.ckpt.save_on_signal) as signals:  # reliability: stop on a signal
        with runs.record_status(get_workdir(cfg), enabled=jax.process_index() == 0):  # status.json for `frx runs`
            return _train(cfg, signals)


def _train(cfg: TrainConfig, signals: preemption.StopSignals) -> dict[str, float]:
    # ---------------------------------------------------------------- config, devices, data, model shapes
    run = setup(cfg)
    mesh, durations, spec, abstract_params = run.mesh, run.durations, run.spec, run.spec.abstract_params
    total = durations.total_steps
    workdir = get_workdir(cfg)
    is_main = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)

    # ---------------------------------------------------------------- restore or init
    checkpointer = ckpt.Checkpointer(workdir, cfg.ckpt, total_steps=total)
    writer = tracking.MetricsWriter(workdir, tensorboard=cfg.log.tensorboard, enabled=is_main,
                                    mirrors=wandb_mirror.make_mirrors(cfg, workdir, enabled=is_main))
    train_source = run.sources["train"]
    rows_index, rows_count = sharding.process_batch_slice(mesh)  # this process's rows of each batch
    train_ds = pipeline.make_train_dataset(
        train_source, run.train_pp, batch_size=cfg.batch_size, seed=cfg.seed,
        process_index=rows_index, process_count=rows_count,
    )
    data_iter = pipeline.make_train_iterator(train_ds, threads=cfg.data.threads, workers=cfg.data.workers)

    start = checkpointer.latest_step()
    if start is not None:
        start, state, data_state = checkpointer.restore_latest(  # reliability: newest readable checkpoint
            spec.abstract_state, meta=_model_fingerprint(cfg),
            say=lambda m: _say(is_main, m),
        )
        data_iter.set_state(data_state)
        writer.truncate_after(start)
        _say(is_main, f"resumed {workdir} at step {start}/{total}")
    else:
        start = 0
        writer.truncate_after(-1)  # reliability: a run killed before its first checkpoint starts afresh
        state = init_from.init_state(cfg, spec, say=lambda m: _say(is_main, m))  # fresh, or weights of --init.from
        if is_main:
            tracking.write_json_atomic(os.path.join(workdir, tracking.CONFIG_FILE), to_dict(cfg))
            tracking.write_json_atomic(os.path.join(workdir, tracking.RUN_INFO_FILE), {
                **tracking.code_version(), "devices": jax.device_count(), "processes": jax.process_count(),
                "platform": jax.devices()[0].platform, "total_steps": total, "warmup_steps": durations.warmup_steps,
                "train_size": len(train_source), "num_params": int(sum(x.size for x in jax.tree.leaves(abstract_params))),
            })

    train_step = jit_train_step(cfg, spec, mesh, run.train_pp.device_fn())
    evaluators = run.evaluators()
    _say(is_main, _describe(cfg, durations, abstract_params, mesh, workdir))

    def evaluate(step: int) -> dict[str, float]:
        results = {}
        for evaluator in evaluators:
            results.update(evaluator.run(state["params"]))
        writer.write(step, results)
        _say(is_main, f"step {step}/{total} " + " ".join(f"{k}={v:.4f}" for k, v in results.items()))
        return results

    # ---------------------------------------------------------------- loop
    results = {}
    if start == total:  # a finished run: report what it ended with
        for record in tracking.read_metrics(workdir):
            results.update({k: v for k, v in record.items() if k.startswith("eval/")})
    if start == 0 and cfg.eval.at_start:
        results = evaluate(0)
    progress = _progress_bar(cfg, start, total, is_main)
    last_time, last_step = time.perf_counter(), start
    # reliability: fault policy checked where the loop syncs anyway; clock-based temporary checkpoints
    guard = faults.Guard(cfg.faults, on_stop=checkpointer.wait, last_checkpoint=checkpointer.latest_step,
                         say=lambda m: _say(is_main, m))
    clock, stopped = preemption.SaveClock(cfg.ckpt.every_minutes), None
    for step in range(start + 1, total + 1):
        batch = sharding.put_batch(next(data_iter), mesh)
        state, metrics = train_step(state, batch)

        # Logged steps do not depend on where a run was resumed, so metrics.jsonl is identical.
        log_due = step == 1 or _is_due(step, cfg.log.every_steps, total)
        eval_due = bool(evaluators) and _is_due(step, cfg.eval.every_steps, total)
        # reliability: a stop signal or the clock adds a (temporary) checkpoint at this step boundary
        stop, timed = preemption.agree(signals.received is not None, clock.due(), at_sync_point=log_due)
        save_due = checkpointer.is_permanent(step) or stop or timed
        if log_due:
            metrics = faults.host_metrics(jax.device_get(metrics))  # reliability: integer counts, zeros dropped
            now = time.perf_counter()
            metrics["perf/img_per_sec"] = (step - last_step) * cfg.batch_size / (now - last_time)
            metrics["train/epoch"] = step / durations.steps_per_epoch
            last_time, last_step = now, step
            writer.write(step, metrics)
            if progress is not None:
                progress.set_postfix(loss=f"{metrics['train/loss']:.4f}", img_s=f"{metrics['perf/img_per_sec']:.0f}")
        if log_due or eval_due or save_due:
            guard.check(step, state)  # before anything is evaluated or saved from a faulty state
        if progress is not None:
            progress.update(1)
        if eval_due:
            results = evaluate(step)
        if save_due:
            checkpointer.save(step, state, data_state=data_iter.get_state(), meta=_model_fingerprint(cfg))
            clock.reset()
        if stop:
            stopped = signals.received or "a signal to another process"
            break

    # ---------------------------------------------------------------- wrap up
    if progress is not None:
        progress.close()
    checkpointer.close()
    writer.close()
    data_iter.close()
    if stopped:
        _say(is_main, f"frx: stopped by {stopped} after step {step}/{total}; checkpoint {step} is in "
                      f"{checkpointer.directory}; run the same command to resume")
        return results
    if is_main and cfg.log.plots:
        from frx import plots

        written = plots.write_run_plots(workdir)
        _say(is_main, "plots: " + ", ".join(os.path.relpath(p) for p in written))
    if results:
        chance = 1.0 / cfg.model.num_classes
        summary = ", ".join(f"{k.split('/')[1]} accuracy {v:.2%}" for k, v in results.items() if k.endswith("/acc"))
        _say(is_main, f"final ({total} steps): {summary} (chance {chance:.2%})")
    return results


def evaluate_run(workdir: str, splits: list[str] | None = None) -> dict[str, float]:
    """Evaluates the latest checkpoint of a run folder (`frx eval WORKDIR`)."""
    import json

    config_path = os.path.join(workdir, tracking.CONFIG_FILE)
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{config_path} not found; is {workdir!r} a run folder written by `frx train`?")
    with open(config_path) as f:
        cfg = from_dict(TrainConfig, json.load(f))
    if splits:
        cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, splits=tuple(splits)))
    run = setup(cfg)
    checkpointer = ckpt.Checkpointer(workdir, dataclasses.replace(cfg.ckpt, async_save=False))
    step = checkpointer.latest_step()
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {checkpointer.directory}")
    state, _ = checkpointer.restore(step, run.spec.abstract_state, meta=_model_fingerprint(cfg))
    checkpointer.close()
    results = {"step": float(step)}
    for evaluator in run.evaluators():
        results.update(evaluator.run(state["params"]))
    return results


def _check_image_size(source, pp, size: int, field: str) -> None:
    host_fn = pp.host_fn()
    for index in range(min(len(source), pipeline.MAX_CONSECUTIVE_BAD)):
        try:  # the first decodable record: bad ones are the stream's business (frx.data.pipeline)
            image = host_fn(source[index]["image"], np.random.default_rng(0))
            break
        except BadImage:
            continue
    else:
        return
    if image.shape != (size, size, 3):
        raise ConfigError(
            f"data.{field} produces {image.shape[0]}x{image.shape[1]}x{image.shape[2]} images but the model "
            f"expects {size}x{size}x3; end the host ops with a crop/resize to {size}"
        )


def _describe(cfg, durations, params, mesh, workdir) -> str:
    n = sum(x.size for x in jax.tree.leaves(params))
    dims = cfg.model.dims()
    if cfg.mup.param == "mup":
        dims_note = f" muP (base width {mup.base_model_config(cfg.model, cfg.mup).dims().width})"
    else:
        dims_note = ""
    return (
        f"frx train {cfg.name}: ViT width {dims.width}{dims_note} depth {dims.depth} heads {dims.num_heads} "
        f"patch {dims.patch_size} ({n:,} params) | {durations.total_steps} steps of batch {cfg.batch_size} "
        f"(warmup {durations.warmup_steps}) | {sharding.describe(cfg.mesh, mesh)} | {workdir}"
    )


def _progress_bar(cfg, start, total, is_main):
    if not (cfg.log.progress and is_main):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, mininterval=1.0)


def _say(is_main: bool, message: str) -> None:
    if is_main:
        from tqdm.auto import tqdm

        tqdm.write(message)
