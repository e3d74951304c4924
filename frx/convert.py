"""Parameters from elsewhere into frx: big_vision ViT checkpoints (.npz), and the check that any set
of named arrays fits a model config.

    model = frx.convert.from_big_vision("vit_s16_i1k_300ep.npz", ViTConfig(variant="S/16", rep_size=-1))

big_vision's names are its module tree (big_vision/models/vit.py: `_Model`, `Encoder`,
`Encoder1DBlock`, `MlpBlock`, `MAPHead`, with Flax linen's per-class submodule counters), flattened
with "/" by big_vision/utils.py `tree_flatten_with_names`. Every frx ViT parameter has exactly one
big_vision counterpart of the same shape (frx keeps DenseGeneral's kernel layouts: q/k/v (D, H, Dh),
out (H, Dh, D), the patch embedding as a (p, p, 3, D) convolution kernel), so the conversion is a
renaming (`NAME_PAIRS`). Older checkpoints are read as big_vision/models/vit.py `fix_old_checkpoints`
reads them: pre-linen module numbering, the position embedding inside `Transformer/`, and a
position embedding that includes the class token's.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping

import numpy as np

from frx.config import ConfigError, ViTConfig

# (frx path, big_vision name); {i} stands for a block index and {w} for the leaf (kernel, bias, scale).
NAME_PAIRS: tuple[tuple[str, str], ...] = (
    ("embedding/{w}", "embedding/{w}"),  # nn.Conv(name="embedding")
    ("pos_embedding", "pos_embedding"),  # only posemb="learn"; sincos2d is computed, not stored
    ("cls", "cls"),  # only pool_type="tok"
    ("blocks/{i}/norm1/{w}", "Transformer/encoderblock_{i}/LayerNorm_0/{w}"),
    ("blocks/{i}/attn/q/{w}", "Transformer/encoderblock_{i}/MultiHeadDotProductAttention_0/query/{w}"),
    ("blocks/{i}/attn/k/{w}", "Transformer/encoderblock_{i}/MultiHeadDotProductAttention_0/key/{w}"),
    ("blocks/{i}/attn/v/{w}", "Transformer/encoderblock_{i}/MultiHeadDotProductAttention_0/value/{w}"),
    ("blocks/{i}/attn/out/{w}", "Transformer/encoderblock_{i}/MultiHeadDotProductAttention_0/out/{w}"),
    ("blocks/{i}/norm2/{w}", "Transformer/encoderblock_{i}/LayerNorm_1/{w}"),
    ("blocks/{i}/mlp/fc1/{w}", "Transformer/encoderblock_{i}/MlpBlock_0/Dense_0/{w}"),
    ("blocks/{i}/mlp/fc2/{w}", "Transformer/encoderblock_{i}/MlpBlock_0/Dense_1/{w}"),
    ("encoder_norm/{w}", "Transformer/encoder_norm/{w}"),
    ("map/probe", "MAPHead_0/probe"),  # only pool_type="map"
    ("map/attn/q/{w}", "MAPHead_0/MultiHeadDotProductAttention_0/query/{w}"),
    ("map/attn/k/{w}", "MAPHead_0/MultiHeadDotProductAttention_0/key/{w}"),
    ("map/attn/v/{w}", "MAPHead_0/MultiHeadDotProductAttention_0/value/{w}"),
    ("map/attn/out/{w}", "MAPHead_0/MultiHeadDotProductAttention_0/out/{w}"),
    ("map/norm/{w}", "MAPHead_0/LayerNorm_0/{w}"),
    ("map/mlp/fc1/{w}", "MAPHead_0/MlpBlock_0/Dense_0/{w}"),
    ("map/mlp/fc2/{w}", "MAPHead_0/MlpBlock_0/Dense_1/{w}"),
    ("pre_logits/{w}", "pre_logits/{w}"),  # only rep_size
    ("head/{w}", "head/{w}"),
)


def _regex(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{w\}", r"(?P<w>kernel|bias|scale)")
    return re.compile(pattern)


_FRX_TO_BV = [(_regex(frx), bv) for frx, bv in NAME_PAIRS]
_BV_TO_FRX = [(_regex(bv), frx) for frx, bv in NAME_PAIRS]


def _translate(name: str, table) -> str | None:
    for pattern, template in table:
        match = pattern.fullmatch(name)
        if match:
            return template.format(**match.groupdict())
    return None


def big_vision_name(frx_path: str) -> str:
    """`blocks/3/attn/q/kernel` -> `Transformer/encoderblock_3/MultiHeadDotProductAttention_0/query/kernel`."""
    name = _translate(frx_path, _FRX_TO_BV)
    if name is None:
        raise KeyError(f"{frx_path!r} is not a parameter of a frx ViT")
    return name


def frx_path(big_vision_name: str) -> str | None:
    """The frx path of a big_vision ViT parameter name, or None for a name a ViT does not have."""
    return _translate(big_vision_name, _BV_TO_FRX)


# --------------------------------------------------------------------------------------------------
# Reading a big_vision .npz


def read_npz(path: str) -> dict[str, np.ndarray]:
    """The parameters of a big_vision .npz by their big_vision names, as float32 (new or old format)."""
    if not os.path.isfile(path):
        raise ConfigError(f"big_vision checkpoint {path!r} not found; pass the path of a .npz file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            flat = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path!r} is not a readable .npz file ({e}); pass a big_vision checkpoint") from None
    # big_vision/utils.py load_params: a training checkpoint keeps the parameters under "params/" (an
    # old Flax-optimizer one under "opt/target/"); a published one has them at the top.
    for prefix in ("params/", "opt/target/"):
        if any(key.startswith(prefix) for key in flat):
            flat = {key[len(prefix):]: value for key, value in flat.items() if key.startswith(prefix)}
            break
    flat = _linen_numbering(flat)
    flat = {key: _float32(value) for key, value in flat.items()}
    return _fix_old_position_embedding(flat)


def _float32(value: np.ndarray) -> np.ndarray:
    # big_vision/utils.py recover_dtype: NumPy has no bfloat16, so npz files store it as 2-byte void.
    if value.dtype.kind == "V" and value.dtype.itemsize == 2:
        import ml_dtypes

        value = value.view(ml_dtypes.bfloat16)
    return np.asarray(value, np.float32)


def _linen_numbering(flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pre-linen checkpoints number submodules across classes (LayerNorm_0, MultiHeadDotProductAttention_1,
    LayerNorm_2, MlpBlock_3); linen counts per class. Renumbers per class in the order of the old numbers,
    as flax.training.checkpoints.convert_pre_linen does (a linen tree comes back unchanged)."""
    children: dict[str, set[str]] = {}
    for key in flat:
        parts = key.split("/")
        for depth in range(len(parts) - 1):
            children.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
    renames: dict[str, dict[str, str]] = {}
    for parent, names in children.items():
        numbered = sorted((int(m.group(2)), m.group(1), name) for name in names
                          if (m := re.fullmatch(r"(.+)_(\d+)", name)) and not name.startswith("encoderblock_"))
        counts: dict[str, int] = {}
        for _, cls, name in numbered:
            renames.setdefault(parent, {})[name] = f"{cls}_{counts.get(cls, 0)}"
            counts[cls] = counts.get(cls, 0) + 1
    out = {}
    for key, value in flat.items():
        parts = key.split("/")
        out["/".join(renames.get("/".join(parts[:d]), {}).get(part, part) if d < len(parts) - 1 else part
                     for d, part in enumerate(parts))] = value
    return out


