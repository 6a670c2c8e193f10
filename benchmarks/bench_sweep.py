"""A parameter sweep against VectorBT's broadcasting: runs per second, same metrics per run.

The grid: entry threshold x exit threshold x stop-loss width on a model score, side^3
combinations (``--side 5``: 125), each a 100-asset portfolio over 2520 daily bars (cash shared
across the assets, 1% of the initial cash per position, 0.1% commission, fills at the close
the signal appears, as VectorBT's defaults). Ours: ``sweep`` with the compiled driver, on local
processes (one per core), in this process one run after another, on one thread per core, and
as ``executor=None`` picks. VectorBT: one ``Portfolio.from_signals`` call
with every combination as a column group. Both final values are compared run by run before any
timing is reported.

- warm (the default): every engine's kernels already loaded in this process. VectorBT's
  broadcast is called twice and the second call timed (the first loads its kernels).
- ``--cold``: fresh processes whose ``NUMBA_CACHE_DIR`` is an empty folder, ours and VectorBT's
  interleaved, ``--repeat`` times each: the sweep call (ours, compiling its kernels) against the
  broadcast call (VectorBT, compiling its own), and each whole process.
- ``--event``: also a sweep over the event driver (``Engine`` with ``SignalStrategy``).
- ``--memory``: sweeps of 200 and 1,000 small runs with a store, in this process: Python's
  peak traced memory and the resident size after each (they grow by rows, not by results).

Where a run's time goes (the ``Breakdown`` lines): ``kernel`` is the compiled loop
(``run_bars``), ``setup`` the rest of ``run_signals`` before it (broker, market arrays, order
room), ``results`` building the ``BacktestResult`` (arrays only; frames are built on demand),
``metrics`` reading ``result.metrics`` (it builds the trades), ``other`` what remains of the
sweep's wall time x workers (process start, sending batches and rows, waiting for the last).

    python benchmarks/bench_sweep.py [--side 5] [--event] [--cold --repeat 3] [--memory]

Not part of ``make test``: timings on shared machines are noisy; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

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


def make_feed(data: dict[str, Any]) -> Any:
    from ml4t.backtest import DataFeed

    fields = {k: data[k] for k in ("open", "high", "low", "close")}
    fields |= {"volume": np.full(data["close"].shape, 1e6), "score": data["score"]}
    return DataFeed.from_arrays(data["times"], data["assets"], fields)


def make_config() -> Any:
    from ml4t.backtest import BacktestConfig

    return BacktestConfig.preset("vectorbt", initial_cash=CASH, commission=COMMISSION)


def signals_run(feed: Any, config: Any, params: dict[str, Any]) -> Any:
    """One combination on the compiled driver (module level: sent to worker processes)."""
    from ml4t.backtest import run_signals
    from ml4t.backtest.risk import StopLoss

    score = feed.array("score")
    return run_signals(
        feed, score > params["entry"], score < params["exit"], size=CASH * 0.01,
        size_type="value", config=config, position_rules=StopLoss(params["stop"]),
    )  # fmt: skip


def make_signal_strategy(params: dict[str, Any]) -> Any:
    """One combination on the event driver: the same thresholds, 1% of equity per entry."""
    from ml4t.backtest import SignalStrategy

    return SignalStrategy(
        "score", entry_threshold=params["entry"], exit_threshold=params["exit"], weight=0.01
    )


def stop_of(params: dict[str, Any]) -> Any:
    from ml4t.backtest.risk import StopLoss

    return StopLoss(params["stop"])


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


class _Timer:
    """Wraps a module function and adds up the CPU seconds spent in it."""

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name, self.seconds = module, name, 0.0
        self.inner = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return self.inner(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - start

        setattr(module, name, timed)

    def restore(self) -> None:
        setattr(self.module, self.name, self.inner)


def split_one_run(feed: Any, config: Any, g: dict[str, list[float]], n: int) -> dict[str, float]:
    """Mean CPU seconds per run of kernel, setup, results and metrics, over ``n`` runs here
    (CPU: the machine is shared; this process's time, its polars threads' included)."""
    from ml4t.backtest import compiled

    every = [dict(zip(g, c, strict=True)) for c in itertools.product(*g.values())]
    # Spread over the grid: its corners differ in work (a low entry threshold trades more).
    combos = every[:: max(1, len(every) // n)][:n]
    kernel = _Timer(compiled, "_run_bars")
    results = _Timer(compiled, "build_result")
    total = metrics = 0.0
    try:
        for params in combos:
            start = time.process_time()
            result = signals_run(feed, config, params)
            ran = time.process_time()
            result.metrics  # noqa: B018  # what a sweep reads
            metrics += time.process_time() - ran
            total += ran - start
    finally:
        kernel.restore()
        results.restore()
    k = len(combos)
    return {
        "kernel": kernel.seconds / k,
        "setup": (total - kernel.seconds - results.seconds) / k,
        "results": results.seconds / k,
        "metrics": metrics / k,
    }


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (the pool's workers,
    once the sweep has shut them down)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed_sweep(
    feed: Any, config: Any, g: dict[str, list[float]], executor: str | None, **kwargs: Any
) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, table) of one sweep."""
    from ml4t.backtest.research import sweep

    cpu = cpu_seconds()
    start = time.perf_counter()
    table = sweep(config, g, feed, executor=executor, progress=False, timings=True, **kwargs)
    return time.perf_counter() - start, cpu_seconds() - cpu, table


