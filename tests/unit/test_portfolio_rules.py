"""Portfolio rules: limits checked on fills that grow a position, halts checked at closes.

Initial cash is 10,000; orders are decided at a bar's close and fill at the next open.
"""

from __future__ import annotations

import pytest

from ml4t.backtest import ConfigError
from ml4t.backtest.risk import (
    DailyLossLimit,
    MaxDrawdownHalt,
    MaxGrossExposure,
    MaxNetExposure,
    MaxPositions,
    MaxPositionWeight,
    StopLoss,
)
from scripted import run

FLAT = (100.0, 100.0)


def statuses(result):  # type: ignore[no-untyped-def]
    return result.orders.select("asset", "status", "reason").rows()


def test_max_positions_rejects_the_order_opening_one_too_many(make_feed):
    feed = make_feed({"A": [FLAT] * 3, "B": [FLAT] * 3})
    result, _ = run(
        feed,
        {0: lambda b, d: (b.submit_order("A", 10), b.submit_order("B", 10))},
        portfolio_rules=[MaxPositions(1)],
    )
    assert statuses(result) == [("A", "filled", ""), ("B", "rejected", "max_positions")]


def test_max_positions_counts_a_position_closed_earlier_in_the_same_step(make_feed):
    feed = make_feed({"A": [FLAT] * 3, "B": [FLAT] * 3})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 10),
            1: lambda b, d: (b.submit_order("B", 10), b.close_position("A")),
        },
        portfolio_rules=[MaxPositions(1)],
    )
    # Exits fill before entries, so the sale of A frees the slot B needs.
    assert [s for _, s, _ in statuses(result)] == ["filled", "filled", "filled"]
    assert result.fills.select("asset", "side").rows()[1:] == [("A", "sell"), ("B", "buy")]


def test_max_position_weight_rejects_a_position_worth_more_than_its_share(make_feed):
    feed = make_feed({"A": [FLAT] * 3, "B": [FLAT] * 3})
    result, _ = run(
        feed,
        # 60 x 100 = 6,000 > 0.5 x 10,000; 50 x 100 is exactly at the cap and passes.
        {0: lambda b, d: (b.submit_order("A", 60), b.submit_order("B", 50))},
        portfolio_rules=[MaxPositionWeight(0.5)],
    )
    assert statuses(result) == [("A", "rejected", "max_position_weight"), ("B", "filled", "")]


def test_max_position_weight_lets_reductions_through(make_feed):
    # 50 bought at 100; the price doubles, so the position is 10,000 of 15,000 (> 50%):
    # selling 10 still passes, buying 1 more does not.
    feed = make_feed({"A": [FLAT, FLAT, (200.0, 200.0), (200.0, 200.0), FLAT]})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 50),
            2: lambda b, d: (b.submit_order("A", 1), b.submit_order("A", -10)),
        },
        portfolio_rules=[MaxPositionWeight(0.5)],
    )
    assert [s for _, s, _ in statuses(result)] == ["filled", "rejected", "filled"]
    assert result.orders["reason"].to_list()[1] == "max_position_weight"


def test_max_gross_exposure_counts_longs_and_shorts(make_feed):
    feed = make_feed({"A": [FLAT] * 3, "B": [FLAT] * 3})
    result, _ = run(
        feed,
        # Long 6,000 of A then short 5,000 of B: gross 11,000 > 1.0 x equity 10,000.
        {0: lambda b, d: (b.submit_order("A", 60), b.submit_order("B", -50))},
        portfolio_rules=[MaxGrossExposure(1.0)],
        account="margin",
    )
    assert statuses(result) == [("A", "filled", ""), ("B", "rejected", "max_gross_exposure")]


def test_max_net_exposure_blocks_what_moves_net_further_and_passes_what_hedges(make_feed):
    feed = make_feed({"A": [FLAT] * 3, "B": [FLAT] * 3, "C": [FLAT] * 3})
    result, _ = run(
        feed,
        {
            # Net +4,000 passes 0.5 x 10,000; +2,000 more of B would be +6,000; C's short
            # brings net back to +1,000 and passes.
            0: lambda b, d: (
                b.submit_order("A", 40),
                b.submit_order("B", 20),
                b.submit_order("C", -30),
            ),
        },
        portfolio_rules=[MaxNetExposure(0.5)],
        account="margin",
    )
    assert statuses(result) == [
        ("A", "filled", ""),
        ("B", "rejected", "max_net_exposure"),
        ("C", "filled", ""),
    ]


