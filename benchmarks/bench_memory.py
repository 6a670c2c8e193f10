"""Memory benchmark: peak resident size of a user's process against the size of the dense arrays.

Builds a long-format Parquet file (500 assets x 2520 daily bars: OHLCV and a score column) in a
temporary directory, then, in a fresh process, loads it with ``DataFeed(path)``, runs
``run_signals`` on the score and an ``Engine`` run of ``TopNStrategy``, and prints:

- the peak RSS after the imports (the baseline no data can lower),
- the peak RSS after a warm-up run on a tiny Parquet file (numba kernels loaded from the
  cache, which initialises LLVM; polars' Parquet reader paged in),
- the peak RSS after loading the file and both runs,
- the dense arrays' size (``sum(feed.array(f).nbytes)``) and the ratios to it of the peak's
  growth over the imports (issue 15's goal: at most 2x) and over the warm baseline.

    python benchmarks/bench_memory.py [--assets 500] [--bars 2520] [--runs 3]

Each figure is the min and median over ``--runs`` fresh processes; each verdict compares a
median peak growth with 2x the dense arrays.

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
synthetic_universe(n_assets=5, n_bars=60, seed=1).write_parquet(path + ".tiny.parquet")
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

after_imports = peaks()
warnings.simplefilter("ignore")
cfg = BacktestConfig(initial_cash=1_000_000, commission=0.001)
# The warm-up reads a tiny Parquet file (written by the build step, as a user's process only
# reads): polars pages in its Parquet reader's code on the first read, which is code, not data.
tiny = DataFeed(sys.argv[1] + ".tiny.parquet")
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
    print(
        f"dense arrays (feed.array of its 6 fields): {dense * 2**20:,.0f} bytes = {dense:.1f} MB; "
        f"2x = {2 * dense:.1f} MB"
    )
    print(f"after imports                 {stat(hwm['imp'])}")
    print(f"after a tiny warm-up run      {stat(hwm['warm'])}")
    print(f"after DataFeed(path)          {stat(hwm['load'])}")
    print(f"after run_signals + Engine    {stat(hwm['run'])}")
    for label, values, note in (
        ("imports", over_imports, "issue 15's goal; includes numba's LLVM and polars' reader"),
        ("warm baseline", growth, "the data's own cost"),
    ):
        median = statistics.median(values)
        verdict = "met" if median <= 2 * dense else "not met"
        print(
            f"peak growth over the {label + ':':15s} {stat(values)} MB = "
            f"{min(values) / dense:.2f} / {median / dense:.2f} x the dense arrays "
            f"(goal <= 2x: {verdict}; {note})"
        )


if __name__ == "__main__":
    main()
