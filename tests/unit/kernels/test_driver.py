"""``kernels.driver``'s rows of signal bits: which assets the signal rule visits, in order."""

from __future__ import annotations

import numpy as np

from ml4t.backtest import BacktestConfig, DataFeed, Engine, Strategy, run_signals
from ml4t.backtest.kernels.driver import SIGNAL_ENTRIES, SIGNAL_EXITS, _pack_row, signal_words

N_ASSETS = 150  # three words, the last one partly used


def assets_in(words: np.ndarray) -> list[int]:
    """The assets a row of words marks, decoded bit by bit in Python."""
    return [64 * w + k for w in range(len(words)) for k in range(64) if int(words[w]) >> k & 1]


def random_signals(rng: np.random.Generator, n_bars: int, shorts: bool) -> tuple[np.ndarray, ...]:
    shape = (n_bars, N_ASSETS)
    rows = [rng.uniform(size=shape) < 0.05 for _ in range(4 if shorts else 2)]
    empty = np.zeros((0, 0), dtype=bool)
    return (*rows, empty, empty) if not shorts else tuple(rows)


def test_signal_words_mark_the_assets_with_an_entry_and_with_an_exit(rng):
    for shorts in (False, True):
        signals = random_signals(rng, 20, shorts)
        words = signal_words(signals, 20, N_ASSETS)
        assert words.dtype == np.uint64 and words.shape == (20, 2, 3)
        entries, exits = signals[0], signals[1]
        if shorts:
            entries, exits = entries | signals[2], exits | signals[3]
        for t in range(20):
            assert assets_in(words[t, SIGNAL_ENTRIES]) == np.flatnonzero(entries[t]).tolist()
            assert assets_in(words[t, SIGNAL_EXITS]) == np.flatnonzero(exits[t]).tolist()
    assert signal_words(None, 20, N_ASSETS).shape == (0, 2, 3)  # weights, quantities: no rows


def test_one_row_packed_in_a_kernel_is_that_row_of_signal_words(rng):
    for shorts in (False, True):
        signals = random_signals(rng, 6, shorts)
        expected = signal_words(signals, 6, N_ASSETS)
        for t in range(6):
            rows = [s[t] if s.size else np.zeros(0, dtype=bool) for s in signals]
            words = np.full((2, 3), np.uint64(2**64 - 1))  # stale bits are cleared
            _pack_row(*rows, words)
            assert words.tolist() == expected[t].tolist()


class Rows(Strategy):
    def __init__(self, entries: np.ndarray, exits: np.ndarray) -> None:
        self.entries, self.exits = entries, exits

    def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
        broker.order_signals(self.entries[data.index], self.exits[data.index], size=0.001)


def test_both_drivers_order_a_wide_universe_asset_by_asset_across_words():
    n_bars = 4
    times = np.datetime64("2024-01-01") + np.arange(n_bars).astype("timedelta64[D]")
    prices = np.full((n_bars, N_ASSETS), 10.0) + np.arange(N_ASSETS) / 100
    fields = {"open": prices, "high": prices, "low": prices, "close": prices, "volume": prices}
    feed = DataFeed.from_arrays(times, [f"A{i:03d}" for i in range(N_ASSETS)], fields)
    entries = np.zeros((n_bars, N_ASSETS), dtype=bool)
    exits = np.zeros((n_bars, N_ASSETS), dtype=bool)
    chosen = [0, 1, 63, 64, 65, 127, 128, 149]  # each edge of each word
    entries[0, chosen] = True
    exits[2, [1, 64, 149]] = True
    config = BacktestConfig(initial_cash=1_000_000.0)
    compiled = run_signals(feed, entries, exits, size=0.001, config=config)
    orders = compiled.orders.select("asset", "side").rows()
    buys = [f"A{i:03d}" for i in chosen]
    sells = ["A001", "A064", "A149"]
    assert orders == [(a, "buy") for a in buys] + [(a, "sell") for a in sells]
    event = Engine(feed, Rows(entries, exits), config).run()
    assert event.fills.equals(compiled.fills)
    assert event.equity.equals(compiled.equity)