def test_daily_loss_limit_blocks_the_orders_decided_on_the_losing_day(make_feed):
    # 90 shares of A at 100 on day 1; day 2 closes at 96: down 360 = 3.6% from day 1's close,
    # past the 3% limit. The buy of B decided that evening is rejected; day 3's passes.
    bars = [FLAT, FLAT, (100.0, 96.0), (96.0, 96.0), (96.0, 96.0)]
    feed = make_feed({"A": bars, "B": [FLAT] * 5})
    blocked = []
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 90),
            2: lambda b, d: (blocked.append(b.entries_blocked), b.submit_order("B", 1)),
            3: lambda b, d: (blocked.append(b.entries_blocked), b.submit_order("B", 1)),
        },
        portfolio_rules=[DailyLossLimit(0.03)],
    )
    assert blocked == ["daily_loss_limit", None]
    assert statuses(result)[1:] == [("B", "rejected", "daily_loss_limit"), ("B", "filled", "")]


def test_daily_loss_limit_with_liquidate_closes_everything_at_the_next_open(make_feed):
    bars = [FLAT, FLAT, (100.0, 96.0), (95.0, 97.0)]
    feed = make_feed({"A": bars})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 100)},
        portfolio_rules=[DailyLossLimit(0.03, action="liquidate")],
    )
    assert result.fills.select("side", "quantity", "price", "reason").rows()[1:] == [
        ("sell", 100.0, 95.0, "daily_loss_limit")
    ]


def test_max_drawdown_halt_cancels_working_entries(make_feed):
    # Peak 10,000; day 2 closes 15% down. The resting limit buy of B is cancelled.
    bars = [FLAT, FLAT, (100.0, 85.0), (85.0, 85.0)]
    feed = make_feed({"A": bars, "B": [FLAT, FLAT, FLAT, (90.0, 90.0)]})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 99),
            1: lambda b, d: b.submit_order("B", 1, limit_price=95.0),
        },
        portfolio_rules=[MaxDrawdownHalt(0.1)],
    )
    assert statuses(result) == [("A", "filled", ""), ("B", "cancelled", "max_drawdown_halt")]


def test_max_drawdown_halt_liquidate_closes_all_and_stops_the_strategy(make_feed):
    bars = [FLAT, FLAT, (100.0, 85.0), (84.0, 85.0), (85.0, 90.0), (90.0, 90.0)]
    feed = make_feed({"A": bars})
    result, strategy = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 100)},
        portfolio_rules=[MaxDrawdownHalt(0.1, action="liquidate")],
    )
    assert result.fills.select("side", "price", "reason").rows()[1:] == [
        ("sell", 84.0, "max_drawdown_halt")
    ]
    # Called on bars 0, 1 and 2 (where the halt fired after its close), never again.
    assert len(strategy.equity_seen) == 2


def test_limits_and_position_rules_work_together(make_feed):
    # The stop frees A's slot on bar 2; B bought that evening fits under MaxPositions(1).
    bars_a = [FLAT, FLAT, (99.0, 99.0, 94.0, 95.0), FLAT]
    feed = make_feed({"A": bars_a, "B": [FLAT] * 4})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 10), 2: lambda b, d: b.submit_order("B", 10)},
        position_rules=StopLoss(0.05),
        portfolio_rules=[MaxPositions(1)],
    )
    assert result.fills.select("asset", "side", "reason").rows() == [
        ("A", "buy", "order"),
        ("A", "sell", "stop_loss"),
        ("B", "buy", "order"),
    ]


@pytest.mark.parametrize(
    ("rules", "match"),
    [
        ([MaxPositions(2), MaxPositions(3)], "twice"),
        (["x"], "portfolio rules must be"),
    ],
)
def test_bad_portfolio_rules_are_config_errors(make_feed, rules, match):
    feed = make_feed({"A": [FLAT] * 2})
    with pytest.raises(ConfigError, match=match):
        run(feed, {}, portfolio_rules=rules)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MaxPositions(0), "MaxPositions n"),
        (lambda: MaxPositionWeight(-0.1), "weight must be"),
        (lambda: DailyLossLimit(1.5), r"fraction in \(0, 1\)"),
        (lambda: MaxDrawdownHalt(0.2, action="panic"), "action must be one of"),
    ],
)
def test_bad_portfolio_rule_settings_are_config_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()
