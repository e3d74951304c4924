"""Random-access data sources: records {"image": uint8 HxWx3 array or encoded bytes, "label": int
or a multi-hot float vector}.

`make_sources(cfg)` returns the training source and the evaluation sources that the data config
provides, keyed by split name ("train", "minival", "val", "v2", "real"). Sources: the embedded
synthetic set, scikit-learn's digits, image folders (`frx.data.folder`), TFDS ArrayRecord datasets
(`frx.data.tfds`), webdataset tar shards (`frx.data.tar_shards`), ImageNet-V2 and ImageNet-ReaL
(`frx.data.imagenet`), the embedded taxonomy set (`frx.data.synthetic_taxa`) and TreeOfLife-10M
shards (`frx.data.tree_of_life`); minival splits come from `frx.data.splits`. Image-text pairs ({"image",
"text"} records) come from the embedded captioned set (`frx.data.synthetic_captions`, which adds
labelled "heldout" and "seen" splits), img2dataset tar shards (`frx.data.caption_shards`) and TFRecord
files (`frx.data.tfrecord`).
"""

from __future__ import annotations

import os

import numpy as np

from frx.config import ConfigError, DataConfig
from frx.data.arrays import ArraySource, arrays_sources
from frx.data.folder import FolderSource, scan_folder
from frx.data.splits import holdout_per_class, split_train_minival
from frx.data.synthetic import SyntheticSource


def digits_sources(val_fraction: float = 0.2) -> dict[str, ArraySource]:
    """scikit-learn's 1,797 handwritten 8x8 digits (shipped inside the package, no download), as RGB
    uint8; 20% of each class is held out as "val"."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    images = np.repeat(images[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int64)
    train, val = holdout_per_class([f"digit-{i}" for i in range(len(labels))], labels.tolist(), val_fraction)
    return {
        "train": ArraySource(images[train], labels[train], 10, "digits/train"),
        "val": ArraySource(images[val], labels[val], 10, "digits/val"),
    }


# The evaluation splits a data config can provide (`eval.splits` names them; those the data lacks are
# left out, e.g. "real" without ImageNet-ReaL labels).
EVAL_SPLITS = ("val", "minival", "v2", "real")


def max_file_bytes(cfg: DataConfig) -> int:
    return int(cfg.max_file_mb * 2**20)


def _split_mode(cfg: DataConfig, default: str) -> str:
    return default if cfg.minival_split == "auto" else cfg.minival_split


def _minival_fraction(cfg: DataConfig) -> float:
    """data.minival_fraction, or big_vision's 1% when unset (arrays hold nothing out then: frx.data.arrays)."""
    return 0.01 if cfg.minival_fraction is None else cfg.minival_fraction


def folder_sources(cfg: DataConfig) -> dict:
    files, labels, classes = scan_folder(cfg.root)
    keys = [os.path.relpath(f, cfg.root) for f in files]
    train = FolderSource(files, labels, classes, cfg.root, max_bytes=max_file_bytes(cfg))
    sources = split_train_minival(train, _split_mode(cfg, "per_class"),
                                  _minival_fraction(cfg), keys=keys, labels=labels, subset=FolderSource.select)
    if cfg.val_root:
        sources["val"] = FolderSource(*scan_folder(cfg.val_root, classes), f"{cfg.val_root}:val",
                                      max_bytes=max_file_bytes(cfg))
    return _add_imagenet_evals(cfg, sources, len(classes))


def tfds_sources(cfg: DataConfig) -> dict:
    from frx.data import tfds

    directory = tfds.find_dataset_dir(cfg.root, cfg.tfds_name)
    train = tfds.TfdsSource(directory, "train")
    sources = split_train_minival(train, _split_mode(cfg, "tail"), _minival_fraction(cfg))
    try:
        sources["val"] = tfds.TfdsSource(directory, "validation", num_classes=train.num_classes)
    except ConfigError:
        pass  # a dataset without a validation split
    return _add_imagenet_evals(cfg, sources, train.num_classes, tfds_root=cfg.root)


def tar_sources(cfg: DataConfig) -> dict:
    from frx.data.tar_shards import TarShardSource

    train = TarShardSource(cfg.root, name="train")
    sources = split_train_minival(train, _split_mode(cfg, "hash"), _minival_fraction(cfg),
                                  keys=train.keys, labels=train.labels.tolist())
    if cfg.val_root:
        sources["val"] = TarShardSource(cfg.val_root, num_classes=train.num_classes, name="val")
    return _add_imagenet_evals(cfg, sources, train.num_classes)


