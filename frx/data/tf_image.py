"""TensorFlow's image numerics, re-derived in JAX so that augmentations match big_vision bit for bit.

Each function names the TF/TFA code whose arithmetic it reproduces. Everything is float32 and
elementwise (no matmul or conv), so a GPU's TF32 mode cannot change a result. TF runs each op as its
own kernel, rounding after every multiply and add; XLA fuses a*b + c into one fused multiply-add
(one rounding), which moves truncated results by one grey level. `no_fma` marks the products whose
rounding matters.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

F32 = jnp.float32
# tf.image.rgb_to_grayscale weights (tensorflow/python/ops/image_ops_impl.py).
GRAY_WEIGHTS = (np.float32(0.2989), np.float32(0.5870), np.float32(0.1140))


_FLT_MAX_BITS = 0x7F7FFFFF


def no_fma(x):
    """The identity on a float32 product, opaque to the compiler, so that adding to it cannot be
    contracted into a fused multiply-add. The sentinel is FLT_MAX, a value none of these products
    reaches but that LLVM's floating-point class analysis cannot rule out (a NaN sentinel can be
    proven impossible, and the compiler then removes the guard and fuses anyway)."""
    bits = lax.bitcast_convert_type(x, jnp.uint32)
    return lax.bitcast_convert_type(jnp.where(bits == jnp.uint32(_FLT_MAX_BITS), jnp.uint32(0), bits), F32)


def to_uint8(x):
    """tf.cast(tf.clip_by_value(x, 0, 255), tf.uint8): clip, then truncate."""
    return jnp.clip(x, 0.0, 255.0).astype(jnp.uint8)


def blend(degenerate, image, factor):
    """autoaugment.blend: degenerate + factor * (image - degenerate) in float32, clipped and
    truncated. Exact for factor 0 (degenerate) and 1 (image), the two cases TF short-cuts."""
    d = degenerate.astype(F32)
    return to_uint8(d + no_fma(F32(factor) * (image.astype(F32) - d)))


def grayscale(image):
    """tf.image.rgb_to_grayscale on uint8 HxWx3 -> uint8 HxW: convert_image_dtype to float (x * 1/255),
    weighted sum, then back to uint8 by x * 255.5 and truncation (convert_image_dtype, saturate=False)."""
    x = image.astype(F32) * F32(1.0 / 255.0)
    gray = no_fma(x[..., 0] * GRAY_WEIGHTS[0]) + no_fma(x[..., 1] * GRAY_WEIGHTS[1]) + no_fma(x[..., 2] * GRAY_WEIGHTS[2])
    return (gray * F32(255.5)).astype(jnp.uint8)


def histogram(channel):
    """tf.histogram_fixed_width(x, [0, 255], nbins=256) of uint8 values: value v lands in bin v
    (bin = floor(v * 256 / 255), clipped to 255)."""
    return jnp.bincount(channel.reshape(-1).astype(jnp.int32), length=256)


def round_half_away(x):
    """std::round (halves away from zero), which TF's nearest-neighbour sampler uses; jnp.round
    rounds halves to even."""
    rounded = jnp.round(x)
    tie = jnp.abs(x - jnp.trunc(x)) == 0.5
    return jnp.where(tie, jnp.trunc(x) + jnp.sign(x), rounded)


def warp_nearest(image, coeffs, fill):
    """tfa.image.transform with NEAREST interpolation and constant fill, followed by autoaugment's
    unwrap (empty pixels get `fill`). Output pixel (x, y) reads input
    (round(a0*x + a1*y + a2), round(b0*x + b1*y + b2)) when that lies inside the image
    (ImageProjectiveTransformV3, tensorflow/core/kernels/image/image_ops.h)."""
    height, width = image.shape[0], image.shape[1]
    a0, a1, a2, b0, b1, b2 = (coeffs[i].astype(F32) for i in range(6))
    x = jnp.arange(width, dtype=F32)[None, :]
    y = jnp.arange(height, dtype=F32)[:, None]
    in_x = round_half_away(no_fma(a0 * x) + no_fma(a1 * y) + a2)
    in_y = round_half_away(no_fma(b0 * x) + no_fma(b1 * y) + b2)
    inside = (in_x >= 0) & (in_x < width) & (in_y >= 0) & (in_y < height)
    ix = jnp.clip(in_x, 0, width - 1).astype(jnp.int32)
    iy = jnp.clip(in_y, 0, height - 1).astype(jnp.int32)
    fill = jnp.broadcast_to(jnp.asarray(fill, jnp.uint8), (image.shape[-1],))
    return jnp.where(inside[..., None], image[iy, ix], fill)


def rotation_coeffs(degrees, height: int, width: int):
    """tfa.image.angles_to_projective_transforms for autoaugment.rotate: a rotation about the image
    centre ((W-1)/2, (H-1)/2), angle in float32 radians (degrees * pi/180)."""
    radians = jnp.asarray(degrees, F32) * F32(math.pi / 180.0)
    cos, sin = jnp.cos(radians), jnp.sin(radians)
    h1, w1 = F32(height - 1), F32(width - 1)
    x_offset = (w1 - (no_fma(cos * w1) - no_fma(sin * h1))) / F32(2.0)
    y_offset = (h1 - (no_fma(sin * w1) + no_fma(cos * h1))) / F32(2.0)
    return jnp.stack([cos, -sin, x_offset, sin, cos, y_offset])


def affine_coeffs(a0=1.0, a1=0.0, a2=0.0, b0=0.0, b1=1.0, b2=0.0):
    """The first six entries of a tfa projective transform (the last two are 0 for affine maps)."""
    return jnp.stack([jnp.asarray(v, F32) for v in (a0, a1, a2, b0, b1, b2)])
