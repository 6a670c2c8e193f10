"""The compiled driver and the event driver agree to the last bit on random runs.

For each random universe, decision arrays and config, a ``Strategy`` makes the decisions the
compiled driver documents (through the public broker API), and both runs must produce equal
fills, orders and equity curves.
"""

from __future__ import annotations

import math
from dataclasses import fields
from datetime import datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_accounting import random_frame
from test_rules import RULE_REASONS, frame_with_columns, rule_trees

from ml4t.backtest import (
    BacktestConfig,
    BarView,
    Broker,
    ConfigError,
    DataFeed,
    Engine,
    OrderError,
    Strategy,
    run_orders,
    run_signals,
    run_weights,
)
from ml4t.backtest.risk import (
    DailyLossLimit,
    MaxDrawdownHalt,
    MaxGrossExposure,
    MaxNetExposure,
    MaxPositions,
    MaxPositionWeight,
)


class SignalTwin(Strategy):
    """``run_signals``'s decisions, made through the broker."""

    def __init__(self, entries, exits, short_entries, short_exits, size, size_type, opposite):  # type: ignore[no-untyped-def]
        self.args = (entries, exits, short_entries, short_exits)
        self.size, self.size_type, self.opposite = size, size_type, opposite
        self.n_orders = 0  # orders seen so far in the broker's book

    def fired(self, t: int, broker: Broker) -> set[str]:
        """The assets whose position rule fired on bar ``t``: placed its exit order on this
        bar, whatever that filled (under a volume cap, a part, nothing, or a remainder that
        fills or is rejected on a later bar, which is not the rule's bar)."""
        book = broker.orders
        new = [book.snapshot(i, broker.assets) for i in range(self.n_orders, book.n)]
        self.n_orders = book.n
        return {o.asset for o in new if o.origin in RULE_REASONS and o.submit_bar == t}

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        t = data.index
        entries, exits, short_entries, short_exits = self.args
        # A rule that fired replaces the entries that would fill on its bar: with same-close
        # fills, those decided at its close; with later fills, none a strategy could still make.
        ruled_out = self.fired(t, broker) if broker.config.fill_timing == "same_close" else set()
        for a, asset in enumerate(map(str, broker.assets)):
            if not data.has_bar[a]:
                continue
            go_long, leave_long = (
                entries[t, a] and not exits[t, a],
                exits[t, a] and not entries[t, a],
            )
            go_short = leave_short = False
            if short_entries is not None:
                go_short = short_entries[t, a] and not short_exits[t, a]
                leave_short = short_exits[t, a] and not short_entries[t, a]
            if go_long and go_short:
                go_long = go_short = False
            held = broker.position(asset) + broker.pending[a]
            replaced = asset in ruled_out
            opposite = (go_short and held > 0) or (go_long and held < 0)
            if opposite and self.opposite == "reverse" and not replaced:
                self.enter(broker, asset, 1.0 if go_long else -1.0)
            elif (
                (leave_long and held > 0)
                or (leave_short and held < 0)
                or (opposite and self.opposite == "close")
            ):
                broker.close_position(asset)
            elif (
                (go_long or go_short)
                and broker.position(asset) == 0
                and broker.pending[a] == 0
                and not replaced
            ):
                self.enter(broker, asset, 1.0 if go_long else -1.0)

    def enter(self, broker: Broker, asset: str, side: float) -> None:
        if self.size_type == "shares":
            broker.order_target_quantity(asset, side * self.size)
        elif self.size_type == "value":
            broker.order_target_value(asset, side * self.size)
        else:
            broker.order_target_percent(asset, side * self.size)


class SignalRows(Strategy):
    """``run_signals``' decisions through ``broker.order_signals``, one row a bar."""

    def __init__(self, entries, exits, short_entries, short_exits, size, size_type, opposite):  # type: ignore[no-untyped-def]
        self.args = (entries, exits, short_entries, short_exits)
        self.size, self.size_type, self.opposite = size, size_type, opposite

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        t = data.index
        entries, exits, short_entries, short_exits = self.args
        shorts = {}
        if short_entries is not None:
            shorts = {"short_entries": short_entries[t], "short_exits": short_exits[t]}
        broker.order_signals(
            entries[t], exits[t], **shorts, size=self.size, size_type=self.size_type,
            upon_opposite_entry=self.opposite,
        )  # fmt: skip


