"""Broker's public API by hand: orders, cancels, targets and rebalances, sized at the close."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest import BacktestConfig, Broker, ConfigError, OrderError, run_signals
from ml4t.backtest.broker import kernel_settings
from ml4t.backtest.kernels.records import (
    CASH_REJECT,
    EXEC_AS_SUBMITTED,
    PRIORITY_LIMIT,
    ROUND_ORDER,
    SIZE_AT_DECISION,
    TRAIL_CLOSE,
    FillTiming,
)
from scripted import run


def broker_at(closes: list[float], **config: object) -> Broker:
    """A broker on assets A, B, ... marked at ``closes`` (equity = initial cash 10,000)."""
    assets = np.array([chr(ord("A") + i) for i in range(len(closes))])
    broker = Broker(assets, BacktestConfig(initial_cash=10_000.0, **config))  # type: ignore[arg-type]
    broker.start_bar(0)
    broker.mark(0, np.array(closes), np.zeros(1), np.zeros(1), np.zeros(1))
    return broker


def test_submit_order_counts_a_market_order_as_pending():
    broker = broker_at([10.0, 20.0])
    oid = broker.submit_order("B", 5)
    assert oid == 0
    assert broker.pending.tolist() == [0.0, 5.0]
    assert [o.asset for o in broker.open_orders] == ["B"]


def test_cancel_order_takes_its_quantity_off_pending_and_reports_a_second_cancel():
    broker = broker_at([10.0])
    oid = broker.submit_order("A", 5)
    assert broker.cancel_order(oid) is True
    assert broker.pending.tolist() == [0.0]
    assert broker.open_orders == []
    assert broker.cancel_order(oid) is False


def test_order_target_percent_buys_whole_shares_of_the_equity_at_the_close():
    # 25% of 10,000 at 30 is 83.33 shares: 83.
    broker = broker_at([30.0])
    broker.order_target_percent("A", 0.25)
    assert broker.pending.tolist() == [83.0]


def test_order_target_value_nets_what_is_already_pending():
    # 1,000 at 10 is 100 shares; 40 already ordered: 60 more.
    broker = broker_at([10.0])
    broker.submit_order("A", 40)
    broker.order_target_value("A", 1_000.0)
    assert broker.pending.tolist() == [100.0]
    assert [o.quantity for o in broker.open_orders] == [40.0, 60.0]


def test_order_target_value_within_float_noise_of_the_target_orders_nothing():
    broker = broker_at([10.0])
    broker.submit_order("A", 100)
    assert broker.order_target_value("A", 1_000.0 * (1 + 1e-12)) is None


def test_order_target_quantity_refuses_a_fraction_with_fractional_shares_off():
    broker = broker_at([10.0])
    with pytest.raises(OrderError, match="fractional"):
        broker.order_target_quantity("A", 1.5)


def test_order_target_quantity_takes_a_fraction_with_fractional_shares_on():
    broker = broker_at([10.0], fractional_shares=True)
    broker.order_target_quantity("A", 1.5)
    assert broker.pending.tolist() == [1.5]


def test_rebalance_sizes_each_weight_at_its_close_and_closes_what_it_does_not_name():
    # 10,000 equity: A at 30 to 60% is 200 shares; B at 40 is not named: 0 (nothing held).
    broker = broker_at([30.0, 40.0])
    ids = broker.rebalance({"A": 0.6})
    assert len(ids) == 1
    assert broker.pending.tolist() == [200.0, 0.0]


def test_rebalance_with_order_rounding_truncates_the_order_not_the_target():
    # Fractional shares on, rounding does not apply: A at 30 to 50% is 166.67 shares.
    broker = broker_at([30.0], fractional_shares=True, target_rounding="order")
    broker.rebalance({"A": 0.5})
    assert broker.pending[0] == pytest.approx(10_000.0 * 0.5 / 30.0)


def test_order_target_percents_array_leaves_nan_assets_alone():
    # A at 10 to 10% of 10,000 is 100 shares; B's NaN makes no order.
    broker = broker_at([10.0, 20.0])
    broker.order_target_percents(np.array([0.1, np.nan]))
    assert broker.pending.tolist() == [100.0, 0.0]


def test_kernel_settings_turn_config_values_into_codes_by_name():
    codes = kernel_settings(
        BacktestConfig(
            on_insufficient_cash="reject", intrabar_priority="limit", trail_basis="close",
            execution_order="as_submitted", fill_timing="next_close", target_rounding="order",
            sizing_price="fill",
        )
    )  # fmt: skip
    assert codes.cash_policy == CASH_REJECT
    assert codes.intrabar_priority == PRIORITY_LIMIT
    assert codes.trail_basis == TRAIL_CLOSE
    assert codes.execution_order == EXEC_AS_SUBMITTED
    assert codes.fill_timing == FillTiming.next_close
    assert codes.rounding == ROUND_ORDER
    assert codes.fill_sizing == ROUND_ORDER
    assert kernel_settings(BacktestConfig()).fill_sizing == SIZE_AT_DECISION


def test_target_rounding_order_applies_when_the_target_is_sized_at_the_fill(make_feed):
    # Buy 12 at 10; then a target of 107 at 10 is 10.7 shares. Rounding the order: the
    # difference -1.3 becomes -1 (sell 1), not trunc(10.7) - 12 = -2, at the fill as at decision.
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 10.0), (10.0, 10.0), (10.0, 10.0)]})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 12), 1: lambda b, d: b.order_target_value("A", 107)},
        sizing_price="fill",
        target_rounding="order",
    )
    assert result.fills.select("side", "quantity").rows() == [("buy", 12.0), ("sell", 1.0)]


def test_run_signals_refuses_a_fractional_share_size_with_fractional_shares_off(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 10.0)]})
    entries = np.array([[True], [False]])
    with pytest.raises(ConfigError, match="fractional"):
        run_signals(feed, entries, size=1.5, size_type="shares")
