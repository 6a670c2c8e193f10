"""Results of a run: frames, trades, metrics."""

from .metrics import compute_metrics, infer_periods_per_year
from .result import BacktestResult, RunRecords

__all__ = ["BacktestResult", "RunRecords", "compute_metrics", "infer_periods_per_year"]
