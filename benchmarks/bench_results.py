"""Where a run's time goes: the compiled run, then its trades, metrics and fills frame.

The workload of ``bench_sweep.py`` with random decisions: 100 assets x 2520 daily bars, entries
and exits each drawn with probability 5% per asset and bar, a 5% stop loss, fills at the close
the signal appears (the "vectorbt" preset, 0.1% commission). Each figure is the best of 5 warm
calls; trades, metrics and fills are timed on a fresh result each call (they are cached on it).

    python benchmarks/bench_results.py [--assets 100] [--bars 2520] [--calls 5]

Not part of ``make test``: timings on shared machines are noisy; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from bench_sweep import CASH, COMMISSION, market

from ml4t.backtest import BacktestConfig, BacktestResult, DataFeed, compiled, run_signals
from ml4t.backtest.results.trades import match_trades, trade_excursions
from ml4t.backtest.risk import StopLoss

_kernel_seconds: list[float] = []


def _timed_kernel(*args: object) -> object:
    """The compiled driver's loop, timed: the run's time less this is its Python around it."""
    start = time.perf_counter()
    out = _run_bars(*args)
    _kernel_seconds.append(time.perf_counter() - start)
    return out


_run_bars = compiled._run_bars
compiled._run_bars = _timed_kernel


def best(
    calls: int, setup: Callable[[], BacktestResult], read: Callable[[BacktestResult], object]
) -> float:
    times = []
    for _ in range(calls):
        result = setup()
        start = time.perf_counter()
        read(result)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    data = market(args.assets, args.bars)
    fields = {k: data[k] for k in ("open", "high", "low", "close")}
    fields |= {"volume": np.full(data["close"].shape, 1e6)}
    feed = DataFeed.from_arrays(data["times"], data["assets"], fields)
    rng = np.random.default_rng(7)
    shape = data["close"].shape
    entries = rng.random(shape) < 0.05
    exits = rng.random(shape) < 0.05
    config = BacktestConfig.preset("vectorbt", initial_cash=CASH, commission=COMMISSION)

    def run() -> BacktestResult:
        return run_signals(
            feed, entries, exits, size=CASH * 0.01, size_type="value", config=config,
            position_rules=StopLoss(0.05),
        )  # fmt: skip

    first = run()  # compiles or loads the kernels
    _ = first.metrics
    _kernel_seconds.clear()
    run_s = min(_timed(run) for _ in range(args.calls))
    kernel_s = min(_kernel_seconds)
    rec = first.records
    last_bar = len(rec.timestamps) - 1
    match_s = min(
        _timed(lambda: match_trades(rec.fills, rec.last_price)) for _ in range(args.calls)
    )
    t = match_trades(rec.fills, rec.last_price)
    excursions_s = min(
        _timed(lambda: trade_excursions(t, rec.highs, rec.lows, last_bar=last_bar))
        for _ in range(args.calls)
    )
    trades_s = best(args.calls, run, lambda r: r.trades)
    metrics_s = best(args.calls, run, lambda r: r.metrics)
    fills_s = best(args.calls, run, lambda r: r.fills)
    equity_s = best(args.calls, run, lambda r: r.equity)
    both_s = best(args.calls, run, lambda r: (r.trades, r.metrics))
    print(f"{args.assets} assets x {args.bars} bars: {len(first.records.fills):,} fills, "
          f"{first.trades.height:,} trades; best of {args.calls} warm calls")  # fmt: skip
    print(f"run (run_signals):              {1e3 * run_s:8.2f} ms")
    print(f"  of which the compiled loop:   {1e3 * kernel_s:8.2f} ms")
    print(f"trade matching (records):       {1e3 * match_s:8.2f} ms")
    print(f"MAE / MFE of every trade:       {1e3 * excursions_s:8.2f} ms")
    print(f"trades frame:                   {1e3 * trades_s:8.2f} ms")
    print(f"metrics (trades included):      {1e3 * metrics_s:8.2f} ms")
    print(f"trades + metrics:               {1e3 * both_s:8.2f} ms  "
          f"({both_s / run_s:.2f}x the run)")  # fmt: skip
    print(f"fills frame:                    {1e3 * fills_s:8.2f} ms")
    print(f"equity frame:                   {1e3 * equity_s:8.2f} ms")


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