class WeightTwin(Strategy):
    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        row = self.weights[data.index]
        if np.isfinite(row).any():
            broker.rebalance(np.nan_to_num(row))


class OrderTwin(Strategy):
    def __init__(self, quantities: np.ndarray, limits: np.ndarray, stops: np.ndarray) -> None:
        self.quantities, self.limits, self.stops = quantities, limits, stops

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        t = data.index
        for a, asset in enumerate(map(str, broker.assets)):
            q = self.quantities[t, a]
            if not np.isnan(q) and q != 0:  # +-inf: all-in
                limit, stop = self.limits[t, a], self.stops[t, a]
                broker.submit_order(
                    asset,
                    float(q),
                    limit_price=None if np.isnan(limit) else float(limit),
                    stop_price=None if np.isnan(stop) else float(stop),
                )


# Every setting of BacktestConfig, each with values that change what the drivers do (the last
# two change metrics only). ``test_every_config_setting_is_varied`` keeps this list complete.
SETTINGS = {
    "initial_cash": st.sampled_from([10_000.0, 1e6]),
    "commission": st.sampled_from([0.0, 0.001]),
    "commission_overrides": st.sampled_from([None, {"X0": 0.002}]),
    "slippage": st.sampled_from([0.0, 0.0005]),
    "slippage_overrides": st.sampled_from([None, {"X0": 0.001}]),
    "fill_timing": st.sampled_from(["next_open", "same_close", "next_close"]),
    "sizing_price": st.sampled_from(["decision", "fill"]),
    "sizing_equity": st.sampled_from(["decision", "fill"]),
    "target_rounding": st.sampled_from(["target", "order"]),
    "snap_near_whole": st.booleans(),
    "execution_order": st.sampled_from(
        ["as_submitted", "exits_first", "exits_first_smallest_entries_first"]
    ),
    "slippage_within_bar": st.booleans(),
    "fractional_shares": st.booleans(),
    "on_insufficient_cash": st.sampled_from(["scale_down", "reject", "allow"]),
    "account": st.sampled_from(["cash", "margin"]),
    "initial_margin": st.sampled_from([0.5, 1.0]),
    "maintenance_margin": st.sampled_from([0.25, 0.4]),
    "margin_calls": st.booleans(),
    "borrow_rate_annual": st.sampled_from([0.0, 0.05]),
    "cash_interest_rate_annual": st.sampled_from([0.0, 0.03]),
    "margin_interest_rate_annual": st.sampled_from([0.0, 0.08]),
    "intrabar_priority": st.sampled_from(["stop", "limit"]),
    "stops_on_entry_bar": st.sampled_from([None, False, True]),
    "open_priority": st.sampled_from(["orders", "rules"]),
    "stop_anchor": st.sampled_from(["fill", "decision"]),
    "trail_basis": st.sampled_from(["high_low", "close"]),
    "order_trigger": st.sampled_from(["high_low", "close"]),
    "max_participation": st.sampled_from([None, 0.001]),
    "participation_remainder": st.sampled_from(["keep", "cancel"]),
    "close_at_end": st.booleans(),
    "periods_per_year": st.sampled_from([None, 252.0]),
    "risk_free_rate": st.sampled_from([0.0, 0.02]),
}


def _coherent(config: dict[str, object]) -> dict[str, object]:
    """Equity valued at the fill is converted into shares at the fill's price: the config
    refuses sizing_equity='fill' without sizing_price='fill'."""
    if config["sizing_equity"] == "fill":
        config = config | {"sizing_price": "fill"}
    # Stops on the entry bar mean nothing with fills at a close, and the config refuses them.
    if config["stops_on_entry_bar"] and config["fill_timing"] != "next_open":
        config = config | {"stops_on_entry_bar": None}
    # Levels checked at the close only are Zipline's daily mode: the config refuses them with
    # other fill timings.
    if config["order_trigger"] == "close" and config["fill_timing"] != "next_close":
        config = config | {"order_trigger": "high_low"}
    return config


configs = st.fixed_dictionaries(SETTINGS).map(_coherent)


def test_every_config_setting_is_varied():
    assert set(SETTINGS) == {f.name for f in fields(BacktestConfig)}