def report_sweep(label: str, seconds: float, cpu: float, table: Any, workers: int) -> float:
    """Prints the sweep's figures; returns its runs/s on idle cores (its CPU spread on them)."""
    n = table.height
    run = float(table["seconds_run"].sum()) / n
    metrics = float(table["seconds_metrics"].sum()) / n
    idle = n / (cpu / workers)
    print(f"{label:<40} {seconds:6.2f} s {n / seconds:5.1f} runs/s | CPU {cpu / n * 1e3:5.1f} "
          f"ms a run, {idle:5.1f} runs/s on {workers} idle core(s) | wall in a worker, ms a "
          f"run: run {run * 1e3:.1f}, metrics {metrics * 1e3:.1f}")  # fmt: skip
    errors = table["error"].drop_nulls().len()
    if errors:
        print(f"  errors in the table: {errors}: {table['error'].drop_nulls()[0]}")
    return idle


def warm(args: argparse.Namespace) -> None:
    from ml4t.backtest import BacktestConfig

    data = market(args.assets, args.bars)
    feed = make_feed(data)
    config = make_config()
    g = grid(args.side)
    n_runs = args.side**3
    cores = os.cpu_count() or 1
    print(f"{n_runs} runs of {args.assets} assets x {args.bars} bars, {cores} cores, "
          f"load average {os.getloadavg()[0]:.2f} at the start")  # fmt: skip
    split = split_one_run(feed, config, g, 3)  # loads the kernels; the figures are below
    split = split_one_run(feed, config, g, 25)
    print("Breakdown of one run here (CPU ms): " + ", ".join(
        f"{k} {v * 1e3:.1f}" for k, v in split.items()))  # fmt: skip
    kernel_only = split["kernel"] + split["setup"] + split["results"]

    ours: dict[str, float] = {}
    idle: dict[str, float] = {}
    cpu_per_run: dict[str, float] = {}
    cases = (
        ("processes", "sweep on local processes", cores),
        ("in-process", "sweep in this process", 1),
        ("threads", "sweep on threads", cores),
        (None, "sweep, executor=None", cores),
    )
    finals = None
    for executor, label, workers in cases:
        seconds, cpu, table = timed_sweep(feed, config, g, executor, run=signals_run)
        idle[str(executor)] = report_sweep(f"ours compiled, {label}", seconds, cpu, table, workers)
        ours[str(executor)] = seconds
        cpu_per_run[str(executor)] = cpu / table.height
        finals = table["final_value"].to_numpy() if finals is None else finals
    here, pool = cpu_per_run["in-process"], cpu_per_run["processes"]
    print(f"  CPU ms a run: the runs alone {sum(split.values()) * 1e3:.1f}; a sweep in this "
          f"process {here * 1e3:.1f} (+{(here - sum(split.values())) * 1e3:.1f}: rows, table); "
          f"on local processes {pool * 1e3:.1f} (+{(pool - here) * 1e3:.1f}: starting the "
          f"workers, loading kernels, sending data, batches and rows)")  # fmt: skip
    print(f"  without metrics (kernel, setup, results only, on {cores} idle cores): "
          f"{cores / kernel_only:.1f} runs/s at most")  # fmt: skip

    if args.event:
        event_config = BacktestConfig(initial_cash=CASH, commission=COMMISSION)
        for executor, label, workers in (cases[0], cases[1], cases[3]):
            seconds, cpu, table = timed_sweep(
                feed, event_config, g, executor, strategy_factory=make_signal_strategy,
                position_rules=stop_of,
            )  # fmt: skip
            report_sweep(f"ours event, {label}", seconds, cpu, table, workers)

    if args.skip_vectorbt:
        return
    first_s, _ = vectorbt_grid(data, g)
    cpu = cpu_seconds()
    theirs_s, theirs = vectorbt_grid(data, g)
    theirs_cpu = cpu_seconds() - cpu
    worst = float(np.max(np.abs(finals - theirs) / np.abs(theirs)))
    print(
        f"{'vectorbt, one broadcast from_signals (warm)':<44} {theirs_s:7.2f} s "
        f"{n_runs / theirs_s:6.1f} runs/s | CPU {theirs_cpu:6.2f} s, "
        f"{n_runs / theirs_cpu:6.1f} runs/s on 1 idle core (its first call: {first_s:.2f} s)"
    )
    print(f"final values: largest relative difference over the {n_runs} runs: {worst:.2e}")
    for label, seconds in ours.items():
        print(f"ours ({label}) / vectorbt runs/s: wall {theirs_s / seconds:.2f}x, on idle cores "
              f"{idle[label] / (n_runs / theirs_cpu):.2f}x")  # fmt: skip
    print(f"load average now {os.getloadavg()[0]:.2f}")


