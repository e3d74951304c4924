"""The muP coordinate check (microsoft/mup `coord_check.py`; ../shared/spec/mup.md section 6).

For each width and seed: build a fresh model and optimizer, then take `steps` optimizer steps on one
fixed batch at a deliberately large learning rate, recording mean |x| ("l1") of every module output
on the forward pass *before* each update (t = 1 is the initial model). Averaged over seeds, each
module's l1 against width on log-log axes should be flat under muP at every t; under SP it grows
with width after the first update. A module passes when its log2-log2 slope satisfies
|slope| < tolerance (0.13 = log(1.2)/log(4): at most x1.2 per x4 width, mup's unit test) at every t.
Two exceptions, both what muP predicts: an output that is exactly 0 at every width (a zero-initialised
head at t = 1) passes, and attention and output logits (and a two-tower's projections, which are
readouts too) may *shrink* with width, no faster than
width^-1/2: their part that comes from the random init vanishes like that under 1/d attention and the
1/m readout (unless queries / head are zero-initialised), while the part the updates add stays
Theta(1), so the sum flattens as training goes on (mup README, "Coord Check").

Note that with a zero-initialised head the first update moves only the head (the trunk's gradient is
0), so the trunk's first change shows at t = 3.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from frx import models, mup, optim, param_paths, schedules, tasks
from frx import state as state_lib
from frx.config import ConfigError, ScheduleConfig, TrainConfig, validate
from frx.models import layers

RESULT_FILE = "coord_check.json"
TABLE_FILE = "coord_check.txt"
PLOT_FILE = "coord_check.png"
DEFAULT_TOLERANCE = math.log(1.2) / math.log(4)  # 0.1315


@dataclasses.dataclass(frozen=True)
class CoordCheck:
    """What to run: the preset's config varied over widths under one parametrization."""

    cfg: TrainConfig
    widths: tuple[int, ...]
    param: str = "mup"
    steps: int = 3
    seeds: int = 3
    lr: float | None = None
    """Learning rate; default 10x the config's (large on purpose, so that blow-ups show)."""
    batch_size: int = 32
    base_width: int | None = None
    """muP base width; default the config's mup.base_width, else the smallest width."""
    scale_heads: bool = False
    """Keep the head dimension and scale the number of heads (default: fixed heads, growing head_dim)."""
    grad_clip_norm: float = 0.0
    """Global-norm clipping couples all parameters, so it is off unless asked for."""


def width_config(cfg: TrainConfig, width: int, *, scale_heads: bool = False) -> TrainConfig:
    """`cfg` at another width: MLP ratio kept; heads kept (head_dim scales) or scaled (head_dim kept).
    `width` is the model's `dims()` width (a two-tower's image tower; its text tower follows)."""
    dims = cfg.model.dims()
    mlp_dim, rest = divmod(dims.mlp_dim * width, dims.width)
    heads, rest_h = divmod(dims.num_heads * width, dims.width) if scale_heads else (dims.num_heads, 0)
    if rest or rest_h:
        raise ConfigError(
            f"width {width} does not keep the MLP ratio (or, with --scale_heads, the head dimension) of "
            f"width {dims.width}; use widths for which mlp_dim and heads scale to integers"
        )
    return dataclasses.replace(cfg, model=unrolled(cfg.model.with_dims(width=width, mlp_dim=mlp_dim, num_heads=heads)))


def unrolled(model):
    """`model` with its blocks run as a Python loop: nnx.capture reports each block's outputs only
    there, and --model.scan / --model.remat give the same values (tests/models/test_run_blocks.py)."""
    off = {name: value for name, value in (("scan", False), ("remat", False), ("remat_policy", "full"))
           if hasattr(model, name)}
    towers = {name: unrolled(getattr(model, name)) for name in ("image", "text") if hasattr(model, name)}
    return dataclasses.replace(model, **off, **towers)


def fixed_batch(cfg: TrainConfig, task: tasks.Task, batch_size: int) -> dict:
    """The first training batch of the config's data, prepared by the task on the device (host ops,
    device ops, mixup) exactly as the train step prepares it."""
    from frx import train
    from frx.data import pipeline

    sources = train.make_data(cfg, task)  # checked like a training run's: class count, image size
    batch = pipeline.make_train_dataset(sources["train"], task.train_pp, task.record_schema(),
                                        batch_size=batch_size, seed=cfg.seed)[0]
    return task.prepare(jax.tree.map(jnp.asarray, batch), jax.random.PRNGKey(cfg.seed))


def _output_key(keys) -> tuple[str, int] | None:
    """("MODULE_PATH.METHOD" or "MODULE_PATH.METHOD/OUTPUT", call index) of a captured output, e.g.
    ("image/blocks/0/attn.__call__", 0) or ("image.features/pre_logits", 0); None for other captures.
    nnx.capture keys are the module path, the method name, the call index, then a dict output's key."""
    names = [str(k) for k in keys]
    calls = [i for i, k in enumerate(keys) if isinstance(k, int) and i > 0]  # the last int: the call index
    if not calls:
        return None
    at = calls[-1]
    module, method, rest = "/".join(names[: at - 1]), names[at - 1], names[at + 1 :]
    return f"{module}.{method}" + ("/" + "/".join(rest) if rest else ""), keys[at]


