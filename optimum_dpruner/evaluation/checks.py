"""Checks of evaluation arguments: counts, and lengths against the model's maximum positions (one-line errors)."""

from __future__ import annotations

from typing import Any

from ..data.calibration import max_sequence_length
from ..errors import ConfigError

__all__ = ["positive_int", "model_positions", "fit_to_model"]


def positive_int(name: str, value: Any, allow_none: bool = True, example: int = 8) -> int | None:
    """`value` if it is a positive `int` (or `None` when `allow_none`); else a `ConfigError` naming `name` and the fix."""
    if value is None and allow_none:
        return None
    none = " (or None)" if allow_none else ""
    if isinstance(value, bool) or not isinstance(value, int):
        hint = f"{name}={int(value)}" if isinstance(value, str) and value.strip().isdigit() else f"e.g. {name}={example}"
        raise ConfigError(f"{name}={value!r} is a {type(value).__name__}; pass a positive int{none}, {hint}.")
    if value < 1:
        raise ConfigError(f"{name}={value} must be a positive int{none}; pass e.g. {name}={example}.")
    return value


def model_positions(model) -> int | None:
    """The most positions the model accepts (`max_position_embeddings`, `n_positions`, ...), `None` when unknown."""
    config = getattr(model, "config", None)
    return max_sequence_length(config) if config is not None else None


def fit_to_model(model, name: str, value: int | None, default: int) -> int:
    """A length of `name` tokens that the model's positions hold.

    `None` gives `default`, lowered to the model's maximum positions when it has fewer; an explicit `value` past
    them is a `ConfigError` (it would index past the position embeddings).
    """
    limit = model_positions(model)
    if value is None:
        return default if limit is None else min(default, limit)
    positive_int(name, value, allow_none=False, example=default)
    if limit is not None and value > limit:
        raise ConfigError(f"{name}={value} exceeds the model's {limit} positions; pass {name}={limit} or less.")
    return value
