"""Batch schemas: the named fields, shapes and dtypes of one record, declared once per task.

A task says what a training record and an evaluation record must hold (`{"image": Field((224, 224,
3), "uint8"), "label": Field((), "int32", high=1000)}`); everything else is derived from that one
declaration:
- the host pipeline projects each record onto it (`conform`), refusing a wrong shape with one line
  instead of failing later inside batching;
- the input stream adds its bookkeeping fields (`with_stream_fields`: per-record fault codes for
  training, the padding mask for evaluation);
- `frx aot` compiles the step from `abstract_batch`, tests and benchmarks draw `random_batch`es,
  and evaluation pads a split with `zeros`.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a record: its per-record shape and NumPy dtype name."""

    shape: tuple[int, ...]
    dtype: str
    high: int | None = None
    """Integer fields (class ids, token ids): values lie in [0, high); random batches draw from it."""


Schema = dict[str, Field]

# What the training stream adds to every record (frx.data.pipeline, counted by frx.faults): the
# skip reason of the record at this stream position and the conversion applied to the one used.
TRAIN_STREAM_FIELDS: Schema = {"skipped": Field((), "int8"), "converted": Field((), "int8")}
# What evaluation adds: padding rows (to fill the last batch) have mask False, undecodable ones too.
EVAL_STREAM_FIELDS: Schema = {"mask": Field((), "bool"), "skipped": Field((), "bool")}


class SchemaError(ValueError):
    """A record that does not fit the schema; the message names the field and the fix."""


def conform(record: dict, schema: Schema, where: str = "the host ops") -> dict:
    """The schema's fields of `record` as arrays of the declared dtype; extra fields are dropped.

    Raises SchemaError when a field is missing, is not an array yet (an undecoded image), has another
    shape, or holds a value its dtype cannot keep exactly (a label 2.9 is not class 2).
    """
    out = {}
    for name, field in schema.items():
        if name not in record:
            raise SchemaError(f"{where} produced no field {name!r} (the record has {', '.join(sorted(record))})")
        value = record[name]
        if isinstance(value, (bytes, str)) and np.dtype(field.dtype).kind != "U":
            raise SchemaError(f"field {name!r} is still encoded {type(value).__name__} after {where}; start the op "
                              "string with decode")
        array = np.asarray(value)
        if array.shape != field.shape:
            raise SchemaError(f"{where} produced {name!r} of shape {_show(array.shape)} but the task expects "
                              f"{_show(field.shape)}; end the host ops with a crop/resize to that size")
        converted = array.astype(field.dtype)
        if np.dtype(field.dtype).kind in "iub" and array.dtype.kind == "f" and not np.array_equal(converted, array):
            raise SchemaError(f"field {name!r} holds {array.ravel()[:3]} where the task expects {field.dtype} values")
        out[name] = converted
    return out


def _show(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "() (a scalar)"


def with_stream_fields(schema: Schema, fields: Schema) -> Schema:
    return {**schema, **fields}


def zeros(schema: Schema) -> dict:
    """A record of zeros: the padding of an evaluation batch."""
    return {name: np.zeros(field.shape, field.dtype) for name, field in schema.items()}


def random_batch(schema: Schema, batch_size: int, rng: np.random.Generator) -> dict:
    """A batch of random values of the right shapes and dtypes (tests, benchmarks): uint8 fields
    over their whole range, integer fields in [0, high), floats in [0, 1), booleans True."""
    batch = {}
    for name, field in schema.items():
        shape, dtype = (batch_size, *field.shape), np.dtype(field.dtype)
        if dtype == np.uint8:
            batch[name] = rng.integers(0, 256, shape, dtype=np.uint8)
        elif dtype.kind in "iu":
            batch[name] = rng.integers(0, field.high or 1, shape).astype(dtype)
        elif dtype.kind == "b":
            batch[name] = np.ones(shape, bool)
        else:
            batch[name] = rng.random(shape).astype(dtype)
    return batch


def abstract_batch(schema: Schema, batch_size: int, sharding=None) -> dict:
    """jax.ShapeDtypeStructs of a global batch (what `frx aot` compiles the step for)."""
    import jax

    return {name: jax.ShapeDtypeStruct((batch_size, *field.shape), np.dtype(field.dtype), sharding=sharding)
            for name, field in schema.items()}
