"""The two registries of preprocessing ops, by name, and the decorators that fill them.

Ops act on a record, a dict of named fields (big_vision's convention). Most ops transform one field:
they are written as `factory(*args) -> fn(value, rng) -> value`, and registration makes them read
`record[key]` and write `record[outkey]`, both `image` unless the op string says otherwise
(`resize(32, key="mask")`, `tokenize(key="text", outkey="tokens")`; big_vision's InKeyOutKey). An
op that needs the whole record (a label lookup from two fields) registers with `keyed=False` and is
written as `factory(*args) -> fn(record, rng) -> record`.

- host ops run per record on the CPU workers (NumPy/PIL), before batching;
- device ops run on whole batches inside the jitted step (JAX); the record is then a dict of
  batched arrays.

This module imports no op: the op modules import it to register themselves, and `frx.data.pp`
imports the op modules, so there is no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable

HOST_OPS: dict[str, Callable] = {}
DEVICE_OPS: dict[str, Callable] = {}
DEFAULT_KEY = "image"


def _on_field(name: str, factory: Callable) -> Callable:
    """factory(*args) -> fn(value, rng) becomes builder(*args, key=, outkey=) -> fn(record, rng)."""

    def build(*args, key: str = DEFAULT_KEY, outkey: str | None = None, inkey: str | None = None, **kwargs):
        read, write = inkey or key, outkey or inkey or key
        fn = factory(*args, **kwargs)

        def run(record: dict, rng) -> dict:
            if read not in record:
                raise ValueError(f"op {name!r} reads the field {read!r}, which the record lacks (it has "
                               f"{', '.join(sorted(record))}); pass key=... to the op")
            return {**record, write: fn(record[read], rng)}

        return run

    build.__doc__ = factory.__doc__
    return build


def _register(registry: dict, name: str, keyed: bool):
    def register(factory: Callable) -> Callable:
        if name in registry:
            raise ValueError(f"preprocessing op {name!r} is registered twice")
        registry[name] = _on_field(name, factory) if keyed else factory
        return factory  # the plain factory stays callable on values (tests, benchmarks)

    return register


def host_op(name: str, *, keyed: bool = True):
    """Registers a per-record host op (see the module docstring for `keyed`)."""
    return _register(HOST_OPS, name, keyed)


def device_op(name: str, *, keyed: bool = True):
    """Registers a batched device op (see the module docstring for `keyed`)."""
    return _register(DEVICE_OPS, name, keyed)
