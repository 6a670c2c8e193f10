"""Settings where frameworks disagree: the order of a bar's fills and slippage past the bar."""

from __future__ import annotations

import pytest

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
