"""Core-engine benchmark: the README's top-5 strategy on 500 assets x 2520 daily bars.

Prints asset-bars per second of the event driver with a vectorized strategy, and memory:
the peak of Python-tracked allocations during the run (numpy buffers included), and the peak
resident size of a fresh process that does what a user does (read Parquet, build the feed, run),
next to the resident size of the same process after its imports alone.

    python benchmarks/bench_core.py [--assets 500] [--bars 2520] [--repeat 3]

Not part of `make test`: timings on shared machines are noisy, so nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

import numpy as np

from ml4t.backtest import BacktestConfig, BarView, Broker, DataFeed, Engine, Strategy
from ml4t.backtest.datasets import synthetic_universe


class TopFive(Strategy):
    """The README example: each bar, hold the 5 highest scores at 20% each."""

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        score = data["score"]
        top = data.assets[np.argsort(-np.nan_to_num(score, nan=-np.inf))[:5]]
        broker.rebalance({a: 0.2 for a in top})


def user_process_memory(parquet: Path) -> str:
    """Run DataFeed(parquet path) -> backtest in a fresh process; report its peak RSS."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    code = f"""
import polars as pl
from ml4t.backtest import BacktestConfig, DataFeed, Engine
import ml4t.backtest.kernels
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
from bench_core import TopFive
def hwm():
    line = [x for x in open("/proc/self/status") if x.startswith("VmHWM")][0]
    return int(line.split()[1]) / 1024
base = hwm()
feed = DataFeed({str(parquet)!r})
cfg = BacktestConfig(initial_cash=1_000_000, commission=0.001, slippage=0.0005)
Engine(feed, TopFive(), cfg).run()
peak = hwm()
print(f"{{peak:.0f}} MB peak RSS ({{base:.0f}} MB after imports, "
      f"{{peak - base:.0f}} MB for data and run)")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    config = BacktestConfig(initial_cash=1_000_000, commission=0.001, slippage=0.0005)

    t0 = time.perf_counter()
    Engine(DataFeed(synthetic_universe(n_assets=5, n_bars=30, seed=0)), TopFive(), config).run()
    warmup = time.perf_counter() - t0

    t0 = time.perf_counter()
    prices = synthetic_universe(n_assets=args.assets, n_bars=args.bars, seed=42)
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    feed = DataFeed(prices)
    t_feed = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        parquet = Path(tmp) / "prices.parquet"
        prices.write_parquet(parquet)
        del prices
        user_memory = user_process_memory(parquet)

    times = []
    result = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = Engine(feed, TopFive(), config).run()
        times.append(time.perf_counter() - t0)
    assert result is not None

    tracemalloc.start()
    Engine(feed, TopFive(), config).run()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    best = min(times)
    asset_bars = args.assets * args.bars
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()}"
    )
    print(
        f"workload: {args.assets} assets x {args.bars} bars = {asset_bars:,} asset-bars, "
        f"top-5 rebalance every bar, {result.metrics['n_fills']:.0f} fills, "
        f"final value {result.final_value:,.2f}"
    )
    print(f"first run on tiny data (numba cache load or compile): {warmup:.2f} s")
    print(f"synthetic data: {t_data:.2f} s, DataFeed build: {t_feed:.2f} s")
    print(
        f"backtest run: best {best * 1e3:.1f} ms of {args.repeat} "
        f"(all: {', '.join(f'{t * 1e3:.0f}' for t in times)} ms)"
    )
    print(f"speed: {asset_bars / best / 1e6:.2f} million asset-bars per second")
    print(f"memory, run only (tracemalloc peak): {traced_peak / 2**20:.1f} MB")
    print(f"memory, fresh process reading Parquet then running: {user_memory}")


if __name__ == "__main__":
    main()
