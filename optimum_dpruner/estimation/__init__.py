"""Expected peak memory and time of each stage of a pruning run, computed from shapes before any work starts.

Memory is added up from what each stage holds at its peak (`cost.estimate_run` lists the parts); every part is
named, so a surprising total can be traced. Time comes from operation counts divided by rates measured on the
execution device in a fraction of a second (`rates`); it is a rough guide, not a promise. On CPU the peaks start
from the process's resident size without the model (`resident`). `benchmarks/memory_scaling.py` compares both with
measurements.
"""

from .api import estimate, estimate_for_device
from .cost import estimate_run
from .estimates import RunEstimate, StageEstimate
from .rates import Rates, measure_rates
from .resident import resident_parameter_bytes, runtime_rss

__all__ = [
    "StageEstimate",
    "RunEstimate",
    "estimate",
    "estimate_for_device",
    "estimate_run",
    "Rates",
    "measure_rates",
    "resident_parameter_bytes",
    "runtime_rss",
]
