"""ml4t.backtest: event-driven backtesting for machine-learning trading strategies.

Example:
    >>> import numpy as np
    >>> from ml4t.backtest import BacktestConfig, DataFeed, Engine, Strategy
    >>> from ml4t.backtest.datasets import synthetic_universe
    >>> feed = DataFeed(synthetic_universe(n_assets=10, n_bars=300, seed=7))
    >>> class Top3(Strategy):
    ...     def on_data(self, timestamp, data, broker):
    ...         top = data.assets[np.argsort(-np.nan_to_num(data["score"], nan=-np.inf))[:3]]
    ...         broker.rebalance({a: 0.3 for a in top})
    >>> result = Engine(feed, Top3(), BacktestConfig(commission=0.001)).run()
"""

from .broker import Broker
from .compiled import run_orders, run_signals, run_weights
from .config import BacktestConfig
from .data import Bar, BarView, DataFeed
from .engine import Engine, run_backtest
from .errors import (
    BacktestError,
    ConfigError,
    DataError,
    DataWarning,
    OrderError,
    OrderWarning,
    StrategyError,
)
from .orders import Fill, Order
from .results import BacktestResult
from .strategy import SignalStrategy, Strategy, TargetWeightStrategy, TopNStrategy
from .weights import topn_weights

__version__ = "0.1.0"

__all__ = [
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "Bar",
    "BarView",
    "Broker",
    "ConfigError",
    "DataError",
    "DataFeed",
    "DataWarning",
    "Engine",
    "Fill",
    "Order",
    "OrderError",
    "OrderWarning",
    "SignalStrategy",
    "Strategy",
    "StrategyError",
    "TargetWeightStrategy",
    "TopNStrategy",
    "__version__",
    "run_backtest",
    "run_orders",
    "run_signals",
    "run_weights",
    "topn_weights",
]