def _reported_outputs(intermediates: dict, rules) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """(reported outputs by name, every module's __call__ output by module path). `rules` are the
    model's REPORTED_OUTPUTS (frx.models.reported_outputs); a call index above 0 is a parent class's
    method running inside the captured one, and is skipped."""
    calls, reported = {}, {}
    for keys, value in jax.tree_util.tree_flatten_with_path(intermediates)[0]:
        found = _output_key([getattr(k, "key", getattr(k, "idx", k)) for k in keys])
        if found is None or found[1] != 0:
            continue
        key = found[0]
        module = key.split(".", 1)[0]
        if key.endswith(".__call__"):
            calls[module] = value
        for pattern, name in rules:
            if re.fullmatch(pattern, key):
                reported[name.format(module=module)] = value
                break
    return reported, calls


def _l1_of_outputs(intermediates: dict, attention_scales: dict[str, float], rules) -> dict[str, jax.Array]:
    """mean |x| of each reported output, plus the attention logits scale * q.k of each attention."""
    reported, calls = _reported_outputs(intermediates, rules)
    stats = {name: jnp.mean(jnp.abs(value.astype(jnp.float32))) for name, value in reported.items()}
    for attn, scale in attention_scales.items():
        q, k = calls[f"{attn}/q"].astype(jnp.float32), calls[f"{attn}/k"].astype(jnp.float32)
        stats[f"{attn}/logits"] = jnp.mean(jnp.abs(scale * jnp.einsum("bqhd,bkhd->bhqk", q, k)))
    return stats


_BLOCK_PARTS = ("attn/logits", "attn", "mlp", "residual")


def _order(name: str) -> tuple:
    """Forward order within each tower (a path prefix such as image/): embedding, each block (attention
    logits, attn, mlp, residual), the rest, pre_logits, then the readout (logits, projection)."""
    match = re.fullmatch(r"((?:.*/)?)blocks/(\d+)/(.*)", name)
    if match:
        prefix, part = match.group(1), match.group(3)
        rank = _BLOCK_PARTS.index(part) if part in _BLOCK_PARTS else len(_BLOCK_PARTS)
        return (prefix, 1, int(match.group(2)), rank, part)
    prefix, _, last = name.rpartition("/")
    prefix = prefix + "/" if prefix else ""
    stage = {"embedding": 0, "pre_logits": 3, "pooled": 3, "logits": 4, "projection": 4}.get(last, 2)
    return (prefix, stage, 0, 0, last)


