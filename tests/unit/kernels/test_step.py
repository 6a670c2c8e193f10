"""The broker step on tiny hand-made arrays: affordable size, marks, and one bar of fills."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml4t.backtest.execution.commission import commission_table
from ml4t.backtest.execution.slippage import slippage_table
from ml4t.backtest.kernels.accounts import affordable, mark_to_market, stable_order
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
from ml4t.backtest.kernels.state import (
    A_LAST_PRICE,
    A_PENDING,
    A_POSITION,
    B_HELD,
    C_OPEN,
    C_ORDERS,
    C_WIDTH,
    FULL_FILLS,
    PLAIN_FILLS,
    REC_CASH,
    REC_GROSS,
    REC_POSITIONS_VALUE,
    REC_WIDTH,
    Bar,
    Full,
    Settings,
    new_account,
    pack_bits,
)
from ml4t.backtest.kernels.state import (
    Book as BookRecord,
)
from ml4t.backtest.kernels.step import fill_orders

ASSETS = ["A", "B"]


def test_affordable_buys_the_most_whole_shares_cash_and_commission_pay_for():
    # 1,000 cash at 10 a share with 0.1% commission: q x 10 x 1.001 <= 1,000 -> q <= 99.9.
    fee, _ = commission_table(0.001, ["A"])
    assert affordable(fee[0], 0, 1_000.0, 10.0, 0.0, False, None) == 99.0


def test_affordable_with_fractional_shares_spends_the_cash_to_the_cent():
    fee, _ = commission_table(0.0, ["A"])
    assert math.isclose(affordable(fee[0], 0, 1_000.0, 30.0, 0.0, True, None), 1_000.0 / 30.0)


def test_mark_to_market_takes_new_closes_keeps_old_marks_and_records_equity():
    # Asset A closes at 10 (5 held: 50), B has no bar and keeps its mark of 20 (-2: -40).
    acc = new_account(100.0, 2, borrow_rate=0.0, commission=np.zeros((2, 1)),
                      slippage=np.zeros((2, 1)))  # fmt: skip
    acc.assets[A_LAST_PRICE] = [9.0, 20.0]
    acc.assets[A_POSITION] = [5.0, -2.0]
    acc.bits[B_HELD] = pack_bits(acc.assets[A_POSITION][None] != 0.0)[0]
    rec = np.zeros((REC_WIDTH, 1))
    equity = mark_to_market(0, np.array([10.0, np.nan]), acc, rec)
    assert acc.assets[A_LAST_PRICE].tolist() == [10.0, 20.0]
    assert (rec[REC_CASH, 0], rec[REC_POSITIONS_VALUE, 0], rec[REC_GROSS, 0], equity) == (
        100.0, 10.0, 90.0, 110.0,
    )  # fmt: skip


def test_the_mark_sums_the_held_assets_in_order_to_the_bit_of_a_sum_over_all():
    """The mark adds the positions of the ``B_HELD`` assets only: across words (130 assets,
    positions at the words' edges), its sums equal, to the bit, the sums over every asset in
    order with 0 for a flat one; a held asset never priced makes them NaN, as before."""
    rng = np.random.default_rng(3)
    n = 130
    acc = new_account(1_000.0, n, borrow_rate=0.0, commission=np.zeros((n, 1)),
                      slippage=np.zeros((n, 1)))  # fmt: skip
    held = [0, 1, 62, 63, 64, 100, 127, 128, 129]
    positions = acc.assets[A_POSITION]
    positions[held] = rng.normal(0.0, 50.0, len(held))
    acc.bits[B_HELD] = pack_bits(positions[None] != 0.0)[0]
    assert acc.bits.shape == (2, 3)
    acc.assets[A_LAST_PRICE] = rng.uniform(10.0, 20.0, n)
    closes = rng.uniform(10.0, 20.0, n)
    closes[[1, 5, 128]] = np.nan  # no bar: the last mark stays
    marks = np.where(np.isnan(closes), acc.assets[A_LAST_PRICE], closes)
    value = gross = 0.0
    for q, p in zip(positions, marks, strict=True):
        v = q * p if q != 0.0 else 0.0
        value += v
        gross += abs(v)
    rec = np.zeros((REC_WIDTH, 1))
    equity = mark_to_market(0, closes, acc, rec)
    assert (rec[REC_POSITIONS_VALUE, 0], rec[REC_GROSS, 0]) == (value, gross)
    assert equity == 1_000.0 + value
    assert acc.assets[A_LAST_PRICE].tolist() == marks.tolist()
    acc.assets[A_LAST_PRICE, 64] = np.nan
    assert np.isnan(mark_to_market(0, np.full(n, np.nan), acc, rec))


def test_stable_order_sorts_ascending_keeps_ties_in_order_and_puts_nan_last():
    # Keys 3, 1, NaN, 1, 2: the two 1s (positions 1 and 3) in their order, then 2, 3, NaN.
    out = np.zeros(5, dtype=np.int64)
    stable_order(np.array([3.0, 1.0, np.nan, 1.0, 2.0]), 5, out)
    assert out.tolist() == [1, 3, 4, 0, 2]


class Book:
    """Two assets in a cash account: an order book, positions, cash and the fill log."""

    def __init__(self, cash: float, positions: list[float], marks: list[float]) -> None:
        commission, _ = commission_table(0.0, ASSETS)
        slippage, _ = slippage_table(0.0, ASSETS)
        self.acc = new_account(cash, 2, borrow_rate=0.0, commission=commission, slippage=slippage)
        self.acc.assets[A_POSITION] = positions
        self.acc.bits[B_HELD] = pack_bits(self.acc.assets[A_POSITION][None] != 0.0)[0]
        self.acc.assets[A_LAST_PRICE] = marks
        self.book = BookRecord(
            np.zeros(8, dtype=ORDER_DTYPE), np.zeros(8, dtype=np.int64),
            np.zeros(8, dtype=FILL_DTYPE), np.zeros(C_WIDTH, dtype=np.int64),
        )  # fmt: skip
        self.orders, self.fills = self.book.orders, self.book.fills
        self.positions = self.acc.assets[A_POSITION]
        self.pending = self.acc.assets[A_PENDING]
        self.account = self.acc.scalars  # cash first

    def market(self, asset: int, quantity: float) -> None:
        self.limit(asset, quantity, math.nan, MARKET)

    def limit(self, asset: int, quantity: float, level: float, kind: int = LIMIT) -> None:
        counts = self.book.counts
        counts[C_ORDERS], counts[C_OPEN] = add_order(
            self.orders, counts[C_ORDERS], self.book.open_ids, counts[C_OPEN], asset, quantity,
            -1, O_ORDER, kind, level, math.nan, math.nan, self.acc.assets[A_PENDING],
        )  # fmt: skip

    def fill_at(
        self, opens: list[float], highs: list[float], lows: list[float], full: Full = FULL_FILLS
    ) -> int:
        """Fill the bar (no costs, no caps, exits first) through the full fill step or the
        plain one (``full``); returns the number of fills."""
        nan = np.full(2, np.nan)
        o, h, lo = np.array(opens), np.array(highs), np.array(lows)
        bar = Bar(o, h, lo, o.copy(), np.full(2, 1e6), nan, nan, nan, nan)
        s = Settings(
            fractional=False, cash_account=True, cash_policy=CASH_SCALE_DOWN,
            intrabar_priority=PRIORITY_STOP, max_participation=0.0, keep_remainder=True,
            execution_order=EXEC_EXITS_FIRST, clamp_to_bar=False, fill_timing=0,
            market_at_open=True, rounding=0, fill_sizing=SIZE_AT_DECISION, fill_equity=False,
            trail_basis=TRAIL_HIGH_LOW, close_trigger=False, stops_on_entry_bar=True,
            rules_first=False, financing=False,
            initial_margin=1.0, maintenance_margin=0.25, margin_calls=True, cash_rate=0.0,
            margin_rate=0.0,
        )  # fmt: skip
        counts = self.book.counts
        counts[C_OPEN] = fill_orders(
            0, PHASE_OPEN, True, True, self.book.open_ids, counts[C_OPEN], s, bar, self.book,
            self.acc, full,
        )  # fmt: skip
        return int(counts[2])


@pytest.mark.parametrize("full", [FULL_FILLS, PLAIN_FILLS])
def test_fill_orders_sells_first_so_the_buy_spends_the_freed_cash(full):
    # 1,000 cash, 10 of A. Buy 30 B (submitted first) and sell 10 A; opens A 21, B 40.
    # The sell goes first: 1,000 + 210 = 1,210; the buy costs 30 x 40 = 1,200: 10 left.
    book = Book(1_000.0, [10.0, 0.0], [20.0, 38.0])
    book.market(1, 30.0)
    book.market(0, -10.0)
    assert book.fill_at([21.0, 40.0], [21.0, 40.0], [21.0, 40.0], full) == 2
    assert book.fills["asset"][:2].tolist() == [0, 1]
    assert book.fills["price"][:2].tolist() == [21.0, 40.0]
    assert book.positions.tolist() == [0.0, 30.0]
    assert book.acc.bits[B_HELD].tolist() == [0b10]  # B held, A no longer
    assert book.account[0] == 10.0
    assert book.pending.tolist() == [0.0, 0.0]
    assert int(book.book.counts[C_OPEN]) == 0


@pytest.mark.parametrize("full", [FULL_FILLS, PLAIN_FILLS])
def test_fill_orders_scales_a_buy_down_to_the_cash_left_after_exits(full):
    # Same, buying 40 B: 40 x 40 = 1,600 > 1,210 cash; 30 shares (1,200) fit, 31 (1,240) do not.
    book = Book(1_000.0, [10.0, 0.0], [20.0, 38.0])
    book.market(1, 40.0)
    book.market(0, -10.0)
    book.fill_at([21.0, 40.0], [21.0, 40.0], [21.0, 40.0], full)
    assert book.positions.tolist() == [0.0, 30.0]
    assert book.account[0] == 10.0
    assert book.orders["status"][0] == FILLED
    assert book.orders["reason"][0] == R_SCALED_DOWN


@pytest.mark.parametrize("full", [FULL_FILLS, PLAIN_FILLS])
def test_fill_orders_fills_a_limit_at_its_level_and_leaves_an_unreached_one_open(full):
    # Buy limit A at 19 on a bar 21..18: fills at 19. Buy limit B at 30 on 40..39: stays open.
    book = Book(1_000.0, [0.0, 0.0], [20.0, 40.0])
    book.limit(0, 10.0, 19.0)
    book.limit(1, 10.0, 30.0)
    assert book.fill_at([21.0, 40.0], [21.0, 40.0], [18.0, 39.0], full) == 1
    assert (book.fills["asset"][0], book.fills["price"][0]) == (0, 19.0)
    assert book.account[0] == 1_000.0 - 190.0
    assert int(book.book.counts[C_OPEN]) == 1 and book.book.open_ids[0] == 1


def test_the_plain_fill_step_refuses_an_all_in_order_it_cannot_size():
    """An all-in order needs the full step (it is sized at its fill); reaching the plain one
    is a bug of the caller's ``fill_features``, said loudly instead of filled at its estimate."""
    book = Book(1_000.0, [0.0, 0.0], [20.0, 40.0])
    book.market(0, 10.0)
    book.orders["target_value"][0] = math.inf
    with pytest.raises(AssertionError, match="plain fill step"):
        book.fill_at([21.0, 40.0], [21.0, 40.0], [21.0, 40.0], PLAIN_FILLS)
    book = Book(1_000.0, [0.0, 0.0], [20.0, 40.0])
    book.market(0, 10.0)
    book.orders["target_value"][0] = math.inf
    assert book.fill_at([21.0, 40.0], [21.0, 40.0], [21.0, 40.0], FULL_FILLS) == 1
    assert book.positions[0] == 47.0  # all 1,000 of cash at 21: 47 shares
