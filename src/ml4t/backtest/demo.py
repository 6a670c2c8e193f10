"""The demo: a top-N strategy on a model score, run on the bundled synthetic universe."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from .broker import Broker
from .config import BacktestConfig
from .data.feed import DataFeed
from .data.view import BarView
from .datasets import synthetic_universe
from .engine import Engine
from .results.result import BacktestResult
from .strategy import Strategy


class TopNScore(Strategy):
    """Hold the ``n`` highest-``column`` assets at equal weight, rebalanced every ``every`` bars.

    Assets without a bar (NaN score) are never picked.

    Example:
        >>> strategy = TopNScore(column="score", n=10, every=5)
    """

    def __init__(self, *, column: str = "score", n: int = 10, every: int = 5) -> None:
        self.column = column
        self.n = n
        self.every = every

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        if data.index % self.every:
            return
        score = np.nan_to_num(data[self.column], nan=-np.inf)
        ranked = np.argsort(-score, kind="stable")[: self.n]
        top = ranked[np.isfinite(score[ranked])]
        weights = np.zeros(len(data.assets))
        if len(top):
            weights[top] = 1.0 / self.n
        broker.rebalance(weights)


def run_demo(
    *,
    n_assets: int = 100,
    n_bars: int = 1260,
    seed: int = 42,
    top_n: int = 10,
    every: int = 5,
    out: str | Path | None = "results/demo",
    progress: bool = True,
) -> BacktestResult:
    """Run the demo backtest and save its results to ``out`` (skip saving with None).

    Example:
        >>> result = run_demo(n_assets=20, n_bars=100, out=None, progress=False)
    """
    prices = synthetic_universe(n_assets=n_assets, n_bars=n_bars, seed=seed)
    feed = DataFeed(prices)
    # 5 bps commission and 5 bps slippage per side: what a liquid-equity quant pays.
    config = BacktestConfig(initial_cash=1_000_000, commission=0.0005, slippage=0.0005)
    result = Engine(feed, TopNScore(column="score", n=top_n, every=every), config).run(
        progress=progress
    )
    if out is not None:
        result.save(out)
    return result
