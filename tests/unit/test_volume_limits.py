"""Participation caps: fills limited to a share of each bar's volume, worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed
from scripted import run


def feed_with_volumes(volumes: list[float], price: float = 10.0) -> DataFeed:
    return DataFeed(
        pl.DataFrame(
            {
                "timestamp": [
                    datetime(2024, 1, 1) + timedelta(days=t) for t in range(len(volumes))
                ],
                "asset": ["A"] * len(volumes),
                "open": price,
                "high": price,
                "low": price,
                "close": price,
                "volume": volumes,
            }
        )
    )


def test_order_larger_than_the_cap_fills_over_several_bars():
    feed = feed_with_volumes([1000.0, 1000.0, 1000.0, 1000.0, 1000.0])
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 250)}, max_participation=0.1, commission=0.01
    )
    # 10% of 1000 shares a bar: 100, 100, then the last 50.
    assert result.fills["quantity"].to_list() == [100.0, 100.0, 50.0]
    assert result.fills["timestamp"].dt.day().to_list() == [2, 3, 4]
    order = result.orders.row(0, named=True)
    assert (order["status"], order["filled_quantity"], order["commission"]) == (
        "filled",
        250.0,
        pytest.approx(250 * 10.0 * 0.01),
    )
    assert result.equity["cash"].to_list()[1:4] == pytest.approx(
        [10_000 - 1010.0, 10_000 - 2020.0, 10_000 - 2525.0]
    )


def test_order_is_partially_filled_while_it_works():
    feed = feed_with_volumes([1000.0, 1000.0, 1000.0])
    seen = []
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 150),
            1: lambda b, d: seen.append((b.open_orders[0].status, b.open_orders[0].filled)),
        },
        max_participation=0.1,
    )
    assert seen == [("partially_filled", 100.0)]
    assert result.orders["status"][0] == "filled"


def test_remainder_is_cancelled_when_set():
    feed = feed_with_volumes([1000.0, 1000.0, 1000.0])
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 250)},
        max_participation=0.1,
        participation_remainder="cancel",
    )
    assert result.fills["quantity"].to_list() == [100.0]
    order = result.orders.row(0, named=True)
    assert (order["status"], order["reason"], order["filled_quantity"]) == (
        "cancelled",
        "volume_limit_remainder_cancelled",
        100.0,
    )


def test_zero_volume_bar_fills_nothing_under_a_cap():
    feed = feed_with_volumes([1000.0, 0.0, 1000.0])
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 50)}, max_participation=0.5)
    assert result.fills["timestamp"].to_list() == [datetime(2024, 1, 3)]


def test_orders_on_one_asset_share_the_bars_volume():
    feed = feed_with_volumes([1000.0, 1000.0, 1000.0])
    result, _ = run(
        feed,
        {0: lambda b, d: (b.submit_order("A", 80), b.submit_order("A", 80))},
        max_participation=0.1,
    )
    assert result.fills.select("order_id", "quantity").rows() == [(0, 80.0), (1, 20.0), (1, 60.0)]


def test_fractional_shares_take_the_exact_share_of_volume():
    feed = feed_with_volumes([333.0, 333.0])
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 50.0)},
        max_participation=0.1,
        fractional_shares=True,
    )
    assert result.fills["quantity"].to_list() == [pytest.approx(33.3)]


@pytest.mark.parametrize("value", [-0.1, 0.0, 1.5, float("nan")])
def test_participation_outside_zero_to_one_is_a_config_error(value):
    with pytest.raises(ConfigError, match="max_participation"):
        BacktestConfig(max_participation=value)


def test_order_events_record_every_transition_of_a_partially_filled_order():
    feed = feed_with_volumes([1000.0, 1000.0, 1000.0])
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 250)},
        max_participation=0.1,
        participation_remainder="cancel",
    )
    events = result.order_events.select("timestamp", "event", "quantity", "reason").rows()
    assert events == [
        (datetime(2024, 1, 1), "submitted", 250.0, ""),
        (datetime(2024, 1, 2), "partially_filled", 100.0, ""),
        (datetime(2024, 1, 2), "cancelled", 150.0, "volume_limit_remainder_cancelled"),
    ]
