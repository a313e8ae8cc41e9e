"""Calibration data: load texts (datasets, lists, files, folders, hub ids, `builtin:<name>`), tokenise, and cut the
seeded fixed-length windows every stage calibrates on. The bundled texts (`*.jsonl.gz`, see `README.md`) sit
beside this file."""

from .calibration import (
    BUILTIN_DATASETS,
    builtin_path,
    calibration_samples,
    check_seq_len,
    iter_texts,
    load_texts,
    max_sequence_length,
    tokenizer_adds_bos,
    window_bos_id,
)

__all__ = [
    "BUILTIN_DATASETS",
    "builtin_path",
    "load_texts",
    "iter_texts",
    "calibration_samples",
    "max_sequence_length",
    "tokenizer_adds_bos",
    "window_bos_id",
    "check_seq_len",
]
