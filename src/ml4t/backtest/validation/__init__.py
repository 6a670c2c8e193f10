"""The parity suite: the same scenarios run here and in VectorBT and Backtrader, fills compared.

Each scenario builds seeded data and precomputed signals, runs them through a peer framework and
through ml4t.backtest set up with that peer's preset, and compares every fill (bar, quantity,
price, commission) and the final value. ``run_validation()`` returns the table that
``ml4t-backtest validate`` prints; the peers are imported only when a scenario needs them
(install this project's ``validation`` extra).

Example:
    >>> table = run_validation(frameworks=["vectorbt"])   # doctest: +SKIP
"""

from .compare import Comparison, compare_fills
from .suite import SCENARIOS, Scenario, run_validation

__all__ = ["SCENARIOS", "Comparison", "Scenario", "compare_fills", "run_validation"]
