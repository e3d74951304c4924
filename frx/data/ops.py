"""Preprocessing op strings, big_vision style: "decode|random_resized_crop(224)|flip_lr|value_range(-1,1)".

Ops are registered by name in one of two registries:
- host ops run per image on the CPU workers (NumPy/PIL) and must come first; they end with a
  fixed-size uint8 HxWx3 image. Signature: factory(*args) -> fn(image, rng) -> image.
- device ops run batched inside the jitted step (JAX), on uint8 or float images.
  Signature: factory(*args) -> fn(images_BHWC, rng) -> images_BHWC.
Labels are handled by the trainer (one-hot on the device), so no onehot/keep ops are needed.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable

import numpy as np

from frx.config import ConfigError

HOST_OPS: dict[str, Callable] = {}
DEVICE_OPS: dict[str, Callable] = {}


def host_op(name: str):
    def register(factory):
        HOST_OPS[name] = factory
        return factory

    return register


def device_op(name: str):
    def register(factory):
        DEVICE_OPS[name] = factory
        return factory

    return register


@dataclasses.dataclass(frozen=True)
class OpCall:
    name: str
    args: tuple
    kwargs: dict

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)})"


def parse(pp: str) -> list[OpCall]:
    """Parses "a|b(1, 2)|c(x=3)" into op calls; arguments must be Python literals."""
    calls = []
    for text in (t.strip() for t in pp.split("|")):
        if not text:
            continue
        try:
            node = ast.parse(text if "(" in text else f"{text}()", mode="eval").body
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                raise ValueError
            args = tuple(ast.literal_eval(a) for a in node.args)
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except (SyntaxError, ValueError):
            raise ConfigError(f"cannot parse preprocessing op {text!r} in {pp!r}; write name(literal, ...)") from None
        calls.append(OpCall(node.func.id, args, kwargs))
    return calls


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A parsed op string split into its host part and its device part."""

    host: tuple[OpCall, ...]
    device: tuple[OpCall, ...]

    def host_fn(self) -> Callable:
        fns = [_build(HOST_OPS, c) for c in self.host]

        def run(image, rng: np.random.Generator) -> np.ndarray:
            for fn in fns:
                image = fn(image, rng)
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
                raise ValueError("host ops must end with a decoded uint8 HxWxC image; start the pp string with decode")
            return image

        return run

    def device_fn(self) -> Callable:
        fns = [_build(DEVICE_OPS, c) for c in self.device]

        def run(images, rng):
            import jax

            for i, fn in enumerate(fns):
                images = fn(images, jax.random.fold_in(rng, i))
            return images

        return run


def _build(registry: dict, call: OpCall) -> Callable:
    try:
        return registry[call.name](*call.args, **call.kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for preprocessing op {call}: {e}") from None


def make_pipeline(pp: str) -> Pipeline:
    """Parses and checks a pp string: every op is known and host ops precede device ops."""
    _register_builtin_ops()
    host, device = [], []
    for call in parse(pp):
        if call.name in HOST_OPS:
            if device:
                raise ConfigError(f"host op {call.name!r} comes after device op {device[-1].name!r} in {pp!r}; move it earlier")
            host.append(call)
        elif call.name in DEVICE_OPS:
            device.append(call)
        else:
            known = ", ".join(sorted(HOST_OPS) + sorted(DEVICE_OPS))
            raise ConfigError(f"unknown preprocessing op {call.name!r} in {pp!r}; known ops: {known}")
    for call in host:  # fail on bad arguments now, not later in a worker
        _build(HOST_OPS, call)
    for call in device:
        _build(DEVICE_OPS, call)
    return Pipeline(tuple(host), tuple(device))


def _register_builtin_ops() -> None:
    from frx.data import device_ops, host_ops, randaug  # noqa: F401  (registration side effect)

