"""A strategy that runs a script of broker calls, bar by bar, for hand-worked tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ml4t.backtest import (
    BacktestConfig,
    BacktestResult,
    BarView,
    Broker,
    DataFeed,
    Engine,
    Fill,
    Strategy,
)

Action = Callable[[Broker, BarView], None]


class Scripted(Strategy):
    """Runs ``actions[bar]`` at that bar; records what it saw."""

    def __init__(self, actions: dict[int, Action]) -> None:
        self.actions = actions
        self.fills: list[Fill] = []
        self.equity_seen: list[float] = []

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        self.equity_seen.append(broker.equity)
        action = self.actions.get(data.index)
        if action is not None:
            action(broker, data)

    def on_fill(self, fill: Fill, broker: Broker) -> None:
        self.fills.append(fill)


def run(
    feed: DataFeed, actions: dict[int, Action], **config: Any
) -> tuple[BacktestResult, Scripted]:
    """Run ``actions`` on ``feed`` with a config of ``config`` (initial cash 10,000 unless set);
    ``position_rules`` and ``portfolio_rules`` among ``config`` go to the engine."""
    strategy = Scripted(actions)
    position_rules = config.pop("position_rules", None)
    portfolio_rules = config.pop("portfolio_rules", ())
    cfg = BacktestConfig(initial_cash=config.pop("initial_cash", 10_000.0), **config)
    engine = Engine(
        feed, strategy, cfg, position_rules=position_rules, portfolio_rules=portfolio_rules
    )
    return engine.run(), strategy
