"""optimize: the best run of a sweep for one objective, with constraints and failures handled.

Most tests use a runner whose metrics are simple functions of the parameters, so the winner can
be worked out by hand.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed, TopNStrategy
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.research import optimize

GRID = {"fast": [5, 10, 20], "slow": [10, 20]}


def by_hand(feed, config, params):  # type: ignore[no-untyped-def]
    """sharpe = fast / slow, max_drawdown = -fast / 100, turnover = fast + slow."""
    fast, slow = params["fast"], params["slow"]
    if fast == slow:
        raise ValueError("fast equals slow")
    return SimpleNamespace(
        metrics={"sharpe": fast / slow, "max_drawdown": -fast / 100, "turnover": fast + slow}
    )


@pytest.fixture(scope="module")
def feed() -> DataFeed:
    return DataFeed(synthetic_universe(n_assets=6, n_bars=60, seed=3))


def best_of(feed, **kwargs):  # type: ignore[no-untyped-def]
    return optimize(
        BacktestConfig(), GRID, feed, executor="in-process", run=by_hand, progress=False, **kwargs
    )


def test_maximize_returns_the_params_value_and_metrics_of_the_best_run(feed):
    # Runs (fast, slow): (5,10) .5, (5,20) .25, (10,10) raises, (10,20) .5, (20,10) 2,
    # (20,20) raises.
    best = best_of(feed, maximize="sharpe")
    assert best.params == {"fast": 20, "slow": 10}
    assert best.value == 2.0 and best.run == 4 and best.objective == "sharpe"
    assert best.metrics == {"sharpe": 2.0, "max_drawdown": -0.2, "turnover": 30}
    assert best.table.height == 6


def test_a_constraint_drops_combinations_before_they_run(feed):
    seen: list[tuple[int, int]] = []

    def counted(feed, config, params):  # type: ignore[no-untyped-def]
        seen.append((params["fast"], params["slow"]))
        return by_hand(feed, config, params)

    best = optimize(
        BacktestConfig(), GRID, feed, executor="in-process", run=counted, progress=False,
        maximize="sharpe", constraint=lambda p: p["fast"] < p["slow"],
    )  # fmt: skip
    assert seen == [(5, 10), (5, 20), (10, 20)]
    assert best.table["run"].to_list() == [0, 1, 2]


def test_ties_go_to_the_first_run_in_grid_order(feed):
    # (5,10) and (10,20) both have sharpe 0.5; (5,10) comes first.
    best = best_of(feed, maximize="sharpe", constraint=lambda p: p["fast"] < p["slow"])
    assert best.params == {"fast": 5, "slow": 10} and best.value == 0.5


def test_minimize_returns_the_smallest_value(feed):
    # turnover = fast + slow: smallest at (5,10) = 15.
    best = best_of(feed, minimize="turnover")
    assert best.params == {"fast": 5, "slow": 10} and best.value == 15


def test_minimize_max_drawdown_is_refused_because_drawdowns_are_negative(feed):
    with pytest.raises(ConfigError, match="use maximize='max_drawdown'"):
        best_of(feed, minimize="max_drawdown")


def test_maximize_max_drawdown_picks_the_shallowest(feed):
    # max_drawdown = -fast/100: -0.05 at fast=5 (slow 10 first in grid order).
    best = best_of(feed, maximize="max_drawdown")
    assert best.params == {"fast": 5, "slow": 10} and best.value == -0.05


def test_runs_that_raise_or_give_nan_never_win(feed):
    def nan_for_the_best(feed, config, params):  # type: ignore[no-untyped-def]
        if params["fast"] == 20:
            raise RuntimeError("no data")
        result = by_hand(feed, config, params)
        if params == {"fast": 10, "slow": 20}:
            result.metrics["sharpe"] = math.nan
        return result

    best = optimize(
        BacktestConfig(), GRID, feed, executor="in-process", run=nan_for_the_best,
        progress=False, maximize="sharpe",
    )  # fmt: skip
    # Left: (5,10) .5 and (5,20) .25; (10,10) raised, (10,20) NaN, fast=20 raised.
    assert best.params == {"fast": 5, "slow": 10}


def test_a_callable_objective_can_require_something_of_the_results(feed):
    # Best sharpe among runs with turnover >= 30: (20,10) has 30 and sharpe 2.
    def sharpe_if_active(metrics):  # type: ignore[no-untyped-def]
        return metrics["sharpe"] if metrics["turnover"] >= 30 else math.nan

    best = best_of(feed, maximize=sharpe_if_active)
    assert best.params == {"fast": 20, "slow": 10} and best.objective == "sharpe_if_active"
    # Only (5,10) has turnover <= 15.
    best = best_of(feed, maximize=lambda m: m["sharpe"] if m["turnover"] <= 15 else math.nan)
    assert best.params == {"fast": 5, "slow": 10} and best.value == 0.5


def test_an_unknown_metric_names_the_ones_there_are(feed):
    with pytest.raises(ConfigError, match=r"no metric 'sharp'.*max_drawdown, sharpe, turnover"):
        best_of(feed, maximize="sharp")


def test_no_run_with_a_value_is_an_error_saying_why(feed):
    with pytest.raises(ConfigError, match="6 runs, 2 raised"):
        best_of(feed, maximize=lambda m: math.nan)


def test_exactly_one_objective_is_needed(feed):
    with pytest.raises(ConfigError, match="exactly one of maximize= or minimize="):
        best_of(feed, maximize="sharpe", minimize="turnover")


def test_a_notebook_lambda_factory_optimizes_real_backtests(feed):
    best = optimize(
        BacktestConfig(), {"n": [1, 2, 3]}, feed, lambda p: TopNStrategy("score", **p),
        maximize="sharpe", progress=False,
    )  # fmt: skip
    assert best.value == best.table["sharpe"].max()
    assert best.params == {"n": best.table["n"][best.run]}
