"""Check a pruned model (in memory or on disk) against its sparsity metadata.

Fine-tuning without re-masking or merging LoRA adapters (W + B·A is dense) fills the zeros back in, silently.
`verify_sparsity` recounts the zeros of every target matrix listed under `config.json["dpruner_sparsity"]` and,
for an N:M pattern, checks every group of M consecutive input weights.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from ..configuration import parse_pattern
from ..errors import CheckpointError, ConfigError
from ..methods.masks import comparison_groups
from ..runtime.offload import parameter_value
from ..tables import format_table
from .compression import read_weights
from .metadata import SPARSITY_KEY, read_sparsity_metadata

__all__ = ["verify_sparsity", "SparsityCheck", "MatrixCheck", "minimum_zeros"]


@dataclass
class MatrixCheck:
    """One target matrix: the sparsity recorded at save time, the sparsity found, and broken N:M groups.

    Args:
        name (`str`): module name (e.g. `"model.layers.0.mlp.up_proj"`).
        shape (`tuple[int, ...]`): weight shape, `()` when the matrix is missing.
        expected (`float`): sparsity recorded in the metadata.
        actual (`float`, *optional*): sparsity found; `None` when the matrix is missing.
        requested (`float`, *optional*): sparsity the run was asked for (`None` in metadata that does not say).
        nm_violations (`int`, *optional*, defaults to 0): N:M groups with fewer than M - N zeros.
        problem (`str`, *optional*): what is wrong, `None` when the matrix is fine.
    """

    name: str
    shape: tuple[int, ...]
    expected: float
    actual: float | None
    nm_violations: int = 0
    problem: str | None = None
    requested: float | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class SparsityCheck:
    """The result of `verify_sparsity`.

    Args:
        source (`str`): what was checked (a folder or a model class name).
        method (`str`, *optional*): pruning method from the metadata.
        pattern (`str`, *optional*): `"unstructured"` or `"N:M"` from the metadata.
        rows (`list[MatrixCheck]`): one row per target matrix.
        problems (`list[str]`): one line per problem found; empty when the weights match the metadata.
    """

    source: str
    method: str | None = None
    pattern: str | None = None
    rows: list[MatrixCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """`True` when every target matrix kept its recorded sparsity (and N:M pattern)."""
        return not self.problems

    def table(self, max_rows: int | None = None) -> str:
        """A plain-text table: one row per matrix (problems first when rows are cut), then the verdict."""
        rows = sorted(self.rows, key=lambda r: r.ok) if max_rows is not None else self.rows
        shown = rows if max_rows is None else rows[:max_rows]
        cells = [
            (r.name, f"{r.expected:.4f}", f"{r.actual:.4f}" if r.actual is not None else "-", r.nm_violations,
             "ok" if r.ok else "LOST")
            for r in shown
        ]
        lines = [
            f"source={self.source} method={self.method} pattern={self.pattern}",
            format_table(cells, ("matrix", "expected", "actual", "N:M broken", "status"), align="lrrrl", rule=False),
        ]
        if len(shown) < len(rows):
            lines.append(f"... {len(rows) - len(shown)} more matrices")
        lines.append("OK: every target matrix matches the metadata." if self.ok else f"{len(self.problems)} problem(s):")
        lines += [f"- {p}" for p in self.problems]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table(max_rows=40)


def minimum_zeros(
    shape: tuple[int, ...],
    sparsity: float,
    pattern: str | None = None,
    granularity: str | None = "layer",
    block_size: int = 128,
) -> int:
    """The fewest zeros a matrix pruned to `sparsity` may hold: the requested fraction, less rounding.

    Each comparison group rounds its number of pruned weights to an integer, so a group may prune up to one weight
    fewer than `sparsity` x its size; an N:M pattern is exact (M - N zeros in every group of M).

    Args:
        shape (`tuple[int, ...]`): the weight's shape, `(d_out, d_in)`.
        sparsity (`float`): the requested fraction of zeros.
        pattern (`str`, *optional*): `"unstructured"` or `"N:M"`.
        granularity (`str`, *optional*, defaults to `"layer"`): the comparison group; `None` gives the loosest bound.
        block_size (`int`, *optional*, defaults to 128): columns per block.
    """
    d_out = shape[0] if shape else 1
    numel = math.prod(shape)
    d_in = numel // d_out if d_out else 0
    nm = parse_pattern(pattern or "unstructured")
    if nm is not None:
        n, m = nm
        return numel // m * (m - n)
    return max(0, math.floor(sparsity * numel) - comparison_groups(d_out, d_in, granularity, block_size))


def _model_weights(model, names: list[str]) -> Iterator[tuple[str, torch.Tensor | None]]:
    for name in names:
        try:
            yield name, parameter_value(model.get_submodule(name))  # offloaded: read through accelerate
        except AttributeError:
            yield name, None


def _folder_weights(folder: str, names: list[str]) -> Iterator[tuple[str, torch.Tensor | None]]:
    found = {key[: -len(".weight")]: tensor for key, tensor in read_weights(folder, [f"{n}.weight" for n in names])}
    for name in names:
        yield name, found.pop(name, None)


def _check_matrix(
    name: str, weight: torch.Tensor | None, expected: float, nm, tolerance: float, metadata: dict[str, Any]
) -> MatrixCheck:
    requested = metadata.get("target_sparsity")
    if weight is None:
        return MatrixCheck(name, (), expected, None, problem=f"{name}: listed in the metadata but not in the weights", requested=requested)
    zeros = weight.eq(0)
    actual = float(zeros.sum()) / weight.numel()
    row = MatrixCheck(name, tuple(weight.shape), expected, actual, requested=requested)
    problems = []
    nan, inf = int(weight.isnan().sum()), int(weight.isinf().sum())
    if nan or inf:  # a zero count says nothing about these: the model's outputs are NaN
        problems.append(f"holds {nan} NaN and {inf} inf values (of {weight.numel()}); the weights are broken, not just dense")
    if actual < expected - tolerance:
        problems.append(f"sparsity {actual:.4f} < recorded {expected:.4f}")
    if isinstance(requested, (int, float)):
        needed = minimum_zeros(
            tuple(weight.shape), float(requested), metadata.get("pattern"), _granularity(metadata), int(metadata.get("block_size") or 128)
        )
        if int(zeros.sum()) < needed:
            problems.append(f"sparsity {actual:.4f} < requested {requested:.4f} (at least {needed / weight.numel():.4f} after rounding)")
    if nm is not None:
        n, m = nm
        if weight.dim() != 2 or weight.shape[-1] % m:
            problems.append(f"input size {weight.shape[-1]} is not a multiple of {m} (pattern {n}:{m})")
        else:
            row.nm_violations = int((zeros.reshape(-1, m).sum(dim=1) < m - n).sum())
            if row.nm_violations:
                groups = weight.numel() // m
                problems.append(f"{row.nm_violations} of {groups} groups of {m} break the {n}:{m} pattern")
    if problems:
        row.problem = f"{name}: " + "; ".join(problems)
    return row


def _granularity(metadata: dict[str, Any]) -> str | None:
    """The comparison group of the run: the recorded one, else the method's default (`None` when unknown)."""
    if metadata.get("granularity"):
        return metadata["granularity"]
    from ..methods import METHODS

    method = METHODS.get(metadata.get("method"))
    return method.default_granularity if method is not None else None


