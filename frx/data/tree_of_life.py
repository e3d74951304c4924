"""TreeOfLife-10M-style webdataset shards (BioCLIP's `make_wds.py` layout) as a taxonomic source.

    frx train vit_b16_tol10m --data.root '/data/tol10m/train/shard-{000000..000163}.tar' \\
        --data.val_root '/data/tol10m/val/shard-{000000..000003}.tar' --data.catalog /data/tol10m/catalog.csv

A sample is `KEY.jpg` plus text members (frx.data.taxon_names). Its taxon comes from catalog.csv
when given (the row whose `treeoflife_id` is KEY; columns kingdom ... species), otherwise from the
sample's own `taxonTag.txt`, `taxonomic_name.txt` or `scientific_name.txt`, in that order; either
way the names are cleaned by BioCLIP's rules. Samples with no taxon are left out (counted in the
run header's source description).

The class index (frx.data.label_index) is built from the training samples' taxa once and stored in
the run folder; the scanned shard index (offsets and taxa of every sample) is cached there too
(`tol_index_SPLIT.npz`, reused while the shards' names, sizes and modification times are the same),
so a restart of a 10M-image run does not read every tar header again. Validation taxa the training
data lacks keep label -1 and are scored only at the ranks the index knows (`ranges_of_path`).

Records: {"image": JPEG bytes, "label": class id or -1, "ranks": int32 [7, 2]}. The source, not a
host op, maps taxon names to class ids: the mapping is the run's stored class index, which the source
builds or loads, and resolving every sample once when the shards are indexed keeps the names out of
the per-record work.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from frx.config import ConfigError
from frx.config.head import RANKS
from frx.data import label_index as label_index_lib
from frx.data import tar_shards
from frx.data.label_index import LabelIndex
from frx.data.taxon_names import MEMBER_PARSERS, normalize, path_of_members

CATALOG_KEY = "treeoflife_id"
CATALOG_RANKS = RANKS  # catalog.csv columns kingdom, phylum, class, order, family, genus, species


def read_catalog(path: str) -> dict[str, tuple[str, ...]]:
    """treeoflife_id -> cleaned taxon path, from BioCLIP's catalog.csv (any split)."""
    if not os.path.isfile(path):
        raise ConfigError(f"catalog {path!r} not found; pass --data.catalog with TreeOfLife-10M's catalog.csv")
    interned: dict[tuple, tuple] = {}
    taxa = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (CATALOG_KEY, *CATALOG_RANKS) if c not in (reader.fieldnames or ())]
        if missing:
            raise ConfigError(f"catalog {path!r} lacks the columns {missing}; expected BioCLIP's catalog.csv")
        for row in reader:
            taxon = normalize(*(row[c] for c in CATALOG_RANKS))
            taxa[row[CATALOG_KEY]] = interned.setdefault(taxon, taxon)
    return taxa


def _fingerprint(shards: list[str]) -> list:
    return [[p, os.stat(p).st_size, os.stat(p).st_mtime_ns] for p in shards]


def scan(shards: list[str], catalog: dict | None) -> dict:
    """{"keys", "shard", "offset", "size", "taxon" (index into "taxa"), "taxa", "skipped"} of every
    sample with an image and a taxon."""
    texts = () if catalog is not None else tuple(name for name, _ in MEMBER_PARSERS)
    keys, shard_ids, offsets, sizes, taxon_ids, skipped = [], [], [], [], [], 0
    taxa: dict[tuple, int] = {}
    for shard_id, path in enumerate(shards):
        for key, sample in tar_shards.scan_shard(path, texts, label=False):
            if "image" not in sample:
                continue
            taxon = catalog.get(os.path.basename(key)) if catalog is not None else path_of_members(sample)
            if taxon is None or not any(taxon):
                skipped += 1
                continue
            keys.append(key)
            shard_ids.append(shard_id)
            offsets.append(sample["image"][0])
            sizes.append(sample["image"][1])
            taxon_ids.append(taxa.setdefault(taxon, len(taxa)))
    return {"keys": np.asarray(keys, dtype=str), "shard": np.asarray(shard_ids, np.int32),
            "offset": np.asarray(offsets, np.int64), "size": np.asarray(sizes, np.int64),
            "taxon": np.asarray(taxon_ids, np.int32), "taxa": list(taxa), "skipped": skipped}


