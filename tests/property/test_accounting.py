"""Accounting invariants on random data and random orders.

On every bar: equity == cash + sum(quantity * last close); a cash account never has negative
cash or a short position; every fill's cost adds up (cash moves by exactly price * quantity plus
commission, and positions by exactly the filled quantities).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml4t.backtest import BacktestConfig, BarView, Broker, DataFeed, Engine, Strategy
from ml4t.backtest.kernels.state import B_HELD, pack_bits


def random_frame(seed: int, n_assets: int, n_bars: int, gap_rate: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_bars, n_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (n_bars, n_assets)))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, (n_bars, n_assets)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, (n_bars, n_assets)))
    keep = rng.uniform(size=(n_bars, n_assets)) >= gap_rate
    keep[0] = True  # every timestamp exists for at least one asset on the first bar
    t_idx, a_idx = np.nonzero(keep)
    start = datetime(2020, 1, 1)
    return pl.DataFrame(
        {
            "timestamp": [start + timedelta(days=int(t)) for t in t_idx],
            "asset": [f"X{a}" for a in a_idx],
            "open": open_[t_idx, a_idx],
            "high": high[t_idx, a_idx],
            "low": low[t_idx, a_idx],
            "close": close[t_idx, a_idx],
            "volume": np.full(len(t_idx), 1e5),
        }
    )


class RandomTrader(Strategy):
    """Submits random orders of every kind; snapshots the account before each decision."""

    def __init__(self, seed: int, *, shorts: bool = False) -> None:
        self.rng = np.random.default_rng(seed)
        self.shorts = shorts
        self.snapshots: list[tuple[float, float, np.ndarray]] = []

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        self.snapshots.append((broker.cash, broker.equity, broker.quantities))
        # The kernels' bits of the assets held (sums over positions visit those only).
        held = broker.kernel_state.account.bits[B_HELD]
        assert (held == pack_bits(broker.quantities[None] != 0.0)[0]).all()
        rng = self.rng
        assets = data.assets
        priced = ~np.isnan(broker.last_prices)
        for _ in range(rng.integers(0, 4)):
            kind = rng.integers(0, 5)
            asset = str(assets[rng.integers(len(assets))])
            if kind == 0:
                qty = float(rng.integers(1, 200))
                side = "buy" if rng.uniform() < 0.6 else "sell"
                held = broker.position(asset)
                if side == "sell" and held > 0 and not self.shorts:
                    qty = min(qty, held)
                broker.submit_order(asset, qty, side=side)
            elif kind == 1 and priced[assets == asset].all():
                broker.order_target_percent(asset, float(rng.uniform(0, 0.6)))
            elif kind == 2:
                broker.close_position(asset)
            elif kind == 3 and priced.any():
                w = rng.uniform(0, 1, len(assets)) * priced * (rng.uniform(size=len(assets)) < 0.5)
                total = w.sum()
                broker.rebalance(w / total * rng.uniform(0.5, 1.3) if total > 0 else w)
            elif kind == 4 and broker.open_orders:
                broker.cancel_order(broker.open_orders[0].id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_assets=st.integers(1, 6),
    n_bars=st.integers(2, 60),
    gap_rate=st.sampled_from([0.0, 0.1, 0.3]),
    commission=st.sampled_from([0.0, 0.001, 0.02]),
    slippage=st.sampled_from([0.0, 0.0005, 0.01]),
    fill_timing=st.sampled_from(["next_open", "same_close"]),
    fractional=st.booleans(),
    cash_policy=st.sampled_from(["scale_down", "reject"]),
    account=st.sampled_from(["cash", "margin"]),
)
def test_accounting_identities_hold_on_every_bar(
    seed: int,
    n_assets: int,
    n_bars: int,
    gap_rate: float,
    commission: float,
    slippage: float,
    fill_timing: str,
    fractional: bool,
    cash_policy: str,
    account: str,
) -> None:
    feed = DataFeed(random_frame(seed, n_assets, n_bars, gap_rate))
    config = BacktestConfig(
        initial_cash=10_000.0,
        commission=commission,
        slippage=slippage,
        fill_timing=fill_timing,  # type: ignore[arg-type]
        fractional_shares=fractional,
        on_insufficient_cash=cash_policy,  # type: ignore[arg-type]
        account=account,  # type: ignore[arg-type]
    )
    strategy = RandomTrader(seed, shorts=account == "margin")
    result = Engine(feed, strategy, config).run()

    fills = result.fills
    sign = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0)
    qty = sign * fills["quantity"].to_numpy()
    price = fills["price"].to_numpy()
    fee = fills["commission"].to_numpy()
    bar_of_fill = np.searchsorted(
        feed.timestamps, fills["timestamp"].cast(pl.Datetime("us")).to_numpy()
    )

    # Rebuild cash and positions bar by bar from the fills alone, and the marks from the feed.
    closes = feed.array("close")
    marks = np.full(feed.n_assets, np.nan)
    positions = np.zeros(feed.n_assets)
    cash = 10_000.0
    asset_idx = np.array([feed.asset_index(a) for a in fills["asset"].to_list()], dtype=np.int64)
    eq = result.equity
    for t in range(feed.n_bars):
        on_bar = np.flatnonzero(bar_of_fill == t)
        for i in on_bar:
            cash -= qty[i] * price[i] + fee[i]
            positions[asset_idx[i]] += qty[i]
        marks = np.where(np.isnan(closes[t]), marks, closes[t])
        value = float(np.sum(np.where(positions != 0, positions * marks, 0.0)))
        assert np.isclose(eq["cash"][t], cash, rtol=1e-9, atol=1e-6)
        assert np.isclose(eq["positions_value"][t], value, rtol=1e-9, atol=1e-6)
        assert eq["equity"][t] == eq["cash"][t] + eq["positions_value"][t]
        if account == "cash":
            assert eq["cash"][t] >= 0.0
            assert (positions >= -1e-9).all()
        # What the strategy saw before deciding is the account marked at this bar's close.
        seen_cash, seen_equity, seen_qty = strategy.snapshots[t]
        seen_value = float(np.sum(np.where(seen_qty != 0, seen_qty * marks, 0.0)))
        assert np.isclose(seen_equity, seen_cash + seen_value, rtol=1e-12, atol=1e-9)
        if fill_timing == "next_open":
            assert seen_cash == eq["cash"][t]

    # Each fill's commission is its rate times its notional; slippage moved the price the
    # documented way against the trader.
    notional = np.abs(qty) * price
    assert np.allclose(fee, commission * notional, rtol=1e-12, atol=0)
    assert (fills["slippage"].to_numpy() >= 0).all()
    # Orders add up: filled quantities per order equal the fills of that order.
    per_order = fills.group_by("order_id").agg(pl.col("quantity").sum()).sort("order_id")
    orders = result.orders.join(per_order, on="order_id", how="left").fill_null(0.0)
    assert np.allclose(orders["filled_quantity"], orders["quantity_right"], rtol=1e-12)
    assert ((orders["status"] == "filled") | (orders["filled_quantity"] == 0)).all()


class RandomTypedTrader(Strategy):
    """Random limit, stop, stop-limit, trailing, day and bracket orders around the last close."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        rng = self.rng
        closes = broker.last_prices
        for _ in range(rng.integers(0, 4)):
            i = int(rng.integers(len(data.assets)))
            asset, close = str(data.assets[i]), closes[i]
            if np.isnan(close):
                continue
            qty = float(rng.integers(1, 50)) * (1 if rng.uniform() < 0.6 else -1)
            away = close * rng.uniform(0.0, 0.05)
            kind = rng.integers(0, 6)
            tif = "day" if rng.uniform() < 0.2 else "gtc"
            if kind == 0:
                broker.submit_order(asset, qty, limit_price=close - np.sign(qty) * away, tif=tif)
            elif kind == 1:
                broker.submit_order(asset, qty, stop_price=close + np.sign(qty) * away, tif=tif)
            elif kind == 2:
                stop = close + np.sign(qty) * away
                limit = stop * rng.uniform(0.98, 1.02)  # either side of the stop
                broker.submit_order(asset, qty, stop_price=stop, limit_price=limit, tif=tif)
            elif kind == 3:
                broker.submit_order(asset, qty, trail_percent=float(rng.uniform(0.01, 0.1)))
            elif kind == 4:
                broker.submit_bracket(
                    asset, abs(qty), take_profit=close * 1.03, stop_loss=close * 0.97
                )
            else:
                broker.submit_order(asset, qty)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_assets=st.integers(1, 4),
    n_bars=st.integers(2, 50),
    fill_timing=st.sampled_from(["next_open", "same_close", "next_close"]),
    priority=st.sampled_from(["stop", "limit"]),
    trail_basis=st.sampled_from(["high_low", "close"]),
    participation=st.sampled_from([None, 0.0005]),
)
def test_every_fill_without_slippage_is_inside_its_bar(
    seed: int,
    n_assets: int,
    n_bars: int,
    fill_timing: str,
    priority: str,
    trail_basis: str,
    participation: float | None,
) -> None:
    feed = DataFeed(random_frame(seed, n_assets, n_bars, 0.1))
    config = BacktestConfig(
        account="margin",
        fill_timing=fill_timing,  # type: ignore[arg-type]
        intrabar_priority=priority,  # type: ignore[arg-type]
        trail_basis=trail_basis,  # type: ignore[arg-type]
        max_participation=participation,
        commission=0.001,
    )
    result = Engine(feed, RandomTypedTrader(seed), config).run()
    fills = result.fills
    if fills.height == 0:
        return
    t = np.searchsorted(feed.timestamps, fills["timestamp"].cast(pl.Datetime("us")).to_numpy())
    a = np.array([feed.asset_index(x) for x in fills["asset"].to_list()], dtype=np.int64)
    low, high = feed.array("low")[t, a], feed.array("high")[t, a]
    price = fills["price"].to_numpy()
    assert (price >= low * (1 - 1e-12)).all() and (price <= high * (1 + 1e-12)).all()
    eq = result.equity
    assert np.allclose(eq["equity"], eq["cash"] + eq["positions_value"], rtol=0, atol=1e-6)
    # No order fills more than it asked for.
    orders = result.orders
    assert (orders["filled_quantity"] <= orders["quantity"] * (1 + 1e-12)).all()
