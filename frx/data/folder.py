"""Image folders `root/class_name/*.jpg`: the classes are the sorted sub-folder names, and records carry
the encoded file bytes, decoded by the `decode` op on the host workers."""

from __future__ import annotations

import os

from frx.config import ConfigError
from frx.data.files import DEFAULT_MAX_FILE_MB, read_file

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class FolderSource:
    """An image folder `root/class_name/*.jpg`: classes are the sorted sub-folder names; records carry
    the encoded file bytes, decoded by the `decode` op on the host workers."""

    def __init__(self, files: list[str], labels: list[int], classes: list[str], name: str, *,
                 max_bytes: int = int(DEFAULT_MAX_FILE_MB * 2**20)):
        self.files, self.labels, self.classes, self.name, self.max_bytes = files, labels, classes, name, max_bytes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        """The record of file `index`; a file that cannot be read raises decode.BadImage (frx.data.files)."""
        return {"image": read_file(self.files[index], self.max_bytes), "label": self.labels[index]}

    def select(self, indices, name: str) -> FolderSource:
        """A split that is a folder source itself, so that its `files` and `labels` are its own."""
        return FolderSource([self.files[i] for i in indices], [self.labels[i] for i in indices], self.classes, name,
                            max_bytes=self.max_bytes)

    def __repr__(self) -> str:
        return f"FolderSource({self.name}, n={len(self)}, classes={len(self.classes)})"


def scan_folder(root: str, classes: list[str] | None = None) -> tuple[list[str], list[int], list[str]]:
    """Lists (files, labels, classes) of an image folder, sorted for determinism."""
    if not os.path.isdir(root):
        raise ConfigError(f"image folder {root!r} does not exist; pass --data.root with root/class_name/*.jpg")
    found = sorted(e.name for e in os.scandir(root) if e.is_dir())
    classes = found if classes is None else classes
    missing = sorted(set(found) - set(classes))
    if missing:
        raise ConfigError(f"{root!r} has class folders {missing[:3]} that the training folder lacks")
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            if entry.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(folder, entry))
                labels.append(label)
    if not files:
        raise ConfigError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root!r}/CLASS_NAME/")
    return files, labels, classes
