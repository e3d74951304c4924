"""Evaluators: what runs over a held-out split and reports `eval/SPLIT/METRIC`.

    split_sums       one pass over a split in padded batches, summing what a jitted step returns
    classification   top-1 / top-5 accuracy and cross-entropy (multi-hot labels for ImageNet-ReaL)
    embeddings       per-example outputs of a split collected on the host (the three below use it)
    zeroshot         classification by prompt templates (image-text models); prompts.py: class names, templates
    retrieval        image->text and text->image recall@1/5/10 (image-text models)
    fewshot          big_vision's closed-form ridge regression on frozen features, k shots per class (any model)

A task picks its evaluators by name (`get(name)`); each module exposes `make(...)`.
"""

from __future__ import annotations

import importlib


def get(name: str):
    """The evaluator module `frx.evals.NAME`."""
    return importlib.import_module(f"frx.evals.{name}")
