"""frx's own weights outside a training state: the parameters of a run folder's latest checkpoint,
and frx safetensors files (`frx export RUN --to safetensors`).

A frx safetensors file holds every parameter under its frx path (`blocks/3/attn/q/kernel`), float32,
exactly as in the checkpoint, with the run's config (JSON) and step as metadata, so that
`--init.from FILE` and `read_safetensors` give back the same bits.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from frx import tracking
from frx.config import ConfigError, TrainConfig, from_dict, to_dict

FORMAT = "frx"
"""The `format` metadata entry of frx's own safetensors files (timm exports say "pt")."""


def checkpoint_steps(workdir: str) -> list[int]:
    """The complete checkpoints of a run folder: Orbax renames `<step>.orbax-checkpoint-tmp` to `<step>`
    only once it is written, and frx sets damaged ones aside under other names (frx.ckpt)."""
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(name) for name in os.listdir(folder) if name.isdigit())


def read_run_config(workdir: str) -> TrainConfig:
    path = os.path.join(workdir, tracking.CONFIG_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"{path} not found; is {workdir!r} a run folder written by `frx train`?")
    with open(path) as f:
        return from_dict(TrainConfig, json.load(f))


def read_run_params(workdir: str) -> tuple[TrainConfig, int, dict[str, np.ndarray]]:
    """(config, step, {path: array}) of the newest complete checkpoint of a run folder."""
    from frx import ckpt

    cfg = read_run_config(workdir)
    steps = checkpoint_steps(workdir)
    if not steps:
        raise ConfigError(f"run folder {workdir!r} has no checkpoint yet; train it first or pick another source")
    step = steps[-1]
    # read_arrays restores the whole state (optimizer moments too) as NumPy, keyed "['params']['blocks'][0]...";
    # Orbax's OCDBT reader wants an absolute path.
    arrays = ckpt.read_arrays(os.path.abspath(os.path.join(workdir, "checkpoints", str(step))))
    params = {}
    for key, value in arrays.items():
        parts = [a or b for a, b in re.findall(r"\['([^']*)'\]|\[(\d+)\]", key)]
        if parts and parts[0] == "params":
            params["/".join(parts[1:])] = value
    return cfg, step, params


IMAGE_TOWER = "image/"
"""Where a two-tower model keeps its image tower: a ViT classifier's parameters under this prefix."""


def image_tower(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A two-tower model's image-tower parameters under a ViT's own paths (`image/blocks/0/...` -> `blocks/0/...`)."""
    return {path.removeprefix(IMAGE_TOWER): value for path, value in params.items() if path.startswith(IMAGE_TOWER)}


def as_vit(cfg: TrainConfig, params: dict[str, np.ndarray]) -> tuple[TrainConfig, dict[str, np.ndarray]]:
    """A ViT run as it is; a two-tower run as its image tower, a ViT whose head is the projection to
    the shared embedding (`TwoTowerConfig.image_tower`). Used where only a ViT fits (timm, big_vision)."""
    if cfg.model.kind == "vit":
        return cfg, params
    if cfg.model.kind != "two_tower":
        raise ConfigError(f"model.kind {cfg.model.kind!r} has no ViT to take; export it --to safetensors")
    import dataclasses

    return dataclasses.replace(cfg, model=cfg.model.image_tower()), image_tower(params)


def write_safetensors(path: str, params: dict[str, np.ndarray], cfg: TrainConfig, step: int) -> None:
    """frx's parameters by path, with the config and step as metadata."""
    from safetensors.numpy import save_file

    metadata = {"format": FORMAT, "frx_config": json.dumps(to_dict(cfg), sort_keys=True), "frx_step": str(step)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in params.items()}, path, metadata=metadata)


def read_safetensors(path: str) -> tuple[TrainConfig, int, dict[str, np.ndarray]]:
    """(config, step, {path: array}) of a frx safetensors file."""
    from safetensors import SafetensorError, safe_open

    if not os.path.isfile(path):
        raise ConfigError(f"safetensors file {path!r} not found")
    try:
        with safe_open(path, "np") as f:
            metadata = f.metadata() or {}
            params = {key: f.get_tensor(key) for key in f.keys()}
    except SafetensorError as e:
        raise ConfigError(f"{path!r} is not a readable safetensors file ({e})") from None
    if metadata.get("format") != FORMAT or "frx_config" not in metadata:
        raise ConfigError(f"{path!r} is not a frx safetensors file (format {metadata.get('format')!r}); frx reads its "
                          "own exports (frx export RUN --to safetensors), a big_vision .npz or a run folder")
    return from_dict(TrainConfig, json.loads(metadata["frx_config"])), int(metadata.get("frx_step", 0)), params
