"""The calibration-grid spectrum of RandAugment: what big_vision's randaug(2, 10) does to pixel values.

EIFY (github.com/EIFY/mup-vit, notebooks/RandAugmentOnCalibrationGrid.ipynb) ran big_vision's TF
`distort_image_with_randaugment(grid, 2, 10)` 100,000 times on a 224x224 black/white grid of 56-px
squares and counted the output pixel values. The grid stays grey, and each op leaves a fingerprint
(fill 128, SolarizeAdd's 110 and 220, Posterize's 240, Contrast's 66 from the 196 constant, ...).
`TF_REFERENCE_COUNTS` are those counts; `sample_spectrum` repeats the experiment with frx's JAX ops
and `exact_spectrum` computes the expected spectrum by enumerating every pair of ops and signs
(Cutout centres sampled), so frx's RandAugment can be compared with TF's line by line.
"""

from __future__ import annotations

import json
import os

import numpy as np

# (grey value -> pixel count) of big_vision's TF RandAugment(2, 10) over 100,000 draws on the grid,
# from the tf_counter output in EIFY/mup-vit notebooks/RandAugmentOnCalibrationGrid.ipynb (all
# pixels stayed grey: R = G = B). 100,000 draws x 50,176 pixels = 5,017,600,000.
TF_REFERENCE_DRAWS = 100_000
TF_REFERENCE_COUNTS = {
    0: 1822737431, 15: 19869696, 32: 9959936, 66: 27916988, 70: 6840, 80: 492480, 84: 478, 92: 49388,
    96: 10010112, 98: 17449600, 101: 169829, 110: 197108571, 119: 64157, 127: 56486751, 128: 714368785,
    137: 64224, 145: 19794432, 146: 50574, 155: 167247, 164: 49428, 173: 473, 187: 2626400, 188: 3111760,
    192: 2956576, 196: 19200, 197: 147200, 198: 447600, 199: 306080, 200: 44640, 201: 48400, 202: 47840,
    203: 35120, 204: 45520, 205: 27600, 206: 27280, 207: 72520, 208: 37280, 209: 10171364, 210: 39620,
    211: 58227, 212: 19200, 213: 54800, 214: 40204, 215: 57587, 216: 17484, 217: 24355, 218: 36105, 219: 47589,
    220: 10689714, 221: 26341, 222: 35710, 223: 30243, 224: 26880, 225: 26197, 226: 12044, 227: 9220,
    228: 9355, 229: 2695, 230: 5547, 231: 2668, 232: 2583, 233: 9389, 234: 4460, 237: 2058, 239: 1806,
    240: 218237258, 243: 28654651, 255: 1842426210,
}


def tf_reference_fractions() -> np.ndarray:
    counts = np.zeros(256)
    for value, count in TF_REFERENCE_COUNTS.items():
        counts[value] = count
    return counts / counts.sum()


