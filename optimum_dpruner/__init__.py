"""optimum-dpruner: extract a smaller, domain-specific LLM from a general one by D-Pruner (and baselines).

Public names are resolved lazily so that importing the package (e.g. for the CLI's flags) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "DPrunerConfig": "configuration",
    "MethodName": "configuration",
    "DPruner": "pruner",
    "PruneResult": "result",
    "PruneReport": "stages.report",
    "perplexity": "evaluation",
    "evaluate_task": "evaluation",
    "TaskResult": "evaluation",
    "generate_samples": "evaluation",
    "calibration_samples": "data",
    "builtin_path": "data",
    "save_importance": "checkpoint.importance",
    "load_importance": "checkpoint.importance",
    "prune_mask": "methods.masks",
    "METHODS": "methods",
    "get_method": "methods",
    "DPrunerError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "UnsupportedModelError": "errors",
    "NumericalError": "errors",
    "HubError": "errors",
    "CheckpointError": "errors",
    "load_pretrained": "checkpoint.serialization",
    "verify_sparsity": "checkpoint.verification",
    "SparsityCheck": "checkpoint.verification",
    "push_to_hub": "checkpoint.hub",
    "DPrunerWarning": "errors",
    "ensure_default_model": "models.default_model",
    "estimate": "estimation",
    "RunEstimate": "estimation",
    "recover": "recovery.run",
    "RecoveryConfig": "recovery.config",
    "RecoveryResult": "recovery.result",
    "RecoveryReport": "recovery.report",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'optimum_dpruner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
