"""The next-open parity scenarios: what they cover, and that their data exercises it.

The scenarios themselves run in ``test_parity.py`` (every runnable scenario of ``SCENARIOS``);
these tests check that the suite holds the set-ups issue 17 asks for and that the real series
and scenarios reach the cases they are there to test (gaps, opens at the bar's extremes, a cash
shortfall, stops on the entry bar).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, Engine
from ml4t.backtest.compiled import run_weights
from ml4t.backtest.validation import SCENARIOS
from ml4t.backtest.validation.backtesting_runs import merge_order_legs
from ml4t.backtest.validation.next_open import (
    PeerData,
    fraction_bracket_plan,
    ranked_rotation,
)
from ml4t.backtest.validation.plans import PlanStrategy
from ml4t.backtest.validation.suite import Market, ma_cross

pytestmark = pytest.mark.validation

NEXT_OPEN = [s for s in SCENARIOS if {"next_open", "cheat_on_open"} & set(s.tags)]


def test_at_least_twelve_next_open_scenarios_across_the_three_peers():
    assert len(NEXT_OPEN) >= 12
    assert {s.framework for s in NEXT_OPEN} == {"vectorbt", "backtrader", "backtesting"}


def test_the_next_open_suite_covers_the_required_set_ups():
    names = {(s.framework, s.name) for s in NEXT_OPEN}
    for required in (
        ("vectorbt", "next_open_rotation_shortfall_25"),
        ("vectorbt", "next_open_all_in_costs"),
        ("vectorbt", "next_open_stop_loss_take_profit_goog"),
        ("vectorbt", "next_open_trailing_stop_goog"),
        ("vectorbt", "next_open_stops_eurusd"),
        ("vectorbt", "next_open_reversals"),
        ("backtrader", "cheat_on_open_target_percent"),
        ("backtrader", "cheat_on_open_stop_loss_goog"),
        ("backtrader", "cheat_on_open_reversals"),
        ("backtesting", "all_in_commission"),
        ("backtesting", "all_in_finalize_trades"),
        ("backtesting", "stop_loss_take_profit_goog"),
        ("backtesting", "stop_loss_take_profit_eurusd"),
        ("backtesting", "reversals"),
    ):
        assert required in names, required


@pytest.mark.parametrize("name", ["GOOG", "EURUSD"])
def test_the_real_series_gap_and_open_at_their_high_or_low(name):
    data = PeerData(name).arrays()
    open_, high, low, close = (data[k][:, 0] for k in ("open", "high", "low", "close"))
    assert np.sum(open_[1:] != close[:-1]) > 100  # overnight (or hourly) gaps
    assert np.sum(open_ == high) > 10 and np.sum(open_ == low) > 10


def test_the_rotation_runs_short_of_cash_so_an_entry_is_cut():
    # Five weights summing to 1.0 with 0.1% commission and 0.1% slippage on top cannot all be
    # bought: the last (largest) entry of a rebalance is cut to the cash left.
    wide = Market(25, 300, 3)
    weights = ranked_rotation(wide, 20, (0.3, 0.25, 0.2, 0.15, 0.1))
    assert np.nansum(weights[20]) == pytest.approx(1.0)
    config = BacktestConfig.preset(
        "vectorbt_next_open", initial_cash=10_000, commission=0.001, slippage=0.001
    )
    result = run_weights(wide.feed(), weights, config=config)
    assert (result.orders["reason"] == "scaled_down_insufficient_cash").sum() > 0


def _bracket_fills(name: str, qty: float, stop: float, take: float) -> tuple[pl.DataFrame, dict]:
    """Our fills of the backtesting.py bracket scenario on a real series, with their bars."""
    market = PeerData(name)
    feed, data = market.feed(), market.arrays()
    entries, exits = ma_cross(data["close"])
    plan = fraction_bracket_plan(entries, exits, qty, stop, take)
    result = Engine(feed, PlanStrategy(plan), BacktestConfig.preset("backtesting_py")).run()
    bars = np.searchsorted(feed.timestamps, result.fills["timestamp"].to_numpy())
    return result.fills.with_columns(pl.Series("bar", bars)), data


def test_the_goog_bracket_scenario_has_a_stop_filled_at_a_gapped_open():
    fills, data = _bracket_fills("GOOG", 10, 0.95, 1.1)
    gapped = [
        row["bar"]
        for row in fills.filter(pl.col("reason") == "stop_loss").iter_rows(named=True)
        if row["price"] == data["open"][row["bar"], 0] < data["high"][row["bar"], 0]
    ]
    assert gapped


def test_the_eurusd_bracket_scenario_has_exits_on_their_entry_bar():
    fills, _ = _bracket_fills("EURUSD", 5000, 0.998, 1.004)
    entry_bars = set(fills.filter(pl.col("side") == "buy")["bar"].to_list())
    exit_bars = set(fills.filter(pl.col("reason").is_in(["stop_loss", "take_profit"]))["bar"])
    assert entry_bars & exit_bars


def test_the_legs_of_one_order_are_summed_into_its_fill():
    # A reversal in backtesting.py closes the long trade (sell 40) and opens a short trade
    # (sell 40) on one bar at one price: one order, one fill of -80 with both commissions.
    rows = np.array(
        [
            [10.0, 0.0, 40.0, 100.0, 4.0],
            [20.0, 0.0, -40.0, 110.0, 4.4],
            [20.0, 0.0, -40.0, 110.0, 4.4],
            [30.0, 0.0, 40.0, 105.0, 4.2],
        ]
    )
    merged = merge_order_legs(rows)
    assert merged.tolist() == [
        [10.0, 0.0, 40.0, 100.0, 4.0],
        [20.0, 0.0, -80.0, 110.0, 8.8],
        [30.0, 0.0, 40.0, 105.0, 4.2],
    ]


def test_legs_on_one_bar_at_different_prices_stay_apart():
    rows = np.array([[5.0, 0.0, -10.0, 99.0, 0.0], [5.0, 0.0, -10.0, 98.0, 0.0]])
    assert len(merge_order_legs(rows)) == 2
