"""The broker step on tiny hand-made arrays: affordable size, marks, and one bar of fills."""

from __future__ import annotations

import math

import numpy as np

from ml4t.backtest.execution.commission import commission_table
from ml4t.backtest.execution.slippage import slippage_table
from ml4t.backtest.kernels.book import add_order
from ml4t.backtest.kernels.records import (
    CASH_SCALE_DOWN,
    EXEC_EXITS_FIRST,
    FILL_DTYPE,
    FILLED,
    LIMIT,
    MARKET,
    O_ORDER,
    ORDER_DTYPE,
    PHASE_OPEN,
    PRIORITY_STOP,
    R_SCALED_DOWN,
    SIZE_AT_DECISION,
    TRAIL_HIGH_LOW,
)
from ml4t.backtest.kernels.step import _affordable, fill_orders, mark_to_market

ASSETS = ["A", "B"]


def test_affordable_buys_the_most_whole_shares_cash_and_commission_pay_for():
    # 1,000 cash at 10 a share with 0.1% commission: q x 10 x 1.001 <= 1,000 -> q <= 99.9.
    fee, _ = commission_table(0.001, ["A"])
    assert _affordable(fee[0], 0, 1_000.0, 10.0, 0.0, False) == 99.0


def test_affordable_with_fractional_shares_spends_the_cash_to_the_cent():
    fee, _ = commission_table(0.0, ["A"])
    assert math.isclose(_affordable(fee[0], 0, 1_000.0, 30.0, 0.0, True), 1_000.0 / 30.0)


def test_mark_to_market_takes_new_closes_keeps_old_marks_and_records_equity():
    # Asset A closes at 10 (5 held: 50), B has no bar and keeps its mark of 20 (-2: -40).
    last = np.array([9.0, 20.0])
    cash, value, gross = np.zeros(1), np.zeros(1), np.zeros(1)
    equity = mark_to_market(
        0, np.array([10.0, np.nan]), last, np.array([5.0, -2.0]), np.array([100.0]), cash, value,
        gross,
    )  # fmt: skip
    assert last.tolist() == [10.0, 20.0]
    assert (cash[0], value[0], gross[0], equity) == (100.0, 10.0, 90.0, 110.0)


class Book:
    """Two assets in a cash account: an order book, positions, cash and the fill log."""

    def __init__(self, cash: float, positions: list[float], marks: list[float]) -> None:
        self.orders = np.zeros(8, dtype=ORDER_DTYPE)
        self.open_ids = np.zeros(8, dtype=np.int64)
        self.n_orders = self.n_open = 0
        self.positions = np.array(positions)
        self.pending = np.zeros(2)
        self.account = np.array([cash])
        self.last_price = np.array(marks)
        self.fills = np.zeros(8, dtype=FILL_DTYPE)

    def market(self, asset: int, quantity: float) -> None:
        self.limit(asset, quantity, math.nan, MARKET)

    def limit(self, asset: int, quantity: float, level: float, kind: int = LIMIT) -> None:
        self.n_orders, self.n_open = add_order(
            self.orders, self.n_orders, self.open_ids, self.n_open, asset, quantity, -1, O_ORDER,
            kind, level, math.nan, math.nan, self.pending,
        )  # fmt: skip

    def fill_at(self, opens: list[float], highs: list[float], lows: list[float]) -> int:
        """Fill the bar (no costs, no caps, exits first); returns the number of fills."""
        nan = np.full(2, np.nan)
        closes = np.array(opens)
        commission, _ = commission_table(0.0, ASSETS)
        slippage, _ = slippage_table(0.0, ASSETS)
        self.n_open, n_fills = fill_orders(
            0, PHASE_OPEN, True, np.array(opens), np.array(highs), np.array(lows), closes,
            np.full(2, 1e6), nan, nan, nan, nan, self.orders, self.n_orders, self.open_ids,
            self.n_open, self.positions, self.pending, self.account, commission, np.zeros(1),
            slippage, True, 1.0, self.last_price, False, CASH_SCALE_DOWN, 0.0, True,
            PRIORITY_STOP, True, EXEC_EXITS_FIRST, False, SIZE_AT_DECISION, TRAIL_HIGH_LOW,
            np.full(4, np.nan), np.zeros(0), self.fills, 0,
        )  # fmt: skip
        return int(n_fills)


def test_fill_orders_sells_first_so_the_buy_spends_the_freed_cash():
    # 1,000 cash, 10 of A. Buy 30 B (submitted first) and sell 10 A; opens A 21, B 40.
    # The sell goes first: 1,000 + 210 = 1,210; the buy costs 30 x 40 = 1,200: 10 left.
    book = Book(1_000.0, [10.0, 0.0], [20.0, 38.0])
    book.market(1, 30.0)
    book.market(0, -10.0)
    assert book.fill_at([21.0, 40.0], [21.0, 40.0], [21.0, 40.0]) == 2
    assert book.fills["asset"][:2].tolist() == [0, 1]
    assert book.fills["price"][:2].tolist() == [21.0, 40.0]
    assert book.positions.tolist() == [0.0, 30.0]
    assert book.account[0] == 10.0
    assert book.pending.tolist() == [0.0, 0.0]
    assert book.n_open == 0


def test_fill_orders_scales_a_buy_down_to_the_cash_left_after_exits():
    # Same, buying 40 B: 40 x 40 = 1,600 > 1,210 cash; 30 shares (1,200) fit, 31 (1,240) do not.
    book = Book(1_000.0, [10.0, 0.0], [20.0, 38.0])
    book.market(1, 40.0)
    book.market(0, -10.0)
    book.fill_at([21.0, 40.0], [21.0, 40.0], [21.0, 40.0])
    assert book.positions.tolist() == [0.0, 30.0]
    assert book.account[0] == 10.0
    assert book.orders["status"][0] == FILLED
    assert book.orders["reason"][0] == R_SCALED_DOWN


def test_fill_orders_fills_a_limit_at_its_level_and_leaves_an_unreached_one_open():
    # Buy limit A at 19 on a bar 21..18: fills at 19. Buy limit B at 30 on 40..39: stays open.
    book = Book(1_000.0, [0.0, 0.0], [20.0, 40.0])
    book.limit(0, 10.0, 19.0)
    book.limit(1, 10.0, 30.0)
    assert book.fill_at([21.0, 40.0], [21.0, 40.0], [18.0, 39.0]) == 1
    assert (book.fills["asset"][0], book.fills["price"][0]) == (0, 19.0)
    assert book.account[0] == 1_000.0 - 190.0
    assert book.n_open == 1 and book.open_ids[0] == 1
