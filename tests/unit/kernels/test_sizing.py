"""Target sizing by hand: value to shares, the order towards a target, and many at once."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest.kernels import sizing
from ml4t.backtest.kernels.records import (
    ROUND_NONE,
    ROUND_ORDER,
    ROUND_ORDER_NEAR_WHOLE,
    ROUND_TARGET,
    ROUND_TARGET_NEAR_WHOLE,
)
from ml4t.backtest.kernels.sizing import (
    all_in_estimate,
    order_toward,
    rounding_code,
    shares_for_value,
    target_deltas,
)


def test_rounding_code_follows_fractional_shares_then_target_rounding():
    assert rounding_code(fractional=True, target_rounding="order") == ROUND_NONE
    assert rounding_code(fractional=False, target_rounding="target") == ROUND_TARGET
    assert rounding_code(fractional=False, target_rounding="order") == ROUND_ORDER


def test_shares_for_value_rounds_the_target_towards_zero_only_under_target_rounding():
    # 1,000 at 30 is 33.33 shares; -1,000 is -33.33 (towards zero: -33).
    assert shares_for_value(1_000.0, 30.0, ROUND_TARGET) == 33.0
    assert shares_for_value(-1_000.0, 30.0, ROUND_TARGET) == -33.0
    assert shares_for_value(1_000.0, 30.0, ROUND_ORDER) == pytest.approx(100.0 / 3.0)
    assert shares_for_value(1_000.0, 30.0, ROUND_NONE) == pytest.approx(100.0 / 3.0)


def test_order_toward_a_smaller_target_sells_to_the_rounded_target_or_rounds_the_order():
    # Holding 12 with a target of 10.7 shares: "target" sells to 10 (2), "order" sells
    # trunc(-1.3) = 1, fractional sells 1.3.
    assert order_toward(shares_for_value(107.0, 10.0, ROUND_TARGET), 12.0, ROUND_TARGET) == -2.0
    assert order_toward(shares_for_value(107.0, 10.0, ROUND_ORDER), 12.0, ROUND_ORDER) == -1.0
    assert order_toward(10.7, 12.0, ROUND_NONE) == pytest.approx(-1.3)


def test_order_toward_a_target_within_float_noise_of_the_holding_is_no_order():
    # 1e-8 on 100 shares is within 1e-9 x 100 = 1e-7; 1e-6 is not.
    assert order_toward(100.0 + 1e-8, 100.0, ROUND_NONE) == 0.0
    assert order_toward(100.0 + 1e-6, 100.0, ROUND_NONE) == pytest.approx(1e-6)
    assert sizing.TARGET_RTOL == 1e-9


def test_order_toward_under_order_rounding_is_none_below_one_share():
    assert order_toward(12.9, 12.0, ROUND_ORDER) == 0.0


def _scratch(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n, dtype=np.int64), np.zeros(n)


def test_target_deltas_nets_positions_and_pending_orders():
    # Equity 10,000: asset 0 at 30 to 50% is 166.67 -> 166 shares, 100 held: buy 66; asset 1 at
    # 40 to 25% is 62.5 -> 62 shares, 10 pending: buy 52.
    assets, qty = _scratch(2)
    count, problem, _ = target_deltas(
        np.array([0.5, 0.25]), 10_000.0, np.array([30.0, 40.0]), np.array([100.0, 0.0]),
        np.array([0.0, 10.0]), ROUND_TARGET, False, False, assets, qty,
    )  # fmt: skip
    assert (count, problem) == (2, sizing.OK)
    assert assets.tolist() == [0, 1]
    assert qty.tolist() == [66.0, 52.0]


def test_target_deltas_leaves_nan_alone_when_asked_and_skips_targets_already_met():
    # Asset 0 at NaN is left alone; asset 1 at 0.3 of 1,000 at 10 is 30 shares, 30 held.
    assets, qty = _scratch(2)
    count, problem, _ = target_deltas(
        np.array([np.nan, 0.3]), 1_000.0, np.array([10.0, 10.0]), np.array([5.0, 30.0]),
        np.zeros(2), ROUND_TARGET, True, True, assets, qty,
    )  # fmt: skip
    assert (count, problem) == (0, sizing.OK)


@pytest.mark.parametrize(
    ("targets", "prices", "allow_negative", "problem", "asset"),
    [
        ([0.1, np.nan], [10.0, 10.0], True, sizing.NOT_FINITE, 1),
        ([0.1, np.inf], [10.0, 10.0], True, sizing.NOT_FINITE, 1),
        ([0.1, -0.1], [10.0, 10.0], False, sizing.NEGATIVE_IN_CASH_ACCOUNT, 1),
        ([0.0, 0.1], [np.nan, np.nan], True, sizing.NO_PRICE, 1),
    ],
)
def test_target_deltas_reports_the_first_bad_target_and_writes_nothing(
    targets, prices, allow_negative, problem, asset
):
    assets, qty = _scratch(2)
    count, found, at = target_deltas(
        np.array(targets), 1_000.0, np.array(prices), np.zeros(2), np.zeros(2), ROUND_TARGET,
        allow_negative, False, assets, qty,
    )  # fmt: skip
    assert (count, found, at) == (0, problem, asset)
    assert qty.tolist() == [0.0, 0.0]


def test_all_in_estimate_is_what_the_cash_buys_at_the_decision_price():
    # 1,000 / 30 = 33.3: 33 whole shares, or all of it with fractional shares.
    assert all_in_estimate(1_000.0, 30.0, False) == 33.0
    assert all_in_estimate(1_000.0, 30.0, True) == 1_000.0 / 30.0


def test_all_in_estimate_of_dust_is_one_share_not_float_noise():
    # 1e-10 of cash left by an earlier all-in buys 2e-12 shares: below the smallest fill.
    assert all_in_estimate(1e-10, 50.0, True) == 1.0
    assert all_in_estimate(-5.0, 50.0, False) == 1.0


def test_rounding_code_with_near_whole_picks_the_snapping_codes():
    assert rounding_code(fractional=False, target_rounding="order", near_whole=True) == (
        ROUND_ORDER_NEAR_WHOLE
    )
    assert rounding_code(fractional=False, target_rounding="target", near_whole=True) == (
        ROUND_TARGET_NEAR_WHOLE
    )
    assert rounding_code(fractional=True, target_rounding="order", near_whole=True) == ROUND_NONE


def test_order_toward_snaps_an_order_within_1e_4_below_a_whole_number_to_it():
    # Zipline's round_order: 39.99995 is 5e-5 from 40, within 1e-4, so 40; truncation alone
    # gives 39. 39.9998 is 2e-4 away: truncated to 39 either way. Sells mirror: -39.99995 is -40.
    near = ROUND_ORDER_NEAR_WHOLE
    assert order_toward(39.99995, 0.0, ROUND_ORDER) == 39.0
    assert order_toward(39.99995, 0.0, near) == 40.0
    assert order_toward(39.9998, 0.0, near) == 39.0
    assert order_toward(10.00005, 50.0, near) == -40.0
    assert order_toward(10.00005, 50.0, ROUND_ORDER) == -39.0


def test_order_toward_snaps_an_order_within_1e_4_above_a_whole_number_down_to_it():
    # 40.00008 is within 1e-4 of 40: 40 either way (truncation agrees above a whole number).
    assert order_toward(40.00008, 0.0, ROUND_ORDER_NEAR_WHOLE) == 40.0


def test_shares_for_value_snaps_the_target_under_target_rounding_near_whole():
    # 2,999.9985 at 30 is 99.99995 shares: 5e-5 from 100, so 100; truncation gives 99.
    assert shares_for_value(2_999.9985, 30.0, ROUND_TARGET_NEAR_WHOLE) == 100.0
    assert shares_for_value(2_999.9985, 30.0, ROUND_TARGET) == 99.0
    # The order codes leave the target alone; the order is rounded in order_toward.
    assert shares_for_value(2_999.9985, 30.0, ROUND_ORDER_NEAR_WHOLE) == pytest.approx(99.99995)


def test_target_deltas_snaps_each_order_under_order_rounding_near_whole():
    # Equity 10,000 at 0.3999995 of it, price 100: 39.99995 shares, 0 held: 40 (39 without).
    assets, qty = _scratch(1)
    args = (np.array([0.3999995]), 10_000.0, np.array([100.0]), np.zeros(1), np.zeros(1))
    target_deltas(*args, ROUND_ORDER_NEAR_WHOLE, False, False, assets, qty)
    assert qty.tolist() == [40.0]
    target_deltas(*args, ROUND_ORDER, False, False, assets, qty)
    assert qty.tolist() == [39.0]
