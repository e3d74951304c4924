"""`frx data preview`: a PNG grid of augmented samples from any source and pp string.

Each row is one record: its decoded original (letterboxed) and then `variants` independent draws
of the full pipeline (host ops with per-draw generators, then the device ops jitted, exactly as in
training). Float outputs (after value_range) are mapped back to 0..255 for display.
"""

from __future__ import annotations

import inspect
import os

import numpy as np

from frx.config import ConfigError, DataConfig


def guess_source(root: str | None) -> str:
    """synthetic without a root; tar for shard patterns; tfds for TFDS dirs; folder otherwise."""
    if root is None:
        return "synthetic"
    if root.endswith(".tar") or "{" in root or "*" in root:
        return "tar"
    if os.path.isfile(os.path.join(root, "dataset_info.json")) or any(
            os.path.isfile(os.path.join(root, name, v, "dataset_info.json"))
            for name in (os.listdir(root) if os.path.isdir(root) else [])
            for v in (os.listdir(os.path.join(root, name)) if os.path.isdir(os.path.join(root, name)) else [])):
        return "tfds"
    return "folder"


def _display(images: np.ndarray, pp) -> np.ndarray:
    """Device outputs -> uint8 for display, undoing the last value_range: [in_min, in_max] was mapped
    to [vmin, vmax], so map back with the op's own arguments, defaults included."""
    if images.dtype == np.uint8:
        return images
    from frx.data.device_ops import value_range

    signature = inspect.signature(value_range)
    bound = signature.bind()  # float outputs without a value_range: assume the op's default range
    for call in pp.device:
        if call.name == "value_range":
            bound = signature.bind(*call.args, **call.kwargs)
    bound.apply_defaults()
    vmin, vmax, in_min, in_max = (float(bound.arguments[k]) for k in ("vmin", "vmax", "in_min", "in_max"))
    pixels = in_min + (images - vmin) / (vmax - vmin) * (in_max - in_min)
    return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def _letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    h, w = size
    scale = min(h / image.shape[0], w / image.shape[1])
    new = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    resized = np.asarray(Image.fromarray(image).resize(new, Image.BILINEAR))
    canvas = np.full((h, w, 3), 255, np.uint8)
    top, left = (h - resized.shape[0]) // 2, (w - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def make_preview(source, pp_string: str, *, count: int = 6, variants: int = 5, seed: int = 0, gap: int = 4):
    """(grid image uint8, labels of the rows)."""
    import jax

    from frx.data.decode import decode_image
    from frx.data.pp import make_pipeline

    pp = make_pipeline(pp_string)
    host, device = pp.host_fn(), jax.jit(lambda images, key: pp.device_fn()({"image": images}, key)["image"])
    indices = np.linspace(0, len(source) - 1, min(count, len(source))).round().astype(int)
    records = [source[int(i)] for i in indices]
    columns = []
    for v in range(variants):
        batch = np.stack([host({"image": r["image"]}, np.random.default_rng([seed, int(i), v]))["image"]
                          for r, i in zip(records, indices)])
        columns.append(_display(np.asarray(device(batch, jax.random.PRNGKey(seed * 1000 + v))), pp))
    height, width = columns[0].shape[1:3]
    originals = [_letterbox(decode_image(r["image"]), (height, width)) for r in records]
    rows = len(records)
    grid = np.full((rows * (height + gap) + gap, (variants + 1) * (width + gap) + gap, 3), 255, np.uint8)
    for r in range(rows):
        tiles = [originals[r]] + [col[r] for col in columns]
        for c, tile in enumerate(tiles):
            y, x = gap + r * (height + gap), gap + c * (width + gap)
            grid[y : y + height, x : x + width] = tile
    labels = [r["label"] if np.ndim(r["label"]) == 0 else np.flatnonzero(r["label"]).tolist() for r in records]
    return grid, labels


def run(root: str | None, pp_string: str, *, source: str = "auto", split: str = "train", out: str = "preview.png",
        count: int = 6, variants: int = 5, seed: int = 0, image_size: int = 64) -> tuple[str, list]:
    from PIL import Image

    from frx.data.sources import make_sources

    kind = guess_source(root) if source == "auto" else source
    sources = make_sources(DataConfig(source=kind, root=root, minival_fraction=0), image_size)
    if split not in sources:
        raise ConfigError(f"the {kind} source has no split {split!r}; it has {sorted(sources)}")
    grid, labels = make_preview(sources[split], pp_string, count=count, variants=variants, seed=seed)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    Image.fromarray(grid).save(out)
    return out, labels
