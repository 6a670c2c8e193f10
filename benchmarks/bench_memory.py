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

    python benchmarks/bench_memory.py [--assets 500] [--bars 2520]

Peak RSS is read two ways: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and ``VmHWM`` from
``/proc/self/status``. Linux carries ``ru_maxrss`` over from the parent across fork and exec,
so this script keeps its own process small (standard library only) and builds the file in a
separate process; ``VmHWM`` belongs to the measured process alone. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--bars", type=int, default=2520)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prices.parquet"
        subprocess.run(
            [sys.executable, "-c", _BUILD, str(args.assets), str(args.bars), str(path)],
            check=True,
        )
        out = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True
        )
        size_mb = path.stat().st_size / 2**20
    imp_ru, imp_hwm, warm_ru, warm_hwm, load_ru, load_hwm, run_ru, run_hwm, dense = map(
        float, out.stdout.split()
    )
    print(f"{args.assets} assets x {args.bars} bars, long Parquet {size_mb:.0f} MB on disk")
    print(f"dense arrays (feed.array of its 6 fields): {dense:.0f} MB")
    print("                              ru_maxrss    VmHWM")
    print(f"after imports                 {imp_ru:7.0f} MB {imp_hwm:7.0f} MB")
    print(f"after a tiny warm-up run      {warm_ru:7.0f} MB {warm_hwm:7.0f} MB")
    print(f"after DataFeed(path)          {load_ru:7.0f} MB {load_hwm:7.0f} MB")
    print(f"after run_signals + Engine    {run_ru:7.0f} MB {run_hwm:7.0f} MB")
    growth = run_hwm - warm_hwm
    print(
        f"growth over the warm baseline: {growth:.0f} MB = {growth / dense:.2f} x the dense arrays"
        f"; over the imports: {run_hwm - imp_hwm:.0f} MB = {(run_hwm - imp_hwm) / dense:.2f} x"
    )


if __name__ == "__main__":
    main()
