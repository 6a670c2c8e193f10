"""Benchmarks against the peers, measured in the same run on the same data.

Workloads (seeded data and precomputed signals, built once, outside the timings):

- ``ma_1x2520``: one asset, 2520 bars, 10/30 moving-average crossover, 50% of equity.
- ``rotation_25x252``: 25 assets, 252 bars, top 5 by 20-bar momentum every bar, 19% each.
- ``random_500x2520``: 500 assets x 2520 bars, random entries and exits (2% a bar each),
  1% of equity per position, 0.1% commission, fills at the next bar's open.
- ``random_1500x2520`` and ``random_5000x2520``: the same, for scale (Backtrader left out).
- ``turnover_500x2520``: 500 x 2520, random entries (2.5% a bar) and exits (10% a bar), 1% of
  equity per position: about a fifth of the assets held, so the cash seldom cuts a buy, and
  about 45,000 fills, the count issue 14 gives for its workload (``random_500x2520`` makes
  14,088: half the assets held at 1% each soon ask for more than the equity). Backtrader left
  out.

Every engine makes the decisions of ``run_signals``: at bar t's close an exit closes a long
position, an entry on an asset with no position and no order waiting buys a fraction of the
equity at that close, an entry and an exit on the same bar do nothing; orders fill at t+1's open.

Engines: ours as the compiled driver (``run_signals``), the event driver (``Engine``) with a
vectorized strategy (numpy over assets, one ``order_target_percents`` call a bar), with the
signal rows handed to ``broker.order_signals`` (``run_signals``' compiled rule, one call a bar)
and with a Python loop over assets; VectorBT ``Portfolio.from_signals``;
Backtrader (``Cerebro``, market orders). On 500 x 2520, two more timings show where the
vectorized event run's time goes: the engine with an empty ``on_data`` (no order, no fill),
and the vectorized strategy's ``on_data`` replayed alone on the positions of a real run (its
own numpy, without the engine). Our four must give the same fills, checked before
anything is timed; every engine's final value is printed beside ours so a fast wrong answer
shows. Each timing is the best of ``--repeat`` calls of the backtest alone (data building
excluded), and of more while the calls so far add up to under a second (``MIN_TIMED``; at most
``MAX_CALLS``): on this shared machine the best of three 5 ms calls was often a busy spell's;
the first call (numba caches loaded, VectorBT compiling) is reported apart, and a
fresh process with an empty numba cache measures our compile cost. After every engine's first
call, the timed calls of a workload are made in rounds, each engine's calls in turn (one, or
more up to 0.1 s; ``measure_interleaved``), so that a slow spell slows every engine alike:
timed back to back, one engine's calls could all fall in a slow spell and the ratios swung 1.5x
between runs.
Backtrader, seconds to minutes a call, is timed on its own after the rounds.

    python benchmarks/bench_peers.py [--repeat 3] [--skip-big] [--out benchmarks/RESULTS.md]

Not part of ``make test``: these machines are shared and noisy; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml4t.backtest import (
    BacktestConfig,
    BacktestResult,
    BarView,
    Broker,
    DataFeed,
    Engine,
    Strategy,
    run_signals,
)

COMMISSION = 0.001
# Timed calls go on past --repeat until they add up to this many seconds (a fast engine's
# best of a few calls on a shared machine is a busy spell's), up to MAX_CALLS of them.
MIN_TIMED = 1.0
MAX_CALLS = 200
# Each engine's share of a round of interleaved calls (``measure_interleaved``), seconds.
ROUND_SLICE = 0.1
COMPILED, VECTORIZED, PER_ASSET = "ours compiled", "ours event, vectorized", "ours event, per-asset"
ROWS = "ours event, order_signals"
IDLE, STRATEGY_ALONE = "ours event, empty on_data", "vectorized strategy alone"
VECTORBT, BACKTRADER = "vectorbt from_signals", "backtrader"
SCALING = ("random_500x2520", "random_1500x2520", "random_5000x2520")
TURNOVER = "turnover_500x2520"
Bools = NDArray[np.bool_]


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
        self.entries: Bools
        self.exits: Bools
        if kind == "ma":
            self.entries, self.exits = _ma_cross(close)
            self.percent = 0.5
        elif kind == "rotation":
            self.entries, self.exits = _rotation(close, 5)
            self.percent = 0.19
        else:
            # Random entries and exits; "turnover" exits more often (about 45,000 fills).
            p_in, p_out = (0.025, 0.10) if kind == "turnover" else (0.02, 0.02)
            self.entries = rng.uniform(size=shape) < p_in
            self.exits = rng.uniform(size=shape) < p_out
            self.percent = 0.01
        # The decisions of run_signals, as arrays: both signals on one bar do nothing.
        self.buy = self.entries & ~self.exits
        self.sell = self.exits & ~self.entries

    @property
    def asset_bars(self) -> int:
        return self.n_assets * self.n_bars

    def feed(self) -> DataFeed:
        fields = {"open": self.open, "high": self.high, "low": self.low, "close": self.close}
        return DataFeed.from_arrays(self.times, self.assets, fields | {"volume": self.volume})

    def config(self) -> BacktestConfig:
        # Fractional shares (VectorBT's default, and Backtrader takes a float size); orders
        # executed in submission order, asset by asset, as both peers do.
        return BacktestConfig(
            initial_cash=self.cash,
            commission=COMMISSION,
            fractional_shares=True,
            sizing_price="decision",
            execution_order="as_submitted",
        )


def workloads(big: bool) -> list[Workload]:
    out = [
        Workload("ma_1x2520", 1, 2520, "ma"),
        Workload("rotation_25x252", 25, 252, "rotation"),
        Workload("random_500x2520", 500, 2520, "random"),
        Workload(TURNOVER, 500, 2520, "turnover"),
    ]
    if big:
        out.append(Workload("random_1500x2520", 1500, 2520, "random"))
        out.append(Workload("random_5000x2520", 5000, 2520, "random"))
    return out


def _ma_cross(close: NDArray[np.float64], fast: int = 10, slow: int = 30) -> tuple[Bools, Bools]:
    fast_ma = np.full(close.shape, np.nan)
    slow_ma = np.full(close.shape, np.nan)
    fast_ma[fast - 1 :, 0] = np.convolve(close[:, 0], np.ones(fast) / fast, mode="valid")
    slow_ma[slow - 1 :, 0] = np.convolve(close[:, 0], np.ones(slow) / slow, mode="valid")
    above = fast_ma > slow_ma
    before = np.vstack([np.zeros((1, 1), bool), above[:-1]])
    return above & ~before, ~above & before & ~np.isnan(slow_ma)


def _rotation(close: NDArray[np.float64], n_top: int) -> tuple[Bools, Bools]:
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
        self.targets = np.full(w.n_assets, np.nan)

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        t = data.index
        held, pending = broker.quantities, broker.pending
        go = self.w.buy[t] & (held == 0) & (pending == 0)
        out = self.w.sell[t] & (held > 0)
        if not (go.any() or out.any()):
            return
        p = self.targets
        p.fill(np.nan)
        p[go] = self.w.percent
        p[out] = 0.0
        broker.order_target_percents(p)


class Idle(Strategy):
    """No decision at all: what the event driver's bars cost by themselves (each bar's open
    phase, its mark and the strategy call), with no order and no fill."""

    def __init__(self, w: Workload) -> None:
        self.w = w

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        return None


class _Replay:
    """What ``Vectorized.on_data`` reads of the view and the broker, replayed bar by bar from
    a real run: the positions and pending quantities it saw (copies, as ``Broker`` hands them
    out), and an ``order_target_percents`` that orders nothing."""

    def __init__(self, seen: list[tuple[NDArray[np.float64], NDArray[np.float64]]]) -> None:
        self._seen = seen
        self.index = 0

    @property
    def quantities(self) -> NDArray[np.float64]:
        return self._seen[self.index][0].copy()

    @property
    def pending(self) -> NDArray[np.float64]:
        return self._seen[self.index][1].copy()

    def order_target_percents(self, percents: NDArray[np.float64]) -> None:
        return None


def strategy_alone(w: Workload) -> Contender:
    """``Vectorized.on_data`` on every bar without the engine, against the positions and pending
    quantities of a real run: the strategy's own numpy, which the event driver's time includes
    and no engine can make cheaper."""
    seen: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []

    class Recorded(Vectorized):
        def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
            seen.append((broker.quantities, broker.pending))
            super().on_data(timestamp, data, broker)

    Engine(w.feed(), Recorded(w), w.config()).run()
    replay = _Replay(seen)
    strategy, times = Vectorized(w), w.times.tolist()

    def run() -> None:
        on_data: Any = strategy.on_data
        for t, timestamp in enumerate(times):
            replay.index = t
            on_data(timestamp, replay, replay)

    return Contender(STRATEGY_ALONE, run, lambda _: float("nan"), traced=False)


class SignalRows(Strategy):
    """The bar's row of signals to ``broker.order_signals``: ``run_signals``' own compiled rule,
    one broker call a bar and no numpy call."""

    def __init__(self, w: Workload) -> None:
        self.w = w

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        t = data.index
        broker.order_signals(self.w.entries[t], self.w.exits[t], size=self.w.percent)


class PerAsset(Strategy):
    """The same decisions, one Python call per asset per bar, as a Backtrader user writes."""

    def __init__(self, w: Workload) -> None:
        self.w = w

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        t = data.index
        buy, sell = self.w.buy[t], self.w.sell[t]
        for a, asset in enumerate(self.w.assets):
            if sell[a] and broker.position(asset) > 0:
                broker.close_position(asset)
            elif buy[a] and broker.position(asset) == 0:
                broker.order_target_percent(asset, self.w.percent)


@dataclass(frozen=True)
class Contender:
    """One engine on one workload: a call to time, and how to read its final value."""

    name: str
    run: Callable[[], Any]
    final_value: Callable[[Any], float]
    # tracemalloc's peak measured: not for the budget's timings (only their time is reported),
    # nor for Backtrader (pure Python: tracemalloc would follow every object it makes).
    traced: bool = True


def ours_event(
    w: Workload, strategy: Callable[[Workload], Strategy], name: str, *, traced: bool = True
) -> Contender:
    feed, config = w.feed(), w.config()
    return Contender(name, lambda: Engine(feed, strategy(w), config).run(), _final, traced)


def ours_compiled(w: Workload) -> Contender:
    feed, config = w.feed(), w.config()

    def run() -> BacktestResult:
        return run_signals(
            feed, w.entries, w.exits, size=w.percent, size_type="percent", config=config
        )

    return Contender(COMPILED, run, _final)


def _final(result: BacktestResult) -> float:
    return result.final_value


def vectorbt_signals(w: Workload, equity: NDArray[np.float64]) -> Contender:
    """``from_signals`` deciding at a close and filling at the next open, 0.1% fees.

    Next-open fills: signals shifted one bar, ``price=open``, and ``val_price`` the previous
    (decision) close, so a ``size_type="value"`` order buys value / decision close shares, as
    ours do. ``from_signals`` has no percent-of-equity size (it takes amount, value, or
    "percent" of the *cash*; see its docstring in vectorbt/portfolio/base.py), so its value
    per bar is ``percent`` x the equity at the decision close as our compiled run recorded it.
    VectorBT still keeps its own cash, positions and fees: a wrong equity or fill on our side
    makes its final value differ from ours.
    """
    import pandas as pd
    import vectorbt as vbt

    index = pd.DatetimeIndex(w.times)

    def frame(x: NDArray[Any]) -> Any:
        return pd.DataFrame(x, index=index, columns=w.assets)

    entries = frame(np.vstack([np.zeros((1, w.n_assets), bool), w.entries[:-1]]))
    exits = frame(np.vstack([np.zeros((1, w.n_assets), bool), w.exits[:-1]]))
    close, open_ = frame(w.close), frame(w.open)
    decision_close = frame(np.vstack([w.close[:1], w.close[:-1]]))
    value = np.concatenate([[0.0], w.percent * equity[:-1]])[:, None]

    def run() -> Any:
        return vbt.Portfolio.from_signals(
            close, entries, exits, price=open_, val_price=decision_close, size=value,
            size_type="value", fees=COMMISSION, init_cash=w.cash, cash_sharing=True,
            group_by=True, freq="1D",
        )  # fmt: skip

    return Contender(VECTORBT, run, lambda pf: float(np.asarray(pf.value())[-1]))


def backtrader_signals(w: Workload) -> Contender:
    """Cerebro with one PandasData per asset, market orders (next open), 0.1% commission."""
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
            equity = self.broker.getvalue()  # at this bar's close, as ours size
            for a, data in enumerate(self.datas):
                held = self.getposition(data).size
                if w.sell[t, a] and held > 0:
                    self.close(data=data)
                elif w.buy[t, a] and held == 0:
                    self.buy(data=data, size=w.percent * equity / data.close[0])

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

    return Contender(BACKTRADER, run, float, traced=False)


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Timing:
    first: float
    best: float
    calls: int
    value: float
    traced_mb: float
    rss_mb: float


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith(key))
    return int(line.split()[1])


def rss_growth(run: Callable[[], Any]) -> float:
    """Peak resident size during one call, over the size before it (MB).

    Writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current size (Linux).
    Memory the allocator kept from earlier calls is reused unseen, so this is a floor.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return float("nan")
    before = _status_kb("VmRSS")
    run()
    return (_status_kb("VmHWM") - before) / 1024


