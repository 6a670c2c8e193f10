"""Metrics against empyrical-reloaded on the same returns, plus the frequency inference."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from ml4t.backtest.results import compute_metrics, infer_periods_per_year
from ml4t.backtest.results.metrics import annualized_growth, returns_from_equity


@pytest.fixture(params=[0, 1, 2])
def equity(request: pytest.FixtureRequest) -> np.ndarray:
    rng = np.random.default_rng(request.param)
    returns = rng.normal(0.0004, 0.012, 750)
    return 100_000.0 * np.cumprod(1.0 + returns)


def ours(equity: np.ndarray, periods: float = 252.0, rf: float = 0.0) -> dict[str, float]:
    return compute_metrics(
        equity,
        initial_cash=100_000.0,
        periods_per_year=periods,
        gross_exposure=np.zeros_like(equity),
        trade_pnl=np.array([1.0, -2.0, 3.0]),
        risk_free_rate=rf,
    )


def test_returns_are_measured_from_the_initial_cash(equity):
    r = returns_from_equity(equity, 100_000.0)
    assert r[0] == pytest.approx(equity[0] / 100_000.0 - 1.0, rel=1e-15)
    assert np.allclose(np.cumprod(1 + r) * 100_000.0, equity, rtol=1e-12)


def test_metrics_match_empyrical(equity):
    r = pd.Series(returns_from_equity(equity, 100_000.0))
    m = ours(equity)
    assert m["total_return"] == pytest.approx(empyrical.cum_returns_final(r), rel=1e-10)
    assert m["cagr"] == pytest.approx(empyrical.cagr(r, annualization=252), rel=1e-10)
    assert m["volatility"] == pytest.approx(
        empyrical.annual_volatility(r, annualization=252), rel=1e-10
    )
    assert m["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, annualization=252), rel=1e-10)
    assert m["sortino"] == pytest.approx(empyrical.sortino_ratio(r, annualization=252), rel=1e-10)
    assert m["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-10)


def test_sharpe_with_a_risk_free_rate_matches_empyrical(equity):
    rf_annual = 0.03
    rf_bar = (1 + rf_annual) ** (1 / 252) - 1
    r = pd.Series(returns_from_equity(equity, 100_000.0))
    m = ours(equity, rf=rf_annual)
    assert m["sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(r, risk_free=rf_bar, annualization=252), rel=1e-10
    )


def test_win_rate_counts_closed_trades_with_positive_pnl(equity):
    assert ours(equity)["win_rate"] == pytest.approx(2 / 3)
    assert ours(equity)["n_trades"] == 3


@pytest.mark.parametrize(
    ("freq", "periods", "expected"),
    [("B", 600, 252.0), ("D", 800, 365.0), ("W-FRI", 200, 52.0), ("MS", 60, 12.0)],
)
def test_periods_per_year_inferred_from_timestamps(freq, periods, expected):
    ts = pd.date_range("2015-01-01", periods=periods, freq=freq).to_numpy()
    assert infer_periods_per_year(ts) == expected


def test_hourly_bars_give_their_true_rate():
    ts = pd.date_range("2024-01-01", periods=24 * 60, freq="h").to_numpy()
    assert infer_periods_per_year(ts) == pytest.approx(24 * 365.25, rel=1e-3)


def test_calmar_matches_empyrical(equity):
    returns = pd.Series(returns_from_equity(equity, 100_000.0))
    assert ours(equity)["calmar"] == pytest.approx(empyrical.calmar_ratio(returns), rel=1e-9)


def test_trade_statistics_by_hand(equity):
    m = ours(equity)  # closed trades: +1, -2, +3
    assert m["profit_factor"] == pytest.approx(4.0 / 2.0)
    assert m["avg_win"] == pytest.approx(2.0)
    assert m["avg_loss"] == pytest.approx(-2.0)
    assert m["expectancy"] == pytest.approx(2.0 / 3.0)


def test_drawdown_length_counts_bars_below_the_last_peak():
    wealth = np.array([100.0, 90.0, 95.0, 101.0, 100.0, 99.0, 98.0, 97.0])
    m = compute_metrics(
        wealth[1:],
        initial_cash=wealth[0],
        periods_per_year=252.0,
        gross_exposure=np.zeros(7),
        trade_pnl=np.zeros(0),
    )
    # Below 100 for bars 1-2 (then a new peak at 101), below 101 for the last 4 bars.
    assert m["max_drawdown_bars"] == 4.0


def test_turnover_and_the_share_of_gross_pnl_costs_took(make_feed):
    from scripted import run

    feed = make_feed({"A": [(100.0, 100.0), (100.0, 100.0), (110.0, 110.0), (110.0, 110.0)]})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 10), 2: lambda b, d: b.submit_order("A", -10)},
        commission=0.01,
    )
    m = result.metrics
    # Bought 10 at 100 (fee 10), sold 10 at 110 (fee 11): net +79, gross +100.
    assert m["total_costs"] == pytest.approx(21.0)
    assert m["gross_pnl"] == pytest.approx(100.0)
    assert m["costs_share_of_gross_pnl"] == pytest.approx(0.21)
    mean_equity = np.mean([10_000.0, 9_990.0, 10_090.0, 10_079.0])
    years = 4 / result.periods_per_year
    assert m["turnover"] == pytest.approx(2_100.0 / 2 / mean_equity / years)


def test_alpha_and_beta_against_a_benchmark_asset_match_empyrical():
    from ml4t.backtest import BacktestConfig, DataFeed, Engine, TopNStrategy
    from ml4t.backtest.datasets import synthetic_universe

    feed = DataFeed(synthetic_universe(n_assets=12, n_bars=400, seed=6))
    result = Engine(
        feed, TopNStrategy("score", n=3, rebalance_every=5), BacktestConfig(), benchmark="A0000"
    ).run()
    equity = result.equity["equity"].to_numpy()
    bench = feed.array("close")[:, 0]
    r = pd.Series(equity[1:] / equity[:-1] - 1.0)
    b = pd.Series(bench[1:] / bench[:-1] - 1.0)
    alpha, beta = empyrical.alpha_beta(r, b, annualization=result.periods_per_year)
    assert result.metrics["beta"] == pytest.approx(beta, rel=1e-9)
    assert result.metrics["alpha"] == pytest.approx(alpha, rel=1e-9)


def test_trade_excursions_by_hand(make_feed):
    from scripted import run

    bars = [
        (100.0, 100.0, 100.0, 100.0),
        (100.0, 104.0, 97.0, 101.0),  # entry at 100
        (101.0, 108.0, 95.0, 102.0),
        (102.0, 103.0, 99.0, 100.0),  # exit at 102
    ]
    feed = make_feed({"A": bars})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 10), 2: lambda b, d: b.submit_order("A", -10)},
    )
    trade = result.trades.row(0, named=True)
    # Worst low over the entry..exit bars is 95, best high 108, from an entry of 100.
    assert trade["mae"] == pytest.approx(-0.05)
    assert trade["mfe"] == pytest.approx(0.08)


def test_rolling_volatility_matches_empyrical():
    from ml4t.backtest.results.metrics import rolling_volatility

    r = np.random.default_rng(3).normal(0.0005, 0.01, 300)
    ours = rolling_volatility(r, 126, periods_per_year=252.0)
    theirs = np.asarray(empyrical.roll_annual_volatility(r, 126, annualization=252))
    assert np.isnan(ours[:125]).all()
    np.testing.assert_allclose(ours[125:], theirs, rtol=1e-12)


def test_rolling_beta_matches_empyrical():
    from ml4t.backtest.results.metrics import rolling_beta

    rng = np.random.default_rng(4)
    b = rng.normal(0.0, 0.01, 300)
    r = 0.7 * b + rng.normal(0.0, 0.005, 300)
    ours = rolling_beta(r, b, 126)
    theirs = np.asarray(empyrical.roll_beta(r, b, 126))
    assert np.isnan(ours[:125]).all()
    np.testing.assert_allclose(ours[125:], theirs, rtol=1e-10)


def test_rolling_beta_of_a_scaled_benchmark_is_the_scale():
    from ml4t.backtest.results.metrics import rolling_beta

    b = np.array([0.01, -0.02, 0.03, 0.0, 0.01])
    beta = rolling_beta(1.5 * b, b, 3)
    np.testing.assert_allclose(beta[2:], [1.5, 1.5, 1.5])


def test_alpha_beta_function_matches_empyrical():
    from ml4t.backtest.results.metrics import alpha_beta

    rng = np.random.default_rng(5)
    b = rng.normal(0.0003, 0.01, 500)
    r = 0.0002 + 1.2 * b + rng.normal(0.0, 0.004, 500)
    alpha, beta = alpha_beta(r, b, periods_per_year=252.0)
    e_alpha, e_beta = empyrical.alpha_beta(pd.Series(r), pd.Series(b), annualization=252)
    assert beta == pytest.approx(e_beta, rel=1e-10)
    assert alpha == pytest.approx(e_alpha, rel=1e-10)


def test_worst_drawdowns_by_hand_deepest_first():
    from ml4t.backtest.results.metrics import worst_drawdowns

    # Peak 100 (the initial cash) -> 90 at bar 1 -> back to 100 at bar 3; peak 120 at bar 4 ->
    # 96 at bar 6 (-20%) and never back. Bar 2 (99) is still under water: part of the first.
    equity = np.array([100.0, 90.0, 99.0, 100.0, 120.0, 108.0, 96.0, 110.0])
    found = worst_drawdowns(equity, initial=100.0, top=5)
    assert [(s, t, r) for s, t, r, _ in found] == [(5, 6, -1), (1, 1, 3)]
    assert found[0][3] == pytest.approx(96.0 / 120.0 - 1.0)
    assert found[1][3] == pytest.approx(-0.1)


def test_worst_drawdowns_keeps_only_the_top_ones():
    from ml4t.backtest.results.metrics import worst_drawdowns

    # Three dips of 5%, 3% and 1% off a flat 100.
    equity = np.array([95.0, 100.0, 97.0, 100.0, 99.0, 100.0])
    found = worst_drawdowns(equity, initial=100.0, top=2)
    assert [round(d, 6) for *_, d in found] == [-0.05, -0.03]


def test_yearly_period_returns_match_empyrical_aggregate():
    from ml4t.backtest.results.metrics import period_returns

    days = pd.bdate_range("2020-01-01", "2022-06-30")
    r = np.random.default_rng(6).normal(0.0004, 0.01, len(days))
    equity = 1_000.0 * np.cumprod(1.0 + r)
    years, values = period_returns(days.year.to_numpy(), equity, initial=1_000.0)
    theirs = empyrical.aggregate_returns(pd.Series(r, index=days), "yearly")
    assert list(years) == [2020, 2021, 2022]
    np.testing.assert_allclose(values, theirs.to_numpy(), rtol=1e-10)


def test_n_trades_is_a_whole_number(equity):
    n = ours(equity)["n_trades"]
    assert type(n) is int
    assert n == 3


def test_cagr_too_large_for_a_float_is_inf_as_empyrical_gives_it():
    # Up 5000x in two daily bars: 5000 ** (252 / 2) is about 10 ** 466, past the float range.
    equity = np.array([100_000.0 * 70.0, 100_000.0 * 5_000.0])
    m = compute_metrics(
        equity,
        initial_cash=100_000.0,
        periods_per_year=252.0,
        gross_exposure=np.zeros(2),
        trade_pnl=np.zeros(0),
    )
    assert m["cagr"] == math.inf
    returns = pd.Series(returns_from_equity(equity, 100_000.0))
    with np.errstate(over="ignore"):
        assert empyrical.cagr(returns, annualization=252) == math.inf
    assert math.isnan(m["calmar"])  # never below its peak: no drawdown to divide by


@pytest.mark.parametrize(
    ("growth", "years", "expected"),
    [
        (1.21, 2.0, 0.1),  # 1.1 ** 2 = 1.21
        (0.25, 2.0, -0.5),  # 0.5 ** 2 = 0.25
        (0.0, 1.0, -1.0),  # everything lost
        (-0.5, 1.0, math.nan),  # no real rate compounds to a negative value
        (2.0, 0.0, math.nan),  # no time
        (5_000.0, 2 / 252, math.inf),
    ],
)
def test_annualized_growth_rule(growth, years, expected):
    assert annualized_growth(growth, years) == pytest.approx(expected, rel=1e-12, nan_ok=True)


def test_a_run_up_5000x_in_two_bars_has_metrics_and_a_summary(make_feed):
    from scripted import run

    feed = make_feed({"A": [(1.0, 1.0), (1.0, 5_000.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10_000)}, fill_timing="same_close")
    assert result.final_value == 10_000.0 * 5_000.0
    assert result.metrics["cagr"] == math.inf
    assert "inf%" in result.summary()


@pytest.mark.parametrize("start", ["2024-01-01", "2024-01-03", "2024-01-05", "2024-03-04"])
@pytest.mark.parametrize("periods", [5, 10, 20, 60, 120])
def test_business_days_give_252_whatever_the_window(start, periods):
    # 60 business days from a Monday span 81 calendar days: the span alone says 266 a year.
    ts = pd.bdate_range(start, periods=periods).to_numpy()
    assert infer_periods_per_year(ts) == 252.0


@pytest.mark.parametrize("periods", [10, 30, 60])
def test_calendar_days_give_365(periods):
    ts = pd.date_range("2024-01-01", periods=periods, freq="D").to_numpy()
    assert infer_periods_per_year(ts) == 365.0


def test_a_week_of_six_trading_days_gives_its_rate():
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    ts = days[days.dayofweek != 5].to_numpy()  # Sunday to Friday
    assert infer_periods_per_year(ts) == pytest.approx(6 / 7 * 365.25, rel=0.01)


def test_a_result_reads_the_days_of_the_week_in_the_feeds_zone():
    """Bars at midnight in Tokyo are 15:00 UTC the day before: a Monday bar is a Sunday in
    UTC. Read in its own zone, the feed trades on weekdays only."""
    from ml4t.backtest import BacktestConfig, DataFeed, run_signals

    days = pd.bdate_range("2024-01-01", periods=60, tz="Asia/Tokyo")
    n = len(days)
    close = np.linspace(100.0, 110.0, n)[:, None]
    fields = {"open": close, "high": close, "low": close, "close": close,
              "volume": np.full((n, 1), 1e6)}  # fmt: skip
    frame = pd.DataFrame(
        {"timestamp": days, "asset": "A", **{k: v[:, 0] for k, v in fields.items()}}
    )
    feed = DataFeed(frame)
    assert feed.timezone == "Asia/Tokyo"
    no = np.zeros((n, 1), dtype=bool)
    result = run_signals(feed, no, no, size=0.1, config=BacktestConfig())
    assert result.periods_per_year == 252.0
    utc = pd.DatetimeIndex(days).tz_convert("UTC").tz_localize(None).to_numpy()
    assert infer_periods_per_year(utc) != 252.0  # read in UTC, Sundays appear
