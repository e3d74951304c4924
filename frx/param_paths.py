"""Parameter paths: the stable, readable names that rules match (weight decay, learning-rate
multipliers, frozen parameters, muP roles, sharding).

A path joins the pytree keys with "/", e.g. `blocks/3/attn/q/kernel`. Rules are (regex, value)
pairs matched with `re.fullmatch`; the first matching rule wins (big_vision's `wd_mults` convention).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax

T = TypeVar("T")


def path_str(keypath) -> str:
    """`(DictKey('blocks'), DictKey(3), DictKey('attn'), ...)` -> "blocks/3/attn/..."."""
    parts = []
    for key in keypath:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def map_with_path(fn: Callable[[str, Any], Any], tree):
    """Like jax.tree.map, but `fn` also receives each leaf's path string."""
    return jax.tree_util.tree_map_with_path(lambda kp, leaf: fn(path_str(kp), leaf), tree)


def all_paths(tree) -> list[str]:
    return [path_str(kp) for kp, _ in jax.tree_util.tree_leaves_with_path(tree)]


def first_match(rules: Sequence[tuple[str, T]], path: str, default: T) -> T:
    """The value of the first rule whose regex fully matches `path`, else `default`."""
    for pattern, value in rules:
        if re.fullmatch(pattern, path):
            return value
    return default


def tree_from_rules(rules: Sequence[tuple[str, T]], tree, default: T):
    """A tree with the structure of `tree` holding, per leaf, the first matching rule's value."""
    return map_with_path(lambda path, _: first_match(rules, path, default), tree)
