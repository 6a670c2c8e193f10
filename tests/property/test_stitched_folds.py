"""Walk-forward on random data, folds and strategies: the stitched fills, trades and equity
tell one story, and annualised metrics use the feed's true bar frequency."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml4t.backtest import BacktestConfig, BarView, Broker, DataFeed, Strategy
from ml4t.backtest.research import walk_forward


def random_frame(seed: int, n_assets: int, n_bars: int, *, business_days: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_bars, n_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (n_bars, n_assets)))
    days = np.arange(n_bars)
    stamps = (
        np.busday_offset(np.datetime64("2021-01-04"), days)
        if business_days
        else np.datetime64("2021-01-01") + days
    ).astype("datetime64[us]")
    t_idx, a_idx = np.indices((n_bars, n_assets)).reshape(2, -1)
    return pl.DataFrame(
        {
            "timestamp": stamps[t_idx],
            "asset": [f"X{a}" for a in a_idx],
            "open": open_[t_idx, a_idx],
            "high": np.maximum(open_, close)[t_idx, a_idx] * 1.01,
            "low": np.minimum(open_, close)[t_idx, a_idx] * 0.99,
            "close": close[t_idx, a_idx],
            "volume": np.full(len(t_idx), 1e6),
        }
    )


class RandomTargets(Strategy):
    """Random target percents and closes, seeded."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        rng = self.rng
        for _ in range(rng.integers(0, 3)):
            asset = str(data.assets[rng.integers(len(data.assets))])
            if rng.uniform() < 0.75:
                broker.order_target_percent(asset, float(rng.uniform(0, 0.45)))
            else:
                broker.close_position(asset)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_assets=st.integers(1, 5),
    n_bars=st.integers(100, 200),  # enough business days for the frequency to read 252
    train_bars=st.integers(5, 40),
    test_bars=st.integers(1, 40),
    extra_step=st.integers(0, 30),
    anchored=st.booleans(),
    purge_bars=st.integers(0, 5),
    commission=st.sampled_from([0.0, 0.001]),
    slippage=st.sampled_from([0.0, 0.002]),
    fractional=st.booleans(),
    business_days=st.booleans(),
)
def test_stitched_fills_trades_and_equity_agree(
    seed: int,
    n_assets: int,
    n_bars: int,
    train_bars: int,
    test_bars: int,
    extra_step: int,
    anchored: bool,
    purge_bars: int,
    commission: float,
    slippage: float,
    fractional: bool,
    business_days: bool,
) -> None:
    feed = DataFeed(random_frame(seed, n_assets, n_bars, business_days=business_days))
    config = BacktestConfig(
        initial_cash=100_000.0,
        commission=commission,
        slippage=slippage,
        fractional_shares=fractional,
    )
    wf = walk_forward(
        feed,
        lambda train: RandomTargets(seed + train.n_bars),
        train_bars=train_bars,
        test_bars=test_bars,
        step=test_bars + extra_step,
        anchored=anchored,
        purge_bars=purge_bars,
        config=config,
    )
    result = wf.result
    equity = result.equity

    # The stitched bars are the test windows' feed bars, in order.
    bars = np.concatenate([np.arange(f.test_start, f.test_end) for f in wf.folds])
    assert equity.height == len(bars)
    closes = feed.array("close")[bars]

    # Replay the stitched fills: the holdings they imply, marked at each close, are the
    # equity's position value on every bar; the cash they imply is its cash.
    fills = result.fills
    fill_bar = np.searchsorted(
        feed.timestamps[bars], fills["timestamp"].cast(pl.Datetime("us")).to_numpy()
    )
    qty = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0) * fills["quantity"].to_numpy()
    price = fills["price"].to_numpy()
    fee = fills["commission"].to_numpy()
    asset = np.array([feed.asset_index(a) for a in fills["asset"].to_list()], dtype=np.int64)
    held = np.zeros(feed.n_assets)
    cash = config.initial_cash
    for t in range(len(bars)):
        for i in np.flatnonzero(fill_bar == t):
            held[asset[i]] += qty[i]
            cash -= qty[i] * price[i] + fee[i]
        value = float(np.sum(held * closes[t]))
        assert np.isclose(equity["positions_value"][t], value, rtol=1e-9, atol=1e-6)
        assert np.isclose(equity["cash"][t], cash, rtol=1e-9, atol=1e-6)
    # Every fold ends flat, with fold_end fills, so the stitched run does too.
    assert np.allclose(held, 0.0, atol=1e-9)
    for fold, fold_result in zip(wf.folds, wf.fold_results, strict=True):
        assert fold_result.equity["positions_value"][-1] == 0.0, fold

    # The trades are the folds' own round trips, and their PnL (net of commission, at fill
    # prices that include slippage) is the change in equity.
    trades = result.trades
    assert (trades["status"] == "closed").all()
    assert trades.height == sum(r.trades.height for r in wf.fold_results)
    change = result.final_value - config.initial_cash
    assert np.isclose(float(trades["pnl"].sum()), change, rtol=1e-9, atol=1e-6)

    # Annualised figures use the feed's frequency, not the gapped stitched timeline.
    per_year = 252.0 if business_days else 365.0
    assert result.periods_per_year == per_year
    wealth = np.concatenate(([config.initial_cash], equity["equity"].to_numpy()))
    returns = wealth[1:] / wealth[:-1] - 1.0
    if len(returns) > 1:
        expected = float(np.std(returns, ddof=1)) * np.sqrt(per_year)
        assert np.isclose(result.metrics["volatility"], expected, rtol=1e-9, atol=1e-12)
