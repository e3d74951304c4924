"""big_vision's RandAugment as batched JAX ops on uint8 images, run on the accelerator.

Reproduces big_vision/pp/archive/autoaugment.py `distort_image_with_randaugment` (forked from the
tensorflow/tpu EfficientNet code, using tensorflow_addons' transforms):
- 16 ops in `OPS` order, no Identity; each of `num_layers` layers draws one op uniformly and always
  applies it (the drawn `prob` is never used).
- magnitude -> argument by `level_to_arg`; Rotate, Shear and Translate are negated with p=0.5.
- geometry is nearest-neighbour with fill 128 (tfa's transform + autoaugment's wrap/unwrap),
  Cutout fills a (2*pad)^2 square with 128, enhance ops blend in float32 and truncate.
- two known quirks stay in by default (`bug_compat=True`): Contrast blends towards the constant
  H*W/256 instead of the mean grey (big_vision issue #109), and Solarize's threshold is converted
  to uint8 so 256 wraps to 0 and inverts the whole image (issue #110). With bug_compat=False,
  Contrast uses the mean grey value and Solarize compares in integers (256 then inverts nothing).

Public API: `OPS`, `level_to_arg`, `apply_op` (one image, NumPy or JAX), `sample_layers` /
`apply_layers` / `randaug` (batched, jit/vmap friendly), and the `randaug(...)` pp device op.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from frx.config import ConfigError
from frx.data import tf_image
from frx.data.op_registry import device_op

OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
       "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")
SIGNED_OPS = frozenset({"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"})
MAX_LEVEL = 10.0
CUTOUT_CONST = 40  # randaugment HParams(cutout_const=40, translate_const=100)
TRANSLATE_CONST = 100
FILL = 128  # replace_value = [128] * 3


def level_to_arg(name: str, level: float) -> tuple:
    """big_vision's magnitude -> argument mapping, before the random sign (autoaugment.level_to_arg)."""
    m = level / MAX_LEVEL
    if name in ("AutoContrast", "Equalize", "Invert"):
        return ()
    if name == "Rotate":
        return (m * 30.0,)
    if name == "Posterize":
        return (int(m * 4),)
    if name == "Solarize":
        return (int(m * 256),)
    if name == "SolarizeAdd":
        return (int(m * 110),)
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return (m * 1.8 + 0.1,)
    if name in ("ShearX", "ShearY"):
        return (m * 0.3,)
    if name in ("TranslateX", "TranslateY"):
        return (m * float(TRANSLATE_CONST),)
    if name == "Cutout":
        return (int(m * CUTOUT_CONST),)
    raise ValueError(f"unknown RandAugment op {name!r}; known: {', '.join(OPS)}")


# ------------------------------------------------------------------------------------------------
# Ops that are a per-channel lookup table of the pixel value: (image, arg, bug_compat) -> (3, 256).

_VALUES = np.arange(256, dtype=np.int32)  # NumPy: a jnp constant here would start the JAX backend on import


def _per_channel(table):
    return jnp.broadcast_to(table.astype(jnp.uint8), (3, 256))


def _each_channel(fn, image):
    """(H, W, C) -> (C, 256): `fn` applied to every channel (traced once)."""
    return jax.vmap(fn, in_axes=-1)(image)


def _lut_autocontrast(image, bug_compat):
    """Per channel, stretch [min, max] to [0, 255] in float32; unchanged if max == min."""
    def channel(x):
        lo, hi = jnp.min(x).astype(jnp.float32), jnp.max(x).astype(jnp.float32)
        scale = jnp.float32(255.0) / jnp.where(hi > lo, hi - lo, 1.0)
        offset = -lo * scale
        stretched = tf_image.to_uint8(tf_image.no_fma(_VALUES.astype(jnp.float32) * scale) + offset)
        return jnp.where(hi > lo, stretched, _VALUES.astype(jnp.uint8))

    return _each_channel(channel, image)


