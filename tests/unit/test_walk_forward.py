"""Walk-forward: the folds' windows, no look-ahead in fitting, and the stitched result."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed, SignalStrategy
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
