"""Limit, stop, stop-limit, trailing-stop, day and bracket orders, with fills worked out by hand.

Bars are (open, high, low, close). Orders are decided at the close of bar 0 unless said otherwise,
so bar 1 is the first they can fill on.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from ml4t.backtest import OrderError
from scripted import run

FLAT = (100.0, 100.0, 100.0, 100.0)


def fills_of(result):  # type: ignore[no-untyped-def]
    return result.fills.select("timestamp", "side", "quantity", "price", "reason").rows()


def day(n: int) -> datetime:
    return datetime(2024, 1, 1 + n)


def test_limit_buy_fills_at_its_limit_when_the_bar_trades_down_to_it(make_feed):
    feed = make_feed({"A": [FLAT, (101.0, 102.0, 97.0, 99.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10, limit_price=98.0)})
    assert fills_of(result) == [(day(1), "buy", 10.0, 98.0, "order")]


def test_limit_buy_fills_at_the_open_when_the_bar_opens_below_it(make_feed):
    feed = make_feed({"A": [FLAT, (95.0, 99.0, 94.0, 96.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10, limit_price=98.0)})
    assert fills_of(result) == [(day(1), "buy", 10.0, 95.0, "order")]


def test_limit_buy_the_bar_never_reaches_keeps_working(make_feed):
    feed = make_feed({"A": [FLAT, (101.0, 103.0, 99.0, 100.0), (99.0, 99.0, 97.5, 98.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10, limit_price=98.0)})
    assert fills_of(result) == [(day(2), "buy", 10.0, 98.0, "order")]


def test_limit_sell_fills_at_its_limit_or_at_a_higher_open(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (100.0, 106.0, 99.0, 104.0), (108.0, 109.0, 107.0, 108.0)]})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 20),
            1: lambda b, d: (
                b.submit_order("A", -10, limit_price=105.0),
                b.submit_order("A", -10, limit_price=107.5),
            ),
        },
    )
    assert fills_of(result)[1:] == [
        (day(2), "sell", 10.0, 105.0, "order"),  # high 106 reaches 105
        (day(3), "sell", 10.0, 108.0, "order"),  # opens at 108, above 107.5
    ]


def test_stop_buy_fills_at_the_stop_when_touched_and_at_the_open_on_a_gap(make_feed):
    feed = make_feed(
        {"A": [FLAT, (101.0, 104.0, 100.0, 103.0)], "B": [FLAT, (106.0, 107.0, 105.0, 106.0)]}
    )
    result, _ = run(
        feed,
        {
            0: lambda b, d: (
                b.submit_order("A", 5, stop_price=103.0),
                b.submit_order("B", 5, stop_price=103.0),
            )
        },
    )
    rows = result.fills.select("asset", "price").rows()
    assert rows == [("A", 103.0), ("B", 106.0)]


def test_stop_sell_gapping_below_its_stop_fills_at_the_open(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (90.0, 92.0, 88.0, 91.0)]})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 10),
            1: lambda b, d: b.submit_order("A", -10, stop_price=95.0),
        },
    )
    assert fills_of(result)[1] == (day(2), "sell", 10.0, 90.0, "order")


def test_stop_limit_gapping_through_its_stop_works_as_a_limit_for_the_rest_of_the_bar(make_feed):
    # Opens at 106 above the stop 104 (triggered) but above the limit 105; trades down to 104.5.
    feed = make_feed({"A": [FLAT, (106.0, 107.0, 104.5, 105.5)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 3, stop_price=104.0, limit_price=105.0)}
    )
    assert fills_of(result) == [(day(1), "buy", 3.0, 105.0, "order")]


def test_stop_limit_touched_inside_the_bar_fills_at_the_stop_when_within_the_limit(make_feed):
    feed = make_feed({"A": [FLAT, (101.0, 105.0, 100.0, 104.0)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 3, stop_price=103.0, limit_price=103.5)}
    )
    assert fills_of(result) == [(day(1), "buy", 3.0, 103.0, "order")]


def test_stop_limit_with_limit_below_stop_waits_after_triggering_then_fills_as_a_limit(make_feed):
    feed = make_feed({"A": [FLAT, (101.0, 105.0, 100.0, 104.0), (103.0, 103.5, 101.0, 102.0)]})
    # Triggered on bar 1 (high 105 >= 104) but the limit 102 is below the stop: the bar's path
    # after the touch is unknown, so no fill there; bar 2 trades down to 101 and fills at 102.
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 3, stop_price=104.0, limit_price=102.0)}
    )
    assert fills_of(result) == [(day(2), "buy", 3.0, 102.0, "order")]


def test_trailing_stop_percent_trails_the_highs_and_fills_at_its_level(make_feed):
    bars = [
        FLAT,
        FLAT,  # decision bar for the stop: reference = close 100
        (101.0, 110.0, 100.5, 108.0),  # level 95 not touched; reference -> 110
        (107.0, 109.0, 103.0, 104.0),  # level 110 * 0.95 = 104.5, low 103 touches it
    ]
    feed = make_feed({"A": bars})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 10),
            1: lambda b, d: b.submit_order("A", -10, trail_percent=0.05),
        },
    )
    assert fills_of(result)[1] == (day(3), "sell", 10.0, pytest.approx(104.5), "order")


def test_trailing_stop_by_amount_on_closes_gapping_below_fills_at_the_open(make_feed):
    bars = [FLAT, FLAT, (101.0, 120.0, 100.0, 105.0), (98.0, 99.0, 97.0, 98.0)]
    feed = make_feed({"A": bars})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 10),
            1: lambda b, d: b.submit_order("A", -10, trail_amount=4.0),
        },
        trail_basis="close",
    )
    # Trails closes: after bar 2 the reference is 105 (not the high 120), level 101; bar 3 opens
    # at 98, below the level: filled at the open.
    assert fills_of(result)[1] == (day(3), "sell", 10.0, 98.0, "order")


def test_day_order_expires_after_the_one_bar_it_could_fill_on(make_feed):
    feed = make_feed({"A": [FLAT, (101.0, 102.0, 99.0, 100.0), (97.0, 98.0, 96.0, 97.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10, limit_price=98.0, tif="day")})
    assert result.fills.height == 0
    order = result.orders.row(0, named=True)
    assert (order["status"], order["reason"], order["ended"]) == (
        "expired",
        "day_order_expired",
        day(1),
    )


def test_same_close_mode_limit_orders_work_from_the_next_bar(make_feed):
    feed = make_feed({"A": [(100.0, 100.0, 95.0, 100.0), (100.0, 101.0, 97.0, 99.0)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 1, limit_price=96.0)}, fill_timing="same_close"
    )
    assert result.fills.height == 0  # bar 0's low of 95 came before the order existed
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 1, limit_price=98.0)}, fill_timing="same_close"
    )
    assert fills_of(result) == [(day(1), "buy", 1.0, 98.0, "order")]


def bracket(b, d):  # type: ignore[no-untyped-def]
    return b.submit_bracket("A", 10, take_profit=110.0, stop_loss=95.0)


def test_bracket_take_profit_fills_and_cancels_the_stop(make_feed):
    feed = make_feed({"A": [FLAT, (100.0, 104.0, 99.0, 103.0), (105.0, 111.0, 104.0, 109.0)]})
    result, _ = run(feed, {0: bracket})
    assert fills_of(result) == [
        (day(1), "buy", 10.0, 100.0, "order"),
        (day(2), "sell", 10.0, 110.0, "take_profit"),
    ]
    statuses = result.orders.select("origin", "status", "reason").rows()
    assert statuses == [
        ("order", "filled", ""),
        ("take_profit", "filled", ""),
        ("stop_loss", "cancelled", "other_bracket_leg_filled"),
    ]


def test_bracket_stop_loss_gapping_down_fills_at_the_open(make_feed):
    feed = make_feed({"A": [FLAT, (100.0, 101.0, 99.0, 100.0), (92.0, 93.0, 90.0, 91.0)]})
    result, _ = run(feed, {0: bracket})
    assert fills_of(result)[1] == (day(2), "sell", 10.0, 92.0, "stop_loss")


@pytest.mark.parametrize(
    ("priority", "price", "origin", "reason"),
    [
        ("stop", 95.0, "stop_loss", "both_bracket_legs_touched_stop_filled"),
        ("limit", 110.0, "take_profit", "both_bracket_legs_touched_limit_filled"),
    ],
)
def test_bar_touching_both_legs_fills_the_one_intrabar_priority_names(
    make_feed, priority, price, origin, reason
):
    feed = make_feed({"A": [FLAT, (100.0, 101.0, 99.0, 100.0), (100.0, 112.0, 94.0, 100.0)]})
    result, _ = run(feed, {0: bracket}, intrabar_priority=priority)
    assert fills_of(result)[1] == (day(2), "sell", 10.0, price, origin)
    filled_leg = result.orders.filter(result.orders["origin"] == origin).row(0, named=True)
    assert filled_leg["reason"] == reason


def test_bracket_legs_may_fill_on_the_entry_bar_unless_turned_off(make_feed):
    feed = make_feed({"A": [FLAT, (100.0, 100.5, 94.0, 96.0), FLAT]})
    result, _ = run(feed, {0: bracket})
    assert fills_of(result) == [
        (day(1), "buy", 10.0, 100.0, "order"),
        (day(1), "sell", 10.0, 95.0, "stop_loss"),
    ]
    result, _ = run(feed, {0: bracket}, stops_on_entry_bar=False)
    assert fills_of(result) == [(day(1), "buy", 10.0, 100.0, "order")]


def test_cancelling_a_bracket_entry_cancels_its_legs(make_feed):
    feed = make_feed({"A": [FLAT, FLAT]})

    def submit_then_cancel(b, d):  # type: ignore[no-untyped-def]
        entry, _, _ = bracket(b, d)
        assert len(b.open_orders) == 3
        b.cancel_order(entry)
        assert b.open_orders == []

    result, _ = run(feed, {0: submit_then_cancel})
    assert result.orders.select("status", "reason").rows() == [
        ("cancelled", "cancelled_by_user"),
        ("cancelled", "bracket_entry_ended_unfilled"),
        ("cancelled", "bracket_entry_ended_unfilled"),
    ]


def test_replace_order_moves_a_working_limit(make_feed):
    feed = make_feed({"A": [FLAT, (100.0, 101.0, 98.5, 99.0), (99.0, 99.5, 98.6, 99.0)]})

    def lower_first(b, d):  # type: ignore[no-untyped-def]
        b.submit_order("A", 4, limit_price=95.0)

    def raise_it(b, d):  # type: ignore[no-untyped-def]
        b.replace_order(0, limit_price=98.7, quantity=6)

    result, _ = run(feed, {0: lower_first, 1: raise_it})
    assert fills_of(result) == [(day(2), "buy", 6.0, 98.7, "order")]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda b: b.submit_order("A", 1, order_type="limit"),
            "limit order on asset A needs limit_price",
        ),
        (lambda b: b.submit_order("A", 1, order_type="stop"), "needs stop_price"),
        (
            lambda b: b.submit_order("A", 1, limit_price=-5.0),
            r"limit_price for asset A must be .* > 0",
        ),
        (
            lambda b: b.submit_order("A", 1, order_type="market", limit_price=5.0),
            "takes no limit_price",
        ),
        (lambda b: b.submit_order("A", -1, trail_amount=1.0, trail_percent=0.1), "exactly one"),
        (lambda b: b.submit_order("A", -1, trail_percent=5.0), r"fraction in \(0, 1\)"),
        (lambda b: b.submit_order("A", 1, order_type="iceberg"), "order_type for asset A must be"),
        (lambda b: b.submit_order("A", 1, tif="ioc"), "tif must be"),
        (
            lambda b: b.submit_bracket("A", 1, take_profit=110.0, stop_loss=95.0, tif="ioc"),
            r"tif must be 'gtc' \(good till cancelled\) or 'day', got 'ioc' for asset A",
        ),
        (
            lambda b: b.submit_bracket("A", 1, take_profit=90.0, stop_loss=95.0),
            "stop_loss < take_profit",
        ),
        (lambda b: b.replace_order(0, limit_price=3.0), "market order"),
    ],
)
def test_bad_order_requests_raise_order_error_naming_the_problem(make_feed, call, message):
    feed = make_feed({"A": [FLAT, FLAT]})

    def submit_then_call(b, d):  # type: ignore[no-untyped-def]
        b.submit_order("A", 1)
        call(b)

    with pytest.raises(OrderError, match=message):
        run(feed, {0: submit_then_call})


def test_replacing_a_filled_order_is_an_order_error(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, FLAT]})
    with pytest.raises(OrderError, match="order 0 on asset A is filled"):
        run(
            feed,
            {
                0: lambda b, d: b.submit_order("A", 1),
                1: lambda b, d: b.replace_order(0, quantity=2),
            },
        )


@pytest.mark.parametrize(
    ("anchor", "stop_level"),
    [
        # Entry fills at the open of bar 1, 104: stop 5% below it is 98.8.
        ("fill", 104.0 * 0.95),
        # Decision close of bar 0 is 100: stop 5% below it is 95.
        ("decision", 95.0),
    ],
)
def test_bracket_levels_in_percent_are_anchored_as_set(make_feed, anchor, stop_level):
    feed = make_feed({"A": [FLAT, (104.0, 105.0, 103.0, 104.0), (99.0, 99.5, 90.0, 92.0)]})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_bracket("A", 10, take_profit_pct=0.2, stop_loss_pct=0.05)},
        stop_anchor=anchor,
    )
    legs = result.orders.select("origin", "limit_price", "stop_price").rows()
    assert legs[1][1] == pytest.approx((104.0 if anchor == "fill" else 100.0) * 1.2)
    assert legs[2][2] == pytest.approx(stop_level)
    exit_fill = result.fills.row(1, named=True)
    # Bar 2 opens at 99: above 98.8 (touched later at the level) but above 95 too.
    expected = stop_level if stop_level < 99.0 else 99.0
    assert (exit_fill["reason"], exit_fill["price"]) == ("stop_loss", pytest.approx(expected))


def test_short_bracket_in_percent_puts_the_stop_above_the_entry(make_feed):
    feed = make_feed({"A": [FLAT, (100.0, 101.0, 99.0, 100.0), (100.0, 111.0, 99.0, 110.0)]})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_bracket("A", -10, take_profit_pct=0.1, stop_loss_pct=0.1)},
        account="margin",
    )
    legs = result.orders.select("limit_price", "stop_price").rows()
    assert legs[1][0] == pytest.approx(90.0) and legs[2][1] == pytest.approx(110.0)
    assert result.fills.select("side", "price", "reason").row(1) == (
        "buy",
        pytest.approx(110.0),
        "stop_loss",
    )


def test_bracket_needs_one_of_price_or_percent_per_leg(make_feed):
    feed = make_feed({"A": [FLAT, FLAT]})
    with pytest.raises(OrderError, match="exactly one of stop_loss"):
        run(feed, {0: lambda b, d: b.submit_bracket("A", 1, take_profit=110.0)})
    with pytest.raises(OrderError, match="take_profit_pct for asset A must be a fraction"):
        run(feed, {0: lambda b, d: b.submit_bracket("A", 1, take_profit_pct=2.0, stop_loss=90.0)})
