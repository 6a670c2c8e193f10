"""Research at scale: parameter sweeps, optimization, walk-forward validation, the run store."""

from .heatmap import heatmap
from .optimize import Optimum, optimize
from .store import RunStore, StoreLockedError, data_fingerprint
from .sweep import SweepInterrupted, expand_grid, sweep, sweep_spec
from .walk_forward import Fold, WalkForwardResult, walk_forward

__all__ = [
    "Fold",
    "Optimum",
    "RunStore",
    "StoreLockedError",
    "SweepInterrupted",
    "WalkForwardResult",
    "data_fingerprint",
    "expand_grid",
    "heatmap",
    "optimize",
    "sweep",
    "sweep_spec",
    "walk_forward",
]
