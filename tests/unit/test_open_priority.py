"""``open_priority``: what a bar meets first when orders of earlier bars fill at its open and a
position rule fires on it. ``"rules"`` is VectorBT's order with shifted signals and
``price=open`` (``simulate_from_signals_nb``: the stop is checked before the row's signal and
replaces it); worked by hand in both drivers."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, run_signals
from ml4t.backtest.risk import StopLoss
from scripted import run

RULES = {"open_priority": "rules"}
STOP = StopLoss(0.05)  # a long entered at 100 stops at 95


def _feed(make_feed, bar2):  # type: ignore[no-untyped-def]
    # Entered at bar 1's open (100); bar 1 stays above the stop; bar 2 is the bar under test.
    return make_feed({"A": [(100.0, 100.0), (100.0, 101.0, 99.0, 100.0), bar2, (92.0, 92.0)]})


def _signal(feed, bar):  # type: ignore[no-untyped-def]
    out = np.zeros((feed.n_bars, 1), dtype=np.bool_)
    out[bar, 0] = True
    return out


def _both(feed, config, *, short_entry=False):  # type: ignore[no-untyped-def]
    """The event driver and ``run_signals``: 10 A bought at bar 0's decision; at bar 1's
    decision, an exit (or, with ``short_entry``, a reversal to 10 short)."""
    second = (
        (lambda b, d: b.submit_order("A", -20))
        if short_entry
        else (lambda b, d: b.close_position("A"))
    )
    event, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 10), 1: second},
        position_rules=STOP, **config,
    )  # fmt: skip
    none = np.zeros((feed.n_bars, 1), dtype=np.bool_)
    signals = {"short_entries": _signal(feed, 1), "short_exits": none} if short_entry else {}
    compiled = run_signals(
        feed, _signal(feed, 0), None if short_entry else _signal(feed, 1), size=10,
        size_type="shares", config=BacktestConfig(initial_cash=10_000.0, **config),
        position_rules=STOP, **signals,
    )  # fmt: skip
    return event, compiled


def _fills(result):  # type: ignore[no-untyped-def]
    """Side, quantity and price of each fill, with the reason of rule exits (entries are
    ``order`` in the event driver, ``target`` in ``run_signals``)."""
    rows = result.fills.select("side", "quantity", "price", "reason").rows()
    return [row if row[3] == "stop_loss" else row[:3] for row in rows]


def test_a_stop_on_the_bar_of_an_exit_fills_at_its_level_and_replaces_the_exit(make_feed):
    # Bar 2 opens at 97, above the stop (95), and falls to 90.
    feed = _feed(make_feed, (97.0, 98.0, 90.0, 92.0))
    for result in _both(feed, RULES):
        # The stop is checked first: it fills at its level, 95, not at the open, 97.
        assert _fills(result) == [("buy", 10.0, 100.0), ("sell", 10.0, 95.0, "stop_loss")]
        # The exit decided at bar 1 is cancelled, replaced by the stop.
        cancelled = result.orders.filter(result.orders["status"] == "cancelled")
        assert cancelled.select("side", "quantity", "reason").rows() == [
            ("sell", 10.0, "replaced_by_position_rule")
        ]


def test_by_default_the_exit_fills_at_the_open_before_the_rules(make_feed):
    feed = _feed(make_feed, (97.0, 98.0, 90.0, 92.0))
    for result in _both(feed, {}):
        # The exit leaves at the open, 97; nothing is left for the stop.
        assert _fills(result) == [("buy", 10.0, 100.0), ("sell", 10.0, 97.0)]


def test_a_stop_gapped_through_fills_at_the_open_and_drops_the_reversal(make_feed):
    # Bar 2 opens at 93, below the stop: the stop fills at the open, and only closes.
    feed = _feed(make_feed, (93.0, 94.0, 90.0, 92.0))
    for result in _both(feed, {**RULES, "account": "margin"}, short_entry=True):
        # Flat after the bar: no short is opened.
        assert _fills(result) == [("buy", 10.0, 100.0), ("sell", 10.0, 93.0, "stop_loss")]
    for result in _both(feed, {"account": "margin"}, short_entry=True):
        # By default the reversal fills first: 20 sold at 93, 10 short after the bar.
        assert _fills(result) == [("buy", 10.0, 100.0), ("sell", 20.0, 93.0)]


def test_a_reversal_without_a_stop_fills_at_the_open(make_feed):
    # Bar 2 stays above 95: nothing fires, the reversal fills at the open (97) as by default.
    feed = _feed(make_feed, (97.0, 98.0, 96.0, 97.0))
    for result in _both(feed, {**RULES, "account": "margin"}, short_entry=True):
        assert _fills(result) == [("buy", 10.0, 100.0), ("sell", 20.0, 97.0)]


@pytest.mark.parametrize(("on_entry_bar", "expected"), [(True, 95.0), (False, 92.0)])
def test_an_entry_at_the_open_meets_its_rules_after_the_fill(make_feed, on_entry_bar, expected):
    # Bought at bar 1's open (100); bar 1 falls to 94. Rules checked before the open's fills
    # could not see this position: they check it after the fill, when stops_on_entry_bar is
    # on (stop at 95 on bar 1); off, the stop waits for bar 2, which opens at 92 (a gap).
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 101.0, 94.0, 96.0), (92.0, 92.0)]})
    config = {**RULES, "stops_on_entry_bar": on_entry_bar}
    event, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10)}, position_rules=STOP, **config)
    compiled = run_signals(
        feed, _signal(feed, 0), size=10, size_type="shares",
        config=BacktestConfig(initial_cash=10_000.0, **config), position_rules=STOP,
    )  # fmt: skip
    for result in (event, compiled):
        assert _fills(result) == [
            ("buy", 10.0, 100.0),
            ("sell", 10.0, expected, "stop_loss"),
        ]


def test_open_priority_names_the_nearest_valid_value():
    with pytest.raises(ConfigError, match=r"open_priority.*did you mean 'rules'"):
        BacktestConfig(open_priority="rule")  # type: ignore[arg-type]


def test_a_limit_order_keeps_working_after_the_rule_exit_and_fills_on_the_flat_position(
    make_feed,
):
    # 10 A held from 100; at bar 1 a limit buy of 10 at 91. Bar 2 opens at 97 and falls to 90.
    feed = _feed(make_feed, (97.0, 98.0, 90.0, 92.0))
    actions = {
        0: lambda b, d: b.submit_order("A", 10),
        1: lambda b, d: b.submit_order("A", 10, limit_price=91.0),
    }
    result, _ = run(feed, actions, position_rules=STOP, **RULES)
    # The stop sells the 10 at 95 first; the limit is not replaced: it buys 10 at 91 after.
    assert _fills(result) == [
        ("buy", 10.0, 100.0),
        ("sell", 10.0, 95.0, "stop_loss"),
        ("buy", 10.0, 91.0),
    ]
