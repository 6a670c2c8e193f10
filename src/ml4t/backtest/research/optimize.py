"""The best parameters of a grid for one metric: a sweep that picks its winner.

``optimize`` runs ``sweep`` and returns an ``Optimum``: the winning ``params``, the ``value`` of
the objective there, that run's ``metrics`` and the whole sweep ``table`` (so nothing is hidden:
look at the neighbours of the winner before trusting it, e.g. with ``heatmap``).

- ``maximize="sharpe"`` or ``minimize="turnover"`` names a metric; ``maximize`` also takes a
  function of a run's metrics (a dict) returning a number, as backtesting.py's ``optimize``
  does. ``max_drawdown`` is a negative fraction (a 20 % fall is ``-0.2``): the shallowest
  drawdown is the largest, so ask for ``maximize="max_drawdown"``; ``minimize="max_drawdown"``
  is refused rather than handing back the deepest one.
- ``constraint(params) -> bool`` drops parameter sets before anything runs (``fast < slow``).
  To require something of the results (at least 20 trades), let the objective return NaN for
  runs that fail it: ``maximize=lambda m: m["sharpe"] if m["n_trades"] >= 20 else math.nan``.
- Runs that raised, and runs whose objective is NaN or missing, never win. Ties go to the first
  run in grid order.

Example:
    >>> best = optimize(                                            # doctest: +SKIP
    ...     BacktestConfig(), {"fast": [5, 10], "slow": [10, 50]}, feed, make_cross,
    ...     maximize="sharpe", constraint=lambda p: p["fast"] < p["slow"],
    ... )
    >>> best.params, best.value                                     # doctest: +SKIP
    ({'fast': 5, 'slow': 50}, 1.23)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import polars as pl

from ..config import BacktestConfig
from ..data.feed import DataFeed
from ..errors import ConfigError
from ..risk.portfolio import PortfolioRule
from .store import RunStore
from .sweep import Constraint, Params, RulesSpec, Runner, StrategyFactory, run_grid

Objective = str | Callable[[Mapping[str, Any]], float]
# Metrics where a larger number is a worse run although it is negative: minimizing them by
# value would pick the worst. Named so the error can say what to do instead.
_NEGATIVE_DEPTHS = frozenset({"max_drawdown", "avg_mae"})


@dataclasses.dataclass(frozen=True)
class Optimum:
    """The winning run of ``optimize``: its parameters, objective value, metrics and index,
    and the full sweep table (one row per run, in grid order).

    Example:
        >>> best.params["n"], best.value, best.table.height         # doctest: +SKIP
        (5, 1.41, 12)
    """

    params: Params
    value: float
    objective: str
    metrics: dict[str, Any]
    run: int
    table: pl.DataFrame


def optimize(
    base_config: BacktestConfig,
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    feed: DataFeed,
    strategy_factory: StrategyFactory | None = None,
    executor: Executor | str | None = None,
    *,
    maximize: Objective | None = None,
    minimize: str | None = None,
    constraint: Constraint | None = None,
    run: Runner | None = None,
    position_rules: RulesSpec = None,
    portfolio_rules: Iterable[PortfolioRule] = (),
    batch_size: int | None = None,
    progress: bool = True,
    store: RunStore | str | Path | None = None,
    name: str | None = None,
) -> Optimum:
    """Sweep the grid and return its best run for one objective (see the module doc).

    Exactly one of ``maximize`` (a metric name, or a function of a run's metrics) and
    ``minimize`` (a metric name). The other arguments are ``sweep``'s.

    Example:
        >>> best = optimize(BacktestConfig(), {"n": [2, 5, 10]}, feed, make_topn,
        ...                 maximize="sharpe")                      # doctest: +SKIP
    """
    if (maximize is None) == (minimize is None):
        raise ConfigError("optimize needs exactly one of maximize= or minimize=")
    if minimize is not None and not isinstance(minimize, str):
        raise ConfigError(f"minimize= takes a metric name, got {minimize!r}")
    if minimize in _NEGATIVE_DEPTHS:
        raise ConfigError(
            f"minimize={minimize!r}: {minimize} is negative (a 20% drawdown is -0.2), so its "
            f"smallest value is the deepest; use maximize={minimize!r} for the shallowest"
        )
    outcome = run_grid(
        base_config,
        grid,
        feed,
        strategy_factory,
        executor,
        run=run,
        position_rules=position_rules,
        portfolio_rules=portfolio_rules,
        constraint=constraint,
        batch_size=batch_size,
        progress=progress,
        store=store,
        name=name,
    )
    objective = maximize if maximize is not None else minimize
    assert objective is not None
    sign = 1.0 if maximize is not None else -1.0
    label = objective if isinstance(objective, str) else getattr(objective, "__name__", "objective")
    best: tuple[float, dict[str, Any]] | None = None
    failed = 0
    for row in outcome.rows:
        if row["metrics"] is None:
            failed += 1
            continue
        value = _value(objective, row["metrics"])
        if value is not None and (best is None or sign * value > sign * best[0]):
            best = (value, row)
    if best is None:
        raise ConfigError(
            f"no run of the sweep has a number for {label!r}: {len(outcome.rows)} runs, "
            f"{failed} raised (see the 'error' column of the sweep table), the rest gave NaN"
        )
    value, row = best
    return Optimum(
        params=dict(outcome.combos[row["run"]]),
        value=value,
        objective=label,
        metrics=dict(row["metrics"]),
        run=int(row["run"]),
        table=outcome.table,
    )


def _value(objective: Objective, metrics: Mapping[str, Any]) -> float | None:
    """The objective of one run, or None when it has none (NaN, missing)."""
    if isinstance(objective, str):
        if objective not in metrics:
            raise ConfigError(
                f"no metric {objective!r}; the metrics are: {', '.join(sorted(metrics))}"
            )
        raw = metrics[objective]
    else:
        raw = objective(metrics)
    if raw is None:
        return None
    value = float(raw)
    return None if math.isnan(value) else value
