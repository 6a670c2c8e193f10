"""Results of a run: frames, trades, metrics."""

from .metrics import compute_metrics, infer_periods_per_year
from .result import BacktestResult

__all__ = ["BacktestResult", "compute_metrics", "infer_periods_per_year"]
