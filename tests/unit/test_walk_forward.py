"""Walk-forward: the folds' windows, no look-ahead in fitting, and the stitched result."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import (
    BacktestConfig,
    ConfigError,
    DataError,
    DataFeed,
    SignalStrategy,
    Strategy,
)
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.research import RunStore, walk_forward
from ml4t.backtest.research.walk_forward import make_folds


def windows(folds):  # type: ignore[no-untyped-def]
    return [(f.train_start, f.train_end, f.test_start, f.test_end) for f in folds]


def test_rolling_anchored_and_purged_windows():
    assert windows(make_folds(10, 4, 2)) == [(0, 4, 4, 6), (2, 6, 6, 8), (4, 8, 8, 10)]
    assert windows(make_folds(10, 4, 3, anchored=True)) == [(0, 4, 4, 7), (0, 7, 7, 10)]
    assert windows(make_folds(10, 4, 2, purge_bars=1)) == [
        (0, 4, 5, 7),
        (2, 6, 7, 9),
        (4, 8, 9, 10),
    ]
    assert windows(make_folds(10, 4, 2, step=3)) == [(0, 4, 4, 6), (3, 7, 7, 9)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step": 1}, "step must be"),
        ({"train_bars": 0}, "train_bars"),
        ({"train_bars": 10}, "no fold fits"),
    ],
)
def test_bad_windows_are_config_errors(kwargs, match):
    args = {"n_bars": 10, "train_bars": 4, "test_bars": 2} | kwargs
    with pytest.raises(ConfigError, match=match):
        make_folds(**args)


def test_fit_sees_only_its_training_window():
    feed = DataFeed(synthetic_universe(n_assets=6, n_bars=200, seed=3))
    seen = []

    def fit(train):  # type: ignore[no-untyped-def]
        seen.append(train)
        return SignalStrategy("score", entry_threshold=1.0, exit_threshold=0.0)

    wf = walk_forward(feed, fit, train_bars=60, test_bars=40, purge_bars=5)
    assert len(seen) == len(wf.folds) == 4  # tests at 65, 105, 145, 185 (15 bars)
    close = feed.array("close")
    for train, fold in zip(seen, wf.folds, strict=True):
        assert train.n_bars == 60
        assert train.timestamps[-1] < feed.timestamps[fold.test_start]
        assert np.array_equal(train.array("close"), close[fold.train_start : fold.train_end])
        # Copies: nothing past the window is reachable from what fit got.
        for name in train.fields:
            assert not np.shares_memory(train.array(name), feed.array(name))


def test_fit_cannot_tell_what_comes_after_its_window():
    base = synthetic_universe(n_assets=4, n_bars=120, seed=5)
    cut = base["timestamp"].unique().sort()[70]
    changed = base.with_columns(
        (base["close"] * np.where(base["timestamp"] > cut, 2.0, 1.0)).alias("close")
    ).with_columns(
        high=np.maximum(base["high"], base["close"] * 2.0),
    )

    def fingerprints(frame):  # type: ignore[no-untyped-def]
        got = []

        def fit(train):  # type: ignore[no-untyped-def]
            got.append(train.array("close").tobytes())
            return SignalStrategy("score", entry_threshold=1.0, exit_threshold=0.0)

        walk_forward(DataFeed(frame), fit, train_bars=40, test_bars=30)
        return got

    before, after = fingerprints(base), fingerprints(changed)
    # Folds whose training ends by bar 70 saw the same data; later ones differ.
    assert before[:2] == after[:2]
    assert before[2] != after[2]


def test_stitched_result_chains_the_folds_equity_and_keeps_every_fill(tmp_path):
    feed = DataFeed(synthetic_universe(n_assets=8, n_bars=220, seed=8))
    config = BacktestConfig(initial_cash=50_000, commission=0.001)

    def fit(train):  # type: ignore[no-untyped-def]
        # "Training": the entry threshold is the training window's 80th score percentile.
        threshold = float(np.nanquantile(train.array("score"), 0.8))
        return SignalStrategy("score", entry_threshold=threshold, exit_threshold=0.0, weight=0.2)

    wf = walk_forward(
        feed, fit, train_bars=100, test_bars=40, config=config, store=tmp_path / "r.duckdb"
    )
    results = wf.fold_results
    assert results[0].initial_cash == 50_000
    for before, after in itertools.pairwise(results):
        assert after.initial_cash == before.final_value
    stitched = wf.result
    assert stitched.final_value == results[-1].final_value
    assert stitched.equity.height == sum(r.equity.height for r in results) == 120
    assert stitched.fills.height == sum(r.fills.height for r in results)
    assert stitched.equity["timestamp"][0] == feed.datetimes[100]
    assert wf.table["fold"].to_list() == [0, 1, 2]
    assert wf.boundaries == [feed.datetimes[f.test_start] for f in wf.folds]
    store = RunStore(tmp_path / "r.duckdb")
    assert store.runs().height == 1 + 3 + 1  # the group, three folds, the stitched run


def test_the_stitched_report_marks_each_fold(tmp_path):
    feed = DataFeed(synthetic_universe(n_assets=5, n_bars=200, seed=2))

    def fit(train):  # type: ignore[no-untyped-def]
        return SignalStrategy("score", entry_threshold=1.0, exit_threshold=0.0)

    wf = walk_forward(feed, fit, train_bars=80, test_bars=40)
    page = wf.result.report(tmp_path / "wf.html", boundaries=wf.boundaries).read_text()
    # Every fold start is a dotted vertical line on each of the five time charts.
    assert page.count('"dash":"dot"') == 5 * len(wf.folds)


class BuyOnFirstBar(Strategy):
    """Buys ``quantity`` of A on a fold's first bar; optionally again on ``late_bar``."""

    def __init__(self, quantity: float, late_bar: int | None = None) -> None:
        self.quantity = quantity
        self.late_bar = late_bar

    def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
        if data.index == 0 or data.index == self.late_bar:
            broker.submit_order("A", self.quantity)


