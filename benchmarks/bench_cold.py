"""A user's first backtest on a machine: a whole fresh process, numba's cache empty.

Each engine runs the same small backtest (1 asset x 2,520 daily bars, a 10/30 moving-average
crossover, 0.1% fees, 50% of equity per entry) in a fresh Python process whose
``NUMBA_CACHE_DIR`` points at an empty folder, so everything numba compiles is compiled in that
process: our compiled driver (``run_signals``), our event driver (``Engine`` with a strategy
deciding from the same signal arrays) and VectorBT's ``Portfolio.from_signals``. A second process
with the cache left filled shows what every later run pays. The whole process is timed from the
parent (interpreter start, imports, data, the run), wall and CPU, and each case runs
``--repeat`` times (the median is reported; this machine is shared and noisy).

The child builds its data with numpy only and imports only the engine it runs, so no engine
pays for another's imports. Python's bytecode cache is on in every child (our modules' bytecode
is written before the first one), as it is for any installed package, whatever
``PYTHONDONTWRITEBYTECODE`` the calling shell sets. The goal (issue 14): our cold process takes
at most a third of VectorBT's, for each driver.

``--stop-loss`` adds a 5% stop loss to every engine (ours: ``StopLoss(0.05)`` on both
drivers; VectorBT: ``sl_stop=0.05``): a first run that compiles the position rules too. Its
figures go in a section of their own.

    python benchmarks/bench_cold.py --repeat 3 [--stop-loss] [--write]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ENGINES = ("ours compiled", "ours event", "vectorbt from_signals")
RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## First run on a machine (issue 14)"
SECTION_STOP = "## First run on a machine, with a 5% stop loss (issue 14)"
STOP = 0.05


def _data() -> tuple[object, ...]:
    """Prices and MA-crossover signals, 1 asset x 2,520 bars (seeded, numpy only)."""
    import numpy as np

    rng = np.random.default_rng(1)
    n = 2520
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, n)))
    prev = np.concatenate([close[:1], close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, 0.005, n))
    high = np.maximum(open_, close) * 1.005
    low = np.minimum(open_, close) * 0.995
    kernel = np.ones(10) / 10
    fast = np.convolve(close, kernel)[:n]
    slow = np.convolve(close, np.ones(30) / 30)[:n]
    fast[:9] = np.nan
    slow[:29] = np.nan
    above = fast > slow
    entries = above & ~np.concatenate([[False], above[:-1]])
    exits = ~above & np.concatenate([[False], above[:-1]])
    times = np.datetime64("2010-01-01") + np.arange(n).astype("timedelta64[D]")
    return times, open_, high, low, close, entries, exits


def child(engine: str, stop: bool = False) -> dict[str, float]:
    """Run one engine once in this process; what it took, after the interpreter started."""
    start = time.perf_counter()
    times, open_, high, low, close, entries, exits = _data()
    if engine == "vectorbt from_signals":
        import pandas as pd
        import vectorbt as vbt

        imported = time.perf_counter()
        index = pd.DatetimeIndex(times)
        pf = vbt.Portfolio.from_signals(
            pd.Series(close, index=index), pd.Series(entries, index=index),
            pd.Series(exits, index=index), size=0.5, size_type="percent", fees=0.001,
            init_cash=1_000_000.0, freq="1D", **({"sl_stop": STOP} if stop else {}),
        )  # fmt: skip
        final = float(pf.value().iloc[-1])
    else:
        import numpy as np

        from ml4t.backtest import BacktestConfig, DataFeed, Engine, Strategy, run_signals
        from ml4t.backtest.risk import StopLoss

        imported = time.perf_counter()
        volume = np.full(len(close), 1e6)
        fields = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
        feed = DataFeed.from_arrays(
            times, ["A"], {k: np.asarray(v)[:, None] for k, v in fields.items()}
        )
        config = BacktestConfig(initial_cash=1_000_000.0, commission=0.001)
        rules = StopLoss(STOP) if stop else None
        if engine == "ours compiled":
            result = run_signals(
                feed, entries[:, None], exits[:, None], size=0.5, config=config,
                position_rules=rules,
            )  # fmt: skip
        else:

            class Cross(Strategy):
                def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
                    t = data.index
                    if exits[t] and broker.position("A") > 0:
                        broker.close_position("A")
                    elif entries[t] and broker.position("A") == 0:
                        broker.order_target_percent("A", 0.5)

            result = Engine(feed, Cross(), config, position_rules=rules).run()
        final = result.final_value
    done = time.perf_counter()
    return {"imports": imported - start, "run": done - imported, "final": final}


def measure(engine: str, cache: str, stop: bool = False) -> dict[str, float]:
    """One fresh process running ``engine`` with ``NUMBA_CACHE_DIR=cache``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    # Python's own bytecode cache as an installed package has it (pip writes it at install,
    # for VectorBT as for us): a shell that turns it off would make every process compile
    # our modules from source, which no user's process does.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", engine, *(["--stop-loss"] if stop else [])],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    inside = json.loads(out.stdout.strip().splitlines()[-1])
    return {"wall": wall, "cpu": cpu, **inside}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--stop-loss", action="store_true", help="a 5%% stop loss everywhere")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.stop_loss)))
        return
    section = SECTION_STOP if args.stop_loss else SECTION
    import ml4t.backtest

    # Every module's bytecode written before the first timed process (see ``measure``).
    compileall.compile_dir(Path(ml4t.backtest.__file__).parent, quiet=1)

    rows: dict[str, dict[str, list[dict[str, float]]]] = {
        e: {"cold": [], "warm": []} for e in ENGINES
    }
    for _ in range(args.repeat):
        for engine in ENGINES:  # interleaved, so a busy spell hits every engine alike
            with tempfile.TemporaryDirectory() as cache:
                rows[engine]["cold"].append(measure(engine, cache, args.stop_loss))
                rows[engine]["warm"].append(measure(engine, cache, args.stop_loss))

    def med(engine: str, kind: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[engine][kind])

    vbt_cold = med("vectorbt from_signals", "cold", "wall")
    vbt_cold_cpu = med("vectorbt from_signals", "cold", "cpu")
    lines = [
        "| engine | cold process, wall (s) | cold, CPU (s) | of which the run (s) | "
        "warm process, wall (s) | cold wall / VectorBT's | cold CPU / VectorBT's | final value |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine in ENGINES:
        cold = med(engine, "cold", "wall")
        lines.append(
            f"| {engine} | {cold:.2f} | {med(engine, 'cold', 'cpu'):.2f} | "
            f"{med(engine, 'cold', 'run'):.2f} | {med(engine, 'warm', 'wall'):.2f} | "
            f"{cold / vbt_cold:.2f} | {med(engine, 'cold', 'cpu') / vbt_cold_cpu:.2f} | "
            f"{rows[engine]['cold'][0]['final']:,.2f} |"
        )
    goals = []
    for engine in ("ours compiled", "ours event"):
        ratio = med(engine, "cold", "wall") / vbt_cold
        verdict = "met" if ratio <= 1 / 3 else "not met"
        goals.append(
            f"- {engine}: cold process {ratio:.2f}x VectorBT's (goal <= 0.33: **{verdict}**)"
        )
    from ml4t.backtest import __version__

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=RESULTS.parent
    ).stdout.strip()
    text = "\n".join(
        [
            section,
            "",
            f"Written by `python benchmarks/bench_cold.py --repeat {args.repeat}"
            f"{' --stop-loss' if args.stop_loss else ''} --write` on "
            f"{stamp} "
            f"(ml4t-backtest {__version__}, commit {commit}, Python {platform.python_version()}, "
            f"{os.cpu_count()} cores). Median of {args.repeat} fresh processes per case, the "
            "engines interleaved. 'cold': `NUMBA_CACHE_DIR` an empty folder; 'warm': a second "
            "process with that cache filled. Times are the whole process (interpreter, imports, "
            "data, run). VectorBT sizes by percent of cash, ours by percent of equity, so the "
            "final values differ; the work (one asset, 2,520 bars, the same signals) is the same."
            + (
                " Every engine also has a 5% stop loss on its positions (ours `StopLoss(0.05)`, "
                "VectorBT `sl_stop=0.05`)."
                if args.stop_loss
                else ""
            ),
            "",
            *lines,
            "",
            *goals,
            "",
        ]
    )
    print(text)
    if args.write:
        old = RESULTS.read_text()
        if section in old:
            head, _, rest = old.partition(section)
            tail = rest.split("\n## ", 1)
            old = head + ("## " + tail[1] if len(tail) > 1 else "")
        RESULTS.write_text(old.rstrip("\n") + "\n\n" + text)


if __name__ == "__main__":
    main()
