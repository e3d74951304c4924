"""Class names and prompt templates for zero-shot classification, shipped as text files in
frx/evals/data/ (OpenAI's public lists as open_clip publishes them in
src/open_clip/zero_shot_metadata.py; the files name their source).

    imagenet_classnames()      the 1000 ImageNet-1k class names, class i = the i-th sorted synset
    templates(name)            "openai_imagenet" (80), "simple_imagenet" (7), "photo" (1); "{}" = class
"""

from __future__ import annotations

import functools
import importlib.resources

from frx.config import ConfigError

_TEMPLATE_FILES = {"openai_imagenet": "openai_imagenet_templates.txt",
                   "simple_imagenet": "simple_imagenet_templates.txt"}


@functools.cache
def _read(file_name: str) -> tuple[str, ...]:
    text = importlib.resources.files("frx.evals").joinpath("data", file_name).read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


def imagenet_classnames() -> tuple[str, ...]:
    """OpenAI's cleaned names of the ImageNet-1k classes, in class-index order."""
    return _read("imagenet_classnames.txt")


def templates(name: str) -> tuple[str, ...]:
    """Prompt templates with "{}" where the class name goes."""
    if name == "photo":
        return ("a photo of a {}.",)
    if name not in _TEMPLATE_FILES:
        raise ConfigError(f"unknown prompt templates {name!r}; use openai_imagenet, simple_imagenet or photo")
    return _read(_TEMPLATE_FILES[name])
