"""Initialisers that state their variance law, and parameters that remember how they were drawn.

A parametrization such as muP has to know how each parameter's initial scale depends on the
layer's shape (SP's 1/fan_in, 1/fan_avg, a constant, ...) to rescale it for another width. So frx
initialises every parameter through an object that draws exactly what the JAX initialiser of the same
name draws *and* can report the standard deviation for any shape; the parameter carries it as
`init_law` metadata (`nnx.Param(..., init_law=InitLaw(...))`), next to its value.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

F32 = jnp.float32


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """JAX's (fan_in, fan_out) with its default axes: in = shape[-2], out = shape[-1], and every
    other axis a receptive field (jax/_src/nn/initializers.py `_compute_fans`)."""
    if len(shape) < 2:
        raise ValueError(f"a variance-scaling initialiser needs a shape with at least 2 axes, got {shape}")
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


@dataclasses.dataclass(frozen=True)
class VarianceScaling:
    """`jax.nn.initializers.variance_scaling(scale, mode, distribution)`, plus its std for a shape."""

    scale: float
    mode: str  # fan_in | fan_out | fan_avg
    distribution: str  # truncated_normal | normal | uniform

    def __call__(self, key, shape, dtype=F32) -> jax.Array:
        return jax.nn.initializers.variance_scaling(self.scale, self.mode, self.distribution)(key, shape, dtype)

    def std(self, shape: tuple[int, ...]) -> float:
        fan_in, fan_out = _fans(tuple(shape))
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return math.sqrt(self.scale / fan)  # all three distributions are rescaled to this std


@dataclasses.dataclass(frozen=True)
class Constant:
    """Every entry equal to `value` (zeros, ones, a bias offset): std 0 at every shape."""

    value: float = 0.0

    def __call__(self, key, shape, dtype=F32) -> jax.Array:
        del key
        return jnp.full(shape, self.value, dtype)

    def std(self, shape: tuple[int, ...]) -> float:
        del shape
        return 0.0


@dataclasses.dataclass(frozen=True)
class Normal:
    """`jax.nn.initializers.normal(stddev)`: the same std at every shape."""

    stddev: float

    def __call__(self, key, shape, dtype=F32) -> jax.Array:
        return jax.nn.initializers.normal(self.stddev)(key, shape, dtype)

    def std(self, shape: tuple[int, ...]) -> float:
        del shape
        return self.stddev


# Flax's defaults as big_vision uses them.
lecun_normal = VarianceScaling(1.0, "fan_in", "truncated_normal")  # std sqrt(1/fan_in), truncated at +-2 sigma
xavier_uniform = VarianceScaling(1.0, "fan_avg", "uniform")  # U(+-sqrt(6/(fan_in+fan_out)))
zeros = Constant(0.0)


@dataclasses.dataclass(frozen=True)
class InitLaw:
    """How a parameter was drawn: `initializer(key, shape)`, then reshaped to the parameter's shape.

    `fan_in` is set for a weight matrix (the product of its input axes, e.g. D for a (D, heads,
    head_dim) query kernel) and None for vector-like parameters (biases, embeddings, tokens).
    """

    initializer: VarianceScaling | Constant | Normal
    shape: tuple[int, ...]
    fan_in: int | None = None

    def std(self, shape: tuple[int, ...] | None = None) -> float:
        """The initial std at this law's shape, or at another (e.g. the muP base model's) shape."""
        return self.initializer.std(self.shape if shape is None else shape)


def param(initializer, key, shape, *, param_shape=None, fan_in: int | None = None) -> nnx.Param:
    """An nnx.Param drawn by `initializer` at `shape`, reshaped to `param_shape`, carrying its law."""
    shape = tuple(shape)
    value = initializer(key, shape, F32)
    if param_shape is not None:
        value = value.reshape(param_shape)
    return nnx.Param(value, init_law=InitLaw(initializer, shape, fan_in))


def get_law(variable) -> InitLaw | None:
    """The InitLaw of an nnx Variable, or None when it was created without one (e.g. by Flax)."""
    return variable.get_metadata().get("init_law")