def verify_sparsity(model_or_dir: Any, tolerance: float = 1e-6) -> "SparsityCheck":
    """Check the weights of a pruned model against the sparsity metadata saved with it.

    Every target matrix listed in `config.json["dpruner_sparsity"]` must still have at least its recorded
    sparsity, at least the sparsity the run was asked for (`target_sparsity`, less the rounding of each comparison
    group: see `minimum_zeros`) and, for an N:M pattern, at least M - N zeros in every group of M consecutive input weights. A
    merged LoRA adapter, for example, makes the matrices it touched dense again and is reported here. For a model
    wrapped in peft with unmerged adapters, merge them first: only the base weights would be checked.

    Args:
        model_or_dir (`PreTrainedModel` or `str`): a model whose config carries the metadata (e.g. loaded from a
            saved folder), or a folder written by `save_pretrained` (dense or compressed; read tensor by tensor).
        tolerance (`float`, *optional*, defaults to 1e-6): how far below the recorded sparsity a matrix may be
            (the metadata is rounded to 6 decimals).

    Returns:
        `SparsityCheck`: `.ok`, `.problems` (one line each), `.rows` (one per matrix) and `.table()`.

    Raises:
        `ConfigError`: a folder without `config.json`, or something that is neither a model nor a folder;
        `CheckpointError`: a corrupt `config.json` or weights file.
    """
    if not isinstance(model_or_dir, (str, os.PathLike)) and not hasattr(model_or_dir, "config"):
        raise ConfigError(
            f"model_or_dir={model_or_dir!r} (a {type(model_or_dir).__name__}) is neither a model nor a folder; pass a PreTrainedModel or the folder "
            "of a model saved by save_pretrained."
        )
    if isinstance(model_or_dir, (str, os.PathLike)):
        source = os.fspath(model_or_dir)
        metadata = read_sparsity_metadata(source)
        weights = lambda names: _folder_weights(source, names)  # noqa: E731
    else:
        model = model_or_dir.get_base_model() if hasattr(model_or_dir, "get_base_model") else model_or_dir
        source = type(model).__name__
        metadata = getattr(model.config, SPARSITY_KEY, None)
        weights = lambda names: _model_weights(model, names)  # noqa: E731
    if not isinstance(metadata, dict) or not metadata.get("per_matrix_sparsity"):
        return SparsityCheck(
            source,
            problems=[f"no '{SPARSITY_KEY}' metadata in config.json: this model was not saved by optimum-dpruner"],
        )
    _check_metadata(metadata, source)
    check = SparsityCheck(source, metadata.get("method"), metadata.get("pattern"))
    expected = metadata["per_matrix_sparsity"]
    nm = parse_pattern(metadata.get("pattern") or "unstructured")
    zeros = numel = 0
    for name, weight in weights(list(expected)):
        row = _check_matrix(name, weight, float(expected[name]), nm, tolerance, metadata)
        check.rows.append(row)
        if row.problem:
            check.problems.append(row.problem)
        if row.actual is not None:
            count = math.prod(row.shape)
            zeros, numel = zeros + round(row.actual * count), numel + count
    recorded = metadata.get("global_sparsity")
    # a claim of more zeros than there are is what misleads (evaluate and the card print it); more zeros than
    # recorded are not an error, as for each matrix; a matrix already reported explains the difference
    if not check.problems and recorded is not None and numel and float(recorded) - zeros / numel > tolerance + 5e-7:
        check.problems.append(
            f"global_sparsity {float(recorded):.4f} is recorded, but the target matrices hold {zeros / numel:.4f} zeros: "
            "the metadata was edited or belongs to other weights"
        )
    return check