def traced_peak(run: Callable[[], Any]) -> float:
    """Peak of Python-tracked allocations during one call (MB): numpy buffers included, numba's
    own allocations inside compiled code not."""
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def first_call(c: Contender, outputs: dict[str, Any] | None = None) -> tuple[float, float]:
    """Seconds and final value of a contender's first call, reported apart: numba caches load
    and VectorBT compiles in it. Its output goes into ``outputs`` when given (the fill check)."""
    start = time.perf_counter()
    out = c.run()
    seconds = time.perf_counter() - start
    if outputs is not None:
        outputs[c.name] = out
    return seconds, c.final_value(out)


def measure_interleaved(
    contenders: list[Contender], repeats: dict[str, int]
) -> dict[str, tuple[float, int]]:
    """Best seconds and number of timed calls of each contender, the calls made in rounds: in
    each, every contender that still needs calls makes calls in turn, one at least, more while
    its calls of the round add up to under ``ROUND_SLICE``.

    This shared 2-core machine has slow spells of seconds. Timed back to back, one engine's
    calls could all fall in a slow spell and the next engine's in a fast one, and the ratios
    between engines swung 1.5x from run to run; in rounds, a slow spell slows every engine
    alike. The slice spreads a fast engine's many calls over the rounds, rather than leaving
    most of them to run alone after the slow engines are done. A contender needs calls until
    it has made ``repeats[name]`` and, past that, while its calls add up to under
    ``MIN_TIMED`` seconds (at most ``MAX_CALLS``).
    """
    best = {c.name: float("inf") for c in contenders}
    calls = dict.fromkeys(best, 0)
    spent = dict.fromkeys(best, 0.0)

    def needs_calls(c: Contender) -> bool:
        n = calls[c.name]
        return n < repeats[c.name] or (spent[c.name] < MIN_TIMED and n < MAX_CALLS)

    waiting = [c for c in contenders if needs_calls(c)]
    while waiting:
        for c in waiting:
            in_round = 0.0
            while True:
                start = time.perf_counter()
                c.run()
                took = time.perf_counter() - start
                best[c.name] = min(best[c.name], took)
                calls[c.name] += 1
                spent[c.name] += took
                in_round += took
                if in_round >= ROUND_SLICE or not needs_calls(c):
                    break
        waiting = [c for c in waiting if needs_calls(c)]
    return {name: (best[name], calls[name]) for name in best}


