"""The clock and the broker step, with every expected number worked out by hand."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, BarView, Broker, Engine, OrderError, Strategy
from scripted import run


def test_market_buy_fills_at_next_open_with_commission_and_slippage(make_feed):
    feed = make_feed({"A": [(100.0, 101.0), (102.0, 103.0), (104.0, 105.0)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 10)}, commission=0.001, slippage=0.001
    )
    fill = result.fills.row(0, named=True)
    price = 102.0 * 1.001  # next open, buyer pays the slippage
    commission = 10 * price * 0.001
    assert fill["price"] == pytest.approx(price, rel=1e-15)
    assert fill["quantity"] == 10
    assert fill["side"] == "buy"
    assert fill["commission"] == pytest.approx(commission, rel=1e-15)
    assert fill["slippage"] == pytest.approx(10 * 102.0 * 0.001, rel=1e-15)
    assert fill["timestamp"] == datetime(2024, 1, 2)
    cash = 10_000.0 - 10 * price - commission
    eq = result.equity
    assert eq["equity"].to_list() == pytest.approx(
        [10_000.0, cash + 10 * 103.0, cash + 10 * 105.0], rel=1e-15
    )
    assert eq["cash"][1] == pytest.approx(cash, rel=1e-15)
    assert result.final_value == pytest.approx(cash + 1050.0, rel=1e-15)


def test_sell_receives_price_less_slippage_and_pays_commission(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 110.0), (120.0, 121.0)]})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 10), 1: lambda b, d: b.submit_order("A", -10)},
        commission=0.01,
        slippage=0.01,
    )
    buy_price, sell_price = 100.0 * 1.01, 120.0 * 0.99
    cash = 10_000.0 - 10 * buy_price * 1.01 + 10 * sell_price * 0.99
    assert result.fills["price"].to_list() == pytest.approx([buy_price, sell_price], rel=1e-15)
    assert result.final_value == pytest.approx(cash, rel=1e-12)
    trade = result.trades.row(0, named=True)
    expected_pnl = 10 * (sell_price - buy_price) - 10 * buy_price * 0.01 - 10 * sell_price * 0.01
    assert trade["pnl"] == pytest.approx(expected_pnl, rel=1e-12)
    assert trade["bars_held"] == 1
    assert trade["status"] == "closed"


def test_same_close_mode_fills_at_the_decision_bars_close(make_feed):
    feed = make_feed({"A": [(100.0, 101.0), (102.0, 103.0)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 10)}, fill_timing="same_close", commission=0.001
    )
    fill = result.fills.row(0, named=True)
    assert fill["price"] == 101.0
    assert fill["timestamp"] == datetime(2024, 1, 1)
    cash = 10_000.0 - 1010.0 - 1.01
    # The bar's record is taken after its close fills, so it already shows the commission.
    assert result.equity["equity"].to_list() == pytest.approx(
        [cash + 1010.0, cash + 1030.0], rel=1e-15
    )


def test_exit_fills_before_entry_so_its_cash_pays_for_the_entry(make_feed):
    feed = make_feed({"A": [(50.0, 50.0), (50.0, 50.0), (60.0, 60.0)], "B": [(20.0, 20.0)] * 3})

    def switch(b: Broker, d: BarView) -> None:
        b.submit_order("B", 600)  # submitted first, needs the cash of the sale below
        b.submit_order("A", -200)

    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 200), 1: switch},
        on_insufficient_cash="reject",
    )
    fills = result.fills
    assert fills["asset"].to_list() == ["A", "A", "B"]
    assert fills["quantity"].to_list() == [200, 200, 600]
    assert result.orders["status"].to_list() == ["filled", "filled", "filled"]
    # Sold 200 A at 60 = 12,000 on top of 0 cash; bought 600 B at 20 = 12,000.
    assert result.equity["cash"][2] == pytest.approx(0.0, abs=1e-9)
    assert result.final_value == pytest.approx(12_000.0)


def test_buy_the_cash_cannot_cover_is_scaled_down(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 100.0)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 15)}, initial_cash=1000.0, commission=0.01
    )
    # 1000 / (100 * 1.01) = 9.9 shares -> 9 whole shares; 9 * 101 = 909 <= 1000.
    assert result.fills["quantity"].to_list() == [9]
    order = result.orders.row(0, named=True)
    assert order["status"] == "filled"
    assert order["quantity"] == 15
    assert order["filled_quantity"] == 9
    assert order["reason"] == "scaled_down_insufficient_cash"
    assert result.equity["cash"][1] == pytest.approx(1000.0 - 909.0)


def test_buy_the_cash_cannot_cover_is_rejected_when_set(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 100.0)]})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 15)},
        initial_cash=1000.0,
        on_insufficient_cash="reject",
    )
    assert result.fills.height == 0
    order = result.orders.row(0, named=True)
    assert (order["status"], order["reason"]) == ("rejected", "insufficient_cash")
    assert order["ended"] == datetime(2024, 1, 2)
    assert result.final_value == 1000.0


def test_fractional_scale_down_spends_the_cash_but_never_more(make_feed):
    feed = make_feed({"A": [(3.0, 3.0), (7.0, 7.0)]})
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 1000.0)},
        initial_cash=1000.0,
        commission=0.003,
        fractional_shares=True,
    )
    qty = result.fills["quantity"][0]
    assert qty == pytest.approx(1000.0 / (7.0 * 1.003), rel=1e-12)
    assert 0.0 <= result.equity["cash"][1] < 1e-9


def test_short_sale_in_a_cash_account_is_rejected(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 10.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 5, side="sell")})
    order = result.orders.row(0, named=True)
    assert (order["status"], order["reason"]) == ("rejected", "short_not_allowed")
    assert result.fills.height == 0


def test_order_on_a_missing_bar_waits_and_the_position_keeps_its_last_mark(make_feed):
    feed = make_feed(
        {
            "A": [(10.0, 11.0), None, (12.0, 13.0)],
            "B": [(5.0, 5.0), (5.0, 5.0), (5.0, 5.0)],
        }
    )
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 100)})
    fill = result.fills.row(0, named=True)
    assert fill["timestamp"] == datetime(2024, 1, 3)  # bar 1 has no A: it waits for bar 2
    assert fill["price"] == 12.0
    assert result.equity["equity"].to_list() == pytest.approx(
        [10_000.0, 10_000.0, 10_000.0 - 1200.0 + 1300.0]
    )


def test_position_keeps_its_last_close_through_a_missing_bar(make_feed):
    feed = make_feed({"A": [(10.0, 11.0), (11.0, 12.0), None, (14.0, 15.0)], "B": [(5.0, 5.0)] * 4})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 100)})
    cash = 10_000.0 - 1100.0
    assert result.equity["equity"].to_list() == pytest.approx(
        [10_000.0, cash + 1200.0, cash + 1200.0, cash + 1500.0]
    )


def test_rebalance_closes_assets_not_named(make_feed):
    feed = make_feed({a: [(10.0, 10.0)] * 4 for a in ("A", "B", "C")})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.rebalance({"A": 0.5, "B": 0.5}),
            1: lambda b, d: b.rebalance({"C": 0.4}),
        },
    )
    fills = result.fills
    # Bar 1: 5000 / 10 = 500 shares of A and of B. Bar 2: both sold first, then 4000/10 of C.
    assert fills.select("timestamp", "asset", "side", "quantity").rows() == [
        (datetime(2024, 1, 2), "A", "buy", 500.0),
        (datetime(2024, 1, 2), "B", "buy", 500.0),
        (datetime(2024, 1, 3), "A", "sell", 500.0),
        (datetime(2024, 1, 3), "B", "sell", 500.0),
        (datetime(2024, 1, 3), "C", "buy", 400.0),
    ]
    assert fills["reason"].unique().to_list() == ["rebalance"]


def test_rebalance_accepts_an_array_aligned_to_assets(make_feed):
    feed = make_feed({a: [(20.0, 20.0)] * 2 for a in ("A", "B")})
    result, _ = run(feed, {0: lambda b, d: b.rebalance(np.array([0.25, 0.75]))})
    assert result.fills["quantity"].to_list() == [125.0, 375.0]


def test_order_target_percent_sizes_at_the_decision_close_and_rounds_down(make_feed):
    feed = make_feed({"A": [(10.0, 30.0), (31.0, 31.0)]})
    result, _ = run(feed, {0: lambda b, d: b.order_target_percent("A", 0.5)})
    # 0.5 * 10,000 / 30 (bar 0's close) = 166.67 -> 166 shares, filled at 31.
    assert result.fills["quantity"].to_list() == [166.0]
    assert result.fills["price"].to_list() == [31.0]


def test_target_orders_net_out_orders_still_waiting(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), None, (10.0, 10.0)], "B": [(1.0, 1.0)] * 3})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.order_target_quantity("A", 100),
            1: lambda b, d: b.order_target_quantity("A", 100),  # the first order still waits
        },
    )
    assert result.orders.height == 1
    assert result.fills["quantity"].to_list() == [100.0]


def test_close_position_sells_everything(make_feed):
    feed = make_feed({"A": [(10.0, 10.0)] * 3})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 7), 1: lambda b, d: b.close_position("A")}
    )
    assert result.fills["side"].to_list() == ["buy", "sell"]
    assert result.fills["reason"].to_list() == ["order", "close_position"]
    assert result.equity["cash"][2] == 10_000.0


def test_cancelled_order_never_fills_and_records_why(make_feed):
    feed = make_feed({"A": [(10.0, 10.0)] * 2})

    def submit_and_cancel(b: Broker, d: BarView) -> None:
        oid = b.submit_order("A", 5)
        assert [o.id for o in b.open_orders] == [oid]
        assert b.cancel_order(oid) is True
        assert b.cancel_order(oid) is False
        assert b.open_orders == []

    result, _ = run(feed, {0: submit_and_cancel})
    assert result.fills.height == 0
    assert result.orders.select("status", "reason").row(0) == ("cancelled", "cancelled_by_user")


def test_on_fill_receives_every_fill_before_the_next_decision(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), (11.0, 11.0), (12.0, 12.0)]})

    def check_fill(b: Broker, d: BarView) -> None:
        assert b.position("A") == 3
        assert b.positions == {"A": 3.0}

    _result, strategy = run(feed, {0: lambda b, d: b.submit_order("A", 3), 1: check_fill})
    assert len(strategy.fills) == 1
    fill = strategy.fills[0]
    assert (fill.asset, fill.side, fill.quantity, fill.price) == ("A", "buy", 3.0, 11.0)
    assert fill.timestamp == datetime(2024, 1, 2)


def test_orders_left_open_at_the_end_are_reported_as_such(make_feed):
    feed = make_feed({"A": [(10.0, 10.0)] * 2})
    result, _ = run(feed, {1: lambda b, d: b.submit_order("A", 1)})
    assert result.orders.select("status", "reason").row(0) == ("open", "open_at_end")


def test_open_lots_at_the_end_are_open_trades_marked_at_the_last_close(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 12.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10)})
    trade = result.trades.row(0, named=True)
    assert trade["status"] == "open"
    assert trade["exit_time"] is None
    assert trade["pnl"] == pytest.approx(20.0)
    assert result.metrics["n_trades"] == 0


def test_fifo_trades_split_lots_across_closing_fills(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 10.0), (11.0, 11.0), (12.0, 12.0), (13.0, 13.0)]})
    result, _ = run(
        feed,
        {
            0: lambda b, d: b.submit_order("A", 100),  # lot 1 at 10
            1: lambda b, d: b.submit_order("A", 50),  # lot 2 at 11
            2: lambda b, d: b.submit_order("A", -120),  # closes lot 1, 20 of lot 2, at 12
            3: lambda b, d: b.submit_order("A", -30),  # closes the rest of lot 2 at 13
        },
    )
    trades = result.trades.select("entry_price", "exit_price", "quantity", "pnl").rows()
    assert trades == [
        (10.0, 12.0, 100.0, pytest.approx(200.0)),
        (11.0, 12.0, 20.0, pytest.approx(20.0)),
        (11.0, 13.0, 30.0, pytest.approx(60.0)),
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.submit_order("ZZZ", 1), "unknown asset 'ZZZ'"),
        (lambda b: b.submit_order("A", 0), "non-zero"),
        (lambda b: b.submit_order("A", 1.5), "fractional"),
        (lambda b: b.submit_order("A", -1, side="buy"), "positive"),
        (lambda b: b.rebalance({"A": float("nan")}), "weight for asset A is nan"),
        (lambda b: b.rebalance({"A": -0.1}), "cannot short"),
        (lambda b: b.rebalance(np.ones(3)), r"shape \(1,\)"),
        (lambda b: b.cancel_order(99), "unknown order id 99"),
        (lambda b: b.cancel_order(0.5), "order id must be an int .* got 0.5"),
    ],
)
def test_bad_order_requests_raise_order_error_naming_the_problem(make_feed, call, message):
    feed = make_feed({"A": [(10.0, 10.0)] * 2})

    class Bad(Strategy):
        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            call(broker)

    with pytest.raises(OrderError, match=message):
        Engine(feed, Bad(), BacktestConfig()).run()


def test_metrics_and_frames_have_the_documented_columns(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 11.0), (11.0, 12.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10)})
    assert result.equity.columns[:4] == ["timestamp", "cash", "positions_value", "equity"]
    assert result.fills.columns == [
        "timestamp",
        "asset",
        "side",
        "quantity",
        "price",
        "commission",
        "slippage",
        "order_id",
        "reason",
    ]
    for key in (
        "total_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "n_trades",
        "win_rate",
        "exposure",
    ):
        assert key in result.metrics
    assert isinstance(result.orders, pl.DataFrame)
    assert "Final value" in result.summary()


def test_next_close_mode_fills_at_the_following_bars_close(make_feed):
    feed = make_feed({"A": [(100.0, 101.0), (102.0, 103.0), (104.0, 105.0)]})
    result, strategy = run(
        feed, {0: lambda b, d: b.submit_order("A", 10)}, fill_timing="next_close"
    )
    fill = result.fills.row(0, named=True)
    assert (fill["timestamp"], fill["price"]) == (datetime(2024, 1, 2), 103.0)
    # The strategy at bar 1 already sees the position: the close fill comes before it decides.
    assert strategy.equity_seen == [10_000.0, 10_000.0, 10_000.0 - 1030.0 + 1050.0]


def test_rebalance_into_an_asset_that_never_traded_names_it(make_feed):
    feed = make_feed({"A": [(10.0, 10.0)] * 2, "B": [None, (5.0, 5.0)]})
    with pytest.raises(OrderError, match="asset B: it has no price yet at bar 0"):
        run(feed, {0: lambda b, d: b.rebalance({"A": 0.5, "B": 0.5})})


def test_negative_weight_is_a_short_in_a_margin_account(make_feed):
    feed = make_feed({"A": [(10.0, 10.0)] * 2})
    result, _ = run(feed, {0: lambda b, d: b.rebalance({"A": -0.5})}, account="margin")
    assert result.fills.select("side", "quantity").row(0) == ("sell", 500.0)


def test_a_buy_the_cash_would_scale_to_dust_is_rejected_not_filled(make_feed):
    # 999.99999999999 of the 1,000 go to A; B could only get 1e-13 shares: no dust position.
    from scripted import run

    feed = make_feed({"A": [(100.0, 100.0)] * 2, "B": [(100.0, 100.0)] * 2})
    result, _ = run(
        feed,
        {0: lambda b, d: (b.submit_order("A", 9.9999999999999), b.submit_order("B", 1.0))},
        initial_cash=1_000.0,
        fractional_shares=True,
    )
    assert result.fills["asset"].to_list() == ["A"]
    assert result.orders.select("asset", "status", "reason").rows()[1] == (
        "B",
        "rejected",
        "insufficient_cash",
    )


def test_an_order_from_on_start_is_submitted_at_the_first_bar_and_fills_at_its_open(make_feed):
    # Backtrader's start() orders act on the first bar: a market order fills at its open.
    feed = make_feed({"A": [(10.0, 11.0), (12.0, 13.0), (14.0, 15.0)]})

    class Early(Strategy):
        def on_start(self, broker):  # type: ignore[no-untyped-def]
            broker.submit_order("A", 5)

        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            pass

    result = Engine(feed, Early(), BacktestConfig()).run()
    order = result.orders.row(0, named=True)
    assert order["submitted"] == datetime(2024, 1, 1)
    assert order["ended"] == datetime(2024, 1, 1)
    assert result.fills.select("timestamp", "price").rows() == [(datetime(2024, 1, 1), 10.0)]


def test_an_exception_in_on_data_carries_a_note_with_the_bar_and_its_timestamp(make_feed):
    feed = make_feed({"A": [(10.0, 10.0)] * 3})

    class Fails(Strategy):
        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            if data.index == 1:
                raise ZeroDivisionError("division by zero in my signal")

    with pytest.raises(ZeroDivisionError, match="in my signal") as info:
        Engine(feed, Fails(), BacktestConfig()).run()
    assert info.value.__notes__ == ["raised by Fails.on_data at bar 1 (2024-01-02 00:00:00)"]


def test_an_exception_in_on_fill_names_the_bar_and_the_fill(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), (11.0, 12.0), (12.0, 12.0)]})

    class Fails(Strategy):
        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            if data.index == 0:
                broker.submit_order("A", 3)

        def on_fill(self, fill, broker):  # type: ignore[no-untyped-def]
            raise KeyError("bookkeeping")

    with pytest.raises(KeyError) as info:
        Engine(feed, Fails(), BacktestConfig()).run()
    assert info.value.__notes__ == [
        "raised by Fails.on_fill at bar 1 (2024-01-02 00:00:00), for the buy of 3 A (order 0)"
    ]


def test_an_exception_in_on_end_keeps_the_finished_result(make_feed):
    from ml4t.backtest import StrategyError

    feed = make_feed({"A": [(10.0, 10.0), (11.0, 12.0), (12.0, 15.0)]})

    class Fails(Strategy):
        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            if data.index == 0:
                broker.submit_order("A", 100)

        def on_end(self, broker):  # type: ignore[no-untyped-def]
            raise RuntimeError("report upload failed")

    with pytest.raises(StrategyError, match=r"Fails\.on_end raised RuntimeError") as info:
        Engine(feed, Fails(), BacktestConfig(initial_cash=10_000.0)).run()
    assert isinstance(info.value.__cause__, RuntimeError)
    result = info.value.result
    assert result is not None
    # 100 shares bought at bar 1's open, 11, and marked at the last close, 15.
    assert result.final_value == 10_000.0 - 100 * 11.0 + 100 * 15.0
    assert result.fills.height == 1


# A short of 100 A at 100 (bar 1's open) that A's rally to 300 (bar 2's close) takes to an
# equity of 10,000 + 100 x 100 - 100 x 300 = -10,000; B sits at 50.
BUST = {
    "A": [(100.0, 100.0), (100.0, 100.0), (100.0, 300.0, 100.0, 300.0), (300.0, 300.0)],
    "B": [(50.0, 50.0)] * 4,
}


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda b: b.order_target_percent("B", 0.5), r"order_target_percent\('B', 0\.5\)"),
        (lambda b: b.order_target_percents({"B": 0.5}), r"order_target_percents\(\.\.\.\)"),
        (lambda b: b.rebalance({"A": -1.0, "B": 0.5}), r"rebalance\(\.\.\.\)"),
    ],
)
def test_percent_sizing_at_negative_equity_places_no_order_and_warns(make_feed, call, name):
    from ml4t.backtest import OrderWarning

    feed = make_feed(BUST)
    returned = []
    actions = {
        0: lambda b, d: b.submit_order("A", -100),
        2: lambda b, d: returned.append(call(b)),
    }
    with pytest.warns(OrderWarning, match=name + " at bar 2 placed no order: equity is -10,000"):
        result, strategy = run(feed, actions, account="margin", maintenance_margin=0.0)
    assert strategy.equity_seen[2] == -10_000.0
    # 0.5 x -10,000 / 50 would have sold 100 B: nothing is ordered instead.
    assert returned[0] is None or len(returned[0]) == 0
    # The short, and the margin call that covers it at bar 3's open.
    assert result.orders.select("asset", "side", "origin").rows() == [
        ("A", "sell", "order"),
        ("A", "buy", "margin_call"),
    ]
