"""webdataset-style tar shards as a random-access source.

A shard is a plain tar file whose members are grouped into samples by key: the member path up to
the first dot of its file name (`train/n01440764_10026.jpg` and `train/n01440764_10026.cls` are one
sample). A sample needs one image member (.jpg/.jpeg/.png/.webp) and one label member:
`.cls` or `.txt` holding an integer, or `.json` holding an integer or {"label": int}.

Opening a source reads every tar header once (and the small label members) to build an index of
(shard, offset, size); images are then read with one positioned read each, so any record can be
fetched in any order by any worker process.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import re
import tarfile

import numpy as np

from frx.config import ConfigError
from frx.data.decode import BadImage

IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "webp")
LABEL_SUFFIXES = ("cls", "json", "txt")


def expand_shards(pattern: str) -> list[str]:
    """`/data/train-{00000..00146}.tar`, `{a,b}.tar` and shell globs -> existing shard paths, in order."""
    paths = [pattern]
    while True:
        expanded = []
        for path in paths:
            match = re.search(r"\{([^{}]*)\}", path)
            if match is None:
                expanded.append(path)
                continue
            body, head, tail = match.group(1), path[: match.start()], path[match.end() :]
            numeric = re.fullmatch(r"(\d+)\.\.(\d+)", body)
            if numeric:
                lo, hi = numeric.groups()
                width = len(lo) if lo.startswith("0") else 0
                items = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
            else:
                items = body.split(",")
            expanded.extend(head + item + tail for item in items)
        if expanded == paths:
            break
        paths = expanded
    found = list(itertools.chain.from_iterable(sorted(glob.glob(p)) if glob.has_magic(p) else [p] for p in paths))
    missing = [p for p in found if not os.path.isfile(p)]
    if missing or not found:
        raise ConfigError(f"tar shards {missing[:3] or [pattern]} not found; check the pattern {pattern!r}")
    return found


def _split_name(name: str) -> tuple[str, str]:
    folder, base = os.path.split(name)
    stem, _, suffix = base.partition(".")
    return os.path.join(folder, stem), suffix.lower()


def _parse_label(suffix: str, data: bytes, where: str) -> int:
    """The class of a label member, strictly: a decimal integer (`.cls`/`.txt`), or a JSON integer,
    alone or as {"label": int} / {"cls": int} (`.json`). 2.9, "2", 1e400 or true are refused, never
    rounded: a label that is not what it seems would train silently on the wrong class."""
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"label member {where} is not UTF-8 text ({data[:20]!r}); labels are integers") from None
    if suffix == "json":
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            value = value.get("label", value.get("cls"))
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    raise ConfigError(f"label member {where} does not hold an integer class ({text[:40]!r}); fix or remove it")


def scan_shard(path: str, text_members: tuple[str, ...] = (), label: bool = True) -> list[tuple[str, dict]]:
    """The samples of one shard in tar order: (key, {"image": (offset, size), "label": int,
    NAME: text for each member NAME in `text_members`}). Text members are matched on the whole
    name after the key (`taxonomic_name.txt` of `train/x1.taxonomic_name.txt`) and read as UTF-8;
    with `label`, a `.cls`/`.json`/`.txt` member that is not one of them is parsed as the class.

    A truncated shard (a copy cut short) keeps what it holds: an image whose bytes run past the end
    of the file stays in the index and is skipped when read (`data/skipped/corrupt`, once per epoch
    like any broken image); a sample whose label or text member is cut loses that member."""
    samples: dict[str, dict] = {}
    order: list[str] = []
    file_size = os.path.getsize(path)
    try:
        tar = tarfile.open(path, "r:")
    except tarfile.ReadError as e:
        raise ConfigError(f"{path} is not a tar shard ({e}); check the shard pattern") from None
    with tar:
        for member in members_until_cut(tar):
            if not member.isfile():
                continue
            key, suffix = _split_name(member.name)
            if key not in samples:
                samples[key] = {}
                order.append(key)
            sample = samples[key]
            kind = suffix.rsplit(".", 1)[-1]  # "seg.png" is a png field, as webdataset decodes it
            if kind in IMAGE_SUFFIXES and suffix not in text_members:
                sample.setdefault("image", (member.offset_data, member.size))
                continue
            if member.offset_data + member.size > file_size:
                continue  # a cut text member: the sample is incomplete, not mislabelled
            if suffix in text_members:
                sample[suffix] = tar.extractfile(member).read().decode("utf-8")
            elif label and kind in LABEL_SUFFIXES and "label" not in sample:
                data = tar.extractfile(member).read()
                sample["label"] = _parse_label(kind, data, f"{member.name} in {path}")
    return [(key, samples[key]) for key in order]


def members_until_cut(tar: tarfile.TarFile):
    """The members of an open tar file; a file cut short ends them where it ends (tarfile raises on
    the header it cannot reach)."""
    while True:
        try:
            member = tar.next()
        except tarfile.ReadError:
            return
        if member is None:
            return
        yield member


def index_shard(path: str) -> tuple[list[str], list[int], list[int], list[int]]:
    """(keys, image offsets, image sizes, labels) of the labelled images of one shard, in tar order."""
    keys, offsets, sizes, labels = [], [], [], []
    for key, sample in scan_shard(path):
        if "image" not in sample or "label" not in sample:
            continue  # e.g. a metadata member without an image, or an unlabelled image
        keys.append(key)
        offsets.append(sample["image"][0])
        sizes.append(sample["image"][1])
        labels.append(sample["label"])
    return keys, offsets, sizes, labels


class ShardReader:
    """Positioned reads of members of a list of shards; one file descriptor per shard and process."""

    def __init__(self, shards: list[str]):
        self.shards = shards
        self._fds: dict[int, int] = {}

    def __getstate__(self):  # file descriptors stay in their process
        return {**self.__dict__, "_fds": {}}

    def read(self, shard: int, offset: int, size: int) -> bytes:
        """The member's bytes; BadImage("corrupt") when the shard ends before them (a truncated copy)."""
        fd = self._fds.get(shard)
        if fd is None:
            fd = self._fds[shard] = os.open(self.shards[shard], os.O_RDONLY)
        data = os.pread(fd, size, offset)
        if len(data) < size:
            raise BadImage("corrupt", f"{self.shards[shard]} ends {size - len(data):,} bytes into this member "
                                      "(a truncated shard)")
        return data

    def __del__(self):
        for fd in getattr(self, "_fds", {}).values():
            try:
                os.close(fd)
            except OSError:
                pass