def _make_step(task: tasks.Task, graphdef, tx, scales, rules, bounds):
    def loss_and_stats(params, batch):
        capture = nnx.capture(lambda model, b: task.loss(model, b, jax.random.PRNGKey(0))[0], nnx.Intermediate,
                              method_outputs=nnx.Intermediate)
        loss, intermediates = capture(nnx.merge(graphdef, params), batch)
        return loss, _l1_of_outputs(nnx.to_pure_dict(intermediates), scales, rules)

    def step(params, opt_state, batch):
        (_, stats), grads = jax.value_and_grad(loss_and_stats, has_aux=True)(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.clamp_to_bounds(optax.apply_updates(params, updates), bounds), opt_state, stats

    return jax.jit(step)


def _mup_config(cfg: TrainConfig, check: CoordCheck, base_width: int):
    """The parametrization of one width: the check's param, relative to the base width."""
    # with --scale_heads the base keeps the head dimension (width_config refuses widths where it can't)
    base_heads = width_config(cfg, base_width, scale_heads=True).model.dims().num_heads if check.scale_heads else None
    return dataclasses.replace(cfg.mup, param=check.param, base_width=base_width, base_mlp_dim=None,
                               base_num_heads=base_heads)


def run(check: CoordCheck, *, log=print) -> dict:
    """Runs the check; returns {"param", "widths", "modules": {name: {width: [l1 at t=1..T]}}}."""
    if check.steps < 1 or check.seeds < 1 or len(check.widths) < 2:
        raise ConfigError("coord-check needs --steps >= 1, --seeds >= 1 and at least two --widths")
    widths = tuple(sorted(check.widths))
    base_width = check.base_width or check.cfg.mup.base_width or widths[0]
    lr = check.lr if check.lr is not None else 10 * check.cfg.optim.lr
    optim_cfg = dataclasses.replace(check.cfg.optim, lr=lr, grad_clip_norm=check.grad_clip_norm)
    schedule = schedules.make(ScheduleConfig(decay="constant"), check.steps, 0)
    task = tasks.make(check.cfg)
    batch = fixed_batch(check.cfg, task, check.batch_size)
    log(f"coord check: {check.param}, widths {list(widths)}, {check.steps} steps x {check.seeds} seeds, "
        f"{optim_cfg.name} lr {lr:g}, batch {check.batch_size}" + (f", base width {base_width}" if check.param == "mup" else ""))

    sums: dict[str, dict[int, np.ndarray]] = {}
    if check.param != "sp":
        widest = width_config(check.cfg, widths[-1], scale_heads=check.scale_heads)
        log(mup.describe(widest.model, _mup_config(widest, check, base_width), optim_cfg.name))
    for width in widths:
        cfg = width_config(check.cfg, width, scale_heads=check.scale_heads)
        cfg = validate(dataclasses.replace(cfg, optim=optim_cfg, mup=_mup_config(cfg, check, base_width)))
        model = nnx.eval_shape(lambda: mup.make_model(cfg.model, cfg.mup, 0))
        scales = {param_paths.path_str(p): n.scale for p, n in nnx.iter_graph(model) if isinstance(n, layers.Attention)}
        graphdef, abstract = nnx.split(model)
        abstract = nnx.to_pure_dict(abstract)
        tx = state_lib.make_optimizer(cfg, schedule, abstract)
        step = _make_step(task, graphdef, tx, scales, models.reported_outputs(cfg.model),
                          models.param_bounds(cfg.model))
        init = jax.jit(lambda key, c=cfg: state_lib.init_params(c.model, key, c.mup))
        for seed in range(check.seeds):
            params = init(jax.random.key(seed))
            opt_state = tx.init(params)
            for t in range(check.steps):
                params, opt_state, stats = step(params, opt_state, batch)
                for name, value in jax.device_get(stats).items():
                    sums.setdefault(name, {}).setdefault(width, np.zeros(check.steps))[t] += float(value)
        log(f"  width {width}: done")
    modules = {
        name: {str(w): [v / check.seeds for v in sums[name][w].tolist()] for w in widths}
        for name in sorted(sums, key=_order)
    }
    return {"param": check.param, "widths": list(widths), "modules": modules}


# --------------------------------------------------------------------------------------------------
# Judging


def slope(widths, values) -> float:
    """Least-squares slope of log2(l1) against log2(width); 0 when l1 is 0 at every width, nan when
    only some widths are 0."""
    values = np.asarray(values, np.float64)
    if not values.any():
        return 0.0
    if (values <= 0).any() or not np.isfinite(values).all():
        return float("nan")
    return float(np.polyfit(np.log2(np.asarray(widths, np.float64)), np.log2(values), 1)[0])


def verdicts(result: dict, tolerance: float = DEFAULT_TOLERANCE) -> dict[str, dict]:
    """name -> {"slopes": [per t], "pass": bool}."""
    widths = result["widths"]
    out = {}
    for name, per_width in result["modules"].items():
        steps = len(next(iter(per_width.values())))
        slopes, ok = [], True
        for t in range(steps):
            s = slope(widths, [per_width[str(w)][t] for w in widths])
            # Logits (attention, output, a two-tower's projections) may shrink, but no faster than their
            # random-init part does.
            shrinking_init_part = name.endswith(("logits", "projection")) and -0.5 - tolerance < s < 0
            ok &= bool(abs(s) < tolerance or shrinking_init_part)
            slopes.append(s)
        out[name] = {"slopes": slopes, "pass": ok}
    return out


def format_table(result: dict, tolerance: float = DEFAULT_TOLERANCE) -> str:
    judged = verdicts(result, tolerance)
    steps = len(next(iter(judged.values()))["slopes"])
    width = max(len(n) for n in judged) + 2
    head = f"{'module':<{width}}" + "".join(f"{f'slope t={t + 1}':>12}" for t in range(steps)) + "  verdict"
    rows = [head, "-" * len(head)]
    for name, v in judged.items():
        rows.append(f"{name:<{width}}" + "".join(f"{s:>12.3f}" for s in v["slopes"]) + f"  {'PASS' if v['pass'] else 'FAIL'}")
    passed = all(v["pass"] for v in judged.values())
    rows.append(
        f"{result['param']}: {'PASS' if passed else 'FAIL'} ({sum(v['pass'] for v in judged.values())}/{len(judged)} "
        f"modules with |slope| < {tolerance:.3f} at every step, widths {result['widths'][0]}-{result['widths'][-1]})"
    )
    return "\n".join(rows)


def passed(result: dict, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    return all(v["pass"] for v in verdicts(result, tolerance).values())


def write(result: dict, workdir: str, tolerance: float = DEFAULT_TOLERANCE) -> list[str]:
    """Writes coord_check.json, coord_check.txt (the table) and coord_check.png into `workdir`."""
    from frx import plots

    os.makedirs(workdir, exist_ok=True)
    json_path = os.path.join(workdir, RESULT_FILE)
    with open(json_path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    table_path = os.path.join(workdir, TABLE_FILE)
    with open(table_path, "w") as f:
        f.write(format_table(result, tolerance) + "\n")
    return [json_path, table_path, plots.write_coord_check_plot(result, os.path.join(workdir, PLOT_FILE))]
