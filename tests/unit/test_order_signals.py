"""``Broker.order_signals``: one bar's row of entry and exit signals, traded by the compiled rule
of ``run_signals``. Initial cash is 10,000; decisions at a bar's close fill at the next open.
(``tests/property/test_drivers.py`` checks it against ``run_signals`` on random runs.)"""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest import (
    BacktestConfig,
    Broker,
    ConfigError,
    DataFeed,
    Engine,
    OrderError,
    OrderWarning,
    Strategy,
    run_signals,
)
from ml4t.backtest.risk import DailyLossLimit
from scripted import run

FLAT = (100.0, 100.0)


class Rows(Strategy):
    """Trades the rows of ``entries`` and ``exits`` through ``order_signals``; keeps the ids."""

    def __init__(self, entries, exits, **kwargs):  # type: ignore[no-untyped-def]
        self.entries, self.exits, self.kwargs = entries, exits, kwargs
        self.ids: list[list[int]] = []

    def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
        t = data.index
        ids = broker.order_signals(self.entries[t], self.exits[t], **self.kwargs)
        self.ids.append(ids.tolist())


def orders_of(result):  # type: ignore[no-untyped-def]
    return result.orders.select("asset", "side", "quantity", "status", "reason").rows()


def test_entries_and_exits_trade_as_run_signals_and_return_the_new_ids(make_feed):
    feed = make_feed({"A": [FLAT, (100.0, 50.0), FLAT, FLAT], "B": [(100.0, 25.0)] * 4})
    entries = np.array([[True, True], [True, False], [False, False], [False, False]])
    exits = np.array([[False, False], [False, False], [True, False], [False, False]])
    strategy = Rows(entries, exits, size=0.1)
    config = BacktestConfig(initial_cash=10_000.0)
    result = Engine(feed, strategy, config).run()
    # Bar 0: 10% of 10,000 buys 10 A at 100 and 40 B at 25. Bar 1: A is held, no order.
    # Bar 2: the exit closes A.
    assert orders_of(result) == [
        ("A", "buy", 10.0, "filled", ""),
        ("B", "buy", 40.0, "filled", ""),
        ("A", "sell", 10.0, "filled", ""),
    ]
    assert strategy.ids == [[0, 1], [], [2], []]
    compiled = run_signals(feed, entries, exits, size=0.1, config=config)
    assert result.fills.equals(compiled.fills)
    assert result.equity.equals(compiled.equity)


def test_a_halt_rejects_the_entries_it_blocks_as_run_signals_does(make_feed):
    # 90% in A, which closes bar 2 4% down: 3.6% of equity lost on the day, and the daily
    # loss limit blocks entries decided at that close. B's entry there is rejected; bar 3's,
    # a new day, fills, scaled down to the cash left.
    feed = make_feed(
        {"A": [FLAT, FLAT, (100.0, 96.0), (95.0, 97.0), FLAT], "B": [FLAT] * 5},
    )
    entries = np.zeros((5, 2), dtype=bool)
    entries[0, 0] = entries[2, 1] = entries[3, 1] = True
    exits = np.zeros((5, 2), dtype=bool)
    rules = [DailyLossLimit(0.03)]
    config = BacktestConfig(initial_cash=10_000.0)
    result = Engine(feed, Rows(entries, exits, size=0.9), config, portfolio_rules=rules).run()
    assert [(a, s, r) for a, _, _, s, r in orders_of(result)] == [
        ("A", "filled", ""),
        ("B", "rejected", "daily_loss_limit"),
        ("B", "filled", "scaled_down_insufficient_cash"),
    ]
    compiled = run_signals(feed, entries, exits, size=0.9, config=config, portfolio_rules=rules)
    assert result.orders.equals(compiled.orders)


