"""Evaluators: what runs over a held-out split and reports `eval/SPLIT/METRIC`.

    split_sums       one pass over a split in padded batches, summing what a jitted step returns
    classification   top-1 / top-5 accuracy and cross-entropy (multi-hot labels for ImageNet-ReaL)

A task picks its evaluators by name (`get(name)`); each module exposes `make(...)`.
"""

from __future__ import annotations

import importlib


def get(name: str):
    """The evaluator module `frx.evals.NAME`."""
    return importlib.import_module(f"frx.evals.{name}")
