"""FIFO trade matching: round trips from fills, with no float "dust" from fractional shares."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest.kernels.records import FILL_DTYPE
from ml4t.backtest.results.trades import TRADE_DTYPE, match_trades, trade_excursions
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


def excursion_trades(*rows: tuple[int, int, int, int, float, bool]) -> np.ndarray:
    """Trade records of (asset, direction, entry_bar, exit_bar, entry_price, is_open)."""
    out = np.zeros(len(rows), dtype=TRADE_DTYPE)
    for k, (asset, direction, entry, exit_, price, is_open) in enumerate(rows):
        out[k]["asset"], out[k]["direction"] = asset, direction
        out[k]["entry_bar"], out[k]["exit_bar"] = entry, exit_
        out[k]["entry_price"], out[k]["is_open"] = price, is_open
    return out


HIGHS = np.array([[104.0, 51.0], [108.0, np.nan], [103.0, 55.0], [110.0, np.nan]])
LOWS = np.array([[97.0, 49.0], [95.0, np.nan], [99.0, 48.0], [90.0, np.nan]])


def test_excursions_of_a_long_are_the_worst_low_and_best_high_over_its_bars():
    # Long asset 0 from bar 0 to bar 2 at 100: lows 97, 95, 99 and highs 104, 108, 103.
    mae, mfe = trade_excursions(
        excursion_trades((0, 1, 0, 2, 100.0, False)), HIGHS, LOWS, last_bar=3
    )
    assert mae.tolist() == pytest.approx([95.0 / 100.0 - 1.0], rel=1e-15)
    assert mfe.tolist() == pytest.approx([108.0 / 100.0 - 1.0], rel=1e-15)


def test_excursions_of_a_short_are_mirrored_and_skip_nan_bars():
    # Short asset 1 at 50 from bar 0, open at the end (to bar 3): bars 1 and 3 are NaN, so the
    # high is 55 (bar 2) and the low 48: MAE 1 - 55/50 = -0.1, MFE 1 - 48/50 = 0.04.
    mae, mfe = trade_excursions(
        excursion_trades((1, -1, 0, -1, 50.0, True)), HIGHS, LOWS, last_bar=3
    )
    assert mae.tolist() == pytest.approx([-0.1], rel=1e-14)
    assert mfe.tolist() == pytest.approx([0.04], rel=1e-14)


def test_excursions_of_a_trade_over_only_nan_bars_are_nan():
    mae, mfe = trade_excursions(
        excursion_trades((1, 1, 3, 3, 50.0, False)), HIGHS, LOWS, last_bar=3
    )
    assert np.isnan(mae).all() and np.isnan(mfe).all()


def test_excursions_of_the_last_assets_last_bar_stay_inside_its_column():
    # The window ends on the last bar of the last asset, the end of the laid-out array.
    trades = excursion_trades((1, 1, 2, 3, 50.0, False), (0, 1, 3, 3, 100.0, False))
    mae, mfe = trade_excursions(trades, HIGHS, LOWS, last_bar=3)
    assert mae.tolist() == pytest.approx([48.0 / 50.0 - 1.0, 90.0 / 100.0 - 1.0], rel=1e-15)
    assert mfe.tolist() == pytest.approx([55.0 / 50.0 - 1.0, 110.0 / 100.0 - 1.0], rel=1e-15)


def test_fills_of_several_assets_pair_per_asset_in_execution_order_whatever_their_layout():
    # Interleaved assets 2, 0, 2, 0: trades come asset by asset, each in its fills' order.
    f = np.zeros(6, dtype=FILL_DTYPE)
    f["asset"] = [2, 0, 2, 0, 2, 0]
    f["bar"] = [0, 1, 2, 3, 4, 5]
    f["quantity"] = [5.0, 3.0, -5.0, -3.0, 1.0, 2.0]
    f["price"] = [10.0, 20.0, 11.0, 19.0, 12.0, 21.0]
    last = np.array([22.0, 0.0, 13.0])
    trades = match_trades(f, last)
    assert trades["asset"].tolist() == [0, 0, 2, 2]
    assert trades["entry_bar"].tolist() == [1, 5, 0, 4]
    assert trades["is_open"].tolist() == [False, True, False, True]
    assert trades["pnl"].tolist() == [-3.0, 2.0, 5.0, 1.0]
    # A read-only array, or fields in another layout (a result rebuilt from saved arrays),
    # gives the same trades.
    frozen = f.copy()
    frozen.flags.writeable = False
    packed = f.astype([(name, f.dtype[name]) for name in f.dtype.names])  # unaligned
    for other in (frozen, packed, np.concatenate([f, f])[:6]):
        assert match_trades(other, last).tobytes() == trades.tobytes()
