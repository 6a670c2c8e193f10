"""Trade matching with fractional shares, on random data and random target orders.

Fractional quantities leave float residues; the trades must still explain the fills exactly
(up to the matcher's relative tolerance), never hold a dust quantity, and a cash account
never shows a short trade.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml4t.backtest import BacktestConfig, BarView, Broker, DataFeed, Engine, Strategy

# The matcher's documented relative tolerance (the broker's, for target orders).
RTOL = 1e-9


def random_frame(seed: int, n_assets: int, n_bars: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_bars, n_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (n_bars, n_assets)))
    start = datetime(2020, 1, 1)
    t_idx, a_idx = np.indices((n_bars, n_assets)).reshape(2, -1)
    return pl.DataFrame(
        {
            "timestamp": [start + timedelta(days=int(t)) for t in t_idx],
            "asset": [f"X{a}" for a in a_idx],
            "open": open_[t_idx, a_idx],
            "high": np.maximum(open_, close)[t_idx, a_idx],
            "low": np.minimum(open_, close)[t_idx, a_idx],
            "close": close[t_idx, a_idx],
            "volume": np.full(len(t_idx), 1e6),
        }
    )


class RandomTargets(Strategy):
    """Random target percents, closes and rebalances: fractional sizes that rarely add up."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        rng = self.rng
        assets = data.assets
        for _ in range(rng.integers(0, 4)):
            asset = str(assets[rng.integers(len(assets))])
            kind = rng.integers(0, 3)
            if kind == 0:
                broker.order_target_percent(asset, float(rng.uniform(0, 0.4)))
            elif kind == 1:
                broker.close_position(asset)
            else:
                w = rng.uniform(0, 1, len(assets)) * (rng.uniform(size=len(assets)) < 0.5)
                total = w.sum()
                broker.rebalance(w / total * rng.uniform(0.3, 0.95) if total > 0 else w)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_assets=st.integers(1, 6),
    n_bars=st.integers(5, 80),
    commission=st.sampled_from([0.0, 0.001]),
    fill_timing=st.sampled_from(["next_open", "same_close"]),
)
def test_fractional_trades_explain_the_fills_without_dust_or_shorts(
    seed: int, n_assets: int, n_bars: int, commission: float, fill_timing: str
) -> None:
    feed = DataFeed(random_frame(seed, n_assets, n_bars))
    config = BacktestConfig(
        initial_cash=10_000.0,
        commission=commission,
        fractional_shares=True,
        fill_timing=fill_timing,  # type: ignore[arg-type]
    )
    result = Engine(feed, RandomTargets(seed), config).run()
    fills = result.fills
    trades = result.trades

    # A cash account never shorts, so no trade is short.
    assert (trades["direction"] == "long").all()
    for asset in feed.assets:
        f = fills.filter(pl.col("asset") == asset)
        t = trades.filter(pl.col("asset") == asset)
        bought = float(f.filter(pl.col("side") == "buy")["quantity"].sum())
        sold = float(f.filter(pl.col("side") == "sell")["quantity"].sum())
        scale = max(bought, 1.0)
        # Every bought share is in a trade; every sold one closed part of a trade.
        assert abs(float(t["quantity"].sum()) - bought) <= RTOL * scale
        closed = float(t.filter(pl.col("status") == "closed")["quantity"].sum())
        assert abs(closed - sold) <= RTOL * scale
        # No trade is float dust: each is a real part of the fills it pairs.
        if t.height:
            largest_fill = float(f["quantity"].max())  # type: ignore[arg-type]
            assert float(t["quantity"].min()) > RTOL * largest_fill  # type: ignore[arg-type]
        # What is still open is what the broker holds (bought less sold, as it sums them).
        held = float(np.sum(np.where(f["side"] == "buy", 1.0, -1.0) * f["quantity"].to_numpy()))
        still_open = float(t.filter(pl.col("status") == "open")["quantity"].sum())
        assert abs(still_open - held) <= RTOL * scale
    assert result.metrics["n_trades"] == trades.filter(pl.col("status") == "closed").height
