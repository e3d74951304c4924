"""What a resumed run may change without saying so.

A run folder's config.json records the settings its checkpoints were trained with. Resuming it with
another batch size, learning rate or seed silently trains a different run under the old record, so
`frx train` compares the new settings with config.json and refuses differences in fields that change
the computation, naming them (`--resume.allow_changes` continues with the new values and records the
change in the run folder). Fields that only say where and how often things are written, how the
evaluation runs, or how the work is spread over processes and devices may change freely.
"""

from __future__ import annotations

import json

# Dotted field names (or section prefixes) that do not change what is computed.
FREE_TO_CHANGE = (
    "name", "workdir", "log", "eval", "dist", "mesh", "resume", "init",
    "ckpt.every_steps", "ckpt.every_minutes", "ckpt.keep", "ckpt.keep_every_steps", "ckpt.async_save",
    "ckpt.save_on_signal", "data.threads", "data.workers", "data.val_root", "data.v2_root", "data.real_json",
    "faults.max_skipped_steps", "fewshot", "contrastive.zeroshot_root", "contrastive.zeroshot_classnames",
    "contrastive.zeroshot_templates",
)


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_free(name: str) -> bool:
    return any(name == free or name.startswith(free + ".") for free in FREE_TO_CHANGE)


def computation_changes(old: dict, new: dict) -> dict[str, tuple]:
    """{dotted field: (old value, new value)} for the fields that change the computation; both dicts
    as `to_dict` writes them (normalised through `from_dict`, so fields added since compare as defaults)."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    return {name: (flat_old.get(name), flat_new.get(name)) for name in sorted(set(flat_old) | set(flat_new))
            if not _is_free(name) and flat_old.get(name) != flat_new.get(name)}


def describe(changes: dict[str, tuple]) -> str:
    return ", ".join(f"{name} {json.dumps(a)} -> {json.dumps(b)}" for name, (a, b) in changes.items())
