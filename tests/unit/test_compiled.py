"""The compiled driver's decision rules, worked by hand, and its refusals.

Bars are (open, close); orders decided at a close fill at the next open. Cash 10,000.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import (
    BacktestConfig,
    ConfigError,
    DataFeed,
    run_orders,
    run_signals,
    run_weights,
)
from ml4t.backtest.risk import StopLoss, TrailingStop
from scripted import run

CFG = BacktestConfig(initial_cash=10_000.0)


def day(n: int) -> datetime:
    return datetime(2024, 1, 1 + n)


def fills_of(result):  # type: ignore[no-untyped-def]
    return result.fills.select("timestamp", "asset", "side", "quantity", "price", "reason").rows()


def test_entry_buys_a_share_of_equity_at_the_close_and_exit_sells_all(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (101.0, 104.0), (104.0, 110.0), (111.0, 111.0)]})
    entries = np.array([[True], [False], [False], [False]])
    exits = np.array([[False], [False], [True], [False]])
    result = run_signals(feed, entries, exits, size=0.5, config=CFG)
    # 0.5 x 10,000 / 100 = 50 shares at bar 1's open; all sold at bar 3's open.
    assert fills_of(result) == [
        (day(1), "A", "buy", 50.0, 101.0, "target"),
        (day(3), "A", "sell", 50.0, 111.0, "close_position"),
    ]
    assert result.final_value == pytest.approx(10_000.0 + 50 * (111.0 - 101.0))


def test_an_entry_while_holding_and_a_same_bar_conflict_do_nothing(make_feed):
    feed = make_feed({"A": [(100.0, 100.0)] * 4})
    entries = np.array([[True], [True], [True], [False]])
    exits = np.array([[False], [False], [True], [False]])
    result = run_signals(feed, entries, exits, size=10.0, size_type="shares", config=CFG)
    assert [r[2:4] for r in fills_of(result)] == [("buy", 10.0)]


def test_signals_can_be_feed_columns_and_shorts_need_a_margin_account(make_feed):
    feed = make_feed(
        {"A": [(100.0, 100.0), (100.0, 90.0), (90.0, 90.0)]},
        go={"A": [0.0, 1.0, 0.0]},
        stop={"A": [0.0, 0.0, 0.0]},
    )
    result = run_signals(feed, "go", "stop", size=1_000.0, size_type="value", config=CFG)
    assert fills_of(result) == [(day(2), "A", "buy", 11.0, 90.0, "target")]  # 1,000 / 90 -> 11
    with pytest.raises(ConfigError, match="account='margin'"):
        run_signals(feed, "go", "stop", short_entries="go", short_exits="stop", config=CFG)


def test_position_rules_close_what_signals_opened(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 100.0), (99.0, 99.0, 94.0, 96.0)]})
    entries = np.array([[True], [False], [False]])
    result = run_signals(feed, entries, size=0.5, config=CFG, position_rules=StopLoss(0.05))
    assert fills_of(result)[1] == (day(2), "A", "sell", 50.0, 95.0, "stop_loss")


def test_weights_rebalance_on_rows_with_a_weight_and_nan_rows_hold(make_feed):
    feed = make_feed({"A": [(100.0, 100.0)] * 3 + [(100.0, 200.0)], "B": [(50.0, 50.0)] * 4})
    w = np.array([[0.5, 0.2], [np.nan, np.nan], [0.5, np.nan], [np.nan, np.nan]])
    result = run_weights(feed, w, config=CFG)
    # Bar 0: 50 A and 40 B. Bar 2: A stays at 50, B (NaN in a rebalance row) is closed.
    assert fills_of(result) == [
        (day(1), "A", "buy", 50.0, 100.0, "rebalance"),
        (day(1), "B", "buy", 40.0, 50.0, "rebalance"),
        (day(3), "B", "sell", 40.0, 50.0, "rebalance"),
    ]


def test_orders_become_limits_and_stops_where_levels_are_given(make_feed):
    feed = make_feed({"A": [(100.0, 100.0), (101.0, 103.0, 97.0, 99.0), (99.0, 99.0)]})
    q = np.array([[10.0], [0.0], [0.0]])
    limits = np.array([[98.0], [np.nan], [np.nan]])
    result = run_orders(feed, q, limit_prices=limits, config=CFG)
    assert fills_of(result) == [(day(1), "A", "buy", 10.0, 98.0, "order")]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda f: run_signals(f, np.zeros((2, 2), bool)), r"shape \(bars, assets\)"),
        (lambda f: run_signals(f, np.zeros((3, 1))), "must be booleans"),
        (lambda f: run_signals(f, np.zeros((3, 1), bool), size=-1), "size must be"),
        (lambda f: run_signals(f, np.zeros((3, 1), bool), size_type="pct"), "size_type"),
        (lambda f: run_orders(f, np.full((3, 1), 1.5)), "fractional"),
        (lambda f: run_weights(f, np.full((3, 1), -0.5)), "cannot short"),
        (
            lambda f: run_signals(
                f, np.zeros((3, 1), bool), config=BacktestConfig(commission=lambda q, p: 1.0)
            ),
            "written in Python",
        ),
    ],
)
def test_bad_inputs_are_config_errors_that_say_what_is_wrong(make_feed, call, match):
    feed = make_feed({"A": [(100.0, 100.0)] * 3})
    with pytest.raises(ConfigError, match=match):
        call(feed)


def test_a_weight_before_the_assets_first_bar_is_an_error_naming_it(make_feed):
    feed = make_feed({"A": [(100.0, 100.0)] * 3, "B": [None, (50.0, 50.0), (50.0, 50.0)]})
    w = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ConfigError, match="asset B at 2024-01-01"):
        run_weights(feed, w, config=CFG)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_an_infinite_weight_is_an_error_naming_asset_and_time(make_feed, bad):
    # Inverse-volatility weights with a zero volatility: 1 / 0 = inf on one asset.
    feed = make_feed({"A": [(100.0, 100.0)] * 3, "B": [(50.0, 50.0)] * 3})
    w = np.array([[0.5, 0.5], [0.5, bad], [0.5, 0.5]])
    config = BacktestConfig(initial_cash=10_000.0, account="margin")
    with pytest.raises(ConfigError, match=r"asset B at 2024-01-02 00:00:00 is -?inf"):
        run_weights(feed, w, config=config)


# A short of 100 A at 100 (bar 1's open) that A's rally to 300 (bar 2's close) takes to an
# equity of 10,000 + 100 x 100 - 100 x 300 = -10,000; B sits at 50.
BUST = {
    "A": [(100.0, 100.0), (100.0, 100.0), (100.0, 300.0, 100.0, 300.0), (300.0, 300.0)],
    "B": [(50.0, 50.0)] * 4,
}
MARGIN = BacktestConfig(initial_cash=10_000.0, account="margin", maintenance_margin=0.0)
# The cover of the short, at bar 3's open, by the margin call: no trade in B.
COVER = ("A", "buy", 100.0, 300.0, "margin_call")


def test_weights_at_negative_equity_order_nothing_as_rebalance_does(make_feed):
    from ml4t.backtest import Engine, OrderWarning, Strategy

    feed = make_feed(BUST)
    w = np.full((4, 2), np.nan)
    w[0] = [-1.0, 0.0]  # -10,000 / 100: short 100 A
    w[2] = [-1.0, 0.5]  # 0.5 x -10,000 / 50 would sell 100 B
    first = "first 2024-01-03 00:00:00, equity -10,000.00"
    with pytest.warns(OrderWarning, match=f"equity was <= 0 on 1 bars .*{first}"):
        compiled = run_weights(feed, w, config=MARGIN)

    class Twin(Strategy):
        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            row = w[data.index]
            if np.isfinite(row).any():
                broker.rebalance(np.nan_to_num(row))

    with pytest.warns(OrderWarning, match="rebalance"):
        event = Engine(feed, Twin(), MARGIN).run()
    fills = compiled.fills.select("asset", "side", "quantity", "price", "reason").rows()
    assert fills == [("A", "sell", 100.0, 100.0, "rebalance"), COVER]
    assert compiled.fills.equals(event.fills)
    assert compiled.orders.equals(event.orders)
    assert compiled.final_value == -10_000.0


def test_percent_signals_at_negative_equity_enter_nothing(make_feed):
    from ml4t.backtest import OrderWarning

    feed = make_feed(BUST)
    none = np.zeros((4, 2), dtype=bool)
    short_entries = none.copy()
    short_entries[0, 0] = True  # 1.0 x 10,000 / 100: short 100 A
    entries = none.copy()
    entries[2, 1] = True  # 1.0 x -10,000 / 50 would sell 200 B
    with pytest.warns(OrderWarning, match="equity was <= 0 on 1 bars"):
        result = run_signals(
            feed, entries, none, short_entries=short_entries, short_exits=none, size=1.0,
            config=MARGIN,
        )  # fmt: skip
    fills = result.fills.select("asset", "side", "quantity", "price", "reason").rows()
    assert fills == [("A", "sell", 100.0, 100.0, "target"), COVER]


def test_a_trailing_stop_starting_next_bar_starts_from_the_entry_price(make_feed):
    # Bars (open, high, low, close). Entry at bar 1's open, 100; with stops from the next bar
    # on, bar 1's high of 120 is not watched: bar 2 is checked against 100 x 0.9 = 90, then
    # its high of 113 joins the trail, and bar 3's low of 101 reaches 113 x 0.9 = 101.7.
    bars = [
        (100.0, 100.0, 100.0, 100.0),
        (100.0, 120.0, 99.0, 115.0),
        (112.0, 113.0, 107.0, 110.0),
        (110.0, 111.0, 101.0, 105.0),
    ]
    feed = make_feed({"A": bars})
    entries = np.array([[True], [False], [False], [False]])
    config = BacktestConfig(initial_cash=10_000.0, stops_on_entry_bar=False)
    result = run_signals(
        feed, entries, size=10.0, size_type="shares", config=config,
        position_rules=TrailingStop(0.10),
    )  # fmt: skip
    when, side, qty, price, reason = fills_of(result)[1][0], *fills_of(result)[1][2:]
    assert (when, side, qty, reason) == (day(3), "sell", 10.0, "trailing_stop")
    assert price == pytest.approx(113.0 * 0.9)


# A stop's bar and the entry signal of its close. Bars (open, high, low, close): 10 shares
# bought at 100; bar 2's low of 94 reaches the 5% stop at 95.
STOPPED = [
    (100.0, 100.0, 100.0, 100.0),
    (100.0, 100.0, 100.0, 100.0),
    (99.0, 100.0, 94.0, 96.0),
    (97.0, 97.0, 97.0, 97.0),
]


def test_next_open_entry_decided_on_a_stops_bar_fills_at_the_next_open(make_feed):
    # The stop fills inside bar 2; the entry decided at bar 2's close is a new decision and
    # fills at bar 3's open, as VectorBT with signals shifted one bar and price=open.
    feed = make_feed({"A": STOPPED})
    entries = np.array([[True], [False], [True], [False]])
    result = run_signals(
        feed, entries, size=10.0, size_type="shares", config=CFG, position_rules=StopLoss(0.05)
    )
    assert fills_of(result) == [
        (day(1), "A", "buy", 10.0, 100.0, "target"),
        (day(2), "A", "sell", 10.0, 95.0, "stop_loss"),
        (day(3), "A", "buy", 10.0, 97.0, "target"),
    ]


def test_same_close_entry_on_a_stops_bar_is_replaced_by_the_stop(make_feed):
    # Same-close: the entry of bar 2 would fill on the stop's own bar, which VectorBT gives to
    # the stop alone; bar 3's entry fills at its close, 97.
    feed = make_feed({"A": STOPPED})
    entries = np.array([[True], [False], [True], [True]])
    config = BacktestConfig(
        initial_cash=10_000.0, fill_timing="same_close", stops_on_entry_bar=False
    )
    result = run_signals(
        feed, entries, size=10.0, size_type="shares", config=config,
        position_rules=StopLoss(0.05),
    )  # fmt: skip
    assert fills_of(result) == [
        (day(0), "A", "buy", 10.0, 100.0, "target"),
        (day(2), "A", "sell", 10.0, 95.0, "stop_loss"),
        (day(3), "A", "buy", 10.0, 97.0, "target"),
    ]


def test_a_stops_remainder_filling_later_does_not_replace_that_bars_entry(make_feed):
    # A rule replaces the same-close entries of the bar it fired on (placed its exit), not of
    # a later bar where what a volume cap left of its exit fills. Cap: 1e-4 x 1,000,000 =
    # 100 shares a bar.
    feed = make_feed(
        {"A": [(100.0, 100.0), (100.0, 100.0), (100.0, 100.0, 90.0, 92.0), (93.0, 93.0)]}
    )
    cfg = {"fill_timing": "same_close", "max_participation": 1e-4}
    entries = np.array([[True], [False], [True], [True]])
    compiled = run_signals(
        feed, entries, size=150.0, size_type="shares",
        config=BacktestConfig(initial_cash=20_000.0, **cfg), position_rules=StopLoss(0.05),
    )  # fmt: skip

    def enter(broker, data):  # type: ignore[no-untyped-def]
        flat = broker.position("A") == 0.0 and broker.pending[0] == 0.0
        if flat and not broker.signals_replaced[0]:
            broker.order_target_quantity("A", 150.0)

    event, _ = run(
        feed, {0: enter, 2: enter, 3: enter}, initial_cash=20_000.0,
        position_rules=StopLoss(0.05), **cfg,
    )  # fmt: skip
    # Bar 0: 100 of 150 at the close, 100; bar 1: the other 50 at the open. The stop at 95
    # fires on bar 2 (low 90) and sells 100 at 95, 50 left working; bar 2's entry is
    # replaced. Bar 3 opens at 93, through the stop: the 50 fill there, flat. Bar 3's entry
    # is not replaced (the stop fired on bar 2): 150 ordered at the close, 93, of which 50 fill
    # (the stop's 50 used half the bar's 100).
    for result in (event, compiled):
        assert fills_of(result) == [
            (day(0), "A", "buy", 100.0, 100.0, "target"),
            (day(1), "A", "buy", 50.0, 100.0, "target"),
            (day(2), "A", "sell", 100.0, 95.0, "stop_loss"),
            (day(3), "A", "sell", 50.0, 93.0, "stop_loss"),
            (day(3), "A", "buy", 50.0, 93.0, "target"),
        ]


def test_a_stop_that_fires_without_volume_still_replaces_its_bars_reversal():
    # Fired means placed its exit: on bar 2 the stop at 95 fires (low 90) but the bar has no
    # volume, so its exit waits; the short entry (a reversal) decided at bar 2's close is
    # replaced all the same. Cap: 10% of 1,000 = 100 shares a bar.
    bars = [  # open, low, close, volume
        (100.0, 100.0, 100.0, 1000.0),
        (100.0, 100.0, 100.0, 1000.0),
        (100.0, 90.0, 92.0, 0.0),
        (93.0, 93.0, 93.0, 1000.0),
    ]
    frame = pl.DataFrame(
        [
            {"timestamp": day(t), "asset": "A", "open": o, "high": max(o, c), "low": lo,
             "close": c, "volume": v}
            for t, (o, lo, c, v) in enumerate(bars)
        ]
    )  # fmt: skip
    feed = DataFeed(frame)
    cfg = {"fill_timing": "same_close", "max_participation": 0.1, "account": "margin"}
    entries = np.array([[True], [False], [False], [False]])
    shorts = np.array([[False], [False], [True], [False]])
    compiled = run_signals(
        feed, entries, short_entries=shorts, short_exits=np.zeros_like(shorts), size=100.0,
        size_type="shares", config=BacktestConfig(initial_cash=20_000.0, **cfg),
        position_rules=StopLoss(0.05),
    )  # fmt: skip

    def reverse(broker, data):  # type: ignore[no-untyped-def]
        if not broker.signals_replaced[0]:
            broker.order_target_quantity("A", -100.0)

    event, _ = run(
        feed, {0: lambda b, d: b.order_target_quantity("A", 100.0), 2: reverse},
        initial_cash=20_000.0, position_rules=StopLoss(0.05), **cfg,
    )  # fmt: skip
    # 100 bought at bar 0's close, 100; the stop's 100 fill at bar 3's open, 93 (gapped
    # through 95); no reversal order (it would sell 200 to -100).
    for result in (event, compiled):
        assert fills_of(result) == [
            (day(0), "A", "buy", 100.0, 100.0, "target"),
            (day(3), "A", "sell", 100.0, 93.0, "stop_loss"),
        ]
        assert result.orders["origin"].to_list() == ["target", "stop_loss"]


MARGIN = BacktestConfig(initial_cash=10_000.0, account="margin")
# Bar 1 closes at 125: the short entry decided there sizes 1,000 at 125 = 8 shares.
REVERSING = {"A": [(100.0, 100.0), (100.0, 125.0), (125.0, 125.0), (125.0, 125.0)]}


def test_short_entry_while_long_reverses_in_one_order(make_feed):
    # Long 1,000 / 100 = 10 shares; the short entry of bar 1 (with the long exit on the same
    # bar, as VectorBT reads the opposite entry first) orders -10 - 8 = -18 at bar 2's open.
    feed = make_feed(REVERSING)
    entries = np.array([[True], [False], [False], [False]])
    exits = np.array([[False], [True], [False], [False]])
    shorts = np.array([[False], [True], [False], [False]])
    result = run_signals(
        feed, entries, exits, short_entries=shorts, short_exits=np.zeros_like(shorts),
        size=1_000.0, size_type="value", config=MARGIN,
    )  # fmt: skip
    assert fills_of(result) == [
        (day(1), "A", "buy", 10.0, 100.0, "target"),
        (day(2), "A", "sell", 18.0, 125.0, "target"),
    ]
    assert result.final_value == pytest.approx(10_000.0 + 10 * 25.0)


@pytest.mark.parametrize(
    ("upon_opposite_entry", "after_entry"),
    [("close", [(day(2), "A", "sell", 10.0, 125.0, "close_position")]), ("ignore", [])],
)
def test_opposite_entry_can_close_or_be_ignored(make_feed, upon_opposite_entry, after_entry):
    feed = make_feed(REVERSING)
    entries = np.array([[True], [False], [False], [False]])
    shorts = np.array([[False], [True], [False], [False]])
    result = run_signals(
        feed, entries, short_entries=shorts, short_exits=np.zeros_like(shorts), size=1_000.0,
        size_type="value", upon_opposite_entry=upon_opposite_entry, config=MARGIN,
    )  # fmt: skip
    assert fills_of(result)[1:] == after_entry


def test_an_unknown_upon_opposite_entry_names_the_nearest(make_feed):
    feed = make_feed(REVERSING)
    with pytest.raises(ConfigError, match="did you mean 'reverse'"):
        run_signals(feed, np.zeros((4, 1), bool), upon_opposite_entry="reversal")  # type: ignore[arg-type]


def _three_modes(feed):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    shape = (feed.n_bars, feed.n_assets)
    entries, exits = rng.random(shape) < 0.3, rng.random(shape) < 0.2
    weights = np.where(rng.random(shape) < 0.5, rng.random(shape) / feed.n_assets, np.nan)
    quantities = np.where(rng.random(shape) < 0.3, rng.integers(-5, 6, shape), 0.0)
    config = BacktestConfig(initial_cash=10_000.0, commission=0.001)
    return [
        run_signals(feed, entries, exits, size=0.2, config=config),
        run_weights(feed, weights, config=config),
        run_orders(feed, quantities, config=config),
    ]


def test_a_plain_runs_own_loop_fills_as_the_loop_with_every_step(make_feed, monkeypatch):
    """A run without rules, margin, halts or next-close fills compiles a loop without those
    steps (``driver.loop_for``); the loop with every step gives the same fills."""
    from ml4t.backtest.kernels import driver

    rng = np.random.default_rng(4)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (40, 3)), axis=0))
    feed = make_feed({a: [(p, p * 1.01) for p in prices[:, i]] for i, a in enumerate("ABC")})
    chosen: list[object] = []
    loop_for = driver.loop_for
    monkeypatch.setattr(driver, "loop_for", lambda *a: chosen.append(loop_for(*a)) or chosen[-1])
    plain = _three_modes(feed)
    assert chosen == [
        driver.signals_loop_plain,
        driver.weights_loop_plain,
        driver.orders_loop_plain,
    ]
    full = {driver.MODE_SIGNALS: driver.signals_loop, driver.MODE_WEIGHTS: driver.weights_loop,
            driver.MODE_ORDERS: driver.orders_loop}  # fmt: skip
    monkeypatch.setattr(driver, "loop_for", lambda mode, s, acc: full[mode])
    for a, b in zip(plain, _three_modes(feed), strict=True):
        assert len(a.fills) > 10
        assert a.fills.equals(b.fills)
        assert a.equity.equals(b.equity)


def test_a_run_with_only_rules_takes_the_rules_loop_and_fills_as_every_step(make_feed, monkeypatch):
    """A run whose only optional steps are the position rules compiles a loop with the
    rules' open phase (``clock.open_rules``), as the event driver calls it; the loop with
    every step gives the same fills and exits."""
    from ml4t.backtest.kernels import driver

    rng = np.random.default_rng(5)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.03, (60, 3)), axis=0))
    bars = {a: [(p, p * 1.01) for p in prices[:, i]] for i, a in enumerate("ABC")}
    feed = make_feed(bars)
    chosen: list[object] = []
    loop_for = driver.loop_for
    monkeypatch.setattr(driver, "loop_for", lambda *a: chosen.append(loop_for(*a)) or chosen[-1])

    def runs() -> list[object]:
        entries = rng_signals.random(prices.shape) < 0.2
        exits = rng_signals.random(prices.shape) < 0.1
        weights = np.where(rng_signals.random(prices.shape) < 0.1, 0.3, np.nan)
        quantities = np.where(rng_signals.random(prices.shape) < 0.1, 5.0, 0.0)
        config = BacktestConfig(initial_cash=10_000.0, commission=0.001)
        rule = StopLoss(0.03)
        return [
            run_signals(feed, entries, exits, size=0.2, config=config, position_rules=rule),
            run_weights(feed, weights, config=config, position_rules=rule),
            run_orders(feed, quantities, config=config, position_rules=rule),
        ]

    rng_signals = np.random.default_rng(6)
    rules_only = runs()
    rules = [driver.signals_loop_rules, driver.weights_loop_rules, driver.orders_loop_rules]
    assert chosen == rules
    full = {driver.MODE_SIGNALS: driver.signals_loop, driver.MODE_WEIGHTS: driver.weights_loop,
            driver.MODE_ORDERS: driver.orders_loop}  # fmt: skip
    monkeypatch.setattr(driver, "loop_for", lambda mode, s, acc: full[mode])
    rng_signals = np.random.default_rng(6)
    for a, b in zip(rules_only, runs(), strict=True):
        assert (a.fills["reason"] == "stop_loss").sum() > 0
        assert a.fills.equals(b.fills)
        assert a.equity.equals(b.equity)


def test_a_run_with_rules_and_a_margin_account_takes_the_loop_with_every_step(
    make_feed, monkeypatch
):
    from ml4t.backtest.kernels import driver

    chosen: list[object] = []
    loop_for = driver.loop_for
    monkeypatch.setattr(driver, "loop_for", lambda *a: chosen.append(loop_for(*a)) or chosen[-1])
    feed = make_feed({"A": [(100.0, 100.0), (100.0, 90.0), (90.0, 90.0)]})
    entries = np.array([[True], [False], [False]])
    config = BacktestConfig(account="margin")
    run_signals(feed, entries, ~entries, position_rules=StopLoss(0.05), config=config)
    assert chosen == [driver.signals_loop]


def test_runs_on_one_feed_share_its_calendar_and_cannot_change_it(make_feed):
    from ml4t.backtest.core import Calendar

    feed = make_feed({"A": [(100.0, 100.0), (101.0, 104.0), (104.0, 110.0), (111.0, 111.0)]})
    calendar = Calendar.of(feed)
    assert Calendar.of(feed) is calendar  # made on the first run, kept with the feed
    other = make_feed({"A": [(100.0, 100.0), (101.0, 104.0)]})
    assert Calendar.of(other) is not calendar
    for flags in (calendar.new_month, calendar.new_day, calendar.years):
        assert not flags.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            flags[0] = flags[1]
    # Days 1-4 of January: each bar a new day, none a new month, one day apart.
    assert calendar.new_day.tolist() == [False, True, True, True]
    assert calendar.new_month.tolist() == [False] * 4
    assert calendar.years.tolist() == [0.0] + [1.0 / 365.0] * 3
    entries = np.array([[True], [False], [False], [False]])
    exits = np.array([[False], [False], [True], [False]])
    first = run_signals(feed, entries, exits, size=0.5, config=CFG)
    again = run_signals(feed, entries, exits, size=0.5, config=CFG)
    assert fills_of(first) == fills_of(again)
    assert first.equity.equals(again.equity)


def test_a_run_that_outgrows_its_books_fills_as_one_that_fits(make_feed, monkeypatch):
    """The loop stops when the next bar might not fit in the order book or the fill log, the
    books grow, and it goes on from that bar: with books reserved for no orders at all (the
    estimate ``_expected_orders`` is 0) a run stops to grow many times, and fills as before."""
    from ml4t.backtest import compiled

    rng = np.random.default_rng(7)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (3000, 4)), axis=0))
    feed = make_feed({a: [(p, p * 1.002) for p in prices[:, i]] for i, a in enumerate("ABCD")})
    entries = rng.random(prices.shape) < 0.3
    exits = rng.random(prices.shape) < 0.3
    weights = np.where(rng.random(prices.shape) < 0.5, 0.2, np.nan)
    config = BacktestConfig(initial_cash=10_000.0, commission=0.001)

    def runs() -> list[object]:
        return [
            run_signals(feed, entries, exits, size=0.2, config=config),
            run_weights(feed, weights, config=config),
        ]

    fits = runs()
    calls: list[int] = []
    run_bars = compiled._run_bars
    monkeypatch.setattr(compiled, "_run_bars", lambda *a: calls.append(a[1]) or run_bars(*a))
    monkeypatch.setattr(compiled, "_expected_orders", lambda *a: 0)
    for a, b in zip(fits, runs(), strict=True):
        assert len(a.fills) > 1024  # the books start with room for 1024
        assert a.fills.equals(b.fills)
        assert a.orders.equals(b.orders)
        assert a.equity.equals(b.equity)
    assert calls[0] == 0 and calls[1] > 0  # the first run stopped to grow its books
    assert calls.count(0) == 2 and len(calls) > 4  # and so did the second


def test_a_wide_runs_marks_are_the_positions_its_fills_leave(make_feed):
    """On 150 assets (three words of held bits, ``kernels.state.B_HELD``) each bar's positions
    value is what the fills so far leave held, marked at the last close, rebuilt here from the
    fills alone."""
    rng = np.random.default_rng(8)
    n_bars, n_assets = 120, 150
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_bars, n_assets)), axis=0))
    names = [f"X{i:03d}" for i in range(n_assets)]
    feed = make_feed({a: [(p, p * 1.001) for p in prices[:, i]] for i, a in enumerate(names)})
    entries = rng.random(prices.shape) < 0.05
    exits = rng.random(prices.shape) < 0.1
    result = run_signals(feed, entries, exits, size=0.01, config=CFG)
    fills = result.fills
    assert len(fills) > 300
    sign = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0)
    qty = sign * fills["quantity"].to_numpy()
    asset = np.array([feed.asset_index(a) for a in fills["asset"].to_list()])
    bar = np.searchsorted(feed.timestamps, fills["timestamp"].cast(pl.Datetime("us")).to_numpy())
    positions = np.zeros(n_assets)
    closes = feed.array("close")
    held = set()
    for t in range(n_bars):
        for i in np.flatnonzero(bar == t):
            positions[asset[i]] += qty[i]
        held |= set(np.flatnonzero(positions).tolist())
        value = float(np.sum(positions * closes[t]))
        assert np.isclose(result.equity["positions_value"][t], value, rtol=1e-12, atol=1e-9)
    assert min(held) < 64 and max(held) >= 128  # positions in every word


def test_an_exit_signal_withdraws_a_buy_still_working_with_nothing_held():
    # Entry at bar 0's close; bar 1 has no volume, so under a volume cap the buy waits. The
    # exit signal at bar 1's close finds no position but the buy working (held = position +
    # pending > 0): it closes, withdrawing the buy, which never fills, and orders nothing
    # more. (The rule visits an exit signal's asset only with a position or an open order.)
    bars = [(100.0, 100.0, 1000.0), (101.0, 101.0, 0.0), (102.0, 102.0, 1000.0)]
    frame = pl.DataFrame(
        [
            {"timestamp": day(t), "asset": a, "open": o, "high": o, "low": o, "close": c,
             "volume": v}
            for a in ("A", "B") for t, (o, c, v) in enumerate(bars)
        ]
    )  # fmt: skip
    feed = DataFeed(frame)
    config = BacktestConfig(initial_cash=10_000.0, max_participation=0.5)
    entries = np.array([[True, True], [False, False], [False, False]])
    exits = np.array([[False, False], [True, False], [False, False]])
    result = run_signals(feed, entries, exits, size=5.0, size_type="shares", config=config)
    assert fills_of(result) == [(day(2), "B", "buy", 5.0, 102.0, "target")]
    assert result.orders.select("asset", "status").rows() == [("A", "cancelled"), ("B", "filled")]
