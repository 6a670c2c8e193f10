"""Walk-forward: 20 folds over 500 assets x 2,520 daily bars, and where the time goes.

Each fold trains on 520 bars (``fit`` picks the entry threshold: the 90th percentile of the
training window's score) and tests on the next 100, with ``SignalStrategy`` (1% of equity per
entry) and a 10% stop-loss on the event driver: 20 test windows cover bars 520 to 2,520. The
figure is the whole ``walk_forward`` call, split into ``fit``, the folds' runs (``Engine.run``)
and the rest (slicing the feed, stitching the folds); then the stitched result's metrics. For
scale: one ``Engine`` run of the same strategy over the 2,000 test bars at once.

    python benchmarks/bench_walk_forward.py [--assets 500] [--bars 2520] [--folds 20]

Not part of ``make test``: timings on shared machines are noisy; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from ml4t.backtest import BacktestConfig, DataFeed, Engine, SignalStrategy
from ml4t.backtest.research import walk_forward
from ml4t.backtest.risk import StopLoss

TRAIN_BARS = 520
STOP = StopLoss(0.1)


def make_feed(n_assets: int, n_bars: int, seed: int = 5) -> DataFeed:
    rng = np.random.default_rng(seed)
    shape = (n_bars, n_assets)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, shape), axis=0))
    prev = np.concatenate([close[:1], close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, 0.005, shape))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, shape))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, shape))
    times = np.datetime64("2010-01-01") + np.arange(n_bars).astype("timedelta64[D]")
    fields = {"open": open_, "high": high, "low": low, "close": close,
              "volume": np.full(shape, 1e6), "score": rng.normal(0.0, 1.0, shape)}  # fmt: skip
    return DataFeed.from_arrays(times, [f"A{i:03d}" for i in range(n_assets)], fields)


FIT_SECONDS = [0.0]


def fit(train: DataFeed) -> tuple[SignalStrategy, StopLoss]:
    start = time.perf_counter()
    threshold = float(np.nanquantile(train.array("score"), 0.9))
    FIT_SECONDS[0] += time.perf_counter() - start
    return SignalStrategy("score", entry_threshold=threshold, exit_threshold=0.0, weight=0.01), STOP


class _Timed:
    """Engine.run with the seconds it took added up."""

    seconds = 0.0
    inner: Any = Engine.run

    @staticmethod
    def run(self: Engine, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return _Timed.inner(self, *args, **kwargs)
        finally:
            _Timed.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--folds", type=int, default=20)
    args = parser.parse_args()
    feed = make_feed(args.assets, args.bars)
    test_bars = (args.bars - TRAIN_BARS) // args.folds
    config = BacktestConfig(initial_cash=1_000_000.0, commission=0.001)
    small = feed.slice(0, 200)
    walk_forward(small, fit, train_bars=100, test_bars=50, config=config)  # loads the kernels
    FIT_SECONDS[0] = 0.0

    print(f"{args.assets} assets x {args.bars} bars, {args.folds} folds of {TRAIN_BARS} "
          f"training + {test_bars} test bars, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip
    Engine.run = _Timed.run  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        out = walk_forward(feed, fit, train_bars=TRAIN_BARS, test_bars=test_bars, config=config)
        total = time.perf_counter() - start
    finally:
        Engine.run = _Timed.inner  # type: ignore[method-assign]
    assert len(out.folds) == args.folds, len(out.folds)
    start = time.perf_counter()
    metrics = out.result.metrics
    metrics_s = time.perf_counter() - start
    rest = total - FIT_SECONDS[0] - _Timed.seconds
    print(f"walk_forward: {total:.2f} s ({total / args.folds * 1e3:.0f} ms a fold): fit "
          f"{FIT_SECONDS[0]:.2f} s, fold runs {_Timed.seconds:.2f} s, slicing and stitching "
          f"{rest:.2f} s; fills {metrics['n_fills']:.0f}")  # fmt: skip
    print(f"stitched result's metrics: {metrics_s:.2f} s")
    fold_metrics = time.perf_counter()
    out.table  # noqa: B018  # each fold's metrics
    print(f"the fold table (each fold's metrics): {time.perf_counter() - fold_metrics:.2f} s")

    first = out.folds[0].test_start
    test = feed.slice(first, first + test_bars * args.folds)
    strategy, rules = fit(feed.slice(0, TRAIN_BARS))
    start = time.perf_counter()
    whole = Engine(test, strategy, config, position_rules=rules).run()
    one = time.perf_counter() - start
    print(f"one Engine run over the {test.n_bars} test bars at once: {one:.2f} s "
          f"(walk_forward / it: {total / one:.1f}x); its metrics "
          f"{_seconds(lambda: whole.metrics):.2f} s")  # fmt: skip
    print(f"load average now {os.getloadavg()[0]:.2f}")


def _seconds(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
