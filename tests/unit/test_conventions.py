"""Settings where frameworks disagree: the order of a bar's fills and slippage past the bar."""

from __future__ import annotations

import pytest

from ml4t.backtest.risk import TrailingStop
from scripted import run


def test_as_submitted_fills_an_entry_before_the_exit_that_would_pay_for_it(make_feed):
    feed = make_feed({"A": [(50.0, 50.0)] * 3, "B": [(20.0, 20.0)] * 3})

    def switch(b, d):  # type: ignore[no-untyped-def]
        b.submit_order("B", 100)  # needs the sale of A below; submitted first
        b.submit_order("A", -200)

    actions = {0: lambda b, d: b.submit_order("A", 200), 1: switch}
    result, _ = run(feed, actions, on_insufficient_cash="reject", execution_order="as_submitted")
    assert result.orders.select("asset", "status", "reason").rows()[1:] == [
        ("B", "rejected", "insufficient_cash"),
        ("A", "filled", ""),
    ]
    result, _ = run(feed, actions, on_insufficient_cash="reject", execution_order="exits_first")
    assert result.orders["status"].to_list() == ["filled", "filled", "filled"]


@pytest.mark.parametrize(
    ("execution_order", "filled"),
    [
        # Submission order: A's 800 first, B gets what is left: 200 -> 2 shares.
        ("exits_first", {"A": 8.0, "B": 2.0}),
        # Smallest entry first: B's 300, then A is trimmed to 700 -> 7 shares.
        ("exits_first_smallest_entries_first", {"A": 7.0, "B": 3.0}),
    ],
)
def test_which_entry_a_cash_shortfall_trims_follows_the_execution_order(
    make_feed, execution_order, filled
):
    feed = make_feed({"A": [(100.0, 100.0)] * 2, "B": [(100.0, 100.0)] * 2})
    result, _ = run(
        feed,
        {0: lambda b, d: (b.submit_order("A", 8), b.submit_order("B", 3))},
        initial_cash=1000.0,
        execution_order=execution_order,
    )
    got = dict(result.fills.select("asset", "quantity").rows())
    assert got == filled


def test_slippage_past_the_bars_high_is_clamped_when_set(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 100.05, 99.0, 100.0)]})
    actions = {0: lambda b, d: b.submit_order("A", 1)}
    result, _ = run(feed, actions, slippage=0.001)
    assert result.fills["price"][0] == pytest.approx(100.1)
    result, _ = run(feed, actions, slippage=0.001, slippage_within_bar=True)
    assert result.fills["price"][0] == 100.05
    assert result.fills["slippage"][0] == pytest.approx(0.05)


@pytest.mark.parametrize(("sizing_price", "shares"), [("decision", 166.0), ("fill", 161.0)])
def test_target_percent_turns_value_into_shares_at_the_sizing_price(
    make_feed, sizing_price, shares
):
    feed = make_feed({"A": [(10.0, 30.0), (31.0, 31.0)]})
    result, _ = run(
        feed, {0: lambda b, d: b.order_target_percent("A", 0.5)}, sizing_price=sizing_price
    )
    # 0.5 x 10,000 = 5,000: / 30 (decision close) = 166.7; / 31 (fill open) = 161.3.
    assert result.fills["quantity"].to_list() == [shares]


def test_rebalance_sized_at_the_fill_price(make_feed):
    feed = make_feed({"A": [(20.0, 20.0), (25.0, 25.0)], "B": [(10.0, 10.0), (8.0, 8.0)]})
    result, _ = run(feed, {0: lambda b, d: b.rebalance({"A": 0.5, "B": 0.4})}, sizing_price="fill")
    # 5,000 / 25 = 200 A; 4,000 / 8 = 500 B (at the decision closes it would be 250 and 400).
    assert dict(result.fills.select("asset", "quantity").rows()) == {"A": 200.0, "B": 500.0}


def test_target_met_at_the_fill_price_cancels_the_order(make_feed):
    feed = make_feed({"A": [(50.0, 50.0), (50.0, 50.0), (60.0, 60.0)]})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 100),
            1: lambda b, d: b.order_target_value("A", 6_000.0),  # +20 at 50, none at 60
        },
        sizing_price="fill",
    )
    assert result.orders.select("status", "reason").rows()[1] == (
        "cancelled",
        "target_already_met_at_fill_price",
    )
    assert result.fills.height == 1


def test_every_origin_and_reason_code_has_exactly_one_name():
    from ml4t.backtest.kernels import records

    origins = sorted(v for k, v in vars(records).items() if k.startswith("O_"))
    reasons = sorted(v for k, v in vars(records).items() if k.startswith("R_"))
    assert origins == list(range(len(records.ORIGIN_NAMES)))
    assert reasons == list(range(len(records.REASON_NAMES)))


# A trailing stop when stops start on the bar after the entry (``stops_on_entry_bar=False``):
# the trail starts at the entry price, and each bar's high joins it only after the bar was
# checked, as VectorBT's ``simulate_from_signals_nb`` moves ``sl_curr_price``. Bars are
# (open, high, low, close); 10 shares bought at bar 0's close fill at bar 1's open, 100.
TRAIL_BARS = [
    (100.0, 100.0, 100.0, 100.0),
    (100.0, 120.0, 99.0, 115.0),  # the entry bar: its high of 120 is not watched
    (112.0, 113.0, 107.0, 110.0),  # stop 100 x 0.9 = 90: not reached; then the trail is 113
    (110.0, 111.0, 101.0, 105.0),  # stop 113 x 0.9 = 101.7: the low of 101 reaches it
]


def test_trailing_stop_starting_next_bar_ignores_the_entry_bars_high(make_feed):
    feed = make_feed({"A": TRAIL_BARS})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 10)},
        position_rules=TrailingStop(0.10),
        stops_on_entry_bar=False,
    )
    exit_fill = result.fills.select("timestamp", "price", "reason").rows()[1]
    assert exit_fill[0].day == 4  # bar 3 (bar 0 is 2024-01-01)
    assert exit_fill[1] == pytest.approx(113.0 * 0.9)
    assert exit_fill[2] == "trailing_stop"


def test_trailing_stop_watching_the_entry_bar_takes_in_its_high_after_checking_it(make_feed):
    # Bar 1 is checked against 100 x 0.9 = 90 (low 99: no exit), then its high of 120 joins
    # the trail: bar 2's stop is 108, which its low of 107 reaches.
    feed = make_feed({"A": TRAIL_BARS})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 10)}, position_rules=TrailingStop(0.10)
    )
    exit_fill = result.fills.select("timestamp", "price", "reason").rows()[1]
    assert (exit_fill[0].day, exit_fill[1], exit_fill[2]) == (3, 108.0, "trailing_stop")
