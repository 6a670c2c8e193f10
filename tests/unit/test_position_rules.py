"""Position rules, with the bar each one triggers on and its fill price worked out by hand.

Bars are (open, high, low, close). Unless said otherwise the script buys 10 shares at the close
of bar 0, so the position is entered at the open of bar 1 (at 100) and the rules watch it from
bar 1 on (``stops_on_entry_bar`` is on by default).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataError
from ml4t.backtest.broker import Broker
from ml4t.backtest.kernels.rules import reads_extremes
from ml4t.backtest.risk import (
    AllOf,
    AnyOf,
    RegimeDependent,
    RuleChain,
    SignalExit,
    StopLoss,
    TakeProfit,
    TimeExit,
    TrailingStop,
    VolatilityScaledStop,
    average_true_range,
)
from scripted import run

FLAT = (100.0, 100.0, 100.0, 100.0)


def day(n: int) -> datetime:
    return datetime(2024, 1, 1 + n)


def buy(qty: float = 10):  # type: ignore[no-untyped-def]
    return {0: lambda b, d: b.submit_order("A", qty)}


def exits(result):  # type: ignore[no-untyped-def]
    """The fills after the entry: (timestamp, side, quantity, price, reason)."""
    return result.fills.select("timestamp", "side", "quantity", "price", "reason").rows()[1:]


def test_stop_loss_fills_at_its_level_when_the_low_reaches_it(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 100.0, 94.0, 96.0), FLAT]})
    result, _ = run(feed, buy(), position_rules=StopLoss(0.05))
    assert exits(result) == [(day(2), "sell", 10.0, 95.0, "stop_loss")]


def test_stop_loss_fills_at_the_open_when_the_bar_gaps_below_it(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (93.0, 97.0, 92.0, 96.0), FLAT]})
    result, _ = run(feed, buy(), position_rules=StopLoss(0.05))
    assert exits(result) == [(day(2), "sell", 10.0, 93.0, "stop_loss")]


def test_stop_loss_by_amount_is_that_far_below_the_entry(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 99.0, 96.5, 98.0), (98.0, 98.0, 96.9, 97.0)]})
    result, _ = run(feed, buy(), position_rules=StopLoss(amount=3.0))
    assert exits(result) == [(day(2), "sell", 10.0, 97.0, "stop_loss")]


def test_stop_loss_on_a_short_is_above_the_entry(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (101.0, 106.0, 100.0, 104.0), FLAT]})
    result, _ = run(
        feed, buy(-10), position_rules=StopLoss(0.05), account="margin", initial_cash=10_000.0
    )
    assert exits(result) == [(day(2), "buy", 10.0, 105.0, "stop_loss")]


def test_stop_loss_is_measured_from_the_average_entry_price(make_feed):
    # 10 at 100 then 10 at 110: entry 105, stop at 105 * 0.95 = 99.75.
    feed = make_feed(
        {"A": [FLAT, (100.0, 110.0), (110.0, 111.0, 100.5, 101.0), (101.0, 101.0, 99.0, 100.0)]}
    )
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 10), 1: lambda b, d: b.submit_order("A", 10)},
        position_rules=StopLoss(0.05),
    )
    assert exits(result)[1:] == [(day(3), "sell", 20.0, 99.75, "stop_loss")]


def test_take_profit_fills_at_its_level_or_a_higher_open(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (104.0, 111.0, 103.0, 108.0)]})
    result, _ = run(feed, buy(), position_rules=TakeProfit(0.10))
    assert exits(result) == [(day(2), "sell", 10.0, 100.0 * 1.10, "take_profit")]
    gapped = make_feed({"A": [FLAT, FLAT, (112.0, 113.0, 111.0, 112.0)]})
    result, _ = run(gapped, buy(), position_rules=TakeProfit(0.10))
    assert exits(result) == [(day(2), "sell", 10.0, 112.0, "take_profit")]


def test_trailing_stop_follows_the_highest_high_of_earlier_bars(make_feed):
    # Entry 100. Bar 2 makes a high of 120 (its own low, 107, is above the 90 stop it had).
    # From bar 3 the stop is 120 * 0.9 = 108: bar 3's low of 107 reaches it.
    feed = make_feed(
        {"A": [FLAT, FLAT, (108.0, 120.0, 107.0, 118.0), (117.0, 118.0, 107.0, 110.0)]}
    )
    result, _ = run(feed, buy(), position_rules=TrailingStop(0.10))
    assert exits(result) == [(day(3), "sell", 10.0, 108.0, "trailing_stop")]


def test_trailing_stop_never_loosens_when_the_price_falls_back(make_feed):
    # High 120 on bar 2 sets the stop at 108; later lower highs do not lower it.
    feed = make_feed(
        {
            "A": [
                FLAT,
                FLAT,
                (110.0, 120.0, 109.0, 118.0),
                (112.0, 113.0, 109.0, 110.0),
                (110.0, 111.0, 108.5, 109.0),
                (109.0, 109.5, 107.5, 108.0),
            ]
        }
    )
    result, _ = run(feed, buy(), position_rules=TrailingStop(0.10))
    assert exits(result) == [(day(5), "sell", 10.0, 108.0, "trailing_stop")]


def test_trailing_stop_of_a_short_trails_the_lowest_low(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 99.0, 80.0, 82.0), (83.0, 88.5, 82.0, 86.0)]})
    result, _ = run(feed, buy(-10), position_rules=TrailingStop(amount=6.0), account="margin")
    assert exits(result) == [(day(3), "buy", 10.0, 86.0, "trailing_stop")]


def test_both_stop_and_take_profit_touched_in_one_bar_follow_intrabar_priority(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (100.0, 106.0, 94.0, 100.0)]})
    rules = AnyOf(TakeProfit(0.05), StopLoss(0.05))
    result, _ = run(feed, buy(), position_rules=rules)
    assert exits(result) == [(day(2), "sell", 10.0, 95.0, "stop_loss")]
    result, _ = run(feed, buy(), position_rules=rules, intrabar_priority="limit")
    assert exits(result) == [(day(2), "sell", 10.0, 105.0, "take_profit")]


def test_any_of_takes_the_level_met_first_on_the_way_down(make_feed):
    # Stops at 97 (fixed) and 95 (trailing from 100 at 5%): falling from the open, 97 comes first.
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 99.0, 90.0, 92.0)]})
    result, _ = run(feed, buy(), position_rules=AnyOf(TrailingStop(0.05), StopLoss(amount=3.0)))
    assert exits(result) == [(day(2), "sell", 10.0, 97.0, "stop_loss")]


def test_rule_chain_takes_the_first_rule_listed_that_triggers(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (100.0, 106.0, 94.0, 100.0)]})
    result, _ = run(feed, buy(), position_rules=RuleChain(TakeProfit(0.05), StopLoss(0.05)))
    assert exits(result) == [(day(2), "sell", 10.0, 105.0, "take_profit")]


def test_all_of_exits_only_when_every_rule_triggers(make_feed):
    # The 2% stop (98) is touched on bar 2 (held 1 bar) and bar 3 (held 2 bars): only the
    # second counts, because the time rule asks for two bars held.
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 99.0, 97.0, 99.0), (99.0, 99.0, 97.5, 98.0), FLAT]})
    result, _ = run(feed, buy(), position_rules=AllOf(TimeExit(2), StopLoss(0.02)))
    assert exits(result) == [(day(3), "sell", 10.0, 98.0, "stop_loss")]


def test_time_exit_sells_at_the_open_after_n_bars_held(make_feed):
    bars = [FLAT, FLAT, (101.0, 102.0), (102.0, 103.0), (104.0, 105.0), (105.0, 106.0)]
    feed = make_feed({"A": bars})
    result, _ = run(feed, buy(), position_rules=TimeExit(3))
    # Entered at the open of bar 1; three bars later is the open of bar 4.
    assert exits(result) == [(day(4), "sell", 10.0, 104.0, "time_exit")]
    assert result.trades["bars_held"].to_list() == [3]


def test_signal_exit_sells_at_the_open_after_the_signal_crosses(make_feed):
    bars = [FLAT, FLAT, (101.0, 102.0), (103.0, 104.0), (104.0, 105.0)]
    score = {"A": [1.0, 0.5, -0.2, 0.3, 0.4]}
    feed = make_feed({"A": bars}, score=score)
    result, _ = run(feed, buy(), position_rules=SignalExit("score", threshold=0.0))
    # The score falls below 0 at bar 2's close: out at bar 3's open, never peeking at bar 3.
    assert exits(result) == [(day(3), "sell", 10.0, 103.0, "signal_exit")]


def test_signal_exit_on_a_short_triggers_above_the_threshold(make_feed):
    bars = [FLAT, FLAT, (99.0, 98.0), (97.0, 96.0)]
    feed = make_feed({"A": bars}, score={"A": [-1.0, -0.5, 0.1, -1.0]})
    result, _ = run(feed, buy(-10), position_rules=SignalExit("score"), account="margin")
    assert exits(result) == [(day(3), "buy", 10.0, 97.0, "signal_exit")]


def test_volatility_stop_fixed_at_entry_uses_the_volatility_known_when_it_was_decided(make_feed):
    # Decided at bar 0's close (vol 2): stop 100 - 2 * 2 = 96 for good. The vol of the entry bar
    # itself (9) is unknown at that decision and must not be used.
    bars = [FLAT, FLAT, (99.0, 99.0, 96.5, 98.0), (98.0, 98.0, 95.0, 96.0)]
    vol = {"A": [2.0, 9.0, 4.0, 4.0]}
    feed = make_feed({"A": bars}, vol=vol)
    result, _ = run(feed, buy(), position_rules=VolatilityScaledStop(2.0, column="vol"))
    assert exits(result) == [(day(3), "sell", 10.0, 96.0, "volatility_stop")]


def test_volatility_stop_updated_each_bar_uses_the_last_closed_bar(make_feed):
    # Bar 2 reads vol[1] = 1: stop 98, low 98.5 misses. Bar 3 reads vol[2] = 4: stop 92.
    bars = [FLAT, FLAT, (99.0, 99.0, 98.5, 99.0), (98.0, 98.0, 91.0, 93.0)]
    vol = {"A": [2.0, 1.0, 4.0, 4.0]}
    feed = make_feed({"A": bars}, vol=vol)
    rule = VolatilityScaledStop(2.0, column="vol", fixed=False)
    result, _ = run(feed, buy(), position_rules=rule)
    assert exits(result) == [(day(3), "sell", 10.0, 92.0, "volatility_stop")]


def test_volatility_stop_relative_scales_a_fractional_volatility_by_the_entry(make_feed):
    # 3 x 1% of 100 = 3 below entry.
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 99.0, 96.0, 97.0)]}, vol={"A": [0.01] * 3})
    rule = VolatilityScaledStop(3.0, column="vol", relative=True)
    result, _ = run(feed, buy(), position_rules=rule)
    assert exits(result) == [(day(2), "sell", 10.0, 97.0, "volatility_stop")]


def test_volatility_stop_on_atr_waits_for_the_atr_and_reads_it_at_entry(make_feed):
    # True ranges: bar 0: 2; bar 1: max(2, |103-100|, |101-100|) = 3. ATR(2) at bar 1 = 2.5.
    # Buy decided at bar 1's close: entry at bar 2's open (100), stop 100 - 2 * 2.5 = 95.
    bars = [
        (100.0, 101.0, 99.0, 100.0),
        (101.0, 103.0, 101.0, 102.0),
        (100.0, 100.0, 96.0, 97.0),
        (97.0, 97.0, 94.0, 95.0),
    ]
    feed = make_feed({"A": bars})
    atr = average_true_range(feed.array("high"), feed.array("low"), feed.array("close"), 2)
    assert atr[:, 0].tolist()[:2] == [pytest.approx(np.nan, nan_ok=True), 2.5]
    result, _ = run(
        feed,
        {1: lambda b, d: b.submit_order("A", 10)},
        position_rules=VolatilityScaledStop(2.0, window=2),
    )
    assert exits(result) == [(day(3), "sell", 10.0, 95.0, "volatility_stop")]


def test_atr_is_wilders_smoothing_of_true_range(make_feed):
    h = np.array([[11.0], [12.0], [14.0], [13.0]])
    lo = np.array([[9.0], [10.0], [11.0], [12.0]])
    c = np.array([[10.0], [11.0], [13.0], [12.5]])
    atr = average_true_range(h, lo, c, window=2)[:, 0]
    # TR: 2, 2, max(3, 3, 0) = 3, max(1, 0, 1) = 1. ATR: -, 2, (2 + 3) / 2 = 2.5, (2.5 + 1) / 2.
    assert np.isnan(atr[0])
    assert atr[1:].tolist() == [2.0, 2.5, 1.75]


def test_regime_dependent_picks_the_rule_of_the_last_closed_regime(make_feed):
    bars = [FLAT, FLAT, (99.0, 99.0, 97.0, 98.0), (98.0, 98.0, 89.0, 92.0)]
    rules = RegimeDependent("regime", {0: StopLoss(0.10), 1: StopLoss(0.02)})
    calm = make_feed({"A": bars}, regime={"A": [0.0, 0.0, 0.0, 0.0]})
    result, _ = run(calm, buy(), position_rules=rules)
    assert exits(result) == [(day(3), "sell", 10.0, 90.0, "stop_loss")]
    wild = make_feed({"A": bars}, regime={"A": [0.0, 1.0, 0.0, 0.0]})
    result, _ = run(wild, buy(), position_rules=rules)
    assert exits(result) == [(day(2), "sell", 10.0, 98.0, "stop_loss")]


def test_regime_dependent_without_a_match_uses_the_default_or_nothing(make_feed):
    bars = [FLAT, FLAT, (99.0, 99.0, 97.0, 98.0)]
    feed = make_feed({"A": bars}, regime={"A": [5.0, 5.0, 5.0]})
    result, _ = run(feed, buy(), position_rules=RegimeDependent("regime", {0: StopLoss(0.02)}))
    assert exits(result) == []
    rules = RegimeDependent("regime", {0: StopLoss(0.5)}, default=StopLoss(0.02))
    result, _ = run(feed, buy(), position_rules=rules)
    assert exits(result) == [(day(2), "sell", 10.0, 98.0, "stop_loss")]


def test_rules_watch_the_entry_bar_only_when_stops_on_entry_bar_is_on(make_feed):
    feed = make_feed({"A": [FLAT, (100.0, 100.0, 94.0, 99.0), FLAT, (99.0, 99.0, 94.0, 95.0)]})
    result, _ = run(feed, buy(), position_rules=StopLoss(0.05))
    assert exits(result) == [(day(1), "sell", 10.0, 95.0, "stop_loss")]
    result, _ = run(feed, buy(), position_rules=StopLoss(0.05), stops_on_entry_bar=False)
    assert exits(result) == [(day(3), "sell", 10.0, 95.0, "stop_loss")]


def test_rule_exits_pay_commission_and_slippage_like_orders(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 100.0, 94.0, 96.0)]})
    result, _ = run(feed, buy(), position_rules=StopLoss(0.05), commission=0.001, slippage=0.01)
    # Entry 100 * 1.01 = 101 after slippage; the stop is 5% below it and slips 1% more.
    row = result.fills.row(1, named=True)
    assert row["price"] == pytest.approx(101.0 * 0.95 * 0.99)
    assert row["commission"] == pytest.approx(10 * 101.0 * 0.95 * 0.99 * 0.001)
    assert row["reason"] == "stop_loss"


def test_asset_rules_win_over_global_rules_and_order_rules_over_both(make_feed):
    bar2 = (99.0, 99.0, 96.5, 98.0)  # reaches a 3% stop (97), not a 5% one (95)
    feed = make_feed({"A": [FLAT, FLAT, bar2], "B": [FLAT, FLAT, bar2], "C": [FLAT, FLAT, bar2]})

    def setup(b, d):  # type: ignore[no-untyped-def]
        b.set_position_rules(StopLoss(0.05))
        b.set_position_rules(StopLoss(0.03), asset="A")
        b.submit_order("A", 10)
        b.submit_order("B", 10)
        b.submit_order("C", 10, position_rules=StopLoss(0.03))

    result, _ = run(feed, {0: setup})
    sold = result.fills.filter(result.fills["side"] == "sell")
    assert sold.select("asset", "price", "reason").rows() == [
        ("A", 97.0, "stop_loss"),
        ("C", 97.0, "stop_loss"),
    ]


def test_set_position_rules_by_order_id_and_removal(make_feed):
    bar2 = (99.0, 99.0, 96.5, 98.0)
    feed = make_feed({"A": [FLAT, FLAT, bar2], "B": [FLAT, FLAT, bar2]})

    def setup(b, d):  # type: ignore[no-untyped-def]
        b.set_position_rules(StopLoss(0.03))
        b.set_position_rules(None, asset="B")
        b.set_position_rules(StopLoss(0.03), asset="B")
        b.set_position_rules(None, asset="B")  # B falls back to the global rule
        oid = b.submit_order("A", 10)
        b.set_position_rules(StopLoss(0.05), order_id=oid)  # A's own, wider: not reached
        b.submit_order("B", 10)

    result, _ = run(feed, {0: setup})
    sold = result.fills.filter(result.fills["side"] == "sell")
    assert sold.select("asset", "price").rows() == [("B", 97.0)]


def test_a_new_position_after_a_stop_gets_a_fresh_entry(make_feed):
    # Stopped at 95 on bar 2; bought again at bar 3's open (90): new stop 85.5, hit on bar 4.
    bars = [
        FLAT,
        FLAT,
        (99.0, 99.0, 94.0, 95.0),
        (90.0, 90.0, 88.0, 89.0),
        (89.0, 89.0, 85.0, 86.0),
    ]
    feed = make_feed({"A": bars})
    actions = {0: lambda b, d: b.submit_order("A", 10), 2: lambda b, d: b.submit_order("A", 10)}
    result, _ = run(feed, actions, position_rules=StopLoss(0.05))
    sells = result.fills.filter(result.fills["side"] == "sell")
    assert sells.select("timestamp", "price").rows() == [(day(2), 95.0), (day(4), 85.5)]


def test_an_exit_a_volume_cap_cuts_keeps_working_as_an_order(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 100.0, 94.0, 96.0), (96.0, 97.0, 95.5, 96.0)]})
    # Volume 1e6 per bar; a cap of 6e-6 lets 6 shares trade a bar.
    result, _ = run(feed, buy(6), position_rules=StopLoss(0.05), max_participation=6e-6)
    assert exits(result) == [(day(2), "sell", 6.0, 95.0, "stop_loss")]
    # 12 bought over bars 1 and 2; bar 3 reaches the stop but 6 shares are all it can sell;
    # the other 6 keep working as a stop and go at bar 4's open, which is below it.
    bars = [FLAT, FLAT, FLAT, (99.0, 100.0, 94.0, 96.0), (94.5, 96.0, 94.0, 95.0)]
    result, _ = run(
        make_feed({"A": bars}), buy(12), position_rules=StopLoss(0.05), max_participation=6e-6
    )
    assert exits(result)[1:] == [
        (day(3), "sell", 6.0, 95.0, "stop_loss"),
        (day(4), "sell", 6.0, 94.5, "stop_loss"),
    ]


def test_strategy_sees_the_exit_in_on_fill_and_in_its_position(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 100.0, 94.0, 96.0), FLAT]})
    seen = []
    _, strategy = run(
        feed,
        {2: lambda b, d: seen.append(b.position("A"))} | buy(),
        position_rules=StopLoss(0.05),
    )
    assert seen == [0.0]
    assert [(f.reason, f.price) for f in strategy.fills] == [("order", 100.0), ("stop_loss", 95.0)]


def test_rule_reading_an_unknown_column_is_an_error_naming_it(make_feed):
    feed = make_feed({"A": [FLAT, FLAT]})
    with pytest.raises(DataError, match="nope"):
        run(feed, buy(), position_rules=SignalExit("nope"))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: StopLoss(), "exactly one of pct"),
        (lambda: StopLoss(0.05, amount=1.0), "exactly one of pct"),
        (lambda: StopLoss(1.5), r"fraction in \(0, 1\)"),
        (lambda: TrailingStop(amount=-1.0), "amount must be"),
        (lambda: TimeExit(0), "TimeExit bars"),
        (lambda: VolatilityScaledStop(0.0), "k must be"),
        (lambda: VolatilityScaledStop(2.0, relative=True), "needs column"),
        (lambda: AnyOf(), "at least one rule"),
        (lambda: AnyOf(StopLoss(0.1), "x"), "AnyOf member must be a position rule"),
        (lambda: RegimeDependent("r", {}), "non-empty mapping"),
    ],
)
def test_bad_rule_settings_are_config_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_signal_strategy_counts_a_stopped_position_as_flat_and_enters_again(make_feed):
    from ml4t.backtest import BacktestConfig, Engine, SignalStrategy

    bars = [FLAT, FLAT, (99.0, 99.0, 94.0, 96.0), (96.0, 97.0), (97.0, 98.0)]
    feed = make_feed({"A": bars}, score={"A": [2.0, 2.0, 2.0, 2.0, 2.0]})
    strategy = SignalStrategy("score", entry_threshold=1.0, exit_threshold=0.0, weight=0.5)
    config = BacktestConfig(initial_cash=10_000.0)
    result = Engine(feed, strategy, config, position_rules=StopLoss(0.05)).run()
    # In at bar 1's open, stopped at 95 on bar 2, in again at bar 3's open.
    assert result.fills.select("timestamp", "side", "price", "reason").rows() == [
        (day(1), "buy", 100.0, "target"),
        (day(2), "sell", 95.0, "stop_loss"),
        (day(3), "buy", 96.0, "target"),
    ]


def test_with_next_close_fills_rules_start_on_the_bar_after_the_entry(make_feed):
    # Bought at bar 1's close (100); bar 1's low of 90 came before the entry and cannot stop it.
    bars = [FLAT, (100.0, 100.0, 90.0, 100.0), (99.0, 99.0, 94.0, 96.0)]
    feed = make_feed({"A": bars})
    result, _ = run(feed, buy(), position_rules=StopLoss(0.05), fill_timing="next_close")
    assert exits(result) == [(day(2), "sell", 10.0, 95.0, "stop_loss")]


def test_with_same_close_fills_rules_start_on_the_next_bar(make_feed):
    bars = [FLAT, (99.0, 99.0, 94.0, 96.0)]
    feed = make_feed({"A": bars})
    result, _ = run(feed, buy(), position_rules=StopLoss(0.05), fill_timing="same_close")
    assert result.fills["timestamp"].to_list()[0] == day(0)
    assert exits(result) == [(day(1), "sell", 10.0, 95.0, "stop_loss")]


def test_trades_carry_the_rule_that_closed_them(make_feed):
    feed = make_feed({"A": [FLAT, FLAT, (99.0, 100.0, 94.0, 96.0), FLAT, FLAT]})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 10), 3: lambda b, d: b.submit_order("A", 5)},
        position_rules=StopLoss(0.05),
    )
    trades = result.trades.select("status", "entry_reason", "exit_reason", "exit_price").rows()
    assert trades == [("closed", "order", "stop_loss", 95.0), ("open", "order", "open", 100.0)]


@pytest.mark.parametrize(
    ("rules", "reads"),
    [
        (None, False),
        (StopLoss(0.05), False),
        (AnyOf(StopLoss(0.05), TakeProfit(0.1)), False),
        (TrailingStop(0.05), True),
        (AnyOf(StopLoss(0.05), TrailingStop(0.1)), True),
    ],
)
def test_only_a_trailing_stop_reads_the_best_price_since_entry(rules, reads):
    # The compiled driver keeps best prices only for such a rule (S_KEEP_EXTREMES).
    broker = Broker(np.array(["A", "B"]), BacktestConfig())
    if rules is not None:
        broker.set_position_rules(rules)
    assert reads_extremes(broker.kernel_state.rules) is reads