def timing(c: Contender, first: tuple[float, float], timed: tuple[float, int]) -> Timing:
    """``c``'s first call (seconds, final value) and timed calls (best, count), then its memory:
    one more call for each figure, after all the timings (tracemalloc slows what it watches)."""
    rss = rss_growth(c.run)
    traced = traced_peak(c.run) if c.traced else float("nan")
    (seconds, value), (best, calls) = first, timed
    return Timing(seconds, best, calls + 1, value, traced, rss)


def measure(c: Contender, repeat: int) -> Timing:
    """A contender timed on its own, its calls back to back (Backtrader, whose calls take
    seconds to minutes: it would hold up the rounds of the others)."""
    if repeat == 0:  # one call of minutes: its memory is that call's resident growth
        box: list[Any] = []
        start = time.perf_counter()
        rss = rss_growth(lambda: box.append(c.run()))
        seconds = time.perf_counter() - start
        return Timing(seconds, seconds, 1, c.final_value(box[0]), float("nan"), rss)
    return timing(c, first_call(c), measure_interleaved([c], {c.name: repeat})[c.name])


FILL_COLUMNS = ["timestamp", "asset", "side", "quantity", "price", "commission"]


def check_same_fills(results: dict[str, BacktestResult]) -> int:
    """Our drivers must give the same fills, to the last bit, before any timing counts."""
    names = list(results)
    reference = results[names[0]].fills.select(FILL_COLUMNS)
    for name in names[1:]:
        fills = results[name].fills.select(FILL_COLUMNS)
        if not fills.equals(reference):
            raise AssertionError(
                f"{name} fills differ from {names[0]}: {fills.height} vs {reference.height} "
                f"rows; first rows:\n{fills.head()}\n{reference.head()}"
            )
        if results[name].final_value != results[names[0]].final_value:
            raise AssertionError(f"{name} final value differs from {names[0]}")
    return reference.height


