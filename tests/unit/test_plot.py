"""result.plot: the named plotly panels, worked on small hand-made runs."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import plotly.graph_objects as go
import pytest

from ml4t.backtest import BacktestConfig, DataFeed, Engine, TopNStrategy
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.results.plot import PANELS, monthly_turnover
from scripted import run


@pytest.fixture(scope="module")
def topn_result():
    feed = DataFeed(synthetic_universe(n_assets=8, n_bars=300, seed=2))
    return Engine(
        feed, TopNStrategy("score", n=3, rebalance_every=5), BacktestConfig(), benchmark="A0000"
    ).run()


def test_plot_defaults_to_equity_over_drawdown_sharing_the_x_axis(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 100.0), (100.0, 110.0), (110.0, 99.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10)})
    fig = result.plot()
    assert isinstance(fig, go.Figure)
    equity, drawdown = fig.data
    # Bought 10 at 100 on bar 1; closes 100, 110, 99 mark 10,000, 10,100, 9,990.
    np.testing.assert_allclose(equity.y, [10_000.0, 10_000.0, 10_100.0, 9_990.0])
    np.testing.assert_allclose(drawdown.y, [0.0, 0.0, 0.0, (9_990.0 / 10_100.0 - 1.0) * 100])
    assert (equity.xaxis, drawdown.xaxis) == ("x", "x2")
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"


def test_an_unknown_panel_is_a_config_error_listing_the_valid_names(topn_result):
    with pytest.raises(ConfigError, match=r"unknown plot panel 'equty'.*equity, drawdowns"):
        topn_result.plot("equty")


@pytest.mark.parametrize("panel", list(PANELS))
def test_every_named_panel_draws_a_figure(topn_result, panel):
    fig = topn_result.plot(panel)
    assert isinstance(fig, go.Figure)
    assert len(fig.data) >= 1


def test_exposure_panel_splits_long_short_net_and_gross(make_feed):
    feed = make_feed(
        {
            "A": [(100.0, 100.0), (100.0, 110.0), (110.0, 110.0)],
            "B": [(100.0, 100.0), (100.0, 90.0), (90.0, 90.0)],
        }
    )
    actions = {0: lambda b, d: (b.submit_order("A", 10), b.submit_order("B", -5))}
    result, _ = run(feed, actions, account="margin")
    fig = result.plot("exposure")
    lines = {trace.name: np.asarray(trace.y) for trace in fig.data}
    # Bar 1: long 10 A at 110 = 1,100; short 5 B at 90 = -450; cash 10,000 - 1,000 + 500.
    equity = 10_000.0 - 1_000.0 + 500.0 + 1_100.0 - 450.0
    assert lines["long"][1] == pytest.approx(1_100.0 / equity * 100)
    assert lines["short"][1] == pytest.approx(-450.0 / equity * 100)
    assert lines["net"][1] == pytest.approx(650.0 / equity * 100)
    assert lines["gross"][1] == pytest.approx(1_550.0 / equity * 100)


def test_positions_panel_counts_on_whole_number_ticks(topn_result):
    fig = topn_result.plot("positions")
    assert fig.layout.yaxis.tickformat == "d"
    assert fig.layout.yaxis.dtick == 1  # at most 3 positions: one tick per position
    assert max(fig.data[0].y) == 3.0
    assert fig.layout.yaxis.range[1] > 3  # room above the top count for its label


def test_rolling_panel_has_beta_only_with_a_benchmark(make_feed):
    rng = np.random.default_rng(1)
    closes = 100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.01, 40))
    feed = make_feed({"A": [(c, c) for c in closes]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10)})
    without = result.plot("rolling")
    with_bench = result.plot("rolling", benchmark=closes)
    assert [t.name for t in without.data] == ["volatility (%)", "Sharpe"]
    assert [t.name for t in with_bench.data] == ["volatility (%)", "Sharpe", "beta"]


def test_rolling_window_shrinks_to_a_quarter_of_a_short_run(make_feed):
    closes = [100.0 + i for i in range(40)]
    feed = make_feed({"A": [(c, c) for c in closes]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10)})
    vol = np.asarray(result.plot("rolling").data[0].y, dtype=float)
    # 40 bars: the 126-bar window becomes 10, so the first value is at bar 9.
    assert np.isnan(vol[:9]).all() and not math.isnan(vol[9])


def test_a_benchmark_of_the_wrong_length_is_a_config_error(topn_result):
    with pytest.raises(ConfigError, match=r"one value per bar, shape \(300,\)"):
        topn_result.plot("rolling", benchmark=[1.0, 2.0])


def test_yearly_panel_compounds_each_calendar_year(make_feed):
    # Daily bars from 2024-01-01; 400 bars cross into 2025 on bar 366.
    closes = [100.0] * 366 + [120.0] * 34
    feed = make_feed({"A": [(c, c) for c in closes]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10)})
    bars = result.plot("yearly").data[0]
    assert list(bars.x) == ["2024", "2025"]
    # 2024 flat; 2025: 10 shares gain 200 on 10,000.
    np.testing.assert_allclose(bars.y, [0.0, 2.0], atol=1e-12)


def test_monthly_turnover_is_half_the_traded_notional_over_mean_equity(make_feed):
    feed = make_feed({"A": [(100.0, 100.0)] * 4})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 10), 1: lambda b, d: b.submit_order("A", -10)}
    )
    table = monthly_turnover(result)
    # Bought 1,000 and sold 1,000 in January 2024 at flat prices: equity stays 10,000.
    assert table["month"].to_list() == [datetime(2024, 1, 1)]
    assert table["traded"].to_list() == [2_000.0]
    assert table["turnover"].to_list() == [pytest.approx(2_000.0 / 2 / 10_000.0)]


def test_trades_panel_groups_trades_by_exit_reason(topn_result):
    fig = topn_result.plot("trades")
    trades = topn_result.trades
    expected = {
        ("open" if s == "open" else r)
        for s, r in zip(trades["status"], trades["exit_reason"], strict=True)
    }
    assert {t.name for t in fig.data} == expected
    assert sum(len(t.y) for t in fig.data) == trades.height


def test_mae_mfe_panel_plots_closed_trades_against_their_return(topn_result):
    fig = topn_result.plot("mae_mfe")
    closed = topn_result.trades.filter(topn_result.trades["status"] == "closed")
    mae, mfe = fig.data
    np.testing.assert_allclose(mae.x, closed["mae"].to_numpy() * 100)
    np.testing.assert_allclose(mfe.x, closed["mfe"].to_numpy() * 100)
    np.testing.assert_allclose(mae.y, closed["return"].to_numpy() * 100)
