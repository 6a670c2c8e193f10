"""Benchmarks against the peers, measured in the same run on the same data.

Workloads (seeded data and precomputed signals, built once, outside the timings):

- ``ma_1x2520``: one asset, 2520 bars, 10/30 moving-average crossover.
- ``rotation_25x252``: 25 assets, 252 bars, top 5 by 20-bar momentum every bar.
- ``random_500x2520``: 500 assets x 2520 bars, random entries and exits (2% a bar each),
  1% of the initial cash per position, 0.1% commission, fills at the next bar's open.
- ``random_5000x2520``: the same with 5000 assets (Backtrader left out: hours).

Engines: ours as the event driver with a vectorized strategy, the event driver with a Python
loop over assets, and the compiled driver; VectorBT ``Portfolio.from_signals`` (signals shifted
one bar and ``price=open``: next-open fills); Backtrader (``Cerebro``, market orders).
Every engine makes the same decisions; final values are printed side by side so that a fast
wrong answer shows. Each timing is the best of ``--repeat`` calls of the backtest alone (data
building excluded); the first call's compile cost is reported apart.

    python benchmarks/bench_peers.py [--repeat 3] [--skip-5000] [--out benchmarks/RESULTS.md]

Not part of ``make test``: these machines are shared and noisy; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ml4t.backtest import BacktestConfig, BarView, Broker, DataFeed, Engine, Strategy, run_signals

COMMISSION = 0.001


class Workload:
    """Seeded prices and signals; every engine reads the same arrays."""

    def __init__(self, name: str, n_assets: int, n_bars: int, kind: str, seed: int = 1) -> None:
        self.name, self.n_assets, self.n_bars, self.kind = name, n_assets, n_bars, kind
        rng = np.random.default_rng(seed)
        shape = (n_bars, n_assets)
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, shape), axis=0))
        prev = np.concatenate([close[:1], close[:-1]])
        self.open = prev * np.exp(rng.normal(0.0, 0.005, shape))
        self.high = np.maximum(self.open, close) * 1.005
        self.low = np.minimum(self.open, close) * 0.995
        self.close = close
        self.volume = np.full(shape, 1e6)
        self.times = np.datetime64("2010-01-01") + np.arange(n_bars).astype("timedelta64[D]")
        self.assets = [f"A{i:04d}" for i in range(n_assets)]
        self.cash = 1_000_000.0
        if kind == "ma":
            self.entries, self.exits = _ma_cross(close)
            self.value = self.cash * 0.5
        elif kind == "rotation":
            self.entries, self.exits = _rotation(close, 5)
            self.value = self.cash * 0.19
        else:
            self.entries = rng.uniform(size=shape) < 0.02
            self.exits = rng.uniform(size=shape) < 0.02
            self.value = self.cash * 0.01

    @property
    def asset_bars(self) -> int:
        return self.n_assets * self.n_bars

    def feed(self) -> DataFeed:
        fields = {"open": self.open, "high": self.high, "low": self.low, "close": self.close}
        return DataFeed.from_arrays(self.times, self.assets, fields | {"volume": self.volume})

    def config(self) -> BacktestConfig:
        # Sized at the decision close (as Backtrader's size=value/close), fractional shares,
        # orders executed in submission order (as both peers do).
        return BacktestConfig(
            initial_cash=self.cash,
            commission=COMMISSION,
            fractional_shares=True,
            sizing_price="decision",
            execution_order="as_submitted",
        )


def _ma_cross(close: np.ndarray, fast: int = 10, slow: int = 30) -> tuple[Any, Any]:
    fast_ma = np.full(close.shape, np.nan)
    slow_ma = np.full(close.shape, np.nan)
    fast_ma[fast - 1 :, 0] = np.convolve(close[:, 0], np.ones(fast) / fast, mode="valid")
    slow_ma[slow - 1 :, 0] = np.convolve(close[:, 0], np.ones(slow) / slow, mode="valid")
    above = fast_ma > slow_ma
    before = np.vstack([np.zeros((1, 1), bool), above[:-1]])
    return above & ~before, ~above & before & ~np.isnan(slow_ma)


def _rotation(close: np.ndarray, n_top: int) -> tuple[Any, Any]:
    momentum = np.full(close.shape, -np.inf)
    momentum[20:] = close[20:] / close[:-20] - 1.0
    top = np.zeros(close.shape, dtype=bool)
    ranks = np.argsort(-momentum, axis=1, kind="stable")[:, :n_top]
    np.put_along_axis(top, ranks, True, axis=1)
    top[:20] = False
    return top, ~top


class Vectorized(Strategy):
    """The decisions of ``run_signals`` with numpy over assets, one broker call a bar."""

    def __init__(self, w: Workload) -> None:
        self.w = w

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        t = data.index
        held, pending = broker.quantities, broker.pending
        go = self.w.entries[t] & ~self.w.exits[t] & (held == 0) & (pending == 0)
        out = self.w.exits[t] & ~self.w.entries[t] & (held + pending > 0)
        if not (go.any() or out.any()):
            return
        values = np.full(len(held), np.nan)
        values[go] = self.w.value
        values[out] = 0.0
        broker.order_target_values(values)


class PerAsset(Strategy):
    """The same decisions, one Python call per asset per bar, as a Backtrader user writes."""

    def __init__(self, w: Workload) -> None:
        self.w = w

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        t = data.index
        for a, asset in enumerate(self.w.assets):
            held = broker.position(asset)
            if self.w.exits[t, a] and not self.w.entries[t, a] and held > 0:
                broker.close_position(asset)
            elif self.w.entries[t, a] and not self.w.exits[t, a] and held == 0:
                broker.order_target_value(asset, self.w.value)


def ours_event(w: Workload, strategy: type[Strategy]) -> Callable[[], float]:
    feed, config = w.feed(), w.config()
    return lambda: Engine(feed, strategy(w), config).run().final_value


def ours_compiled(w: Workload) -> Callable[[], float]:
    feed, config = w.feed(), w.config()
    return lambda: (
        run_signals(
            feed, w.entries, w.exits, size=w.value, size_type="value", config=config
        ).final_value
    )


def vectorbt_signals(w: Workload) -> Callable[[], float]:
    import pandas as pd
    import vectorbt as vbt

    index = pd.DatetimeIndex(w.times)

    def frame(x: np.ndarray) -> Any:
        return pd.DataFrame(x, index=index, columns=w.assets)

    # Decided at a close, filled at the next open: shift the signals one bar, trade the open,
    # and size at the decision close (val_price: the previous close).
    entries = frame(np.vstack([np.zeros((1, w.n_assets), bool), w.entries[:-1]]))
    exits = frame(np.vstack([np.zeros((1, w.n_assets), bool), w.exits[:-1]]))
    close, open_ = frame(w.close), frame(w.open)
    decision_close = frame(np.vstack([w.close[:1], w.close[:-1]]))

    def run() -> float:
        pf = vbt.Portfolio.from_signals(
            close, entries, exits, price=open_, val_price=decision_close, size=w.value,
            size_type="value",
            fees=COMMISSION, init_cash=w.cash, cash_sharing=True, group_by=True, freq="1D",
        )  # fmt: skip
        return float(np.asarray(pf.value())[-1])

    return run


def backtrader_signals(w: Workload) -> Callable[[], float]:
    import backtrader as bt
    import pandas as pd

    frames = [
        pd.DataFrame(
            {
                "open": w.open[:, a], "high": w.high[:, a], "low": w.low[:, a],
                "close": w.close[:, a], "volume": w.volume[:, a],
            },
            index=pd.DatetimeIndex(w.times),
        )
        for a in range(w.n_assets)
    ]  # fmt: skip

    class Signals(bt.Strategy):  # type: ignore[misc]
        def next(self) -> None:
            t = len(self) - 1
            for a, data in enumerate(self.datas):
                held = self.getposition(data).size
                if w.exits[t, a] and not w.entries[t, a] and held > 0:
                    self.close(data=data)
                elif w.entries[t, a] and not w.exits[t, a] and held == 0:
                    self.buy(data=data, size=w.value / data.close[0])

    def run() -> float:
        cerebro = bt.Cerebro(stdstats=False)
        for frame in frames:
            cerebro.adddata(bt.feeds.PandasData(dataname=frame))
        cerebro.addstrategy(Signals)
        cerebro.broker.setcash(w.cash)
        cerebro.broker.addcommissioninfo(
            bt.CommInfoBase(
                commission=COMMISSION,
                percabs=True,
                stocklike=True,
                commtype=bt.CommInfoBase.COMM_PERC,
            )
        )
        cerebro.run()
        return float(cerebro.broker.getvalue())

    return run


def measure(run: Callable[[], float], repeat: int) -> tuple[float, float, float, float]:
    """(first call s, best warm s, final value, peak traced MB of one more call).

    With ``repeat=0`` (Backtrader on big workloads: minutes a call) the first call is the only
    one: its time is the best, and memory is not traced (NaN).
    """
    start = time.perf_counter()
    value = run()
    first = time.perf_counter() - start
    if repeat == 0:
        return first, first, value, float("nan")
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        value = run()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return first, best, value, peak


def _goals(timings: dict[str, dict[str, float]], peaks: dict[str, dict[str, float]]) -> list[str]:
    """Issue 6's goals, measured on this run."""
    t = timings.get("random_500x2520")
    if not t:
        return []
    event, compiled = t["ours event, vectorized"], t["ours compiled"]
    vbt, loop, bt = t["vectorbt from_signals"], t["ours event, per-asset loop"], t["backtrader"]
    out = [
        "## Goals on random entries and exits, 500 x 2520",
        "",
        f"- Event driver, vectorized strategy: {1.26 / event:.1f} M asset-bars/s (goal > 10), "
        f"{vbt / event:.1f}x faster than VectorBT (goal > 1), {bt / event:.0f}x faster than "
        "Backtrader (goal >= 200).",
        f"- Compiled driver: {vbt / compiled:.1f}x faster than VectorBT (goal >= 10), same "
        "final value.",
        f"- Per-asset Python loop: {bt / loop:.0f}x faster than Backtrader (goal >= 20).",
    ]
    big = peaks.get("random_5000x2520")
    if big:
        out.append(
            f"- 5000 x 2520: the compiled run's traced peak is {big['ours compiled']:.0f} MB, the "
            f"event driver's {big['ours event, vectorized']:.0f} MB (goal: process under 2 GB)."
        )
    sizes = [n for n in ("random_500x2520", "random_1500x2520", "random_5000x2520") if n in timings]
    if len(sizes) == 3:
        scaling = ", ".join(f"{n}: {timings[n]['ours compiled']:.3f} s" for n in sizes)
        out.append(f"- Compiled driver at three sizes (cost ~ assets x bars): {scaling}.")
    return out


