"""The demo: a top-N strategy on a model score, run on the bundled synthetic universe."""

from __future__ import annotations

from pathlib import Path

from .config import BacktestConfig
from .data.feed import DataFeed
from .datasets import synthetic_universe
from .engine import Engine
from .results.result import BacktestResult
from .strategy import TopNStrategy


def run_demo(
    *,
    n_assets: int = 100,
    n_bars: int = 1260,
    seed: int = 42,
    top_n: int = 10,
    every: int = 5,
    out: str | Path | None = "results/demo",
    overwrite: bool = False,
    progress: bool = True,
) -> BacktestResult:
    """Run the demo backtest and save its results to ``out`` (skip saving with None;
    ``overwrite`` as in ``BacktestResult.save``).

    Example:
        >>> result = run_demo(n_assets=20, n_bars=100, out=None, progress=False)
    """
    prices = synthetic_universe(n_assets=n_assets, n_bars=n_bars, seed=seed)
    feed = DataFeed(prices)
    # 5 bps commission and 5 bps slippage per side: what a liquid-equity quant pays.
    config = BacktestConfig(initial_cash=1_000_000, commission=0.0005, slippage=0.0005)
    strategy = TopNStrategy("score", n=top_n, rebalance_every=every)
    result = Engine(feed, strategy, config).run(progress=progress)
    if out is not None:
        result.save(out, overwrite=overwrite)
    return result