def profile(c: Contender, top: int = 8) -> list[tuple[str, float, float]]:
    """(function, own seconds, share of the call) for the ``top`` functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    c.run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = max(stats.total_tt, 1e-12)  # type: ignore[attr-defined]
    rows = []
    for (path, line, func), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(path).name}:{line}({func})" if line else func
        rows.append((where, own, own / total))
    return sorted(rows, key=lambda r: -r[1])[:top]


def time_workload(w: Workload, repeat: int) -> tuple[dict[str, Timing], int, NDArray[np.float64]]:
    """Our four engines and VectorBT on ``w`` (on random_500x2520 also the 6x goal's budget,
    ``Idle`` and ``strategy_alone``): every first call, our fills checked, then the timed calls
    in rounds across them all. Returns the timings, our fill count and our compiled equity."""
    ours = [
        ours_compiled(w),
        ours_event(w, Vectorized, VECTORIZED),
        ours_event(w, SignalRows, ROWS),
        ours_event(w, PerAsset, PER_ASSET),
    ]
    outputs: dict[str, BacktestResult] = {}
    firsts = {c.name: first_call(c, outputs) for c in ours}
    fills = check_same_fills(outputs)
    # VectorBT sizes by our equity (see vectorbt_signals), so it comes after our first calls.
    equity = outputs[COMPILED].equity["equity"].to_numpy()
    del outputs  # hundreds of MB on 5000 x 2520: none is kept through the timed calls
    others = [vectorbt_signals(w, equity)]
    if w.name == "random_500x2520":
        # Where the vectorized event run's time goes (the 6x goal's budget, ``goals``).
        others += [ours_event(w, Idle, IDLE, traced=False), strategy_alone(w)]
    firsts |= {c.name: first_call(c) for c in others}
    # The per-asset loop is seconds a call on the big workloads: fewer repeats.
    repeats = {c.name: repeat for c in ours + others}
    if w.n_assets > 500:
        repeats[PER_ASSET] = 1
    timed = measure_interleaved(ours + others, repeats)
    results: dict[str, Timing] = {}
    for c in ours + others:
        results[c.name] = timing(c, firsts[c.name], timed[c.name])
        print(f"{w.name:18} {c.name:26} best {results[c.name].best:8.3f} s", flush=True)
    return results, fills, equity


def profile_lines(w: Workload) -> list[str]:
    """Where one call of our compiled and vectorized event runs spends its time, as lines."""
    lines = []
    for c in (ours_compiled(w), ours_event(w, Vectorized, VECTORIZED)):
        lines += [f"**{c.name}**, one call under cProfile:", ""]
        lines += [f"- {share:.0%} {where} ({own * 1e3:.1f} ms)" for where, own, share in profile(c)]
        lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------
# Fresh processes: compile cost and whole-process memory


def probe_compile(driver: str) -> dict[str, float]:
    """In this (fresh) process: first call of a driver on random_500x2520, then a warm one."""
    w = Workload("random_500x2520", 500, 2520, "random")
    c = ours_compiled(w) if driver == "compiled" else ours_event(w, Vectorized, VECTORIZED)
    start = time.perf_counter()
    c.run()
    first = time.perf_counter() - start
    start = time.perf_counter()
    c.run()
    return {"first": first, "warm": time.perf_counter() - start}


def probe_memory(name: str, engine: str, equity_path: str) -> dict[str, float]:
    """In this (fresh) process: peak resident MB after imports, after building data, after
    one run; the whole process, as a user would run it."""
    after_imports = _status_kb("VmHWM") / 1024
    n_assets = int(name.split("_")[1].split("x")[0])
    w = Workload(name, n_assets, 2520, "random")
    if engine == COMPILED:
        c = ours_compiled(w)
    elif engine == VECTORIZED:
        c = ours_event(w, Vectorized, VECTORIZED)
    else:
        c = vectorbt_signals(w, np.load(equity_path))
    after_data = _status_kb("VmHWM") / 1024
    c.final_value(c.run())
    return {"imports": after_imports, "data": after_data, "peak": _status_kb("VmHWM") / 1024}


def _probe(args: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def compile_costs() -> list[str]:
    """Our first call with an empty numba cache, with the cache filled, and warm."""
    lines = [
        "| driver | first call, empty numba cache (s) | first call, cache filled (s) "
        "| warm call (s) |",
        "|---|---|---|---|",
    ]
    for driver, label in (("compiled", COMPILED), ("event", VECTORIZED)):
        with tempfile.TemporaryDirectory() as cache:
            env = {"NUMBA_CACHE_DIR": cache}
            cold = _probe(["--probe-compile", driver], env)
            cached = _probe(["--probe-compile", driver], env)
        lines.append(
            f"| {label} | {cold['first']:.2f} | {cached['first']:.2f} | "
            f"{min(cold['warm'], cached['warm']):.3f} |"
        )
        print(lines[-1], flush=True)
    return lines


def process_memory(name: str, equity: NDArray[np.float64]) -> tuple[list[str], dict[str, float]]:
    lines = [
        "| workload | engine | after imports (MB) | after building data (MB) | peak (MB) |",
        "|---|---|---|---|---|",
    ]
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "equity.npy")
        np.save(path, equity)
        for engine in (COMPILED, VECTORIZED, VECTORBT):
            m = _probe(["--probe-memory", name, engine, path])
            peaks[engine] = m["peak"]
            lines.append(
                f"| {name} | {engine} | {m['imports']:.0f} | {m['data']:.0f} | {m['peak']:.0f} |"
            )
            print(lines[-1], flush=True)
    return lines, peaks


# ---------------------------------------------------------------------------------------------
# The report


def machine() -> str:
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(x for x in f if x.startswith("model name")).split(":", 1)[1].strip()
    except (OSError, StopIteration):
        pass
    import ml4t.backtest

    # The package's own version, not the installed metadata (stale in an editable install).
    packages = [f"ml4t-backtest {ml4t.backtest.__version__}"]
    for package in ("numba", "numpy", "polars", "pandas", "vectorbt"):
        try:
            packages.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            packages.append(f"{package} not installed")
    try:
        packages.append(f"backtrader {version('backtrader')}")
    except PackageNotFoundError:
        packages.append("backtrader not installed")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    return (
        f"{cpu}, {os.cpu_count()} cores ({platform.system()} {platform.machine()}, shared VM), "
        f"Python {platform.python_version()}; {', '.join(packages)}; commit {commit or '?'}"
    )


def _fmt_ratio(x: float) -> str:
    return "" if not np.isfinite(x) else f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def table_rows(w: Workload, results: dict[str, Timing]) -> list[str]:
    """The table's row of each engine on ``w``, its times also over our compiled and
    vectorized event runs', and its final value against our compiled run's."""
    ref, rows = results[COMPILED], []
    for name, r in results.items():
        diff = r.value - ref.value
        vs = "same" if diff == 0 else f"{diff:+,.2f} ({diff / ref.value:+.1e})"
        rows.append(
            f"| {w.name} | {name} | {r.first:.3f} | {r.best:.3f} | {r.calls} | "
            f"{w.asset_bars / r.best / 1e6:.2f} | {r.traced_mb:.0f} / {r.rss_mb:.0f} | "
            f"{_fmt_ratio(r.best / ref.best)} | "
            f"{_fmt_ratio(r.best / results[VECTORIZED].best)} | {r.value:,.2f} | {vs} |"
        )
    return rows


def goals(
    t: dict[str, dict[str, Timing]], rss_peaks: dict[str, float], budget: dict[str, Timing]
) -> list[str]:
    """The speed goals of issues 6 and 14, measured on this run; ``budget``: the idle engine
    and the vectorized strategy alone (``Idle``, ``strategy_alone``), where measured."""
    r = t.get("random_500x2520")
    if not r:
        return []

    def met(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    ev, comp, vbt = r[VECTORIZED].best, r[COMPILED].best, r[VECTORBT].best
    rate = 1.26 / ev
    out = ["## Speed goals (issues 6 and 14), random entries and exits, 500 x 2520", ""]
    out.append(
        f"- Event driver, vectorized strategy: {rate:.1f} M asset-bars/s (goal > 10: "
        f"{met(rate > 10)}); {vbt / ev:.2f}x VectorBT's speed (goal > 1: {met(vbt > ev)})"
        + (
            f"; {r[BACKTRADER].best / ev:,.0f}x Backtrader's (goal >= 200: "
            f"{met(r[BACKTRADER].best / ev >= 200)})."
            if BACKTRADER in r
            else "."
        )
    )
    same = r[COMPILED].value == r[VECTORBT].value
    rel = abs(r[VECTORBT].value / r[COMPILED].value - 1)
    out.append(
        f"- Compiled driver: {vbt / comp:.1f}x VectorBT's speed (goal >= 10: "
        f"{met(vbt / comp >= 10)}; issue 14's goal >= 30: {met(vbt / comp >= 30)}); final value "
        + ("identical to VectorBT's." if same else f"{rel:.1e} relative from VectorBT's.")
    )
    for name in SCALING[1:]:
        if name in t:
            x = t[name][VECTORBT].best / t[name][COMPILED].best
            out.append(f"  Compiled driver at {name.split('_')[1]}: {x:.1f}x VectorBT's speed.")
    out.append(
        f"- Event driver, vectorized strategy, against VectorBT: {vbt / ev:.2f}x (issue 14's "
        f"goal >= 6: {met(vbt / ev >= 6)})."
    )
    if IDLE in budget and STRATEGY_ALONE in budget:
        goal, alone, idle = vbt / 6, budget[STRATEGY_ALONE].best, budget[IDLE].best
        out.append(
            f"  Its budget: 6x is VectorBT's time / 6 = {goal * 1e3:.1f} ms. The strategy's own "
            f"numpy, replayed alone on the run's positions (`strategy_alone`), takes "
            f"{alone * 1e3:.1f} ms of it, which leaves {(goal - alone) * 1e3:.1f} ms for the "
            f"engine; the engine took {(ev - alone) * 1e3:.1f} ms of this run, and "
            f"{idle * 1e3:.1f} ms with an empty `on_data` (each bar's open phase, mark and "
            f"strategy call; no order, no fill). The compiled driver, the same orders, fills "
            f"and marks with no Python call at all, takes {comp * 1e3:.1f} ms"
            + (f" ({comp / (goal - alone):.0%} of what is left)." if goal > alone else ".")
        )
    if ROWS in r:
        rows = vbt / r[ROWS].best
        out.append(
            f"- Event driver, the signal rows to `broker.order_signals` (one compiled call a "
            f"bar, no numpy in the strategy): {rows:.2f}x VectorBT (goal >= 6: {met(rows >= 6)})."
        )
    turnover = t.get(TURNOVER)
    if turnover:
        v = turnover[VECTORBT].best
        c, e, rows = (v / turnover[n].best for n in (COMPILED, VECTORIZED, ROWS))
        out.append(
            f"- On `{TURNOVER}` (exits 10% a bar: about 45,000 fills, issue 14's count for its "
            f"workload): compiled driver {c:.1f}x VectorBT (goal >= 30: {met(c >= 30)}), event "
            f"driver vectorized {e:.2f}x (goal >= 6: {met(e >= 6)}), `order_signals` {rows:.2f}x."
        )
    if BACKTRADER in r:
        x = r[BACKTRADER].best / r[PER_ASSET].best
        out.append(
            f"- Per-asset Python loop: {x:.0f}x Backtrader's speed (goal >= 20: {met(x >= 20)})."
        )
    if rss_peaks:
        worst = max(rss_peaks[COMPILED], rss_peaks[VECTORIZED])
        out.append(
            f"- 5000 x 2520, a whole fresh process (imports, data, run): peak resident "
            f"{rss_peaks[COMPILED]:,.0f} MB with the compiled driver, "
            f"{rss_peaks[VECTORIZED]:,.0f} MB with the event driver (goal < 2048: "
            f"{met(worst < 2048)}); VectorBT's {rss_peaks[VECTORBT]:,.0f} MB."
        )
    return out


def scaling(t: dict[str, dict[str, Timing]]) -> list[str]:
    sizes = [n for n in SCALING if n in t]
    if len(sizes) < 2:
        return []
    head = " | ".join(f"{n.split('_')[1]} s (ns/asset-bar)" for n in sizes)
    lines = [
        "## Cost against assets x bars",
        "",
        "Linear growth is a constant time per asset-bar across the sizes (1.26 M, 3.78 M, "
        "12.6 M asset-bars).",
        "",
        f"| engine | {head} | time ratio {sizes[-1].split('_')[1]} / {sizes[0].split('_')[1]} "
        "(asset-bars x10) |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for engine in (COMPILED, VECTORIZED, ROWS, PER_ASSET, VECTORBT):
        if not all(engine in t[n] for n in sizes):
            continue
        cells = []
        for n in sizes:
            best = t[n][engine].best
            ab = int(n.split("_")[1].split("x")[0]) * 2520
            cells.append(f"{best:.3f} ({best / ab * 1e9:.1f})")
        ratio = t[sizes[-1]][engine].best / t[sizes[0]][engine].best
        lines.append(f"| {engine} | {' | '.join(cells)} | {ratio:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-big", action="store_true", help="no 1500 and 5000 assets")
    parser.add_argument("--skip-backtrader", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile ours on 500 x 2520")
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    parser.add_argument("--probe-compile", help=argparse.SUPPRESS)
    parser.add_argument("--probe-memory", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe_compile:
        print(json.dumps(probe_compile(args.probe_compile)))
        return
    if args.probe_memory:
        print(json.dumps(probe_memory(*args.probe_memory)))
        return

    started = time.perf_counter()
    table = [
        "| workload | engine | first call (s) | best (s) | calls | M asset-bars/s "
        "| peak MB traced / RSS | time / ours compiled | time / ours event vectorized "
        "| final value | vs ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    timings: dict[str, dict[str, Timing]] = {}
    fills: dict[str, int] = {}
    budget: dict[str, Timing] = {}
    profiles: list[str] = []
    big_equity: NDArray[np.float64] | None = None
    for w in workloads(not args.skip_big):
        results, fills[w.name], equity = time_workload(w, args.repeat)
        budget |= {name: results.pop(name) for name in (IDLE, STRATEGY_ALONE) if name in results}
        if w.name == SCALING[-1]:
            big_equity = equity
        if args.profile and w.name == "random_500x2520":
            profiles += profile_lines(w)
        if w.n_assets <= 500 and w.name != TURNOVER and not args.skip_backtrader:
            # Backtrader takes a minute or more a call past 25 assets: one call.
            repeat = 0 if w.n_assets > 25 else args.repeat
            results[BACKTRADER] = measure(backtrader_signals(w), repeat)
            print(f"{w.name:18} {BACKTRADER:26} best {results[BACKTRADER].best:8.3f} s", flush=True)
        timings[w.name] = results
        table += table_rows(w, results)
    print("compile cost (fresh processes):", flush=True)
    compile_lines = compile_costs()
    memory_lines: list[str] = []
    rss_peaks: dict[str, float] = {}
    if big_equity is not None:
        print("whole-process memory (fresh processes):", flush=True)
        memory_lines, rss_peaks = process_memory(SCALING[-1], big_equity)
    fill_counts = ", ".join(f"{n} {k:,}" for n, k in fills.items())
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"Machine: {machine()}.",
            "",
            f"Written by `python benchmarks/bench_peers.py` on "
            f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z} in "
            f"{time.perf_counter() - started:.0f} s. Best of the timed calls of the backtest alone "
            "(data, feeds and peer frames built beforehand; `--repeat` calls, and more while "
            f"they add up to under {MIN_TIMED:g} s, at most {MAX_CALLS}); the first call is "
            "apart (numba caches loaded from disk, VectorBT compiling), and `calls` counts it "
            "with the timed ones. The timed calls are "
            "made in rounds, each engine of the workload in turn making one call or more up to "
            f"{ROUND_SLICE:g} s (Backtrader's on their own, after), so that a slow spell of "
            "this shared machine slows every engine alike. Peak MB: Python-tracked "
            "allocations (tracemalloc; numba's allocations inside compiled code not seen) / "
            "growth of the resident size during one call (a floor: freed memory is reused "
            "unseen). 'time / ours ...' is the engine's best time over ours: above 1, ours is "
            "faster.",
            "",
            "Our four engines gave the same fills (timestamp, asset, side, quantity, price, "
            f"commission: compared exactly before timing): {fill_counts}.",
            "",
            *table,
            "",
            *goals(timings, rss_peaks, budget),
            "",
            *scaling(timings),
            "",
            "## Numba compile cost",
            "",
            "A fresh process on random_500x2520 with `NUMBA_CACHE_DIR` pointed at an empty "
            "directory (the first call compiles), then a second fresh process with that cache "
            "filled (the first call loads it), and a warm call in the same process.",
            "",
            *compile_lines,
            "",
            *(["## Whole-process memory", "", *memory_lines, ""] if memory_lines else []),
            *(["## Where our time goes", "", *profiles] if profiles else []),
            "## Notes",
            "",
            "- VectorBT's `from_signals` cannot size by a percent of equity (amount, value, or a "
            'percent of cash only). It gets `size_type="value"` with, on each bar, 1% (50%, '
            "19%) of the equity our compiled run recorded at the decision close. It keeps its "
            "own books, so an error in our equity or fills would show as a different final "
            "value; the time it spends is that of any value-sized `from_signals` call.",
            "- Backtrader sizes each buy at `broker.getvalue()` at the decision close; its "
            "broker checks cash when an order is submitted (priced at that close) and rejects "
            'what it cannot pay, where ours (default `on_insufficient_cash="scale_down"`) and '
            "VectorBT (`allow_partial`) buy what the cash pays at the fill. In the random "
            "workloads open positions soon ask for more than the equity (about half the assets "
            "held at 1% each), so from then on many buys are cut down (ours, VectorBT) or "
            "refused (Backtrader), and its final value differs from the others.",
            "",
        ]
    )
    Path(args.out).write_text(text + _kept_sections(Path(args.out), text))
    print(text)


def _kept_sections(path: Path, text: str) -> str:
    """The sections of ``path`` that other benchmarks wrote (memory, first run, results,
    sweeps, ...): every ``## `` section whose heading this run's ``text`` does not have."""
    if not path.exists():
        return ""
    ours = {line for line in text.splitlines() if line.startswith("## ")}
    kept = []
    for part in path.read_text().split("\n## ")[1:]:
        heading = "## " + part.splitlines()[0]
        if heading not in ours:
            kept.append("## " + part.rstrip("\n") + "\n")
    return "\n" + "\n".join(kept) if kept else ""


if __name__ == "__main__":
    main()
