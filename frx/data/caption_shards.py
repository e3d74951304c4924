"""Image-text pairs from webdataset-style tar shards, as img2dataset and open_clip write and read them.

A sample is the members sharing a key (the path up to the first dot of the file name): one image
(`jpg`, `jpeg`, `png` or `webp`, open_clip's "jpg;png;jpeg;webp") and its caption, the `txt` member
(img2dataset writes it) or, without one, a field of the `json` member (`caption` unless
data.caption_key says otherwise). Opening a source reads every tar header once (and the json members
of samples without a txt); images and captions are then read with one positioned read each, so any
record can be fetched in any order by any worker. Samples missing an image or a caption are left out
and counted (`incomplete`); images that cannot be decoded are skipped and counted by the training
stream like any other bad image (frx.data.pipeline).
"""

from __future__ import annotations

import json
import os
import tarfile

import numpy as np

from frx.config import ConfigError
from frx.data.tar_shards import IMAGE_SUFFIXES, ShardReader, expand_shards, members_until_cut

DEFAULT_JSON_FIELD = "caption"


def _key_and_suffix(name: str) -> tuple[str, str]:
    folder, base = os.path.split(name)
    stem, _, suffix = base.partition(".")
    return os.path.join(folder, stem), suffix.lower().rsplit(".", 1)[-1]


def _json_caption(data: bytes, field: str) -> str | None:
    try:
        value = json.loads(data.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    caption = value.get(field) if isinstance(value, dict) else None
    return caption if isinstance(caption, str) else None


def index_caption_shard(path: str, json_field: str) -> tuple[list, int]:
    """([(key, image offset, image size, caption offset, caption size, caption from json or None)], number
    of incomplete samples) of one shard, in tar order."""
    samples: dict[str, dict] = {}
    file_size = os.path.getsize(path)
    with tarfile.open(path, "r:") as tar:
        for member in members_until_cut(tar):  # a truncated shard: a cut image is skipped when read (corrupt)
            if not member.isfile():
                continue
            key, suffix = _key_and_suffix(member.name)
            sample = samples.setdefault(key, {})
            if suffix in IMAGE_SUFFIXES and "image" not in sample:
                sample["image"] = (member.offset_data, member.size)
            elif suffix == "txt" and "txt" not in sample:
                sample["txt"] = (member.offset_data, member.size)
            elif suffix == "json" and "json" not in sample and member.offset_data + member.size <= file_size:
                sample["json"] = tar.extractfile(member).read()
    rows, incomplete = [], 0
    for key, sample in samples.items():
        text = sample.get("txt")
        from_json = None if text else (_json_caption(sample["json"], json_field) if "json" in sample else None)
        if "image" not in sample or (text is None and from_json is None):
            incomplete += 1
            continue
        rows.append((key, *sample["image"], *(text or (0, 0)), from_json))
    return rows, incomplete


class CaptionedTarSource:
    """Image-text pairs of webdataset tar shards: records {"image": encoded bytes, "text": str}."""

    def __init__(self, pattern: str, *, caption_key: str | None = None, name: str | None = None):
        self.shards = expand_shards(pattern)
        json_field = caption_key or DEFAULT_JSON_FIELD
        keys, shard_ids, columns, json_captions, self.incomplete = [], [], [], {}, 0
        for shard_id, path in enumerate(self.shards):
            rows, incomplete = index_caption_shard(path, json_field)
            self.incomplete += incomplete
            for key, image_offset, image_size, text_offset, text_size, from_json in rows:
                if from_json is not None:
                    json_captions[len(keys)] = from_json
                keys.append(key)
                shard_ids.append(shard_id)
                columns.append((image_offset, image_size, text_offset, text_size))
        if not keys:
            raise ConfigError(f"no image-text samples ({'/'.join(IMAGE_SUFFIXES)} + txt, or json with a "
                              f"{json_field!r} field) in {pattern!r}")
        self.keys = keys
        self._shard = np.asarray(shard_ids, np.int32)
        self._columns = np.asarray(columns, np.int64)
        self._json_captions = json_captions
        self.name = name or pattern
        self._reader = ShardReader(self.shards)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict:
        shard = int(self._shard[index])
        image_offset, image_size, text_offset, text_size = (int(v) for v in self._columns[index])
        text = self._json_captions.get(index)
        if text is None:
            text = self._reader.read(shard, text_offset, text_size).decode("utf-8", errors="replace").strip()
        return {"image": self._reader.read(shard, image_offset, image_size), "text": text}

    def __repr__(self) -> str:
        return f"CaptionedTarSource({self.name}, shards={len(self.shards)}, n={len(self)})"