class TarShardSource:
    """Samples of webdataset-style tar shards: records {"image": encoded bytes, "label": int}."""

    def __init__(self, pattern: str, *, num_classes: int | None = None, name: str | None = None):
        self.shards = expand_shards(pattern)
        keys, shard_ids, offsets, sizes, labels = [], [], [], [], []
        for shard_id, path in enumerate(self.shards):
            k, o, s, lab = index_shard(path)
            keys += k
            shard_ids += [shard_id] * len(k)
            offsets += o
            sizes += s
            labels += lab
        if not keys:
            raise ConfigError(f"no labelled images ({'/'.join(IMAGE_SUFFIXES)} + {'/'.join(LABEL_SUFFIXES)}) in {pattern!r}")
        self.keys = keys
        self.labels = np.asarray(labels, np.int64)
        self._shard = np.asarray(shard_ids, np.int32)
        self._offset = np.asarray(offsets, np.int64)
        self._size = np.asarray(sizes, np.int64)
        self.num_classes = num_classes or int(self.labels.max()) + 1
        if self.labels.min() < 0 or self.labels.max() >= self.num_classes:
            raise ConfigError(f"labels of {pattern!r} span [{self.labels.min()}, {self.labels.max()}], "
                              f"outside [0, {self.num_classes})")
        self.name = name or pattern
        self._reader = ShardReader(self.shards)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict:
        data = self._reader.read(int(self._shard[index]), int(self._offset[index]), int(self._size[index]))
        return {"image": data, "label": int(self.labels[index])}

    def __repr__(self) -> str:
        return f"TarShardSource({self.name}, shards={len(self.shards)}, n={len(self)})"