def calibration_grid(size: int = 224, square: int = 56) -> np.ndarray:
    """size x size x 3 uint8 checkerboard of black and white squares, the top-left one black."""
    cells = (np.arange(size)[:, None] // square + np.arange(size)[None, :] // square) % 2
    return np.repeat((cells * 255).astype(np.uint8)[..., None], 3, axis=-1)


def sample_spectrum(num_draws: int, *, num_layers: int = 2, magnitude: float = 10, seed: int = 0,
                    batch: int = 128, bug_compat: bool = True, keep_columns: int = 512):
    """Runs randaug `num_draws` times on the grid. Returns (value counts [256], sorted-pixel columns
    of the first `keep_columns` draws [rows, columns], whether every pixel stayed grey)."""
    import jax
    import jax.numpy as jnp

    from frx.data import randaug

    grid = calibration_grid()
    run = jax.jit(lambda key, images: randaug.randaug(key, images, num_layers, magnitude, bug_compat=bug_compat))
    images = jnp.broadcast_to(jnp.asarray(grid), (batch,) + grid.shape)
    counts, columns, grey = np.zeros(256, np.int64), [], True
    key = jax.random.PRNGKey(seed)
    for start in range(0, num_draws, batch):
        out = np.asarray(run(jax.random.fold_in(key, start), images))[: num_draws - start]
        grey &= bool((out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all())
        counts += np.bincount(out[..., 0].ravel(), minlength=256)
        if len(columns) < keep_columns:
            columns.extend(_sorted_column(img[..., 0]) for img in out[: keep_columns - len(columns)])
    return counts, np.stack(columns, axis=1), grey


def _sorted_column(image: np.ndarray, rows: int = 224) -> np.ndarray:
    """An image's pixel values sorted, sampled at `rows` evenly spaced quantiles."""
    values = np.sort(image.ravel())
    return values[np.linspace(0, values.size - 1, rows).round().astype(int)]


def exact_spectrum(*, magnitude: float = 10, cutout_centers: int = 6, seed: int = 0, bug_compat: bool = True,
                   batch: int = 64) -> np.ndarray:
    """Expected value distribution of randaug(2, magnitude) on the grid: every ordered pair of the 16
    ops, both signs of the signed ops, and `cutout_centers` random Cutout centres, weighted by their
    probability. Returns fractions [256]."""
    import jax
    import jax.numpy as jnp

    from frx.data import randaug

    rng = np.random.default_rng(seed)
    size = calibration_grid().shape[0]

    def variants(op: str):  # (sign, centre y, centre x, probability given the op)
        if op in randaug.SIGNED_OPS:
            return [(1.0, 0, 0, 0.5), (-1.0, 0, 0, 0.5)]
        if op == "Cutout":
            return [(1.0, int(rng.integers(size)), int(rng.integers(size)), 1 / cutout_centers)
                    for _ in range(cutout_centers)]
        return [(1.0, 0, 0, 1.0)]

    per_op = [variants(op) for op in randaug.OPS]
    cases = [(o1, *v1[:3], o2, *v2[:3], v1[3] * v2[3] / 256)
             for o1 in range(16) for v1 in per_op[o1] for o2 in range(16) for v2 in per_op[o2]]
    cases = np.array(cases, np.float64)
    run = jax.jit(lambda images, draws: randaug.apply_layers(images, draws, magnitude, bug_compat=bug_compat))
    grid = calibration_grid()
    images = jnp.broadcast_to(jnp.asarray(grid), (batch,) + grid.shape)
    fractions = np.zeros(256)
    for start in range(0, len(cases), batch):
        chunk = cases[start : start + batch]
        padded = np.concatenate([chunk, np.repeat(chunk[:1], batch - len(chunk), axis=0)])
        draws = randaug.Draws(op=jnp.asarray(padded[:, [0, 4]].T, jnp.int32),
                              sign=jnp.asarray(padded[:, [1, 5]].T, jnp.float32),
                              center_y=jnp.asarray(padded[:, [2, 6]].T, jnp.int32),
                              center_x=jnp.asarray(padded[:, [3, 7]].T, jnp.int32))
        out = np.asarray(run(images, draws))[: len(chunk), ..., 0]
        for image, weight in zip(out, chunk[:, 8]):
            fractions += weight * np.bincount(image.ravel(), minlength=256) / image.size
    return fractions


def summarize(counts: np.ndarray, *, draws: int, settings: dict, top: int = 24) -> dict:
    """Summary statistics of a spectrum and its distance to the TF reference."""
    fractions = counts / counts.sum()
    reference = tf_reference_fractions()
    values = np.arange(256)
    mean = float((fractions * values).sum())
    order = np.argsort(-np.maximum(fractions, reference))[:top]
    return {
        **settings,
        "draws": draws,
        "pixels": int(counts.sum()),
        "distinct_values": int((counts > 0).sum()),
        "mean": mean,
        "std": float(np.sqrt((fractions * (values - mean) ** 2).sum())),
        "fraction_black": float(fractions[0]),
        "fraction_white": float(fractions[255]),
        "fraction_fill_128": float(fractions[128]),
        "tf_reference_draws": TF_REFERENCE_DRAWS,
        "total_variation_to_tf": float(0.5 * np.abs(fractions - reference).sum()),
        "top_values": [{"value": int(v), "frx": float(fractions[v]), "tf": float(reference[v])} for v in order],
    }


def write_report(out_dir: str, counts: np.ndarray, columns: np.ndarray | None, summary: dict) -> list[str]:
    """spectrum.png (sorted-pixel spectrum image and value histogram vs TF) and spectrum.json."""
    from frx import plots

    plt = plots.pyplot()
    os.makedirs(out_dir, exist_ok=True)
    fractions = counts / counts.sum()
    reference = tf_reference_fractions()
    panels = 2 if columns is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), squeeze=False)
    if columns is not None:
        order = np.argsort(columns.mean(axis=0), kind="stable")
        axes[0, 0].imshow(columns[:, order], cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="nearest")
        axes[0, 0].set(title=f"sorted pixels of {columns.shape[1]} draws (columns by mean)",
                       xlabel="draw", ylabel="pixel quantile")
    ax = axes[0, -1]
    values = np.arange(256)
    ours = f"frx ({summary['draws']} draws)" if summary["draws"] else "frx (every op pair enumerated)"
    ax.bar(values, fractions, width=1.0, color="tab:blue", label=ours)
    shown = reference > 0
    ax.plot(values[shown], reference[shown], "rx", ms=4, label=f"big_vision TF ({TF_REFERENCE_DRAWS} draws)")
    ax.set(yscale="log", xlabel="grey value", ylabel="fraction of pixels", xlim=(-2, 257),
           title=f"randaug({summary['num_layers']}, {summary['magnitude']}) on the calibration grid; "
                 f"TV distance {summary['total_variation_to_tf']:.4f}")
    ax.legend(loc="upper center")
    fig.tight_layout()
    png = os.path.join(out_dir, "spectrum.png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    path = os.path.join(out_dir, "spectrum.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    return [png, path]
