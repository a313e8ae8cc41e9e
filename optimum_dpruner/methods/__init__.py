"""Pruning methods, one per module, registered by name (see `registry.py`)."""

from .base import LayerResult, PruningMethod
from .registry import METHODS, build_method, get_method, option_owners, reconstructs, register_method

# Each import registers its method.
from .magnitude import MagnitudeMethod  # noqa: E402
from .wanda import WandaMethod  # noqa: E402
from .sparsegpt import SparseGPTMethod  # noqa: E402
from .dpruner import DPrunerMethod  # noqa: E402
from .reconstruction import ObsReconstruction  # noqa: E402

__all__ = [
    "METHODS",
    "get_method",
    "build_method",
    "option_owners",
    "reconstructs",
    "register_method",
    "PruningMethod",
    "LayerResult",
    "MagnitudeMethod",
    "WandaMethod",
    "SparseGPTMethod",
    "DPrunerMethod",
    "ObsReconstruction",
]