def _number(value: Any, low: float, high: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high


def _check_metadata(metadata: dict[str, Any], source: str) -> None:
    """`CheckpointError` naming the field when the sparsity block of `config.json` is not what a save writes
    (an edited pattern, a NaN or text sparsity): the zeros cannot be checked against it."""
    where = f"{source!r}: config.json's {SPARSITY_KEY}"

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{where} has {what}; restore config.json or save the model again.")

    pattern = metadata.get("pattern")
    if pattern is not None and pattern != "unstructured":
        parts = pattern.split(":") if isinstance(pattern, str) else []
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or not 0 < int(parts[0]) < int(parts[1]):
            raise bad(f"pattern={pattern!r}, not 'unstructured' or 'N:M' with integers N < M")
    for key in ("target_sparsity", "global_sparsity", "model_sparsity"):
        if metadata.get(key) is not None and not _number(metadata[key], 0.0, 1.0):
            raise bad(f"{key}={metadata[key]!r}, not a number in [0, 1]")
    per_matrix = metadata["per_matrix_sparsity"]
    if not isinstance(per_matrix, dict):
        raise bad(f"per_matrix_sparsity of type {type(per_matrix).__name__}, not an object of matrix -> sparsity")
    for name, value in per_matrix.items():
        if not _number(value, 0.0, 1.0):
            raise bad(f"per_matrix_sparsity[{name!r}]={value!r}, not a number in [0, 1]")
