"""``kernels.targets.target_orders`` by hand: the batch target orders of ``Broker``, one call."""

from __future__ import annotations

import math

import numpy as np

from ml4t.backtest.kernels.records import MARKET, O_TARGET, OPEN, ORDER_DTYPE, ROUND_TARGET
from ml4t.backtest.kernels.sizing import NO_PRICE, OK
from ml4t.backtest.kernels.state import A_LAST_PRICE, A_PENDING, A_POSITION, A_WIDTH
from ml4t.backtest.kernels.targets import NO_ROOM, REFUSED, target_orders


class Book:
    """An empty order book with room for ``room`` orders, and three assets."""

    def __init__(self, room: int = 8) -> None:
        self.orders = np.zeros(room, dtype=ORDER_DTYPE)
        self.open_ids = np.zeros(room, dtype=np.int64)
        self.counts = np.zeros(3, dtype=np.int64)
        self.acc = np.zeros((A_WIDTH, 3))
        self.acc[A_LAST_PRICE] = [10.0, 20.0, 5.0]
        self.acc[A_POSITION] = [0.0, 3.0, 4.0]
        self.out_assets = np.zeros(3, dtype=np.int64)
        self.out_qty = np.zeros(3)

    def order(
        self, targets: list[float], scale: float, *, refuse: bool = False, at_fill: bool = False
    ) -> tuple[int, int, int, int]:
        return target_orders(  # type: ignore[no-any-return]
            7, np.array(targets), scale, ROUND_TARGET, False, True, refuse, O_TARGET, at_fill,
            at_fill, self.orders, self.open_ids, self.counts, self.acc, self.out_assets,
            self.out_qty,
        )  # fmt: skip


def test_target_orders_writes_one_market_order_per_asset_off_its_target():
    b = Book()
    # Equity 1,000: asset 0 to 45% is 450 / 10 = 45 shares (held 0: buy 45); asset 1 is NaN
    # (left alone, though it holds 3); asset 2 to 0% sells the 4 held.
    first, count, problem, _ = b.order([0.45, math.nan, 0.0], 1_000.0)
    assert (first, count, problem) == (0, 2, OK)
    orders = b.orders[:2]
    assert orders["asset"].tolist() == [0, 2]
    assert orders["quantity"].tolist() == [45.0, -4.0]
    assert (orders["order_type"] == MARKET).all() and (orders["status"] == OPEN).all()
    assert orders["submit_bar"].tolist() == [7, 7]
    assert orders["origin"].tolist() == [O_TARGET, O_TARGET]
    assert np.isnan(orders["target_value"]).all() and np.isnan(orders["target_weight"]).all()
    assert b.counts[:2].tolist() == [2, 2]
    assert b.open_ids[:2].tolist() == [0, 1]
    assert b.acc[A_PENDING].tolist() == [45.0, 0.0, -4.0]


def test_target_orders_carries_the_value_and_the_weight_when_sized_at_the_fill():
    b = Book()
    b.order([0.45, math.nan, math.nan], 1_000.0, at_fill=True)
    # The value is 0.45 x 1,000 = 450; the weight 0.45.
    assert b.orders[0]["target_value"] == 450.0
    assert b.orders[0]["target_weight"] == 0.45


def test_target_orders_nets_out_pending_orders():
    b = Book()
    b.order([0.45, math.nan, math.nan], 1_000.0)
    # 45 shares are waiting: a target of 60% is 600 / 10 = 60 shares, so 15 more.
    first, count, _, _ = b.order([0.6, math.nan, math.nan], 1_000.0)
    assert (first, count) == (1, 1)
    assert b.orders[1]["quantity"] == 15.0
    assert b.acc[A_PENDING, 0] == 60.0


def test_target_orders_writes_nothing_when_refused_with_orders_due():
    b = Book()
    assert b.order([0.45, math.nan, math.nan], 1_000.0, refuse=True)[2] == REFUSED
    assert b.counts.tolist() == [0, 0, 0] and not b.acc[A_PENDING].any()
    # Nothing due (asset 1 already holds 3 shares = 60 at 20, 6% of 1,000): not refused.
    assert b.order([math.nan, 0.06, math.nan], 1_000.0, refuse=True)[1:3] == (0, OK)


def test_target_orders_names_the_asset_without_a_price():
    b = Book()
    b.acc[A_LAST_PRICE, 1] = math.nan
    assert b.order([0.1, 0.1, math.nan], 1_000.0)[2:] == (NO_PRICE, 1)
    assert b.counts.tolist() == [0, 0, 0]


def test_target_orders_asks_for_room_for_one_order_per_asset():
    # Room for 2 orders, 3 assets: nothing written, whatever is due.
    b = Book(room=2)
    assert b.order([0.1, math.nan, math.nan], 1_000.0)[2] == NO_ROOM
    assert b.counts.tolist() == [0, 0, 0]