def _versions() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("numba", "numpy", "vectorbt", "backtrader"):
        try:
            out.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            out.append(f"{package} not installed")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-5000", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    args = parser.parse_args()
    workloads = [
        Workload("ma_1x2520", 1, 2520, "ma"),
        Workload("rotation_25x252", 25, 252, "rotation"),
        Workload("random_500x2520", 500, 2520, "random"),
    ]
    if not args.skip_5000:
        # With 500 above, three sizes of one workload show how cost grows with assets x bars.
        workloads.append(Workload("random_1500x2520", 1500, 2520, "random"))
        workloads.append(Workload("random_5000x2520", 5000, 2520, "random"))
    lines = [
        "| workload | engine | first call (s) | best (s) | M asset-bars/s | peak MB | "
        "x vs ours compiled | final value |",
        "|---|---|---|---|---|---|---|---|",
    ]
    timings: dict[str, dict[str, float]] = {}
    peaks: dict[str, dict[str, float]] = {}
    for w in workloads:
        engines: dict[str, Callable[[], float]] = {
            "ours compiled": ours_compiled(w),
            "ours event, vectorized": ours_event(w, Vectorized),
            "vectorbt from_signals": vectorbt_signals(w),
        }
        if w.n_assets <= 500:
            engines["ours event, per-asset loop"] = ours_event(w, PerAsset)
        if w.n_assets <= 500:
            engines["backtrader"] = backtrader_signals(w)
        results = {}
        for name, run in engines.items():
            repeat = 0 if name == "backtrader" and w.n_assets > 25 else args.repeat
            results[name] = measure(run, repeat)
            first, best, value, peak = results[name]
            print(f"{w.name:18} {name:28} best {best:8.3f} s  final {value:,.2f}", flush=True)
        timings[w.name] = {name: r[1] for name, r in results.items()}
        peaks[w.name] = {name: r[3] for name, r in results.items()}
        base = results["ours compiled"][1]
        for name, (first, best, value, peak) in results.items():
            lines.append(
                f"| {w.name} | {name} | {first:.3f} | {best:.3f} | "
                f"{w.asset_bars / best / 1e6:.1f} | {peak:.0f} | {best / base:.1f} | "
                f"{value:,.2f} |"
            )
    machine = f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    machine += ", " + ", ".join(_versions())
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"Machine: {machine}, {platform.system()}. Written by `python "
            "benchmarks/bench_peers.py`; best of several warm calls, data building excluded. "
            "'x vs ours compiled' is each engine's time over the compiled driver's.",
            "",
            *lines,
            "",
            *_goals(timings, peaks),
            "",
        ]
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
