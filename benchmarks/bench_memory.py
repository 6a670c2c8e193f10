"""Memory benchmark: peak resident size of a user's process against the size of the dense arrays.

Builds a long-format Parquet file (500 assets x 2520 daily bars: OHLCV and a score column) in a
temporary directory, then, in a fresh process, loads it with ``DataFeed(path)``, runs
``run_signals`` on the score and an ``Engine`` run of ``TopNStrategy``, and prints:

- the peak RSS after the imports (the baseline no data can lower),
- the peak RSS after a warm-up run on a tiny Parquet file (numba kernels loaded from the
  cache, polars' Parquet reader paged in),
- the peak RSS after loading the file and both runs,
- the dense arrays' size (``sum(feed.array(f).nbytes)``) and the ratio of the growth over the
  warm baseline to it.

    python benchmarks/bench_memory.py [--assets 500] [--bars 2520] [--runs 3]

Each figure is the min and median over ``--runs`` fresh processes; the verdict compares the
median peak growth over the warm baseline with 2x the dense arrays.

Peak RSS is read two ways: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and ``VmHWM`` from
``/proc/self/status``. Linux carries ``ru_maxrss`` over from the parent across fork and exec,
so this script keeps its own process small (standard library only) and builds the file in a
separate process; ``VmHWM`` belongs to the measured process alone. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_BUILD = """
import sys
from ml4t.backtest.datasets import synthetic_universe
n_assets, n_bars, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
frame = synthetic_universe(n_assets=n_assets, n_bars=n_bars, seed=1)
frame.select("timestamp", "asset", "open", "high", "low", "close", "volume", "score").write_parquet(
    path
)
"""

_MEASURE = """
import resource, sys, warnings

def peaks():
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = [x for x in open("/proc/self/status") if x.startswith("VmHWM")][0]
    return maxrss, int(line.split()[1]) / 1024

import numpy as np
import polars as pl
from ml4t.backtest import BacktestConfig, DataFeed, Engine, TopNStrategy, run_signals
from ml4t.backtest.datasets import synthetic_universe

after_imports = peaks()
warnings.simplefilter("ignore")
cfg = BacktestConfig(initial_cash=1_000_000, commission=0.001)
# The warm-up reads a tiny Parquet file too: polars pages in its Parquet reader's code on the
# first read (about 25 MB of its shared library), which is code, not data.
tiny_path = sys.argv[1] + ".tiny.parquet"
synthetic_universe(n_assets=5, n_bars=60, seed=1).write_parquet(tiny_path)
tiny = DataFeed(tiny_path)
run_signals(tiny, tiny.array("score") > 1.0, tiny.array("score") < 0.0, size=0.1, config=cfg)
Engine(tiny, TopNStrategy("score", n=2, rebalance_every=5), cfg).run()
del tiny
warm = peaks()

feed = DataFeed(sys.argv[1])
dense = sum(feed.array(f).nbytes for f in feed.fields) / 2**20
loaded = peaks()
score = feed.array("score")
run_signals(feed, score > 1.0, score < 0.0, size=0.01, config=cfg)
Engine(feed, TopNStrategy("score", n=50, rebalance_every=21), cfg).run()
after_run = peaks()
print(*after_imports, *warm, *loaded, *after_run, dense)
"""


def _measure(path: Path) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True
    )
    return [float(x) for x in out.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes measured (3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prices.parquet"
        subprocess.run(
            [sys.executable, "-c", _BUILD, str(args.assets), str(args.bars), str(path)],
            check=True,
        )
        runs = [_measure(path) for _ in range(args.runs)]
        size_mb = path.stat().st_size / 2**20
    # Columns of a run: imports, warm, loaded, after both runs (ru_maxrss and VmHWM each), dense.
    hwm = {name: [r[i] for r in runs] for name, i in (("imp", 1), ("warm", 3), ("load", 5))}
    hwm["run"] = [r[7] for r in runs]
    dense = runs[0][8]
    growth = [r[7] - r[3] for r in runs]
    over_imports = [r[7] - r[1] for r in runs]

    def stat(values: list[float]) -> str:
        return f"min {min(values):6.0f}  median {statistics.median(values):6.0f}"

    print(
        f"{args.assets} assets x {args.bars} bars, long Parquet {size_mb:.0f} MB on disk; "
        f"{args.runs} fresh processes, peak resident (VmHWM) in MB"
    )
    print(f"dense arrays (feed.array of its 6 fields): {dense:.1f} MB; 2x = {2 * dense:.1f} MB")
    print(f"after imports                 {stat(hwm['imp'])}")
    print(f"after a tiny warm-up run      {stat(hwm['warm'])}")
    print(f"after DataFeed(path)          {stat(hwm['load'])}")
    print(f"after run_signals + Engine    {stat(hwm['run'])}")
    median = statistics.median(growth)
    verdict = "met" if median <= 2 * dense else "not met"
    print(
        f"peak growth over the warm baseline: {stat(growth)} MB = "
        f"{min(growth) / dense:.2f} / {median / dense:.2f} x the dense arrays "
        f"(goal <= 2x: {verdict})"
    )
    print(
        f"peak growth over the imports:      {stat(over_imports)} MB = "
        f"{min(over_imports) / dense:.2f} / {statistics.median(over_imports) / dense:.2f} x "
        "(includes loading the numba kernels and polars' Parquet reader)"
    )


if __name__ == "__main__":
    main()