def _lut_equalize(image, bug_compat):
    """PIL-style equalisation per channel: step = (count - count of the last non-empty bin) // 255,
    lut = (cumsum + step // 2) // step shifted right by one bin; identity when step == 0."""
    def channel(x):
        hist = tf_image.histogram(x)
        last = hist[255 - jnp.argmax(hist[::-1] > 0)]
        step = (jnp.sum(hist) - last) // 255
        lut = (jnp.cumsum(hist) + step // 2) // jnp.maximum(step, 1)
        lut = jnp.clip(jnp.concatenate([jnp.zeros(1, lut.dtype), lut[:-1]]), 0, 255)
        return jnp.where(step == 0, _VALUES, lut).astype(jnp.uint8)

    return _each_channel(channel, image)


def _lut_invert(image, bug_compat):
    return _per_channel(255 - _VALUES)


def _lut_posterize(image, bits, bug_compat):
    """(x >> s) << s with s = 8 - bits. TF clamps uint8 shift amounts to [0, 7]
    (tensorflow/core/kernels/cwise_ops.h), so bits = 0 keeps the top bit instead of giving black."""
    shift = jnp.clip(8 - jnp.asarray(bits, jnp.int32), 0, 7)
    return _per_channel((_VALUES >> shift) << shift)


def _lut_solarize(image, threshold, bug_compat):
    """Invert pixels >= threshold. TF compares against the threshold cast to uint8, so 256 (level
    10) becomes 0 and inverts everything (issue #110); bug_compat=False compares integers."""
    threshold = jnp.asarray(threshold, jnp.int32)
    if bug_compat:
        threshold = threshold % 256
    return _per_channel(jnp.where(_VALUES < threshold, _VALUES, 255 - _VALUES))


def _lut_solarize_add(image, addition, bug_compat):
    """Pixels below 128 get `addition`, clipped to [0, 255]."""
    added = jnp.clip(_VALUES + jnp.asarray(addition, jnp.int32), 0, 255)
    return _per_channel(jnp.where(_VALUES < 128, added, _VALUES))


def _contrast_target(image, bug_compat):
    """The grey level Contrast blends towards. big_vision sums the grey histogram and divides by
    256, i.e. H*W/256 whatever the image (issue #109); the fix is the mean grey value."""
    height, width = image.shape[0], image.shape[1]
    if bug_compat:
        mean = jnp.float32(height * width) / jnp.float32(256.0)
    else:
        total = jnp.sum(tf_image.grayscale(image).astype(jnp.int32))  # exact below 2**24 in float32
        mean = total.astype(jnp.float32) / jnp.float32(height * width)
    return tf_image.to_uint8(mean)


def _lut_contrast(image, factor, bug_compat):
    return _per_channel(tf_image.blend(_contrast_target(image, bug_compat), _VALUES.astype(jnp.uint8), factor))


def _lut_brightness(image, factor, bug_compat):
    return _per_channel(tf_image.blend(jnp.zeros((), jnp.uint8), _VALUES.astype(jnp.uint8), factor))


def _apply_lut(image, lut):
    """out[..., c] = lut[c, image[..., c]]."""
    return jax.vmap(lambda table, channel: table[channel], in_axes=(0, -1), out_axes=-1)(lut, image)


_LUT_OPS = {
    "AutoContrast": _lut_autocontrast,
    "Equalize": _lut_equalize,
    "Invert": _lut_invert,
    "Posterize": _lut_posterize,
    "Solarize": _lut_solarize,
    "Contrast": _lut_contrast,
    "Brightness": _lut_brightness,
    "SolarizeAdd": _lut_solarize_add,
}

# ------------------------------------------------------------------------------------------------
# Geometric ops: (signed arg, H, W) -> the six affine coefficients mapping output to input pixels.

_WARP_OPS = {
    "Rotate": lambda degrees, h, w: tf_image.rotation_coeffs(degrees, h, w),
    "ShearX": lambda level, h, w: tf_image.affine_coeffs(a1=level),  # output (x, y) reads (x + s*y, y)
    "ShearY": lambda level, h, w: tf_image.affine_coeffs(b0=level),  # output (x, y) reads (x, s*x + y)
    "TranslateX": lambda pixels, h, w: tf_image.affine_coeffs(a2=pixels),  # tfa.translate([-pixels, 0])
    "TranslateY": lambda pixels, h, w: tf_image.affine_coeffs(b2=pixels),
}

# ------------------------------------------------------------------------------------------------
# The rest work on whole images.


def _cutout(image, pad_size, center_y, center_x, fill):
    """Rows [max(0, cy - pad), min(H, cy + pad)) x the same for columns are set to `fill`."""
    height, width = image.shape[0], image.shape[1]
    rows = jnp.arange(height)[:, None]
    cols = jnp.arange(width)[None, :]
    inside = ((rows >= center_y - pad_size) & (rows < center_y + pad_size)
              & (cols >= center_x - pad_size) & (cols < center_x + pad_size))
    fill = jnp.broadcast_to(jnp.asarray(fill, jnp.uint8), (image.shape[-1],))
    return jnp.where(inside[..., None], fill, image)


def _color(image, factor):
    """Blend with the image's own grey version (tf.image.rgb_to_grayscale, then grey to RGB)."""
    return tf_image.blend(tf_image.grayscale(image)[..., None], image, factor)


_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / np.float32(13.0)


def _sharpness(image, factor):
    """Blend with PIL's SMOOTH filter ([[1,1,1],[1,5,1],[1,1,1]]/13, VALID, float32, truncated);
    the 1-pixel border of the smoothed image is the original."""
    height, width = image.shape[0], image.shape[1]
    x = image.astype(jnp.float32)
    acc = jnp.zeros((height - 2, width - 2, image.shape[2]), jnp.float32)
    for r in range(3):
        for c in range(3):
            acc = acc + tf_image.no_fma(x[r : r + height - 2, c : c + width - 2] * _SMOOTH[r, c])
    smoothed = image.at[1:-1, 1:-1].set(tf_image.to_uint8(acc))
    return tf_image.blend(smoothed, image, factor)


# ------------------------------------------------------------------------------------------------
# One image, one op.


def apply_op(name: str, image, args: tuple = (), *, fill=FILL, bug_compat: bool = True, center=None):
    """Applies RandAugment op `name` to one uint8 HxWx3 image with already-mapped, already-signed
    `args` (see `level_to_arg`). `center=(cy, cx)` places Cutout's square (required for Cutout).
    NumPy in -> NumPy out; JAX in -> JAX out (jit-able)."""
    if name not in OPS:
        raise ValueError(f"unknown RandAugment op {name!r}; known: {', '.join(OPS)}")
    is_numpy = not isinstance(image, jax.Array)
    x = jnp.asarray(image)
    if x.dtype != jnp.uint8 or x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"RandAugment ops take uint8 HxWx3 images, got {x.dtype} {x.shape}")
    if name in _LUT_OPS:
        out = _apply_lut(x, _LUT_OPS[name](x, *args, bug_compat))
    elif name in _WARP_OPS:
        out = tf_image.warp_nearest(x, _WARP_OPS[name](args[0], x.shape[0], x.shape[1]), fill)
    elif name == "Cutout":
        if center is None:
            raise ValueError("Cutout needs center=(cy, cx); randaug() draws it uniformly over the image")
        out = _cutout(x, args[0], center[0], center[1], fill)
    elif name == "Color":
        out = _color(x, args[0])
    else:  # Sharpness
        out = _sharpness(x, args[0])
    return np.asarray(out) if is_numpy else out


