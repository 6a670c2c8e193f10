"""FIFO trade matching: round trips from fills, with no float "dust" from fractional shares."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest.kernels.records import FILL_DTYPE
from ml4t.backtest.results.trades import match_trades
from scripted import run


def fills(*quantities: float, price: float = 10.0) -> np.ndarray:
    """Fills of asset 0 on successive bars, at ``price``, without commission."""
    out = np.zeros(len(quantities), dtype=FILL_DTYPE)
    out["bar"] = np.arange(len(quantities))
    out["quantity"] = quantities
    out["price"] = price
    return out


def test_closing_the_broker_position_closes_every_lot_without_a_residue():
    # Bought 0.7 then 0.1: the broker holds 0.7 + 0.1 = 0.7999999999999999 and a close sells
    # exactly that. FIFO takes 0.7 off the first lot and 0.09999999999999998 is left for the
    # 0.1 lot, which must close whole, not leave an open lot of 2.8e-17.
    held = 0.7 + 0.1
    trades = match_trades(fills(0.7, 0.1, -held), np.array([10.0]))
    assert not trades["is_open"].any()
    assert trades["quantity"].tolist() == [0.7, 0.1]


def test_a_lot_left_with_a_float_residue_of_its_size_is_closed():
    # The same two lots and a third of 1.0; selling 0.7999999999999999 leaves the 0.1 lot with
    # 2.8e-17, a residue of 3e-16 of its size: the lot is closed, and so no later fill pairs a
    # dust trade with it. Selling the rest (what the broker holds) closes the 1.0 lot alone.
    first_two = 0.7 + 0.1
    held = 0.7 + 0.1 + 1.0 - first_two
    trades = match_trades(fills(0.7, 0.1, 1.0, -first_two, -held), np.array([10.0]))
    assert trades["quantity"].tolist() == pytest.approx([0.7, 0.1, 1.0], rel=1e-15)
    assert trades["exit_bar"].tolist() == [3, 3, 4]
    assert not trades["is_open"].any()


def test_a_sell_of_a_fraction_of_a_lot_leaves_the_rest_open():
    # A real remainder (0.25 of a 1.0 lot, far above the tolerance) stays an open lot.
    trades = match_trades(fills(1.0, -0.75), np.array([12.0]))
    assert trades["is_open"].tolist() == [False, True]
    assert trades["quantity"].tolist() == [0.75, 0.25]
    assert trades["pnl"].tolist() == pytest.approx([0.0, 0.25 * (12.0 - 10.0)], rel=1e-12)


def test_open_trades_have_exit_reason_open(make_feed):
    feed = make_feed({"A": [(10, 10), (10, 11), (11, 12)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 5)})
    trades = result.trades
    assert trades["status"].to_list() == ["open"]
    assert trades["exit_reason"].to_list() == ["open"]
