"""What every configuration section shares: the error type and the checks of single fields.

Each section is a frozen dataclass with a `validate(prefix)` method next to its fields; checks that
span sections live in `frx.config.train`. This package imports no JAX and nothing else from frx, so
that `frx --help` and config parsing stay instant (the architecture test enforces it).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from typing import Literal


class ConfigError(ValueError):
    """A configuration that cannot run; the message is one line that names the fix."""


def count_set(*values) -> int:
    return sum(v is not None for v in values)


def check_fields(section, prefix: str = "") -> None:
    """Field types that every section shares: a Literal field holds one of its choices (the CLI
    checks this; Python callers may not), and no float field is NaN or infinite (such a value passes
    every comparison-based range check and then poisons the run)."""
    hints = typing.get_type_hints(type(section))
    for field in dataclasses.fields(section):
        value, hint = getattr(section, field.name), hints[field.name]
        name = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            check_fields(value, f"{name}.")
        elif typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
            choices = ", ".join(map(str, typing.get_args(hint)))
            raise ConfigError(f"{name} must be one of {choices}; got {value!r}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value}")


def check_positive(name: str, value) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {value}")


def check_regexes(field: str, patterns) -> None:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ConfigError(f"invalid parameter regex {pattern!r} in {field}: {e}") from None