# Eight daily bars of A as (open, close); folds of train 2, test 3 test bars [2, 5) and [5, 8).
EIGHT_BARS = [(10, 10), (10, 11), (12, 13), (13, 14), (15, 16), (16, 15), (14, 13), (13, 12)]


def test_each_fold_ends_flat_with_a_fold_end_fill_at_its_last_close_costs_paid(make_feed):
    feed = make_feed({"A": EIGHT_BARS})
    config = BacktestConfig(initial_cash=10_000, commission=0.001)
    wf = walk_forward(
        feed, lambda train: BuyOnFirstBar(100), train_bars=2, test_bars=3, config=config
    )
    fills = wf.result.fills
    # Fold 0 buys at bar 3's open (13) and is closed at bar 4's close (16); fold 1 buys at bar
    # 6's open (14) and is closed at bar 7's close (12). Commission 0.1% of each notional.
    assert fills["reason"].to_list() == ["order", "fold_end", "order", "fold_end"]
    assert fills["side"].to_list() == ["buy", "sell", "buy", "sell"]
    assert fills["price"].to_list() == [13.0, 16.0, 14.0, 12.0]
    assert fills["commission"].to_list() == pytest.approx([1.3, 1.6, 1.4, 1.2], rel=1e-12)
    fold0 = 10_000 - 1_300 - 1.3 + 1_600 - 1.6  # 10,297.1
    fold1 = fold0 - 1_400 - 1.4 + 1_200 - 1.2  # 10,094.5
    assert wf.fold_results[0].final_value == pytest.approx(fold0, rel=1e-12)
    assert wf.fold_results[1].initial_cash == pytest.approx(fold0, rel=1e-12)
    assert wf.result.final_value == pytest.approx(fold1, rel=1e-12)
    assert wf.result.equity["positions_value"][-1] == 0.0


