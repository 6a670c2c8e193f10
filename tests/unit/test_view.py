"""The point-in-time view: what a strategy sees at bar t, and that nothing later is reachable."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, BarView, Broker, DataError, DataFeed, Engine, Strategy

N_BARS = 30


def stamped_feed() -> DataFeed:
    """Every value at bar t encodes t, so any value > t that a strategy can reach is the future."""
    rows = []
    for t in range(N_BARS):
        for k, asset in enumerate(("A", "B", "C")):
            price = 1000.0 * (k + 1) + t
            rows.append(
                {
                    "timestamp": datetime(2024, 1, 1) + timedelta(days=t),
                    "asset": asset,
                    "open": price,
                    "high": price,
                    "low": price,
                    "close": price,
                    "volume": 1.0 + t,
                    "bar_no": float(t),
                }
            )
    return DataFeed(pl.DataFrame(rows))


def reachable_arrays(obj: object) -> list[np.ndarray]:
    """An array and every array behind it (its ``.base`` chain)."""
    found = []
    while isinstance(obj, np.ndarray):
        found.append(obj)
        obj = obj.base
    return found


class Prober(Strategy):
    def __init__(self) -> None:
        self.violations: list[str] = []
        self.calls = 0

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        t = data.index
        self.calls += 1
        price_bar = lambda v: v % 1000.0  # noqa: E731  prices are 1000 * k + t
        handed_out = {
            "open": (data.open, price_bar),
            "high": (data.high, price_bar),
            "low": (data.low, price_bar),
            "close": (data.close, price_bar),
            "volume": (data.volume, lambda v: v - 1.0),
            "bar_no": (data["bar_no"], lambda v: v),
            "history bar_no 5": (data.history("bar_no", 5), lambda v: v),
            "history bar_no all": (data.history("bar_no", N_BARS), lambda v: v),
            "history close 3": (data.history("close", 3), price_bar),
        }
        for name, (arr, bar_of) in handed_out.items():
            for reachable in reachable_arrays(arr):
                values = reachable[~np.isnan(reachable)]
                if values.size and bar_of(values).max() > t:
                    self.violations.append(f"bar {t}: {name} reaches bar {bar_of(values).max()}")
        bar = data.bar("B")
        if bar.bar_no != t or bar.close != 2000.0 + t:
            self.violations.append(f"bar {t}: data.bar('B') shows {bar!r}")


def test_nothing_handed_to_the_strategy_reaches_a_later_bar():
    prober = Prober()
    Engine(stamped_feed(), prober, BacktestConfig()).run()
    assert prober.calls == N_BARS
    assert prober.violations == []


def test_history_ends_at_the_current_bar_and_pads_the_start_with_nan():
    seen: dict[int, np.ndarray] = {}

    class Watch(Strategy):
        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            seen[data.index] = data.history("bar_no", 4)

    Engine(stamped_feed(), Watch(), BacktestConfig()).run()
    assert seen[1].shape == (4, 3)
    assert np.isnan(seen[1][:2]).all()
    assert seen[1][2:, 0].tolist() == [0.0, 1.0]
    assert seen[10][:, 2].tolist() == [7.0, 8.0, 9.0, 10.0]
    with pytest.raises(ValueError):
        seen[10][0, 0] = 99.0  # read-only: a strategy cannot scribble on the data


def test_a_strategy_cannot_write_a_future_open_into_the_feed():
    feed = stamped_feed()

    class HalveTomorrowsOpen(Strategy):
        def __init__(self) -> None:
            self.refused: list[str] = []

        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            if data.index != 0:
                return
            opens = data._feed.arrays["open"]  # private, reachable, but not writable
            try:
                opens.flags.writeable = True
                opens[1] /= 2.0
            except ValueError as exc:
                self.refused.append(str(exc))
            broker.submit_order("A", 1)

    cheat = HalveTomorrowsOpen()
    result = Engine(feed, cheat, BacktestConfig()).run()
    assert len(cheat.refused) == 1
    # A's open at bar 1 is 1000 + 1: its fill there, and the feed a next run reads, keep it.
    assert result.fills["price"].to_list() == [1001.0]
    assert feed.array("open")[1, 0] == 1001.0


def test_current_bar_arrays_are_copies_the_strategy_may_change():
    class Scribble(Strategy):
        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            close = data.close
            close[:] = -1.0
            assert data.close[0] == 1000.0 + data.index

    Engine(stamped_feed(), Scribble(), BacktestConfig()).run()


def test_view_exposes_assets_fields_and_timestamp():
    class Look(Strategy):
        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            assert data.assets.tolist() == ["A", "B", "C"]
            assert "bar_no" in data.fields and "bar_no" in data
            assert data.timestamp == timestamp == datetime(2024, 1, 1) + timedelta(days=data.index)
            assert data.has_bar.all()

    Engine(stamped_feed(), Look(), BacktestConfig()).run()


def test_unknown_field_or_asset_raises_data_error_naming_it():
    class Typo(Strategy):
        def __init__(self, probe):  # type: ignore[no-untyped-def]
            self.probe = probe

        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            self.probe(data)

    for probe, match in [
        (lambda d: d["scroe"], "unknown field 'scroe'"),
        (lambda d: d.history("clsoe", 3), "unknown field 'clsoe'"),
        (lambda d: d.bar("ZZ"), "unknown asset 'ZZ'"),
        (lambda d: d.history("close", 0), "positive int"),
    ]:
        with pytest.raises(DataError, match=match):
            Engine(stamped_feed(), Typo(probe), BacktestConfig()).run()
