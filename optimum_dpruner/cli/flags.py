"""Command-line flags generated from the fields of `DPrunerConfig`, and the merge with `--config`.

Every field becomes a flag named after it with dashes (`num_samples` -> `--num-samples`), typed after its
annotation and documented by its `help` metadata. Flags default to "not given", so that `--config` provides
the base values and only the flags actually typed override them.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Callable

from ..configuration import FIELD_CHOICES, DPrunerConfig

__all__ = ["AUTO_OR_BOOL_CHOICES", "CONFIG_FLAGS", "add_config_arguments", "config_from_args", "auto_or_bool"]

#: field name -> flag, for every `DPrunerConfig` field
CONFIG_FLAGS: dict[str, str] = {f.name: "--" + f.name.replace("_", "-") for f in dataclasses.fields(DPrunerConfig)}

#: the values `auto_or_bool` returns, as argparse `choices` (shown as {auto,true,false} by the metavar)
AUTO_OR_BOOL_CHOICES = ("auto", True, False)


def _typed(kind: type, what: str, example: Any) -> Callable[[str], Any]:
    """An argparse `type=` that rejects a bad value with the expected kind and an example."""

    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}, e.g. {example}") from None

    convert.__name__ = kind.__name__  # argparse names the type in some messages
    return convert


def auto_or_bool(text: str) -> str | bool:
    """An argparse `type=` for the `"auto" | True | False` options (`--add-bos auto|true|false`)."""
    value = {"auto": "auto", "true": True, "false": False}.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not auto, true or false")
    return value


def _base_type(annotation: Any) -> Any:
    """`float | None` -> `float`; other annotations unchanged."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _default_text(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING or f.default is None:
        return ""
    if isinstance(f.default, bool):
        return ""  # BooleanOptionalAction shows it
    return f" (default: {f.default})"


def add_config_arguments(parser: argparse.ArgumentParser, title: str = "pruning options (DPrunerConfig)") -> None:
    """Add one flag per `DPrunerConfig` field to `parser`, in an argument group."""
    group = parser.add_argument_group(title, "Each flag overrides the same key of --config.")
    hints = typing.get_type_hints(DPrunerConfig)
    helps = DPrunerConfig.field_help()
    for f in dataclasses.fields(DPrunerConfig):
        kind = _base_type(hints[f.name])
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": helps[f.name] + _default_text(f)}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            kwargs["help"] = helps[f.name] + f" (default: {'on' if f.default else 'off'})"
        elif typing.get_origin(kind) is list:
            kwargs.update(nargs="*", metavar="PATTERN")
        elif kind == str | bool:
            kwargs.update(type=auto_or_bool, choices=AUTO_OR_BOOL_CHOICES, metavar="{auto,true,false}")
        elif f.name in FIELD_CHOICES:
            kwargs["choices"] = list(FIELD_CHOICES[f.name])
        elif kind is int:
            kwargs.update(type=_typed(int, "an integer", f.default), metavar="N")
        elif kind is float:
            example = f.default if isinstance(f.default, float) else 0.5
            kwargs.update(type=_typed(float, "a number", example), metavar="X")
        else:
            kwargs["metavar"] = f.name.split("_")[-1].upper()
        group.add_argument(CONFIG_FLAGS[f.name], **kwargs)


def config_from_args(args: argparse.Namespace, config_path: str | None = None, preset: str = "default") -> DPrunerConfig:
    """The `DPrunerConfig` of a command line: the `preset` (`"paper"`: `DPrunerConfig.paper()`), overridden by
    `config_path` (if any), overridden by the flags typed.

    An N:M `--pattern` implies its sparsity: when the flags change the pattern but not `--sparsity`, the sparsity
    of the file is kept only if both patterns are unstructured.

    Raises:
        `ConfigError`: an invalid value or combination (the message names the option).
    """
    overrides = {name: getattr(args, name) for name in CONFIG_FLAGS if hasattr(args, name)}
    base: dict[str, Any] = DPrunerConfig.paper().to_dict() if preset == "paper" else {}
    if config_path is not None:
        base = {**base, **DPrunerConfig.from_pretrained(config_path).to_dict()}
    if base and "pattern" in overrides and "sparsity" not in overrides:
        if base.get("pattern", "unstructured") != "unstructured" or overrides["pattern"] != "unstructured":
            base.pop("sparsity", None)
    return DPrunerConfig.from_dict({**base, **overrides})
