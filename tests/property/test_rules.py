"""Position rules on random data, random rule trees and random trading.

Two properties: every exit a rule makes fills inside its bar's [low, high]; and no rule reads a
bar after the current one (changing every bar after bar k leaves every fill up to bar k alone).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_accounting import random_frame

from ml4t.backtest import BacktestConfig, BarView, Broker, DataFeed, Engine, Strategy
from ml4t.backtest.risk import (
    AllOf,
    AnyOf,
    PositionRule,
    RegimeDependent,
    RuleChain,
    SignalExit,
    StopLoss,
    TakeProfit,
    TimeExit,
    TrailingStop,
    VolatilityScaledStop,
)

RULE_REASONS = [
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "volatility_stop",
    "time_exit",
    "signal_exit",
]

fractions = st.floats(0.005, 0.2)
leaves = st.one_of(
    fractions.map(StopLoss),
    fractions.map(TakeProfit),
    fractions.map(TrailingStop),
    st.floats(0.5, 3.0).map(lambda v: StopLoss(amount=v)),
    st.builds(
        VolatilityScaledStop,
        st.floats(0.5, 4.0),
        window=st.integers(1, 5),
        fixed=st.booleans(),
    ),
    st.builds(
        VolatilityScaledStop,
        st.floats(0.5, 4.0),
        column=st.just("vol"),
        fixed=st.booleans(),
        relative=st.just(True),
    ),
    st.integers(1, 6).map(TimeExit),
    st.floats(-1.0, 1.0).map(lambda v: SignalExit("score", v)),
)


def _combine(children: st.SearchStrategy[PositionRule]) -> st.SearchStrategy[PositionRule]:
    members = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        members.map(lambda rs: AnyOf(*rs)),
        members.map(lambda rs: AllOf(*rs)),
        members.map(lambda rs: RuleChain(*rs)),
        st.builds(
            lambda a, b, d: RegimeDependent("regime", {0: a, 1: b}, default=d),
            children,
            children,
            st.none() | children,
        ),
    )


rule_trees = st.recursive(leaves, _combine, max_leaves=6)


def frame_with_columns(seed: int, n_assets: int, n_bars: int) -> pl.DataFrame:
    frame = random_frame(seed, n_assets, n_bars, 0.05)
    rng = np.random.default_rng(seed + 1)
    n = frame.height
    return frame.with_columns(
        score=pl.Series(rng.normal(0.0, 1.0, n)),
        regime=pl.Series(rng.integers(0, 3, n).astype(np.float64)),
        vol=pl.Series(rng.uniform(0.005, 0.05, n)),
    )


class RandomEntries(Strategy):
    """Opens and adds to positions at random, long and short; the rules do the exits."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_start(self, broker: Broker) -> None:
        self.rng = np.random.default_rng(self.seed)

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        for asset in data.assets:
            if np.isnan(data["close"][data.assets == asset][0]):
                continue
            if self.rng.uniform() < 0.3:
                broker.submit_order(str(asset), float(self.rng.choice([-20, -10, 10, 20])))


def run(frame: pl.DataFrame, rules: PositionRule, seed: int, **config: object):  # type: ignore[no-untyped-def]
    cfg = BacktestConfig(initial_cash=1e6, account="margin", **config)  # type: ignore[arg-type]
    feed = DataFeed(frame)
    return feed, Engine(feed, RandomEntries(seed), cfg, position_rules=rules).run()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    n_assets=st.integers(1, 3),
    n_bars=st.integers(5, 30),
    rules=rule_trees,
    priority=st.sampled_from(["stop", "limit"]),
    on_entry_bar=st.booleans(),
)
def test_every_rule_exit_fills_inside_its_bar(
    seed, n_assets, n_bars, rules, priority, on_entry_bar
):
    frame = frame_with_columns(seed, n_assets, n_bars)
    feed, result = run(
        frame, rules, seed, intrabar_priority=priority, stops_on_entry_bar=on_entry_bar
    )
    fills = result.fills.filter(pl.col("reason").is_in(RULE_REASONS))
    bars = {ts: i for i, ts in enumerate(feed.datetimes)}
    low, high = feed.array("low"), feed.array("high")
    assets = {str(a): i for i, a in enumerate(feed.assets)}
    for ts, asset, price in fills.select("timestamp", "asset", "price").iter_rows():
        t, a = bars[ts], assets[asset]
        assert low[t, a] <= price <= high[t, a], (ts, asset, price, low[t, a], high[t, a])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    n_assets=st.integers(1, 3),
    n_bars=st.integers(6, 30),
    cut=st.floats(0.1, 0.9),
    rules=rule_trees,
)
def test_no_rule_reads_a_bar_after_the_current_one(seed, n_assets, n_bars, cut, rules):
    frame = frame_with_columns(seed, n_assets, n_bars)
    times = frame["timestamp"].unique().sort()
    k = int(cut * (len(times) - 1))
    later = pl.col("timestamp") > times[k]
    # Columns are known at a bar's close, so bar k's own values are off limits at bar k too.
    closing = pl.col("timestamp") >= times[k]
    rng = np.random.default_rng(seed + 2)
    scale = pl.Series(rng.uniform(0.7, 1.3, frame.height))
    # Every price after bar k moves and every column value from bar k on is redrawn.
    redrawn = {
        "score": rng.normal(0.0, 1.0, frame.height),
        "regime": rng.integers(0, 3, frame.height).astype(np.float64),
        "vol": rng.uniform(0.001, 0.2, frame.height),
    }
    prices = [
        pl.when(later).then(pl.col(c) * scale).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close")
    ]
    columns = [
        pl.when(closing).then(pl.Series(values)).otherwise(pl.col(c)).alias(c)
        for c, values in redrawn.items()
    ]
    changed = frame.with_columns(prices + columns)
    _, before = run(frame, rules, seed)
    _, after = run(changed, rules, seed)
    upto = pl.col("timestamp") <= times[k]
    assert before.fills.filter(upto).equals(after.fills.filter(upto))
