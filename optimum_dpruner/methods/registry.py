"""The registry of pruning methods: names (MethodName values) to classes."""

from __future__ import annotations

from ..configuration import MethodName
from ..errors import ConfigError

__all__ = ["METHODS", "register_method", "get_method", "reconstructs", "build_method", "option_owners"]

METHODS: dict[str, type] = {}


def register_method(cls: type) -> type:
    """Class decorator: add a `PruningMethod` subclass under its `name` (must be a `MethodName` value, once)."""
    valid = {m.value for m in MethodName}
    if cls.name not in valid:
        raise ValueError(f"method name {cls.name!r} is not a MethodName value ({', '.join(sorted(valid))})")
    if cls.name in METHODS:
        raise ValueError(f"method {cls.name!r} is already registered by {METHODS[cls.name].__name__}")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type:
    """The class registered under `name`; a `ConfigError` lists the valid names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"method={name!r} is unknown; choose one of {', '.join(sorted(METHODS))}.") from None


def reconstructs(config) -> bool:
    """Whether a run with `config` updates the surviving weights by OBS: `config.reconstruction`, or the method's default."""
    return (config.reconstruction or get_method(config.method).default_reconstruction) == "obs"


def build_method(config):
    """The method instance a run with `config` prunes with: the registered class's choice for the config, wrapped in
    `ObsReconstruction` when the run reconstructs and the method does not update weights itself."""
    from .reconstruction import ObsReconstruction  # it wraps the registered classes: imported once they exist

    method = get_method(config.method).from_config(config)
    if reconstructs(config) and not method.updates_weights:
        method = ObsReconstruction(method)
    return method


def option_owners() -> dict[str, list[str]]:
    """Each config field that only some methods read (`own_options`) -> the names of those methods."""
    owners: dict[str, list[str]] = {}
    for name in sorted(METHODS):
        for option in METHODS[name].own_options:
            owners.setdefault(option, []).append(name)
    return owners