def _fix_old_position_embedding(flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """big_vision/models/vit.py fix_old_checkpoints: the position embedding used to live in the encoder
    (`Transformer/posembed_input/pos_embedding`, later `Transformer/pos_embedding`), and the original
    ViT added it after prepending the class token, so it has g*g+1 rows: row 0 belongs to the token."""
    for old in ("Transformer/posembed_input/pos_embedding", "Transformer/pos_embedding"):
        if old in flat:
            flat["pos_embedding"] = flat.pop(old)
    table = flat.get("pos_embedding")
    if table is not None and table.ndim == 3:
        side = math.isqrt(table.shape[1] - 1)
        if table.shape[1] > 1 and side * side + 1 == table.shape[1]:
            flat["pos_embedding"] = table[:, 1:]
            if "cls" in flat:
                flat["cls"] = flat["cls"] + table[:, :1]
    return flat


# --------------------------------------------------------------------------------------------------
# Fitting named arrays to a model


_HINTS = (  # frx path pattern -> the model settings that decide whether (and how) it exists
    (r"pre_logits/.*", "model.rep_size (the pre-logits width; 0 = none)"),
    (r"cls", "model.pool (tok has a class token)"),
    (r"map/.*", "model.pool (map has an attention-pooling head)"),
    (r"pos_embedding", "model.posemb (learn stores a table; sincos2d computes it)"),
    (r"blocks/.*", "model.depth and model.variant"),
    (r"head/.*", "model.num_classes, or keep a fresh head with --init.reset 'head/.*'"),
    (r"embedding/.*", "model.variant / model.patch_size / model.width"),
    (r".*", "model.variant / model.width / model.mlp_dim / model.num_heads"),
)


def _hint(path: str, got: tuple = (), want: tuple = ()) -> str:
    if path == "head/kernel" and got[:1] != want[:1]:
        return "model.rep_size (the pre-logits width feeds the head) and model.width"
    return next(text for pattern, text in _HINTS if re.fullmatch(pattern, path))


def resample_position_embedding(table: np.ndarray, tokens: int) -> np.ndarray:
    """A (1, g*g, D) learned table on a (g', g') grid, bilinearly (big_vision/models/vit.py
    resample_posemb: scipy.ndimage.zoom, order 1): fine-tuning at another resolution."""
    import scipy.ndimage

    old, new = math.isqrt(table.shape[1]), math.isqrt(tokens)
    grid = table.reshape(old, old, -1)
    zoomed = scipy.ndimage.zoom(grid, (new / old, new / old, 1), order=1)
    return zoomed.reshape(1, new * new, -1).astype(np.float32)


def fit_params(
    loaded: Mapping[str, np.ndarray],
    wanted: Mapping[str, tuple[int, ...]],
    *,
    source: str,
    to_frx: Callable[[str], str | None] = lambda name: name,
    to_source: Callable[[str], str] = lambda path: path,
    reset: tuple[str, ...] = (),
    notes: list | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of `loaded` (keyed by the source's names) for every frx parameter in `wanted`
    (path -> shape) that no `reset` regex fully matches.

    Raises ConfigError naming the first parameter, in the source's name order, that the model config
    lacks, that the source lacks, or whose shape differs. A learned position embedding on another
    square grid is resampled (and said so in `notes`).
    """
    def is_reset(path):
        return any(re.fullmatch(pattern, path) for pattern in reset)

    problems, by_path = [], {}  # problems: (source name, message); the first by name is raised
    for name in loaded:
        path = to_frx(name)
        if path is not None and is_reset(path):
            continue
        if path is None or path not in wanted:
            where = f"frx {path}" if path else "no frx ViT parameter"
            hint = _hint(path) if path else "that the file holds a plain ViT classifier"
            problems.append((name, f"parameter {name!r} ({where}) has no place in the model config; check {hint}"))
        else:
            by_path[path] = name
    for path in wanted:
        if path not in by_path and not is_reset(path):
            name = to_source(path)
            problems.append((name, f"has no parameter {name!r} that the model config needs ({path}); check {_hint(path)}"))
    out = {}
    for path, name in by_path.items():
        value, shape = loaded[name], tuple(wanted[path])
        if value.shape != shape and path == "pos_embedding" and _both_square(value.shape, shape):
            if notes is not None:
                notes.append(f"resampled {name} from {value.shape[1]} to {shape[1]} positions (bilinear)")
            value = resample_position_embedding(value, shape[1])
        if value.shape != shape:
            problems.append((name, f"parameter {name!r} has shape {value.shape} but the model config needs {shape} "
                                   f"for {path}; check {_hint(path, value.shape, shape)}"))
        out[path] = value
    if problems:
        raise ConfigError(f"{source}: {min(problems)[1]}")
    return out


def _both_square(a: tuple, b: tuple) -> bool:
    return (len(a) == len(b) == 3 and a[0] == b[0] == 1 and a[2] == b[2]
            and math.isqrt(a[1]) ** 2 == a[1] and math.isqrt(b[1]) ** 2 == b[1])


# --------------------------------------------------------------------------------------------------
# Public entry points


def big_vision_params(npz_path: str, model: ViTConfig, *, reset: tuple[str, ...] = (),
                      wanted: Mapping[str, tuple[int, ...]] | None = None, notes: list | None = None) -> dict:
    """{frx path: float32 array} from a big_vision .npz, checked against `model` (or `wanted` shapes)."""
    if wanted is None:
        wanted = param_shapes(model)
    return fit_params(read_npz(npz_path), wanted, source=npz_path, to_frx=frx_path, to_source=big_vision_name,
                      reset=reset, notes=notes)


def param_shapes(model: ViTConfig, mup=None) -> dict[str, tuple[int, ...]]:
    """{frx path: shape} of the model config (no parameter is allocated)."""
    import jax

    from frx import param_paths, state

    _, abstract = state.abstract_model(model, 0, mup)
    return {param_paths.path_str(kp): tuple(leaf.shape) for kp, leaf in jax.tree_util.tree_leaves_with_path(abstract)}


def model_with_params(model: ViTConfig, params: Mapping[str, np.ndarray], mup=None):
    """The frx ViT of `model` (under parametrization `mup`, default SP) carrying `params` ({path: array})."""
    import jax.numpy as jnp
    from flax import nnx

    from frx import param_paths, state

    graphdef, abstract = state.abstract_model(model, 0, mup)
    return nnx.merge(graphdef, param_paths.map_with_path(lambda path, _: jnp.asarray(params[path]), abstract))


def from_big_vision(npz_path: str, model: ViTConfig):
    """A frx ViT carrying the weights of a big_vision ViT checkpoint; `model` must describe it
    (variant, patch, image size, pool, posemb, rep_size, num_classes). A mismatch is a one-line
    ConfigError naming the first parameter that does not fit."""
    return model_with_params(model, big_vision_params(npz_path, model))
