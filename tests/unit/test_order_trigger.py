"""``order_trigger="close"``: stop and limit orders checked against the close only (Zipline).

Worked by hand on one asset, fills at the next close (``fill_timing="next_close"``), no costs.
100 shares are bought at bar 0 and fill at close 1 (100). A sell stop at 95 is placed at bar 1:

- bar 2 trades down to 94 and closes at 97: the range touches 95, the close does not. Checked
  against the range, the stop fills there at 95; against the close, it waits.
- bar 3 closes at 93, under 95: checked against the close, it fills at that close, 93.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed
from scripted import run

OPEN = [100.0, 100.0, 99.0, 96.0, 93.0]
HIGH = [100.0, 100.0, 99.0, 96.0, 93.0]
LOW = [100.0, 100.0, 94.0, 92.0, 93.0]
CLOSE = [100.0, 100.0, 97.0, 93.0, 93.0]


def feed() -> DataFeed:
    n = len(CLOSE)
    return DataFeed(
        pl.DataFrame(
            {
                "timestamp": [datetime(2024, 1, 1) + timedelta(days=t) for t in range(n)],
                "asset": ["A"] * n,
                "open": OPEN,
                "high": HIGH,
                "low": LOW,
                "close": CLOSE,
                "volume": [1e6] * n,
            }
        )
    )


def stop_exit(trigger: str) -> tuple[int, float]:
    """The bar and price the stop sold at."""
    result, _ = run(
        feed(),
        {
            0: lambda b, d: b.submit_order("A", 100),
            1: lambda b, d: b.submit_order("A", -100, stop_price=95.0),
        },
        fill_timing="next_close",
        order_trigger=trigger,
    )
    sell = result.fills.filter(pl.col("side") == "sell")
    bar = [datetime(2024, 1, 1) + timedelta(days=t) for t in range(5)].index(sell["timestamp"][0])
    return bar, float(sell["price"][0])


def test_a_stop_checked_against_the_range_fills_at_its_level_when_touched():
    assert stop_exit("high_low") == (2, 95.0)


def test_a_stop_checked_against_the_close_fills_at_the_first_close_past_it():
    assert stop_exit("close") == (3, 93.0)


def test_a_limit_checked_against_the_close_fills_at_that_close():
    # A buy limit at 98 placed at bar 1: bar 2's close 97 is under it, so it fills at 97 (the
    # range, low 94, would fill it at the limit, 98, on the same bar).
    for trigger, price in (("close", 97.0), ("high_low", 98.0)):
        result, _ = run(
            feed(),
            {1: lambda b, d: b.submit_order("A", 10, limit_price=98.0)},
            fill_timing="next_close",
            order_trigger=trigger,
        )
        assert result.fills["price"].to_list() == [price]


def test_close_triggers_need_fills_at_the_next_close():
    with pytest.raises(ConfigError, match="order_trigger='close' needs fill_timing='next_close'"):
        BacktestConfig(order_trigger="close")


def test_an_unknown_trigger_names_the_nearest():
    with pytest.raises(ConfigError, match="close"):
        BacktestConfig(fill_timing="next_close", order_trigger="closes")  # type: ignore[arg-type]


def test_the_zipline_preset_checks_levels_at_the_close():
    assert BacktestConfig.preset("zipline").order_trigger == "close"
    assert BacktestConfig().order_trigger == "high_low"
