"""Exceptions and warnings raised by optimum-dpruner.

Every error that a user can cause derives from :class:`DPrunerError`; the ones about bad input are also
``ValueError`` so that generic handlers keep working.
"""

__all__ = [
    "DPrunerError",
    "ConfigError",
    "DataError",
    "UnsupportedModelError",
    "NumericalError",
    "HubError",
    "CheckpointError",
    "DPrunerWarning",
    "describe_error",
]


class DPrunerError(Exception):
    """Base class of every optimum-dpruner error."""


class ConfigError(DPrunerError, ValueError):
    """An option of :class:`~optimum_dpruner.DPrunerConfig` (or of a call) is invalid."""


class DataError(DPrunerError, ValueError):
    """Calibration or evaluation data cannot be used (empty, missing column, too short...)."""


class UnsupportedModelError(DPrunerError, ValueError):
    """The model is not a decoder-only causal LM that the pipeline can walk."""


class NumericalError(DPrunerError, RuntimeError):
    """A numerical step failed even after its fallbacks (e.g. Cholesky after damping escalation)."""


class HubError(DPrunerError, RuntimeError):
    """Talking to the Hugging Face Hub failed: rejected token (401), no write access (403), or errors left after retries."""


class CheckpointError(DPrunerError, ValueError):
    """A saved file (weights, `config.json`, `dpruner_config.json`, importance scores) is truncated, corrupt or foreign."""


class DPrunerWarning(UserWarning):
    """Warnings about choices that may hurt the result (damping escalated, fewer samples than asked...)."""


def describe_error(error: BaseException) -> str:
    """`Type: message` of an exception on one line (just the type when the message is empty), to quote in an error."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
