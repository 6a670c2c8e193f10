"""A parameter sweep against VectorBT's broadcasting: runs per second, same metrics per run.

The grid: entry threshold x exit threshold x stop-loss width on a model score, 10 x 10 x 10 =
1000 combinations by default, each a 100-asset portfolio over 2520 daily bars (cash shared
across the assets, 1% of the initial cash per position, 0.1% commission, fills at the close
the signal appears, as VectorBT's defaults). Ours: ``sweep`` with the compiled driver on local
processes (one per core). VectorBT: one ``Portfolio.from_signals`` call with every combination
as a column group. Both final values are compared run by run before any timing is reported.

    python benchmarks/bench_sweep.py [--assets 100] [--bars 2520] [--side 10]

Not part of ``make test``: timings on shared machines are noisy; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from typing import Any

import numpy as np

from ml4t.backtest import BacktestConfig, BacktestResult, DataFeed, run_signals
from ml4t.backtest.research import sweep
from ml4t.backtest.risk import StopLoss

COMMISSION = 0.001
CASH = 1_000_000.0


def market(n_assets: int, n_bars: int, seed: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    shape = (n_bars, n_assets)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, shape), axis=0))
    prev = np.concatenate([close[:1], close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, 0.005, shape))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, shape))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, shape))
    score = rng.normal(0.0, 1.0, shape)
    times = np.datetime64("2010-01-01") + np.arange(n_bars).astype("timedelta64[D]")
    assets = [f"A{i:03d}" for i in range(n_assets)]
    return {
        "open": open_, "high": high, "low": low, "close": close, "score": score,
        "times": times, "assets": assets,
    }  # fmt: skip


def grid(side: int) -> dict[str, list[float]]:
    return {
        "entry": list(np.round(np.linspace(1.0, 2.0, side), 6)),
        "exit": list(np.round(np.linspace(-1.0, 0.0, side), 6)),
        "stop": list(np.round(np.linspace(0.02, 0.2, side), 6)),
    }


def signals_run(feed: DataFeed, config: BacktestConfig, params: dict[str, Any]) -> BacktestResult:
    """One combination on the compiled driver (module level: sent to worker processes)."""
    score = feed.array("score")
    return run_signals(
        feed, score > params["entry"], score < params["exit"], size=CASH * 0.01,
        size_type="value", config=config, position_rules=StopLoss(params["stop"]),
    )  # fmt: skip


def vectorbt_grid(data: dict[str, Any], g: dict[str, list[float]]) -> tuple[float, Any]:
    """Every combination in one from_signals call; returns (seconds, final value per run)."""
    import pandas as pd
    import vectorbt as vbt

    index = pd.DatetimeIndex(data["times"])
    combos = list(itertools.product(g["entry"], g["exit"], g["stop"]))
    n = len(data["assets"])
    score = data["score"]
    start = time.perf_counter()
    entries = np.concatenate([score > e for e, _, _ in combos], axis=1)
    exits = np.concatenate([score < x for _, x, _ in combos], axis=1)
    stops = np.repeat([s for _, _, s in combos], n)
    groups = np.repeat(np.arange(len(combos)), n)

    def tile(x: np.ndarray) -> Any:
        return pd.DataFrame(np.tile(x, len(combos)), index=index)

    pf = vbt.Portfolio.from_signals(
        tile(data["close"]), pd.DataFrame(entries, index=index),
        pd.DataFrame(exits, index=index), open=tile(data["open"]), high=tile(data["high"]),
        low=tile(data["low"]), size=CASH * 0.01, size_type="value", fees=COMMISSION,
        init_cash=CASH, sl_stop=stops[None, :], group_by=groups, cash_sharing=True, freq="1D",
    )  # fmt: skip
    finals = np.asarray(pf.value())[-1]
    return time.perf_counter() - start, finals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--side", type=int, default=10, help="values per parameter (side^3 runs)")
    parser.add_argument(
        "--skip-vectorbt",
        action="store_true",
        help="ours only (VectorBT's one call needs over 20 GB for 1000 runs of 100 x 2520)",
    )
    args = parser.parse_args()
    data = market(args.assets, args.bars)
    fields = {k: data[k] for k in ("open", "high", "low", "close")}
    fields |= {"volume": np.full(data["close"].shape, 1e6), "score": data["score"]}
    feed = DataFeed.from_arrays(data["times"], data["assets"], fields)
    g = grid(args.side)
    n_runs = args.side**3
    config = BacktestConfig.preset("vectorbt", initial_cash=CASH, commission=COMMISSION)

    start = time.perf_counter()
    table = sweep(config, g, feed, run=signals_run, progress=False)
    ours_seconds = time.perf_counter() - start
    ours = table["final_value"].to_numpy()

    print(f"{n_runs} runs of {args.assets} assets x {args.bars} bars, {os.cpu_count()} cores")
    print(f"ours (sweep, compiled driver, local processes): {ours_seconds:8.2f} s  "
          f"{n_runs / ours_seconds:8.1f} runs/s")  # fmt: skip
    print(f"errors in our table: {table['error'].drop_nulls().len()}")
    if args.skip_vectorbt:
        return
    theirs_seconds, theirs = vectorbt_grid(data, g)
    worst = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
    print(f"vectorbt (one broadcast from_signals call):     {theirs_seconds:8.2f} s  "
          f"{n_runs / theirs_seconds:8.1f} runs/s")  # fmt: skip
    print(f"final values: largest relative difference over the {n_runs} runs: {worst:.2e}")


if __name__ == "__main__":
    main()