class Mixed(Rows):
    """Rows of a different layout each bar: C-ordered, strided (from a Fortran array),
    read-only, a list of Python bools."""

    def __init__(self, entries, exits, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(entries, exits, **kwargs)
        frozen_e, frozen_x = entries.copy(), exits.copy()
        frozen_e.flags.writeable = frozen_x.flags.writeable = False
        self.layouts = [
            (entries, exits),
            (np.asfortranarray(entries), np.asfortranarray(exits)),
            (frozen_e, frozen_x),
            (entries.tolist(), exits.tolist()),
        ]

    def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
        t = data.index
        entries, exits = self.layouts[t % len(self.layouts)]
        broker.order_signals(entries[t], exits[t], **self.kwargs)


def test_rows_of_any_layout_trade_as_contiguous_ones(make_feed):
    walk = [(100.0 + i, 101.0 + i) for i in range(8)]
    feed = make_feed({"A": walk, "B": [(50.0, 50.0)] * 8, "C": walk[::-1]})
    rng = np.random.default_rng(5)  # a seed whose signals make 8 fills
    entries, exits = rng.uniform(size=(8, 3)) < 0.5, rng.uniform(size=(8, 3)) < 0.4
    config = BacktestConfig(initial_cash=10_000.0)
    plain = Engine(feed, Rows(entries, exits, size=0.2), config).run()
    mixed = Engine(feed, Mixed(entries, exits, size=0.2), config).run()
    assert plain.fills.height == 8
    assert mixed.fills.equals(plain.fills)
    assert mixed.equity.equals(plain.equity)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda b: b.order_signals(np.ones(3, bool), np.zeros(2, bool)), OrderError,
         r"entries must be a bool array .* shape \(2,\); got dtype bool, shape \(3,\)"),
        (lambda b: b.order_signals(np.ones(2, bool), np.zeros(2)), OrderError,
         "exits must be a bool array .* got dtype float64"),
        (lambda b: b.order_signals(np.ones(2, bool), short_entries=np.ones(2, bool)),
         ConfigError, "go together"),
        (lambda b: b.order_signals(np.ones(2, bool), short_entries=np.ones(2, bool),
                                   short_exits=np.ones(2, bool)),
         ConfigError, "cash account cannot short"),
        (lambda b: b.order_signals(np.ones(2, bool), size=0.0), ConfigError, "size must be"),
        (lambda b: b.order_signals(np.ones(2, bool), size=np.inf), ConfigError, "all-in"),
        (lambda b: b.order_signals(np.ones(2, bool), size=2.5, size_type="shares"), ConfigError,
         "fractional"),
        (lambda b: b.order_signals(np.ones(2, bool), size_type="weight"), ConfigError,
         "size_type must be one of"),
        (lambda b: b.order_signals(np.ones(2, bool), upon_opposite_entry="revers"), ConfigError,
         "did you mean 'reverse'"),
    ],
)  # fmt: skip
def test_bad_rows_and_sizes_are_errors_that_say_what_is_wrong(make_feed, call, error, match):
    feed = make_feed({"A": [FLAT] * 2, "B": [FLAT] * 2})
    with pytest.raises(error, match=match):
        run(feed, {0: lambda b, d: call(b)})


def test_outside_a_run_there_is_no_market_to_decide_on():
    broker = Broker(np.array(["A"]), BacktestConfig())
    with pytest.raises(OrderError, match="from on_data"):
        broker.order_signals(np.array([True]))


def test_percent_entries_at_negative_equity_place_nothing_and_warn_once(make_feed):
    # Short 100 A at 100; A triples: equity is 10,000 - 20,000 < 0 from bar 2's close.
    feed = make_feed(
        {
            "A": [FLAT, FLAT, (100.0, 300.0, 100.0, 300.0), (300.0, 300.0)],
            "B": [(50.0, 50.0)] * 4,
        }
    )
    none = np.zeros(2, dtype=bool)
    config = BacktestConfig(initial_cash=10_000.0, account="margin", maintenance_margin=0.0)

    def decide(b, d):  # type: ignore[no-untyped-def]
        short = np.array([d.index == 0, False])
        entry = np.array([False, d.index == 2])
        b.order_signals(entry, none, short_entries=short, short_exits=none, size=1.0)

    strategy_actions = dict.fromkeys(range(4), decide)
    with pytest.warns(OrderWarning, match="order_signals") as warned:
        result, _ = run(feed, strategy_actions, **config.__dict__)
    assert len([w for w in warned if "order_signals" in str(w.message)]) == 1
    assert result.fills.select("asset", "side", "quantity").rows()[0] == ("A", "sell", 100.0)
    assert "B" not in result.fills["asset"].to_list()


def test_a_row_wider_than_the_book_grows_it_and_places_every_order():
    # 1,500 assets (the book starts with room for 1,024 orders), an entry on each at bar 0.
    n, bars = 1500, 3
    times = np.datetime64("2024-01-01") + np.arange(bars).astype("timedelta64[D]")
    prices = np.full((bars, n), 10.0)
    fields = {"open": prices, "high": prices, "low": prices, "close": prices, "volume": prices}
    feed = DataFeed.from_arrays(times, [f"A{i:04d}" for i in range(n)], fields)
    entries = np.zeros((bars, n), dtype=bool)
    entries[0] = True
    exits = np.zeros((bars, n), dtype=bool)
    strategy = Rows(entries, exits, size=2.0, size_type="shares")
    config = BacktestConfig(initial_cash=1_000_000.0)
    result = Engine(feed, strategy, config).run()
    assert strategy.ids == [list(range(n)), [], []]
    assert result.fills.height == n and result.fills["quantity"].to_list() == [2.0] * n
    compiled = run_signals(feed, entries, exits, size=2.0, size_type="shares", config=config)
    assert result.fills.equals(compiled.fills)
