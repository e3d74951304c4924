"""Preprocessing op strings, big_vision style: "decode|random_resized_crop(224)|flip_lr|value_range(-1,1)".

Each op is looked up by name in the registries of `frx.data.op_registry`: host ops (per record,
NumPy/PIL, on the CPU workers) must come first, device ops (batched, JAX, inside the jitted step)
after them. Ops read and write named fields of a record (`image` unless given `key=` / `outkey=`),
so a caption tokenizer or a label lookup is an op like any other. Which fields a batch must end up
with is the task's batch schema (`frx.data.schema`), checked where records leave the host.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable

import numpy as np

from frx.config import ConfigError, DataConfig
from frx.data import device_ops, host_ops, randaug, tokenizers  # noqa: F401  (they register the built-in ops)
from frx.data.op_registry import DEVICE_OPS, HOST_OPS


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

    def host_fn(self) -> Callable[[dict, np.random.Generator], dict]:
        """fn(record, rng) -> record: the host ops in order."""
        fns = [_build(HOST_OPS, c) for c in self.host]

        def run(record: dict, rng: np.random.Generator) -> dict:
            for fn in fns:
                record = fn(record, rng)
            return record

        return run

    def device_fn(self) -> Callable:
        """fn(batch, rng) -> batch: the device ops in order, op i drawing from fold_in(rng, i)."""
        fns = [_build(DEVICE_OPS, c) for c in self.device]

        def run(batch: dict, rng) -> dict:
            import jax

            for i, fn in enumerate(fns):
                batch = fn(batch, jax.random.fold_in(rng, i))
            return batch

        return run

    def device_key(self) -> str:
        """The device ops as a hashable string (an OpCall holds a dict), e.g. to cache a jitted program."""
        return "|".join(str(call) for call in self.device)


def _build(registry: dict, call: OpCall) -> Callable:
    try:
        return registry[call.name](*call.args, **call.kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for preprocessing op {call}: {e}") from None
    except ValueError as e:
        raise ConfigError(f"bad arguments for preprocessing op {call}: {e}") from None


def data_op_defaults(data: DataConfig) -> dict[str, dict]:
    """Arguments the data config gives ops that an op string leaves out: the pixel cap of decoding."""
    return {"decode": {"max_pixels": data.max_pixels}, "decode_jpeg_and_inception_crop": {"max_pixels": data.max_pixels}}


def make_pipeline(pp: str, defaults: dict[str, dict] | None = None) -> Pipeline:
    """Parses and checks a pp string: every op is known, its arguments are accepted, and host ops
    precede device ops. `defaults` gives keyword arguments per op name for calls that leave them out
    (e.g. `data_op_defaults(cfg.data)`)."""
    host, device = [], []
    for call in parse(pp):
        if defaults and call.name in defaults:
            call = dataclasses.replace(call, kwargs={**defaults[call.name], **call.kwargs})
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
