"""A target order that goes against market orders still working on its asset replaces them.

Under a volume cap a buy can keep working for several bars; a later target (rebalance, close,
order_target_*) that asks for less must not trade against that remainder, paying costs both
ways: the remainder is cancelled (reason ``replaced_by_target_order``) and the new order is
sized from the position alone. Worked by hand on one asset trading 100 shares a bar.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from ml4t.backtest import BacktestConfig, DataFeed, run_weights
from scripted import run


def feed(n: int = 8, volume: float = 100.0) -> DataFeed:
    return DataFeed(
        pl.DataFrame(
            {
                "timestamp": [datetime(2024, 1, 1) + timedelta(days=t) for t in range(n)],
                "asset": ["A"] * n,
                "open": [10.0] * n,
                "high": [10.0] * n,
                "low": [10.0] * n,
                "close": [10.0] * n,
                "volume": [volume] * n,
            }
        )
    )


def sides(result):
    return list(zip(result.fills["side"], result.fills["quantity"], strict=True))


CAP = {"max_participation": 1.0, "participation_remainder": "keep", "initial_cash": 100_000.0}


def test_closing_withdraws_the_working_buy_and_sells_only_what_is_held():
    result, _ = run(
        feed(),
        {0: lambda b, d: b.submit_order("A", 500), 2: lambda b, d: b.rebalance({"A": 0.0})},
        **CAP,
    )
    # Bars 1 and 2 buy 100 each; at bar 2's close the 300 still to buy are withdrawn, and the
    # 200 held are sold, 100 a bar.
    assert sides(result) == [("buy", 100.0), ("buy", 100.0), ("sell", 100.0), ("sell", 100.0)]
    buy = result.orders.row(0, named=True)
    assert (buy["status"], buy["reason"], buy["filled_quantity"]) == (
        "cancelled",
        "replaced_by_target_order",
        200.0,
    )
    assert result.equity["cash"][-1] == 100_000.0


def test_a_smaller_target_keeps_the_position_and_sells_the_difference():
    # Target 150 shares (1.5% of 100,000 at 10) while 300 of a 500 buy still work: withdraw the
    # 300 and sell 50 of the 200 held.
    result, _ = run(
        feed(),
        {
            0: lambda b, d: b.submit_order("A", 500),
            2: lambda b, d: b.order_target_quantity("A", 150),
        },
        **CAP,
    )
    assert sides(result) == [("buy", 100.0), ("buy", 100.0), ("sell", 50.0)]


def test_a_target_in_the_same_direction_nets_the_working_order():
    # Target 600 with 300 still to buy: 100 more, the working buy stays.
    result, _ = run(
        feed(),
        {
            0: lambda b, d: b.submit_order("A", 500),
            2: lambda b, d: b.order_target_quantity("A", 600),
        },
        **CAP,
    )
    assert sum(q for s, q in sides(result)) == 600.0
    assert set(result.orders["status"]) == {"filled"}


def test_the_compiled_driver_withdraws_the_same_way():
    w = np.full((8, 1), np.nan)
    w[0] = 0.05  # 5,000 / 10 = 500 shares, 100 a bar
    w[2] = 0.0
    result = run_weights(feed(), w, config=BacktestConfig(**CAP))
    assert sides(result) == [("buy", 100.0), ("buy", 100.0), ("sell", 100.0), ("sell", 100.0)]
    assert result.orders["reason"][0] == "replaced_by_target_order"