# ------------------------------------------------------------------------------------------------
# Batches: draw (op, sign, cutout centre) per image and layer, then apply with vmap.


class Draws(NamedTuple):
    """Per-layer, per-image random choices, each of shape (num_layers, batch) (a pytree)."""

    op: jax.Array  # index into OPS, uniform over the 16 ops
    sign: jax.Array  # +1 or -1 with p = 0.5 (used by Rotate, Shear, Translate)
    center_y: jax.Array  # Cutout centre, uniform over [0, H)
    center_x: jax.Array  # ... and [0, W)


def sample_layers(rng, batch: int, num_layers: int, height: int, width: int) -> Draws:
    """RandAugment's random choices for a batch (independent per image and layer)."""
    k_op, k_sign, k_y, k_x = jax.random.split(rng, 4)
    shape = (num_layers, batch)
    return Draws(
        op=jax.random.randint(k_op, shape, 0, len(OPS)),
        sign=jnp.where(jax.random.bernoulli(k_sign, 0.5, shape), 1.0, -1.0).astype(jnp.float32),
        center_y=jax.random.randint(k_y, shape, 0, height),
        center_x=jax.random.randint(k_x, shape, 0, width),
    )


_LUT_NAMES = tuple(n for n in OPS if n in _LUT_OPS)
_WARP_NAMES = tuple(n for n in OPS if n in _WARP_OPS)
_FAMILY = {**{n: 0 for n in _LUT_NAMES}, **{n: 1 for n in _WARP_NAMES}, "Cutout": 2, "Color": 3, "Sharpness": 4}


