"""Calibration data: load texts (datasets, lists, files, folders, hub ids, `builtin:<name>`), tokenise, and cut the
seeded fixed-length windows every stage calibrates on. The bundled texts (`*.jsonl.gz`, see `README.md`) sit
beside this file."""

from . import calibration
from .calibration import *  # noqa: F401,F403

__all__ = list(calibration.__all__)
