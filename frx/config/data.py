"""The data section: where records come from and the op strings that prepare them."""

from __future__ import annotations

import dataclasses
from typing import Literal

from frx.config.base import ConfigError
from frx.config.taxa import TaxaConfig


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """The embedded dataset: shapes x colours x textures, generated from a seed (no download)."""

    train_size: int = 20_000
    """Number of training images (the stream repeats, reshuffled, after that many)."""
    val_size: int = 2_000
    """Number of held-out validation images (drawn from a separate seed stream)."""
    seed: int = 0
    """Seed of the generator; the same seed gives the same images on every machine."""
    num_shapes: int = 4
    """Shapes (circle, square, triangle, cross, ring, diamond, bar, star), taken in that order."""
    num_colours: int = 2
    """Colour families (red, green, blue, yellow), taken in that order."""
    num_textures: int = 2
    """Fill textures (solid, stripes, checks), taken in that order."""
    holdout: int = 6
    """synthetic_captions: combination (shape s, colour c, texture t) never appears in training when (s + c + t) % holdout == 0, so zero-shot on it needs composition (0 holds out none)."""

    @property
    def num_classes(self) -> int:
        return self.num_shapes * self.num_colours * self.num_textures

    def validate(self, prefix: str = "data.synthetic") -> None:
        if self.train_size < 1 or self.val_size < 0:
            raise ConfigError(f"{prefix}.train_size must be >= 1 and val_size >= 0, got {self.train_size}, {self.val_size}")
        for name, most in (("num_shapes", 8), ("num_colours", 4), ("num_textures", 3)):
            if not 1 <= getattr(self, name) <= most:
                raise ConfigError(f"{prefix}.{name} must lie in 1..{most}, got {getattr(self, name)}")
        if self.holdout < 0:
            raise ConfigError(f"{prefix}.holdout must be >= 0 (0 holds out no combination), got {self.holdout}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where records come from and how the host prepares them.

    `pp_train` / `pp_eval` are big_vision-style op strings acting on the fields of a record
    (`image` unless an op is given `key=`). Host ops (decode, crops, flip) come first and produce
    fixed-size arrays; device ops (value_range, randaug, ...) then run inside the jitted step.
    """

    source: Literal["synthetic", "digits", "folder", "tfds", "tar", "arrays", "taxa", "tol", "synthetic_captions",
                    "tar_captions", "tfrecord_captions"] = "synthetic"
    """Embedded synthetic set, scikit-learn's digits, an image folder `root/class_name/*.jpg`, a TFDS data dir prepared as ArrayRecord, webdataset-style tar shards, arrays in an .npz (frx.data.arrays), the embedded many-class set with a taxonomy (taxa), TreeOfLife-10M-style webdataset shards (tol); image-text pairs: the embedded captioned set, img2dataset tar shards or TFRecord files."""
    root: str | None = None
    """Image-folder root (folder), TFDS data dir (tfds), shard pattern such as `/data/train-{0000..0146}.tar` (tar, tol, tar_captions), `/data/{00000..00099}.tfrecord` (tfrecord_captions), or FILE.npz (arrays)."""
    val_root: str | None = None
    """Validation images evaluated as "val": a folder with the training class sub-folders, or a tar shard pattern (TFDS uses its validation split)."""
    tfds_name: str = "imagenet2012"
    """Dataset inside the TFDS data dir for source=tfds (optionally NAME/CONFIG)."""
    v2_root: str | None = None
    """ImageNet-V2 for the "v2" eval: its folder (sub-folders 0..999) or a TFDS data dir; source=tfds also looks for imagenet_v2 in its root."""
    real_json: str | None = None
    """ImageNet-ReaL labels (real.json) of the validation images for the "real" eval; source=tfds also uses a prepared imagenet2012_real."""
    minival_fraction: float | None = None
    """Fraction of the training images held out as "minival" (0 keeps them all for training); unset: 0.01 (big_vision), none for arrays."""
    minival_split: Literal["auto", "per_class", "hash", "tail"] = "auto"
    """How minival is chosen: per_class (exact per class), hash (balanced in expectation, any order), tail (big_vision's train[99%:]); auto = per_class for folders and arrays, tail for TFDS, hash for tar."""
    pp_train: str = "decode|random_resized_crop(224)|flip_lr|value_range(-1,1)"
    """Training preprocessing ops, host ops first (see `frx.data.pp`)."""
    pp_eval: str = "decode|resize_small(256)|central_crop(224)|value_range(-1,1)"
    """Evaluation preprocessing ops."""
    mixup_p: float = 0.0
    """Mixup Beta(p, p) concentration; 0 turns mixup off (big_vision uses 0.2)."""
    caption_key: str | None = None
    """Where captions are: tar_captions reads the `.txt` member, else this field of the `.json` member (default "caption"); tfrecord_captions reads this feature (default "txt", img2dataset's, then "caption")."""
    synthetic: SyntheticConfig = SyntheticConfig()
    """Settings of the embedded synthetic dataset."""
    max_file_mb: float = 64.0
    """Files larger than this many MiB are skipped and counted (data/skipped/too_large) without being read."""
    max_pixels: int = 50_000_000
    """Images with more pixels are skipped from their header (too_large) unless an op string gives decode(max_pixels=)."""
    taxa: TaxaConfig = TaxaConfig()
    """Settings of the embedded many-class dataset with a taxonomy (source=taxa)."""
    catalog: str | None = None
    """tol: BioCLIP's catalog.csv (treeoflife_id, kingdom ... species) giving each sample's taxon; without it the names are read from the shards' text members."""
    workers: int | Literal["auto"] = 0
    """Host worker processes for decoding (0 = threads in the training process); auto measures the host ops
    at start-up and decides (frx.data.host_sizing: 0 on a CPU backend or when threads scale)."""
    threads: int = 2
    """Prefetch threads that prepare batches ahead of the training step."""

    def validate(self, prefix: str = "data") -> None:
        for source in ("folder", "tfds", "tar", "arrays", "tol", "tar_captions", "tfrecord_captions"):
            if self.source == source and not self.root:
                raise ConfigError(f"{prefix}.source={source} needs --{prefix}.root {_ROOT_HINTS[source]}")
        if self.minival_split == "per_class" and self.source == "tfds":  # tar shards: labels come with the index
            raise ConfigError(f"{prefix}.minival_split=per_class needs labels up front, which {prefix}.source=tfds "
                              "does not read before training; use tail (big_vision's split) or hash")
        if self.minival_fraction is not None and not 0 <= self.minival_fraction < 1:
            raise ConfigError(f"{prefix}.minival_fraction must lie in [0, 1), got {self.minival_fraction}")
        if self.mixup_p < 0:
            raise ConfigError(f"{prefix}.mixup_p must be >= 0, got {self.mixup_p}")
        if self.source in ("synthetic", "synthetic_captions"):
            self.synthetic.validate(f"{prefix}.synthetic")
        if not self.max_file_mb > 0 or self.max_pixels < 1:
            raise ConfigError(f"{prefix}.max_file_mb and {prefix}.max_pixels must be positive, got "
                              f"{self.max_file_mb}, {self.max_pixels}")
        if self.caption_key is not None and not self.caption_key:
            raise ConfigError(f"{prefix}.caption_key is empty; leave it out for the default field")
        if self.source == "taxa":
            self.taxa.validate(f"{prefix}.taxa")
        if (self.workers != "auto" and self.workers < 0) or self.threads < 0:
            raise ConfigError(f"{prefix}.workers (a number or auto) and {prefix}.threads must be >= 0")


_ROOT_HINTS = {
    "folder": "pointing at root/class_name/*.jpg",
    "tfds": "pointing at the TFDS data dir (holding imagenet2012/)",
    "tar": "with a shard pattern such as /data/train-{0000..0146}.tar",
    "arrays": "FILE.npz with arrays image (uint8 N,H,W,3) and label (int N)",
    "tar_captions": "with a shard pattern such as /data/cc12m/{00000..01242}.tar",
    "tfrecord_captions": "with a file pattern such as /data/laion/{00000..00099}.tfrecord",
    "tol": "with a shard pattern such as /data/tol10m/train/shard-{000000..000163}.tar",
}