def _slot_table(names):
    return jnp.array([names.index(n) if n in names else 0 for n in OPS], jnp.int32)


def _apply_drawn(image, op, sign, center_y, center_x, magnitude, fill, bug_compat):
    """One image, one layer: every op family is computed and the drawn one selected (vmap turns a
    per-image switch into a select anyway). LUT ops share one gather, geometric ops one warp."""
    height, width = image.shape[0], image.shape[1]
    args = {n: level_to_arg(n, magnitude) for n in OPS}
    luts = jnp.stack([_LUT_OPS[n](image, *args[n], bug_compat) for n in _LUT_NAMES])
    coeffs = jnp.stack([_WARP_OPS[n](sign * args[n][0], height, width) for n in _WARP_NAMES])
    candidates = [
        _apply_lut(image, luts[_slot_table(_LUT_NAMES)[op]]),
        tf_image.warp_nearest(image, coeffs[_slot_table(_WARP_NAMES)[op]], fill),
        _cutout(image, args["Cutout"][0], center_y, center_x, fill),
        _color(image, args["Color"][0]),
        _sharpness(image, args["Sharpness"][0]),
    ]
    family = jnp.array([_FAMILY[n] for n in OPS], jnp.int32)[op]
    out = candidates[0]
    for k in range(1, len(candidates)):
        out = jnp.where(family == k, candidates[k], out)
    return out


def apply_layers(images_BHWC, draws: Draws, magnitude: float, *, fill=FILL, bug_compat: bool = True):
    """Applies the drawn ops layer by layer to a uint8 batch."""
    def one(image, op, sign, cy, cx):
        return _apply_drawn(image, op, sign, cy, cx, magnitude, fill, bug_compat)

    def layer(images, drawn):  # scanned, so the op graph is compiled once however many layers
        return jax.vmap(one)(images, drawn.op, drawn.sign, drawn.center_y, drawn.center_x), None

    return jax.lax.scan(layer, images_BHWC, draws)[0]


def randaug(rng, images_BHWC, num_layers: int = 2, magnitude: float = 10, *, fill=FILL, bug_compat: bool = True):
    """big_vision's RandAugment(num_layers, magnitude) on a uint8 batch (B, H, W, 3)."""
    batch, height, width = images_BHWC.shape[:3]
    draws = sample_layers(rng, batch, num_layers, height, width)
    return apply_layers(images_BHWC, draws, magnitude, fill=fill, bug_compat=bug_compat)


@device_op("randaug")
def randaug_op(num_layers: int = 2, magnitude: float = 10, bug_compat: bool = True, fill=FILL):
    """pp op `randaug(N, M)`: big_vision's RandAugment on the device; `bug_compat=False` fixes the
    Contrast and Solarize quirks. Must come before value_range (it works on uint8)."""
    if num_layers < 0 or magnitude < 0:
        raise ConfigError(f"randaug needs num_layers >= 0 and magnitude >= 0, got ({num_layers}, {magnitude})")

    def run(images, rng):
        if images.dtype != jnp.uint8:
            raise ValueError(f"randaug works on uint8 images but got {images.dtype}; put it before value_range")
        return randaug(rng, images, num_layers, magnitude, fill=fill, bug_compat=bug_compat)

    return run
