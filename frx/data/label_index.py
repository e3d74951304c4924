"""The class index of a taxonomic dataset: which taxon is class id c, and the tree above it.

A class is a distinct taxon path (kingdom, phylum, class, order, family, genus, species), with ""
where a rank has no name: BioCLIP counts TreeOfLife-10M's ~454K "taxa" this way, so a sample known
only down to its family is the class "...Cecidomyiidae, -, -". Classes are sorted by their path
(lexicographically, "" first), which makes every node of every rank a contiguous range of class
ids; the taxonomic loss then needs only each sample's [first, end) per rank (the record field
`ranks`, frx.heads.targets), and marginals are segment sums over `node_ids`.

A node is a path prefix, so equal names under different parents are different nodes (TreeOfLife
has hemihomonyms: one genus name in two kingdoms). Missing names make placeholder nodes ("genus
unknown under family F"), which keep every class at every rank while the samples' `ranks` mark the
rank as missing.

The index is built once per run (from a catalog, the shards, or the embedded tree) and stored in
the run folder as `label_index.json` (`save` / `load`), so class ids do not move when a run
resumes or is evaluated later.
"""

from __future__ import annotations

import bisect
import collections
import json
import os

import numpy as np

from frx.config import ConfigError
from frx.config.head import RANKS

FILE_NAME = "label_index.json"
FORMAT = "frx.label_index/1"
MISSING = np.zeros(2, np.int32)  # the (first, end) of a rank a sample has no name for


class LabelIndex:
    """Sorted taxon paths with per-class training counts, and the node tables derived from them."""

    def __init__(self, paths, counts=None):
        paths = [tuple(p) for p in paths]
        if any(len(p) != len(RANKS) for p in paths):
            raise ConfigError(f"every taxon path needs {len(RANKS)} names ({', '.join(RANKS)})")
        if paths != sorted(set(paths)):
            raise ConfigError("a label index needs distinct taxon paths in sorted order; build it with from_paths")
        if not paths:
            raise ConfigError("a label index needs at least one taxon")
        self.paths = paths
        self.counts = np.zeros(len(paths), np.int64) if counts is None else np.asarray(counts, np.int64)
        self._ids = {p: i for i, p in enumerate(paths)}
        self.node_ids, self.node_first, self.node_end = _node_tables(paths)
        self.known = np.array([[bool(p[r]) for p in paths] for r in range(len(RANKS))], bool).reshape(len(RANKS), -1)
        self.class_ranges = self._class_ranges()

    @classmethod
    def from_paths(cls, sample_paths) -> LabelIndex:
        """The index of the distinct paths among the samples', with how often each occurs."""
        counts = collections.Counter(tuple(p) for p in sample_paths)
        paths = sorted(counts)
        return cls(paths, [counts[p] for p in paths])

    # ----------------------------------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return len(self.paths)

    @property
    def num_nodes(self) -> tuple[int, ...]:
        return tuple(len(first) for first in self.node_first)

    def class_of(self, path) -> int:
        """The class id of a taxon path, -1 when the index does not have it."""
        return self._ids.get(tuple(path), -1)

    def _class_ranges(self) -> np.ndarray:
        ranges = np.zeros((self.num_classes, len(RANKS), 2), np.int32)
        for r in range(len(RANKS)):
            nodes = self.node_ids[r]
            ranges[:, r, 0] = np.where(self.known[r], self.node_first[r][nodes], 0)
            ranges[:, r, 1] = np.where(self.known[r], self.node_end[r][nodes], 0)
        return ranges

    def ranges_of_path(self, path) -> np.ndarray:
        """[R, 2] (first, end) class ids of the path's node at each rank: what a sample of a class the
        index lacks (an unseen validation taxon) can still be scored on at the higher ranks."""
        path = tuple(path)
        found = self.class_of(path)
        if found >= 0:
            return self.class_ranges[found]
        ranges = np.zeros((len(RANKS), 2), np.int32)
        for r in range(len(RANKS)):
            prefix = path[: r + 1]
            if not path[r]:
                continue
            first = bisect.bisect_left(self.paths, prefix)
            end = bisect.bisect_left(self.paths, prefix + ("\U0010ffff",))
            if first < end:
                ranges[r] = (first, end)
        return ranges

    def node_maps(self, width: int | None = None) -> np.ndarray:
        """[R, width] int32: class c's node at each rank; columns past the last class (a padded
        head) repeat the last node, so rows stay sorted."""
        width = width or self.num_classes
        maps = np.empty((len(RANKS), width), np.int32)
        maps[:, : self.num_classes] = self.node_ids
        maps[:, self.num_classes :] = self.node_ids[:, -1:]
        return maps

    def name(self, class_id: int) -> str:
        """A readable name: the path's non-empty names."""
        return " ".join(n for n in self.paths[class_id] if n)

    # ----------------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {"format": FORMAT, "ranks": list(RANKS), "classes": [list(p) for p in self.paths],
                "counts": self.counts.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> LabelIndex:
        if data.get("format") != FORMAT or data.get("ranks") != list(RANKS):
            raise ConfigError(f"not an frx label index (format {data.get('format')!r}); expected {FORMAT}")
        return cls([tuple(p) for p in data["classes"]], data["counts"])

    def save(self, folder: str) -> str:
        from frx import tracking

        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, FILE_NAME)
        tracking.write_json_atomic(path, self.to_json())
        return path

    @classmethod
    def load(cls, folder: str) -> LabelIndex | None:
        """The index stored in a run folder, or None when it has none yet."""
        path = os.path.join(folder, FILE_NAME)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return cls.from_json(json.load(f))


def _node_tables(paths):
    """(node id of each class per rank [R, C], first class of each node, end of each node)."""
    ids = np.zeros((len(RANKS), len(paths)), np.int32)
    firsts, ends = [], []
    for r in range(len(RANKS)):
        first, node = [0], 0
        for i in range(1, len(paths)):
            if paths[i][: r + 1] != paths[i - 1][: r + 1]:
                node += 1
                first.append(i)
            ids[r, i] = node
        firsts.append(np.asarray(first, np.int32))
        ends.append(np.asarray(first[1:] + [len(paths)], np.int32))
    return ids, firsts, ends


def stored_or_built(workdir: str | None, build) -> LabelIndex:
    """The run folder's index when it has one, else `build()` stored there (by process 0 only).

    Storing it makes class ids a property of the run: a resumed or re-evaluated run reads the
    same ids even if the catalog or shards changed (callers refuse training data the stored index
    does not cover).
    """
    stored = LabelIndex.load(workdir) if workdir else None
    if stored is not None:
        return stored
    index = build()
    if workdir and not (os.path.exists(workdir) and not os.path.isdir(workdir)):  # a file: preflight refuses it
        import jax

        if jax.process_index() == 0:
            index.save(workdir)
    return index


def class_counts(source, num_classes: int) -> np.ndarray:
    """Training count of each class [num_classes] int64 of a source (or a split of one) that lists
    its `labels` (taxa, tol, tar shards, image folders)."""
    from frx.data.splits import Subset

    base = source.source if isinstance(source, Subset) else source
    labels = getattr(base, "labels", None)
    if labels is not None:
        labels = np.asarray(labels, np.int64)
        labels = labels[source.indices] if isinstance(source, Subset) else labels
    if labels is None:
        raise ConfigError(f"{source!r} does not list its labels, which the unigram sampler counts; use "
                          "--head.sampler log_uniform or uniform")
    labels = labels[labels >= 0]
    return np.bincount(labels, minlength=num_classes)[:num_classes].astype(np.int64)