portfolio = st.lists(
    st.sampled_from(
        [
            MaxPositions(2),
            MaxPositionWeight(0.4),
            MaxGrossExposure(1.2),
            MaxNetExposure(0.8),
            DailyLossLimit(0.02),
            DailyLossLimit(0.03, action="liquidate"),
            MaxDrawdownHalt(0.1),
            MaxDrawdownHalt(0.15, action="liquidate"),
        ]
    ),
    max_size=3,
    unique_by=type,
)
common = {
    "seed": st.integers(0, 2**31),
    "n_assets": st.integers(1, 4),
    "n_bars": st.integers(3, 40),
    "config": configs,
    "rules": st.none() | rule_trees,
    "limits": portfolio,
}


def assert_same(event, compiled) -> None:  # type: ignore[no-untyped-def]
    assert event.fills.equals(compiled.fills)
    assert event.orders.equals(compiled.orders)
    assert event.equity.equals(compiled.equity)


def engine(feed, strategy, config, rules, limits):  # type: ignore[no-untyped-def]
    return Engine(feed, strategy, config, position_rules=rules, portfolio_rules=limits).run()


# Sizes of every size type, whole and fractional (a fraction of a share with fractional shares
# off is refused by both drivers).
sizes = st.sampled_from(
    [
        ("percent", 0.3),
        ("percent", 0.05),
        ("value", 3_000.0),
        ("value", 1_234.5),
        ("value", math.inf),  # all-in
        ("shares", 7.0),
        ("shares", 7.5),
    ]
)
opposites = st.sampled_from(["reverse", "close", "ignore"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**common, sized=sizes, shorts=st.booleans(), opposite=opposites)
def test_run_signals_matches_the_event_driver(
    seed, n_assets, n_bars, config, rules, limits, sized, shorts, opposite
):
    signals_case(seed, n_assets, n_bars, config, rules, limits, sized, shorts, opposite)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**common, shorts=st.booleans())
def test_both_drivers_refuse_a_fractional_share_size_with_fractional_shares_off(
    seed, n_assets, n_bars, config, rules, limits, shorts
):
    config = config | {"fractional_shares": False}
    signals_case(seed, n_assets, n_bars, config, rules, limits, ("shares", 7.5), shorts, "reverse")


def signals_case(seed, n_assets, n_bars, config, rules, limits, sized, shorts, opposite):  # type: ignore[no-untyped-def]
    """Both drivers on the same random signals: equal results, or the same refusal."""
    size_type, size = sized
    feed = DataFeed(frame_with_columns(seed, n_assets, n_bars))
    rng = np.random.default_rng(seed)
    shape = (feed.n_bars, feed.n_assets)
    entries, exits = rng.uniform(size=shape) < 0.3, rng.uniform(size=shape) < 0.2
    short_entries = short_exits = None
    if shorts and config["account"] == "margin":
        short_entries, short_exits = rng.uniform(size=shape) < 0.2, rng.uniform(size=shape) < 0.2
    cfg = BacktestConfig(**config)
    args = (entries, exits, short_entries, short_exits)
    compile_args = {
        "short_entries": short_entries, "short_exits": short_exits, "size": size,
        "size_type": size_type, "config": cfg, "position_rules": rules, "portfolio_rules": limits,
        "upon_opposite_entry": opposite,
    }  # fmt: skip
    if size_type == "shares" and size != int(size) and not cfg.fractional_shares:
        # Every asset enters long on the first bar (every asset has it): the event driver
        # orders the fractional size there and is refused; the compiled driver refuses up front.
        entries[0], exits[0] = True, False
        if short_entries is not None:
            short_entries[0] = False
        with pytest.raises(OrderError, match="fractional"):
            engine(feed, SignalTwin(*args, size, size_type, opposite), cfg, rules, limits)
        with pytest.raises(ConfigError, match="fractional"):
            run_signals(feed, entries, exits, **compile_args)
        with pytest.raises(ConfigError, match="fractional"):
            engine(feed, SignalRows(*args, size, size_type, opposite), cfg, rules, limits)
        return
    event = engine(feed, SignalTwin(*args, size, size_type, opposite), cfg, rules, limits)
    compiled = run_signals(feed, entries, exits, **compile_args)
    assert_same(event, compiled)
    # The same rule, compiled, called a bar at a time from a strategy.
    rows = engine(feed, SignalRows(*args, size, size_type, opposite), cfg, rules, limits)
    assert_same(rows, compiled)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**common)