def _add_imagenet_evals(cfg: DataConfig, sources: dict, num_classes: int, tfds_root: str | None = None) -> dict:
    """ImageNet-V2 ("v2") and ImageNet-ReaL ("real") when the config points at them, or when a
    TFDS data dir holds imagenet_v2 / imagenet2012_real."""
    from frx.data import imagenet, tfds

    v2_dir = cfg.v2_root if cfg.v2_root else tfds_root
    if cfg.v2_root and os.path.isfile(os.path.join(cfg.v2_root, "dataset_info.json")):  # a TFDS version folder
        sources["v2"] = tfds.TfdsSource(cfg.v2_root, "test", num_classes=num_classes)
    elif v2_dir and os.path.isdir(os.path.join(v2_dir, "imagenet_v2")):  # a TFDS data dir
        config = os.path.join(v2_dir, "imagenet_v2", "matched-frequency")  # TFDS's default config
        name = "imagenet_v2/matched-frequency" if os.path.isdir(config) else "imagenet_v2"
        sources["v2"] = tfds.TfdsSource(tfds.find_dataset_dir(v2_dir, name), "test", num_classes=num_classes)
    elif cfg.v2_root:
        sources["v2"] = imagenet.imagenet_v2_folder(cfg.v2_root, max_bytes=max_file_bytes(cfg))
    if cfg.real_json:
        if "val" not in sources:
            raise ConfigError("data.real_json scores the validation images, but no validation set is configured; "
                              "set --data.val_root")
        sources["real"] = imagenet.RealSource(sources["val"], imagenet.load_real_labels(cfg.real_json), num_classes)
    elif tfds_root and os.path.isdir(os.path.join(tfds_root, "imagenet2012_real")):
        real_dir = tfds.find_dataset_dir(tfds_root, "imagenet2012_real")
        sources["real"] = tfds.TfdsSource(real_dir, "validation", label_key="real_label", num_classes=num_classes,
                                          multi_label=True)
    return sources


def caption_sources(cfg: DataConfig, image_size: int) -> dict:
    """Image-text sources ({"image", "text"} records): the embedded captioned set (with its labelled
    zero-shot splits), img2dataset tar shards or TFRecord files; minival by a hash of the sample keys
    (tar) or record indices (TFRecord), and "val" from data.val_root."""
    if cfg.source == "synthetic_captions":
        from frx.data.synthetic_captions import synthetic_caption_sources

        return synthetic_caption_sources(cfg.synthetic, image_size)
    if cfg.source == "tar_captions":
        from frx.data.caption_shards import CaptionedTarSource as Source
    else:
        from frx.data.tfrecord import CaptionedTFRecordSource as Source
    train = Source(cfg.root, caption_key=cfg.caption_key, name="train")
    mode = _split_mode(cfg, "hash")
    if mode == "per_class":
        raise ConfigError("data.minival_split=per_class needs class labels; image-text pairs have none: use hash or tail")
    sources = split_train_minival(train, mode, cfg.minival_fraction, keys=getattr(train, "keys", None))
    if cfg.val_root:
        sources["val"] = Source(cfg.val_root, caption_key=cfg.caption_key, name="val")
    return sources


def taxa_sources(cfg: DataConfig, image_size: int, workdir: str | None) -> dict:
    """The embedded taxonomy set's train and val splits, sharing one class index (stored in the run)."""
    from frx.data import label_index, synthetic_taxa

    built = synthetic_taxa.build_index(cfg.taxa, *synthetic_taxa.draw_labels(cfg.taxa, "train"))
    index = label_index.stored_or_built(workdir, lambda: built)
    if index.paths != built.paths:
        raise ConfigError(f"the run folder's {label_index.FILE_NAME} was written for another data.taxa tree; "
                          "use a new --workdir")
    return {split: synthetic_taxa.TaxaSource(cfg.taxa, split, image_size, index) for split in ("train", "val")}


def make_sources(cfg: DataConfig, image_size: int, workdir: str | None = None) -> dict:
    """The sources of a data config, keyed by split; `image_size` is the resolution of the embedded
    sets; `workdir` is the run folder, where taxonomic sources keep their class index."""
    if cfg.source == "arrays":
        return arrays_sources(cfg)
    if cfg.source.endswith("_captions"):
        return caption_sources(cfg, image_size)
    if cfg.source == "synthetic":
        return {split: SyntheticSource(cfg.synthetic, split, image_size) for split in ("train", "val")}
    if cfg.source == "digits":
        return digits_sources()
    if cfg.source == "folder":
        return folder_sources(cfg)
    if cfg.source == "tfds":
        return tfds_sources(cfg)
    if cfg.source == "tar":
        return tar_sources(cfg)
    if cfg.source == "taxa":
        return taxa_sources(cfg, image_size, workdir)
    if cfg.source == "tol":
        from frx.data.tree_of_life import tol_sources

        return tol_sources(cfg, workdir)
    raise ConfigError(f"unknown data source {cfg.source!r}; use synthetic, digits, folder, tfds, tar, arrays, taxa, tol or a *_captions source")