def scan_cached(shards: list[str], catalog_path: str | None, cache_file: str | None) -> dict:
    """`scan`, or its result cached in `cache_file` when the shards and catalog are unchanged."""
    fingerprint = {"shards": _fingerprint(shards), "catalog": _fingerprint([catalog_path]) if catalog_path else None}
    if cache_file and os.path.exists(cache_file):
        with np.load(cache_file, allow_pickle=False) as cached:
            if str(cached["fingerprint"]) == repr(fingerprint):
                taxa = [tuple(t) for t in cached["taxa"].tolist()]
                return {**{k: cached[k] for k in ("keys", "shard", "offset", "size", "taxon")},
                        "taxa": taxa, "skipped": int(cached["skipped"])}
    found = scan(shards, read_catalog(catalog_path) if catalog_path else None)
    if cache_file:
        import jax

        if jax.process_index() == 0:
            os.makedirs(os.path.dirname(cache_file), exist_ok=True)
            temporary = cache_file + ".tmp.npz"
            taxa = np.asarray(found["taxa"], dtype=str).reshape(-1, len(RANKS))
            np.savez(temporary, fingerprint=np.asarray(repr(fingerprint)), taxa=taxa, skipped=found["skipped"],
                     **{k: found[k] for k in ("keys", "shard", "offset", "size", "taxon")})
            os.replace(temporary, cache_file)
    return found


class TreeOfLifeSource:
    """Samples of ToL shards with their class (from `index`) and per-rank class ranges."""

    def __init__(self, shards: list[str], scanned: dict, index: LabelIndex, name: str):
        self.shards, self.name, self.label_index = shards, name, index
        self.keys = scanned["keys"]
        self._shard, self._offset, self._size = scanned["shard"], scanned["offset"], scanned["size"]
        taxon_class = np.array([index.class_of(t) for t in scanned["taxa"]], np.int64)
        self.labels = taxon_class[scanned["taxon"]] if len(scanned["taxon"]) else np.zeros(0, np.int64)
        # Taxa the index lacks (validation only) are scored at the ranks it knows.
        self._unseen_ranges = {i: index.ranges_of_path(t) for i, t in enumerate(scanned["taxa"]) if taxon_class[i] < 0}
        self._taxon = scanned["taxon"]
        self.skipped = scanned["skipped"]
        self._reader = tar_shards.ShardReader(shards)

    @property
    def num_classes(self) -> int:
        return self.label_index.num_classes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        image = self._reader.read(int(self._shard[index]), int(self._offset[index]), int(self._size[index]))
        label = int(self.labels[index])
        ranks = self.label_index.class_ranges[label] if label >= 0 else self._unseen_ranges[int(self._taxon[index])]
        return {"image": image, "label": label, "ranks": ranks}

    def __repr__(self) -> str:
        return f"TreeOfLifeSource({self.name}, shards={len(self.shards)}, n={len(self)})"


def tol_sources(cfg, workdir: str | None = None) -> dict:
    """{"train", "minival" (hash split of the training shards), "val"} for data.source=tol."""
    from frx.data.splits import split_train_minival

    shards = tar_shards.expand_shards(cfg.root)
    cache = os.path.join(workdir, "tol_index_train.npz") if workdir else None
    scanned = scan_cached(shards, cfg.catalog, cache)
    if not len(scanned["keys"]):
        raise ConfigError(f"no images with a taxon in {cfg.root!r}: a ToL shard sample needs KEY.jpg and "
                          "KEY.taxonTag.txt / taxonomic_name.txt / scientific_name.txt, or a --data.catalog row")

    def build():
        sample_taxa = [scanned["taxa"][t] for t in scanned["taxon"]]
        return LabelIndex.from_paths(sample_taxa)

    index = label_index_lib.stored_or_built(workdir, build)
    train = TreeOfLifeSource(shards, scanned, index, "train")
    if (train.labels < 0).any():
        raise ConfigError(f"{int((train.labels < 0).sum())} training samples have taxa that the run folder's "
                          f"{label_index_lib.FILE_NAME} lacks: the data changed since the run started; use a new --workdir")
    mode = "hash" if cfg.minival_split == "auto" else cfg.minival_split
    sources = split_train_minival(train, mode, cfg.minival_fraction, keys=train.keys.tolist(),
                                  labels=train.labels.tolist())
    if cfg.val_root:
        val_shards = tar_shards.expand_shards(cfg.val_root)
        val_cache = os.path.join(workdir, "tol_index_val.npz") if workdir else None
        sources["val"] = TreeOfLifeSource(val_shards, scan_cached(val_shards, cfg.catalog, val_cache), index, "val")
    return sources