def child(engine: str, side: int, assets: int, bars: int) -> None:
    """One cold case in this fresh process; prints a JSON line with the call's seconds."""
    data = market(assets, bars)
    g = grid(side)
    first = metrics = math.nan
    if engine == "vectorbt":
        seconds, finals = vectorbt_grid(data, g)
        final = float(finals[0])
    else:
        feed = make_feed(data)
        seconds, _, table = timed_sweep(feed, make_config(), g, None, run=signals_run)
        final = float(table["final_value"][0])
        # The first run goes in this process: it compiles the kernels.
        first, metrics = float(table["seconds_run"][0]), float(table["seconds_metrics"][0])
    print(json.dumps({"call": seconds, "final": final, "first": first, "metrics": metrics}))


def cold(args: argparse.Namespace) -> None:
    n_runs = args.side**3
    times: dict[str, list[tuple[float, float]]] = {"ours": [], "vectorbt": []}
    for _ in range(args.repeat):
        for engine in ("ours", "vectorbt"):
            with tempfile.TemporaryDirectory() as cache:
                env = os.environ | {"NUMBA_CACHE_DIR": cache}
                start = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, __file__, "--child", engine, "--side", str(args.side),
                     "--assets", str(args.assets), "--bars", str(args.bars)],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                wall = time.perf_counter() - start
            line = json.loads(out.stdout.strip().splitlines()[-1])
            call = line["call"]
            times[engine].append((call, wall))
            first = "" if engine == "vectorbt" else (
                f" (its first run, compiling: {line['first']:.2f} s, then that run's metrics "
                f"{line['metrics']:.2f} s)"
            )  # fmt: skip
            print(f"cold {engine:<9} call {call:7.2f} s  whole process {wall:7.2f} s  "
                  f"(load average {os.getloadavg()[0]:.2f}){first}")  # fmt: skip
    med = {e: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v))
           for e, v in times.items()}  # fmt: skip
    for engine, (call, wall) in med.items():
        print(f"cold {engine:<9} median call {call:7.2f} s ({n_runs / call:.1f} runs/s), "
              f"whole process {wall:7.2f} s")  # fmt: skip
    print(
        f"cold ours / vectorbt: call {med['ours'][0] / med['vectorbt'][0]:.2f}, "
        f"whole process {med['ours'][1] / med['vectorbt'][1]:.2f} (below 1: ours faster)"
    )


def memory() -> None:
    from ml4t.backtest.research import sweep

    data = market(10, 252)
    feed = make_feed(data)
    config = make_config()
    signals_run(feed, config, {"entry": 1.0, "exit": 0.0, "stop": 0.1}).metrics  # noqa: B018
    with tempfile.TemporaryDirectory() as folder:
        for n in (200, 1000):
            g = {"entry": list(np.linspace(0.5, 2.0, n // 10)), "exit": [0.0],
                 "stop": list(np.linspace(0.02, 0.2, 10))}  # fmt: skip
            tracemalloc.start()
            start = time.perf_counter()
            table = sweep(config, g, feed, run=signals_run, executor="in-process",
                          progress=False, store=Path(folder) / f"runs{n}.duckdb")  # fmt: skip
            seconds = time.perf_counter() - start
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{table.height:5d} runs of 10 x 252 with a store: {seconds:6.2f} s, traced "
                  f"peak {peak / 1e6:6.2f} MB, held after {current / 1e6:6.2f} MB, "
                  f"peak resident {rss:6.0f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100)
    parser.add_argument("--bars", type=int, default=2520)
    parser.add_argument("--side", type=int, default=5, help="values per parameter (side^3 runs)")
    parser.add_argument(
        "--skip-vectorbt",
        action="store_true",
        help="ours only (VectorBT's one call needs over 20 GB for 1000 runs of 100 x 2520)",
    )
    parser.add_argument("--event", action="store_true", help="also sweep the event driver")
    parser.add_argument("--cold", action="store_true", help="fresh processes, empty caches")
    parser.add_argument("--repeat", type=int, default=1, help="cold processes per engine")
    parser.add_argument("--memory", action="store_true", help="200 vs 1000 runs with a store")
    parser.add_argument("--child", choices=("ours", "vectorbt"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.side, args.assets, args.bars)
    elif args.memory:
        memory()
    elif args.cold:
        cold(args)
    else:
        warm(args)


if __name__ == "__main__":
    main()
