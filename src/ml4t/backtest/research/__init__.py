"""Research at scale: parameter sweeps, walk-forward validation, and the run store."""

from .store import RunStore, data_fingerprint
from .sweep import expand_grid, sweep, sweep_spec
from .walk_forward import Fold, WalkForwardResult, walk_forward

__all__ = [
    "Fold",
    "RunStore",
    "WalkForwardResult",
    "data_fingerprint",
    "expand_grid",
    "sweep",
    "sweep_spec",
    "walk_forward",
]