def test_stitched_trades_are_the_folds_round_trips_and_add_up_to_the_equity(make_feed):
    feed = make_feed({"A": EIGHT_BARS})
    config = BacktestConfig(initial_cash=10_000, commission=0.001)
    wf = walk_forward(
        feed, lambda train: BuyOnFirstBar(100), train_bars=2, test_bars=3, config=config
    )
    trades = wf.result.trades
    assert trades["status"].to_list() == ["closed", "closed"]
    assert trades["exit_reason"].to_list() == ["fold_end", "fold_end"]
    # 100 x (16 - 13) less 2.9 of commission; 100 x (12 - 14) less 2.6.
    assert trades["pnl"].to_list() == pytest.approx([297.1, -202.6], rel=1e-12)
    assert trades["pnl"].sum() == pytest.approx(wf.result.final_value - 10_000, rel=1e-12)


def test_orders_working_at_a_fold_end_are_cancelled_not_filled_at_its_close(make_feed):
    feed = make_feed({"A": EIGHT_BARS})
    # A buy decided on the fold's last bar would fill at the next fold's open: it is cancelled.
    wf = walk_forward(feed, lambda train: BuyOnFirstBar(100, late_bar=2), train_bars=2, test_bars=3)
    orders = wf.fold_results[0].orders
    assert orders["status"].to_list() == ["filled", "cancelled", "filled"]
    assert orders["reason"].to_list()[1] == "open_at_end"
    assert orders["origin"].to_list() == ["order", "order", "fold_end"]
    assert wf.fold_results[0].fills["quantity"].to_list() == [100.0, 100.0]


def test_a_fold_that_cannot_close_at_its_last_bar_is_a_data_error(make_feed):
    bars: list[tuple[float, float] | None] = list(EIGHT_BARS)
    bars[4] = None  # A has no price on fold 0's last bar: nothing can sell it there
    feed = make_feed({"A": bars, "B": EIGHT_BARS})
    with pytest.raises(DataError, match="fold 0 cannot end flat: asset A still holds 100"):
        walk_forward(feed, lambda train: BuyOnFirstBar(100), train_bars=2, test_bars=3)


def test_bars_per_year_come_from_the_feed_not_the_gapped_test_timeline():
    # Business days: 252 bars a year. Test windows of 50 every 80 bars leave 30-bar gaps, over
    # which the stitched timeline alone would count about 252 * 50 / 80 bars a year.
    feed = DataFeed(synthetic_universe(n_assets=4, n_bars=300, seed=1))

    def fit(train):  # type: ignore[no-untyped-def]
        return SignalStrategy("score", entry_threshold=0.5, exit_threshold=0.0, weight=0.2)

    wf = walk_forward(feed, fit, train_bars=100, test_bars=50, step=80)
    result = wf.result
    assert result.periods_per_year == 252.0
    assert all(r.periods_per_year == 252.0 for r in wf.fold_results)
    equity = result.equity["equity"].to_numpy()
    returns = np.diff(np.concatenate(([result.initial_cash], equity))) / np.concatenate(
        ([result.initial_cash], equity[:-1])
    )
    assert result.metrics["volatility"] == pytest.approx(
        np.std(returns, ddof=1) * np.sqrt(252.0), rel=1e-12
    )


def test_an_order_from_on_start_shows_its_folds_first_bar_as_submitted():
    feed = DataFeed(synthetic_universe(n_assets=2, n_bars=60, seed=2))
    asset = str(feed.assets[0])

    class BuyAtStart(Strategy):
        def on_start(self, broker):  # type: ignore[no-untyped-def]
            broker.submit_order(asset, 1)

        def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
            pass

    wf = walk_forward(feed, lambda train: BuyAtStart(), train_bars=20, test_bars=20)
    starts = [feed.datetimes[f.test_start] for f in wf.folds]
    orders = wf.result.orders.filter(pl.col("origin") == "order")
    # Each fold's on_start order is decided before that fold's first bar and fills at its open:
    # it shows that bar, not the last bar of the fold before.
    assert orders["submitted"].to_list() == starts
    assert orders["ended"].to_list() == starts
