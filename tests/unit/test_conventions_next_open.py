"""The conventions of the peers' look-ahead-free set-ups (fills at the next open), worked by hand
in both drivers: targets valued at the fill bar (``sizing_equity``), all-in orders, ending the
run flat (``close_at_end``) and unchecked cash (``on_insufficient_cash="allow"``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml4t.backtest import (
    BacktestConfig,
    ConfigError,
    OrderError,
    run_orders,
    run_signals,
)
from scripted import run

# ---- sizing_equity -----------------------------------------------------------------------------

FILL_EQUITY = {"sizing_price": "fill", "sizing_equity": "fill"}


def _two_assets(make_feed, a_last=(70.0, 70.0)):  # type: ignore[no-untyped-def]
    # A rises from the decision close (60) to the next open (70); B stays at 10.
    return make_feed({"A": [(50.0, 50.0), (50.0, 60.0), a_last], "B": [(10.0, 10.0)] * 3})


def _entries(feed, bars):  # type: ignore[no-untyped-def]
    """Entry signals: ``{bar: asset}``."""
    entries = np.zeros((feed.n_bars, feed.n_assets), dtype=np.bool_)
    for t, asset in bars.items():
        entries[t, list(map(str, feed.assets)).index(asset)] = True
    return entries


def test_percent_target_is_a_fraction_of_equity_marked_at_the_fill_open(make_feed):
    feed = _two_assets(make_feed)
    actions = {
        0: lambda b, d: b.order_target_percent("A", 0.25),
        1: lambda b, d: b.order_target_percent("B", 0.25),
    }
    event, _ = run(feed, actions, **FILL_EQUITY)
    compiled = run_signals(
        feed, _entries(feed, {0: "A", 1: "B"}), size=0.25,
        config=BacktestConfig(initial_cash=10_000.0, **FILL_EQUITY),
    )  # fmt: skip
    # Bar 1: nothing held, equity 10,000: 2,500 / 50 = 50 A, cash 7,500.
    # Bar 2: equity at the open = 7,500 + 50 x 70 = 11,000: 2,750 / 10 = 275 B (at the
    # decision close it would be 7,500 + 50 x 60 = 10,500: 262 B).
    for result in (event, compiled):
        assert result.fills.select("asset", "quantity", "price").rows() == [
            ("A", 50.0, 50.0),
            ("B", 275.0, 10.0),
        ]
    decision, _ = run(feed, actions, sizing_price="fill")
    assert decision.fills["quantity"].to_list() == [50.0, 262.0]


def test_fill_equity_values_an_asset_without_a_bar_at_its_last_close(make_feed):
    feed = _two_assets(make_feed, a_last=None)
    actions = {
        0: lambda b, d: b.order_target_percent("A", 0.25),
        1: lambda b, d: b.order_target_percent("B", 0.25),
    }
    event, _ = run(feed, actions, **FILL_EQUITY)
    # A has no bar 2: it counts at its last close, 60: 7,500 + 3,000 = 10,500 -> 262 B.
    assert event.fills["quantity"].to_list() == [50.0, 262.0]


def test_rebalance_weights_are_fractions_of_equity_at_the_fill_open(make_feed):
    feed = _two_assets(make_feed)
    actions = {
        0: lambda b, d: b.submit_order("A", 50),
        1: lambda b, d: b.rebalance({"A": 0.5, "B": 0.5}),
    }
    event, _ = run(feed, actions, **FILL_EQUITY)
    # Bar 2 open: 7,500 + 50 x 70 = 11,000; A to 5,500 / 70 = 78.57 -> 78 (+28); B 550.
    assert event.fills.select("asset", "quantity").rows()[1:] == [("A", 28.0), ("B", 550.0)]


def test_fill_equity_without_fill_price_is_refused():
    with pytest.raises(ConfigError, match="sizing_price='fill'"):
        BacktestConfig(sizing_equity="fill")


def test_an_unknown_sizing_equity_names_the_nearest_value():
    with pytest.raises(ConfigError, match="did you mean 'fill'"):
        BacktestConfig(sizing_equity="fil")  # type: ignore[arg-type]


# ---- all-in ------------------------------------------------------------------------------------


def test_all_in_buys_what_the_cash_pays_for_commission_and_slippage_included(make_feed):
    feed = make_feed({"A": [(90.0, 95.0), (100.0, 100.0)]})
    costs = {"commission": 0.002, "slippage": 0.001}
    event, _ = run(feed, {0: lambda b, d: b.submit_order("A", math.inf)}, **costs)
    compiled = run_signals(
        feed, _entries(feed, {0: "A"}), size=np.inf, size_type="value",
        config=BacktestConfig(initial_cash=10_000.0, **costs),
    )  # fmt: skip
    # At the open of 100, slipped to 100.1, with 0.2% on it: 100.3002 a share;
    # 10,000 / 100.3002 = 99.7 -> 99 shares, paying 99 x 100.1 x 0.002 = 19.8198.
    for result, origin in ((event, "order"), (compiled, "target")):
        fill = result.fills.row(0, named=True)
        assert (fill["quantity"], fill["price"], fill["reason"]) == (99.0, 100.1, origin)
        assert fill["commission"] == pytest.approx(19.8198, rel=1e-12)
        # A plain fill: not a scale-down of an oversized order.
        assert result.orders.select("quantity", "status", "reason").rows() == [(99.0, "filled", "")]


def test_run_orders_takes_inf_as_an_all_in_order(make_feed):
    feed = make_feed({"A": [(90.0, 95.0), (100.0, 100.0)]})
    quantities = np.array([[np.inf], [0.0]])
    config = BacktestConfig(initial_cash=10_000.0, commission=0.002, slippage=0.001)
    result = run_orders(feed, quantities, config=config)
    # As submit_order(asset, math.inf): 99 shares at 100.1 (see above).
    assert result.fills.select("quantity", "price", "reason").rows() == [(99.0, 100.1, "order")]


def test_run_orders_refuses_an_all_in_short_in_a_cash_account(make_feed):
    feed = make_feed({"A": [(90.0, 95.0), (100.0, 100.0)]})
    with pytest.raises(ConfigError, match="all-in short"):
        run_orders(feed, np.array([[-np.inf], [0.0]]))


def test_all_in_with_fractional_shares_spends_the_cash_to_the_cent(make_feed):
    feed = make_feed({"A": [(90.0, 95.0), (100.0, 100.0)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", math.inf)},
        commission=0.002, slippage=0.001, fractional_shares=True,
    )  # fmt: skip
    # q x 100.1 x 1.002 = 10,000.
    assert result.fills["quantity"][0] == pytest.approx(10_000.0 / (100.1 * 1.002), rel=1e-9)
    assert result.equity["cash"][-1] == pytest.approx(0.0, abs=1e-6)


def test_all_in_the_cash_cannot_buy_a_share_of_is_rejected(make_feed):
    feed = make_feed({"A": [(90.0, 95.0), (100.0, 100.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", math.inf)}, initial_cash=50.0)
    assert result.orders.select("status", "reason").rows() == [("rejected", "insufficient_cash")]


def test_all_in_short_in_a_margin_account_uses_the_initial_margin(make_feed):
    feed = make_feed({"A": [(90.0, 95.0), (100.0, 100.0)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", -math.inf)},
        account="margin", initial_margin=0.5,
    )  # fmt: skip
    # Equity 10,000 covers 50% of 20,000 of exposure: 200 shares short at 100.
    assert result.fills.select("side", "quantity").rows() == [("sell", 200.0)]


def test_all_in_sell_in_a_cash_account_is_refused(make_feed):
    feed = make_feed({"A": [(90.0, 95.0), (100.0, 100.0)]})
    with pytest.raises(OrderError, match="cash account"):
        run(feed, {0: lambda b, d: b.submit_order("A", -math.inf)})


def test_all_in_is_an_amount_not_a_percent(make_feed):
    feed = make_feed({"A": [(90.0, 95.0), (100.0, 100.0)]})
    with pytest.raises(ConfigError, match="size_type='value'"):
        run_signals(feed, _entries(feed, {0: "A"}), size=np.inf)


def test_an_all_in_reversal_is_submitted_at_its_cash_estimate_whatever_is_held(make_feed):
    # A volume cap of 1e-4 x 1,000,000 = 100 shares a bar leaves half of the all-in buy
    # working when the short all-in is decided.
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 100.0)]})
    cfg = {"account": "margin", "initial_margin": 1.0, "max_participation": 1e-4}
    actions = {
        0: lambda b, d: b.order_target_value("A", math.inf),
        1: lambda b, d: b.order_target_value("A", -math.inf),
    }
    event, _ = run(feed, actions, initial_cash=20_000.0, **cfg)
    compiled = run_signals(
        feed, _entries(feed, {0: "A"}), short_entries=_entries(feed, {1: "A"}),
        short_exits=np.zeros((2, 1), dtype=np.bool_), size=np.inf, size_type="value",
        config=BacktestConfig(initial_cash=20_000.0, **cfg),
    )  # fmt: skip
    # Bar 0: 20,000 / 100 = 200 shares; at bar 1's open the margin (100% of 200 x 100 =
    # 20,000) pays for 200, the cap fills 100; cash 10,000. Bar 1's close: the short all-in
    # withdraws the buy's remainder and is submitted at what the cash buys, 10,000 / 100 =
    # 100 shares (its size is set at its fill), not from what is held (100 held and 100
    # pending: 100 + 100 + 100 = 300, or 100 + 100 = 200 once the remainder is withdrawn).
    for result in (event, compiled):
        assert result.orders.select("side", "quantity", "filled_quantity", "reason").rows() == [
            ("buy", 200.0, 100.0, "replaced_by_target_order"),
            ("sell", 100.0, 0.0, "open_at_end"),
        ]


# ---- close_at_end ------------------------------------------------------------------------------


def test_close_at_end_sells_at_the_last_close_with_costs_in_both_drivers(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 12.0), (13.0, 15.0)]})
    config = {"commission": 0.01, "close_at_end": True}
    actions = {
        0: lambda b, d: b.submit_order("A", 100),
        2: lambda b, d: b.submit_order("A", 5, limit_price=1.0),  # still working at the end
    }
    event, _ = run(feed, actions, **config)
    quantities = np.zeros((3, 1))
    quantities[0, 0], quantities[2, 0] = 100, 5
    limits = np.full((3, 1), np.nan)
    limits[2, 0] = 1.0
    compiled = run_orders(
        feed, quantities, limit_prices=limits,
        config=BacktestConfig(initial_cash=10_000.0, **config),
    )  # fmt: skip
    # Bought 100 at 10 (commission 10), sold at the last close 15 (commission 15):
    # 10,000 - 1,010 + 1,500 - 15 = 10,475.
    for result in (event, compiled):
        assert result.fills.select("side", "quantity", "price", "commission", "reason").rows() == [
            ("buy", 100.0, 10.0, 10.0, "order"),
            ("sell", 100.0, 15.0, 15.0, "end_of_run"),
        ]
        assert result.equity["equity"][-1] == pytest.approx(10_475.0, rel=1e-12)
        # The limit order still working at the end is cancelled.
        assert result.orders.select("status", "reason").rows()[1] == ("cancelled", "open_at_end")
        assert result.trades.height == 1
    assert event.fills.equals(compiled.fills)


def test_close_at_end_off_leaves_the_position_open(make_feed):
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 12.0), (13.0, 15.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 100)})
    assert result.fills.height == 1


# ---- on_insufficient_cash="allow" --------------------------------------------------------------


@pytest.mark.parametrize("account", ["cash", "margin"])
def test_allow_fills_a_buy_past_the_cash_and_cash_goes_negative(make_feed, account):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 100.0)]})
    config = {"initial_cash": 1_000.0, "on_insufficient_cash": "allow", "account": account}
    if account == "margin":
        config["maintenance_margin"] = 0.0  # margin calls at the close still apply
    event, _ = run(feed, {0: lambda b, d: b.submit_order("A", 50)}, **config)
    quantities = np.zeros((2, 1))
    quantities[0, 0] = 50
    compiled = run_orders(feed, quantities, config=BacktestConfig(**config))
    # 50 x 100 = 5,000 against 1,000 of cash (and a 50% margin would allow 20): all of it.
    for result in (event, compiled):
        assert result.orders.select("quantity", "status", "reason").rows() == [(50.0, "filled", "")]
        assert result.equity["cash"][-1] == -4_000.0


def test_an_unknown_cash_policy_names_the_nearest_value():
    with pytest.raises(ConfigError, match="did you mean 'allow'"):
        BacktestConfig(on_insufficient_cash="alow")  # type: ignore[arg-type]


# ---- the config file ---------------------------------------------------------------------------


def test_the_next_open_settings_survive_a_yaml_round_trip():
    config = BacktestConfig(
        sizing_price="fill", sizing_equity="fill", close_at_end=True,
        on_insufficient_cash="allow",
    )  # fmt: skip
    assert BacktestConfig.from_yaml(config.to_yaml()) == config
    assert BacktestConfig.from_dict(config.to_dict()) == config
