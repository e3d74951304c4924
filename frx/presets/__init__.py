"""Named recipes. `get(name)` returns the frozen TrainConfig; `names()` lists them.

Each preset lives in a small module whose docstring starts with the command that runs it and the
result it should reach.
"""

from __future__ import annotations

from collections.abc import Callable

from frx.config import ConfigError, TrainConfig
from frx.presets import clip, demo, extreme, vit_i1k

_PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "demo": demo.demo,
    "digits": demo.digits,
    "vit_s16_i1k": vit_i1k.vit_s16_i1k,
    "vit_s16_i1k_linear": vit_i1k.vit_s16_i1k_linear,
    "vit_b16_i1k": vit_i1k.vit_b16_i1k,
    "clip_demo": clip.clip_demo,
    "siglip_demo": clip.siglip_demo,
    "clip_b16": clip.clip_b16,
    "siglip_b16": clip.siglip_b16,
    "extreme_demo": extreme.extreme_demo,
    "vit_b16_tol10m": extreme.vit_b16_tol10m,
}


def names() -> list[str]:
    return list(_PRESETS)


def get(name: str) -> TrainConfig:
    """The frozen config of preset `name`."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(_PRESETS)} (see `frx presets`)")
    return _PRESETS[name]()


def describe(name: str) -> str:
    """One line: the first line of the preset function's docstring."""
    doc = (_PRESETS[name].__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""
