"""Metrics against empyrical-reloaded on the same returns, plus the frequency inference."""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest

from ml4t.backtest.results import compute_metrics, infer_periods_per_year
from ml4t.backtest.results.metrics import returns_from_equity


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
