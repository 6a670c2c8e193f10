"""BacktestResult's returns, summary, drawdown and exit-reason tables, and strategy label."""

from __future__ import annotations

import re
from datetime import datetime

import empyrical
import numpy as np
import pandas as pd
import pytest

from ml4t.backtest import BacktestConfig, DataFeed, Engine, TopNStrategy
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.results.result import describe_strategy
from ml4t.backtest.risk import StopLoss
from scripted import run


def summary_lines(result) -> dict[str, str]:
    rows = (re.split(r"\s{2,}", line.strip()) for line in result.summary().splitlines()[2:])
    return {key: value for key, value in rows}


def test_the_first_bars_return_is_measured_from_the_initial_cash(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 110.0), (110.0, 110.0)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 10)}, fill_timing="same_close", commission=0.01
    )
    returns = result.returns
    assert returns.columns == ["timestamp", "return"]
    assert returns["timestamp"].to_list() == result.equity["timestamp"].to_list()
    # Bar 0 buys 10 at 100 paying 10 commission: equity 9,990; bar 1 marks 10 x 110.
    expected = [9_990.0 / 10_000.0 - 1.0, 10_090.0 / 9_990.0 - 1.0, 0.0]
    np.testing.assert_allclose(returns["return"].to_numpy(), expected, atol=1e-15)


def test_returns_compound_to_the_total_return(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 104.0), (104.0, 97.0), (97.0, 101.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10)}, commission=0.001)
    growth = float(np.prod(1.0 + result.returns["return"].to_numpy()))
    assert growth - 1.0 == pytest.approx(result.metrics["total_return"], rel=1e-12)


def test_drawdown_table_by_hand(make_feed):
    closes = [100.0, 90.0, 95.0, 101.0, 99.0, 102.0]
    feed = make_feed({"A": [(c, c) for c in closes]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 100)}, fill_timing="same_close")
    table = result.drawdown_table()
    # Equity 10,000 + 100 x (close - 100): 10,000, 9,000, 9,500, 10,100, 9,900, 10,200.
    day = [datetime(2024, 1, 1 + i) for i in range(6)]
    assert table["start"].to_list() == [day[1], day[4]]
    assert table["trough"].to_list() == [day[1], day[4]]
    assert table["recovery"].to_list() == [day[3], day[5]]
    np.testing.assert_allclose(table["depth"].to_numpy(), [-0.1, 9_900.0 / 10_100.0 - 1.0])
    assert table["bars"].to_list() == [2, 1]


def test_an_unrecovered_drawdown_has_no_recovery_and_runs_to_the_end(make_feed):
    closes = [100.0, 110.0, 100.0, 95.0]
    feed = make_feed({"A": [(c, c) for c in closes]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 100)}, fill_timing="same_close")
    row = result.drawdown_table().row(0, named=True)
    # Peak 11,000 at bar 1; under water on bars 2 and 3, trough 9,500.
    assert row["recovery"] is None
    assert row["bars"] == 2
    assert row["depth"] == pytest.approx(9_500.0 / 11_000.0 - 1.0)
    assert result.metrics["max_drawdown_bars"] == 2.0


def test_exit_reason_table_counts_pnl_and_win_rate_per_reason(make_feed):
    feed = make_feed(
        {
            "A": [(100, 100, 100, 100), (100, 101, 99, 100), (100, 100, 90, 92), (92, 92, 92, 92)],
            "B": [(100, 100, 100, 100), (100, 101, 99, 100), (100, 100, 100, 100), (110,) * 4],
        }
    )
    actions = {
        0: lambda b, d: (b.submit_order("A", 10), b.submit_order("B", 10)),
        2: lambda b, d: b.submit_order("B", -10),
    }
    result, _ = run(feed, actions, position_rules=StopLoss(0.05))
    table = result.exit_reason_table()
    # A: bought at 100 on bar 1, stopped at 95 on bar 2 (low 90): -50 over 1 bar.
    # B: bought at 100 on bar 1, sold at the open of bar 3 (110): +100 over 2 bars.
    assert table["exit_reason"].to_list() == ["order", "stop_loss"]
    assert table["trades"].to_list() == [1, 1]
    np.testing.assert_allclose(table["pnl"].to_numpy(), [100.0, -50.0])
    np.testing.assert_allclose(table["win_rate"].to_numpy(), [1.0, 0.0])
    np.testing.assert_allclose(table["avg_return"].to_numpy(), [0.10, -0.05])
    np.testing.assert_allclose(table["avg_bars_held"].to_numpy(), [2.0, 1.0])


def test_summary_shows_the_costs_share_of_gross_pnl(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 100.0), (110.0, 110.0), (110.0, 110.0)]})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 10), 2: lambda b, d: b.submit_order("A", -10)},
        commission=0.01,
    )
    lines = summary_lines(result)
    # Fees 10 + 11 = 21 out of a gross gain of 10 x (110 - 100) = 100.
    assert lines["Total costs"] == "21.00"
    assert lines["Costs / gross PnL"] == "21.00%"
    assert "Alpha (ann.)" not in lines and "Beta" not in lines


def test_summary_shows_alpha_and_beta_against_the_benchmark_as_empyrical():
    feed = DataFeed(synthetic_universe(n_assets=8, n_bars=300, seed=9))
    result = Engine(
        feed, TopNStrategy("score", n=3, rebalance_every=5), BacktestConfig(), benchmark="A0001"
    ).run()
    equity = result.equity["equity"].to_numpy()
    bench = feed.array("close")[:, 1]
    alpha, beta = empyrical.alpha_beta(
        pd.Series(equity[1:] / equity[:-1] - 1.0),
        pd.Series(bench[1:] / bench[:-1] - 1.0),
        annualization=result.periods_per_year,
    )
    lines = summary_lines(result)
    assert lines["Alpha (ann.)"] == f"{100 * alpha:.2f}%"
    assert lines["Beta"] == f"{beta:.3f}"


def test_the_engine_records_a_description_of_the_strategy():
    feed = DataFeed(synthetic_universe(n_assets=4, n_bars=30, seed=1))
    result = Engine(feed, TopNStrategy("score", n=2, rebalance_every=5), BacktestConfig()).run()
    assert result.strategy.startswith("TopNStrategy(column='score', n=2, rebalance_every=5")
    assert result.summary().splitlines()[0] == f"Backtest summary: {result.strategy}"


def test_describe_strategy_keeps_simple_public_settings_only():
    class Momentum:
        def __init__(self) -> None:
            self.lookback = 20
            self.universe = ["A", "B"]
            self._cache = {}

    assert describe_strategy(Momentum()) == "Momentum(lookback=20)"
