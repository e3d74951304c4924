"""`--init.from PATH`: a new run starts from the weights of a big_vision .npz, a frx safetensors export
or another frx run folder (its newest checkpoint). Only the parameters come from there: optimizer
state, step, RNG, fault counters and data position are those of a fresh run, and `--init.reset`
regexes keep chosen parameters (e.g. a head for another class count) at their fresh init.

Parameters are copied as stored. A frx source must have the run's parametrization (`mup.*`): muP's
forward multipliers live in the model, not in the weights, so the same arrays under other multipliers
would compute another function. big_vision checkpoints are standard parametrization.
"""

from __future__ import annotations

import os
import re

import jax
import numpy as np

from frx import convert, param_paths, weights
from frx import state as state_lib
from frx.config import ConfigError, TrainConfig, to_dict


def source_kind(path: str) -> str:
    """big_vision (an .npz), safetensors (frx's export) or run (a run folder)."""
    if os.path.isdir(path):
        return "run"
    if path.endswith(".npz"):
        return "big_vision"
    if path.endswith(".safetensors"):
        return "safetensors"
    if not os.path.exists(path):
        raise ConfigError(f"init.from {path!r} does not exist; give a big_vision .npz, a frx .safetensors or a run folder")
    raise ConfigError(f"init.from {path!r} is neither a run folder, a .npz nor a .safetensors file")


def load_params(cfg: TrainConfig, wanted: dict[str, tuple[int, ...]], notes: list | None = None) -> dict[str, np.ndarray]:
    """{path: float32 array} of `cfg.init.from_` for every parameter in `wanted` not matched by `cfg.init.reset`."""
    source, reset = cfg.init.from_, cfg.init.reset
    for pattern in reset:
        if not any(re.fullmatch(pattern, path) for path in wanted):
            raise ConfigError(f"init.reset pattern {pattern!r} matches no parameter; paths look like 'head/kernel' "
                              "(patterns must match the whole path)")
    kind = source_kind(source)
    if kind == "big_vision":
        if cfg.model.kind != "vit":
            raise ConfigError(f"init.from {source!r}: a big_vision .npz holds a ViT classifier, and model.kind is "
                              f"{cfg.model.kind!r}; start a ViT from it, or a two-tower model from a frx ViT run")
        if cfg.mup.param != "sp":
            raise ConfigError("big_vision checkpoints are in the standard parametrization; drop --mup.param mup "
                              "to start from one")
        return convert.big_vision_params(source, cfg.model, reset=reset, wanted=wanted, notes=notes)
    read = weights.read_run_params if kind == "run" else weights.read_safetensors
    source_cfg, step, params = read(source)
    both_sp = source_cfg.mup.param == cfg.mup.param == "sp"  # SP ignores the other mup fields
    if not both_sp and to_dict(source_cfg.mup) != to_dict(cfg.mup):
        raise ConfigError(f"init.from {source!r} was trained with mup {to_dict(source_cfg.mup)} but this run uses "
                          f"{to_dict(cfg.mup)}; use the same --mup.* settings (the multipliers are not in the weights)")
    if notes is not None:
        notes.append(f"parameters of step {step} of {source}")
    params = _towers(source, source_cfg.model.kind, cfg.model.kind, params, wanted, reset, notes)
    return convert.fit_params(params, wanted, source=source, reset=reset, notes=notes)


def _towers(source, source_kind, kind, params, wanted, reset, notes):
    """A classifier from a two-tower run takes its image tower (whose head is the image projection:
    reset `head/.*` for a new head); a two-tower model from a ViT run takes it as its image tower and
    must keep its text tower and logit scale fresh."""
    if source_kind == kind:
        return params
    if (source_kind, kind) == ("two_tower", "vit"):
        if notes is not None:
            notes.append("its image tower")
        return weights.image_tower(params)
    if (source_kind, kind) == ("vit", "two_tower"):
        fresh = [p for p in wanted if not p.startswith(weights.IMAGE_TOWER)
                 and not any(re.fullmatch(pattern, p) for pattern in reset)]
        if fresh:
            raise ConfigError(f"init.from {source!r} is a ViT and fills only the image tower; keep the rest fresh "
                              f"with --init.reset 'text/.*' 'logit_.*' (no source for {fresh[0]})")
        if notes is not None:
            notes.append("as the image tower")
        return {weights.IMAGE_TOWER + p: v for p, v in params.items()}
    raise ConfigError(f"init.from {source!r} holds a {source_kind} model, which cannot start a {kind} model")


def init_state(cfg: TrainConfig, spec: state_lib.StateSpec, say=print) -> dict:
    """A fresh training state whose parameters come from `cfg.init.from_` (all fresh when unset)."""
    if not cfg.init.from_:
        return spec.init_state()
    wanted = {param_paths.path_str(kp): tuple(leaf.shape) for kp, leaf in jax.tree_util.tree_leaves_with_path(spec.abstract_params)}
    notes: list[str] = []
    loaded = load_params(cfg, wanted, notes)  # a source that does not fit stops the run before anything compiles
    state = spec.init_state()

    def place(path, fresh):  # each device takes its own shard, also across processes
        if path not in loaded:
            return fresh
        value = np.asarray(loaded[path], fresh.dtype)
        return jax.make_array_from_callback(value.shape, fresh.sharding, lambda index: value[index])

    params = param_paths.map_with_path(place, state["params"])
    del state  # the optimizer state is built again around the new parameters
    fresh_count = len(wanted) - len(loaded)
    say(f"init.from {cfg.init.from_}: {len(loaded)} parameters loaded, {fresh_count} fresh"
        + "".join(f"; {note}" for note in notes))
    build = jax.jit(lambda p: state_lib.state_around(p, spec.tx, cfg.seed), out_shardings=spec.state_sharding)
    return build(params)