def test_run_weights_matches_the_event_driver(seed, n_assets, n_bars, config, rules, limits):
    feed = DataFeed(frame_with_columns(seed, n_assets, n_bars))
    rng = np.random.default_rng(seed)
    shape = (feed.n_bars, feed.n_assets)
    low = -0.5 if config["account"] == "margin" else 0.0
    weights = rng.uniform(low, 0.5, size=shape)
    weights[rng.uniform(size=shape) < 0.3] = np.nan
    weights[rng.uniform(size=feed.n_bars) < 0.5] = np.nan  # bars without a rebalance
    # Weights only where the asset has had a price, as the event driver needs.
    priced = np.maximum.accumulate(~np.isnan(feed.array("close")), axis=0)
    weights[~priced] = np.nan
    weights = np.where(np.isfinite(weights).any(axis=1, keepdims=True) & ~priced, 0.0, weights)
    cfg = BacktestConfig(**config)
    event = engine(feed, WeightTwin(weights), cfg, rules, limits)
    compiled = run_weights(feed, weights, config=cfg, position_rules=rules, portfolio_rules=limits)
    assert_same(event, compiled)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**common)
def test_run_orders_matches_the_event_driver(seed, n_assets, n_bars, config, rules, limits):
    feed = DataFeed(frame_with_columns(seed, n_assets, n_bars))
    rng = np.random.default_rng(seed)
    shape = (feed.n_bars, feed.n_assets)
    quantities = rng.choice([0.0, 0.0, 5.0, -5.0, 20.0], size=shape)
    # Now and then all-in (+-inf): sized at the fill from the cash.
    quantities = np.where(rng.uniform(size=shape) < 0.05, np.sign(quantities) * np.inf, quantities)
    if config["account"] == "cash":
        quantities = np.abs(quantities)
    close = np.nan_to_num(feed.array("close"), nan=50.0)
    kind = rng.integers(0, 4, size=shape)  # market, limit, stop, stop-limit
    limits_ = np.where((kind == 1) | (kind == 3), close * rng.uniform(0.95, 1.05, shape), np.nan)
    stops = np.where(kind >= 2, close * rng.uniform(0.95, 1.05, shape), np.nan)
    cfg = BacktestConfig(**config)
    event = engine(feed, OrderTwin(quantities, limits_, stops), cfg, rules, limits)
    compiled = run_orders(
        feed, quantities, limit_prices=limits_, stop_prices=stops, config=cfg,
        position_rules=rules, portfolio_rules=limits,
    )  # fmt: skip
    assert_same(event, compiled)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    n_assets=st.integers(1, 4),
    n_bars=st.integers(3, 30),
    config=configs,
)
def test_sizing_at_the_fill_price_equals_sizing_at_decision_when_the_prices_agree(
    seed, n_assets, n_bars, config
):
    """With fills at the decision close (same-bar mode, every bar present, no volume cap), the
    fill price is the decision price: sizing targets at either must give the same orders,
    with every rounding setting."""
    feed = DataFeed(random_frame(seed, n_assets, n_bars, 0.0))
    rng = np.random.default_rng(seed)
    shape = (feed.n_bars, feed.n_assets)
    low = -0.5 if config["account"] == "margin" else 0.0
    weights = rng.uniform(low, 0.5, size=shape)
    weights[rng.uniform(size=feed.n_bars) < 0.3] = np.nan
    config = config | {
        "fill_timing": "same_close",
        "stops_on_entry_bar": None,  # nothing of the bar is left after a fill at its close
        "order_trigger": "high_low",  # "close" is for next-close fills only
        "max_participation": None,
        "sizing_price": "decision",
        "sizing_equity": "decision",
    }
    at_decision = run_weights(feed, weights, config=BacktestConfig(**config))
    at_fill = run_weights(feed, weights, config=BacktestConfig(**config | {"sizing_price": "fill"}))
    assert_same(at_decision, at_fill)
    # Equity at the fill step's prices is, at the decision close, the decision's equity.
    fill_equity = config | {"sizing_price": "fill", "sizing_equity": "fill"}
    assert_same(at_decision, run_weights(feed, weights, config=BacktestConfig(**fill_equity)))
