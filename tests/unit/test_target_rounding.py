"""``target_rounding``: with whole shares, round the target quantity or the order itself.

Worked by hand: 500 shares bought at 10 are worth 6,500 at 13, equity 11,500; a 30% target is
3,450 / 13 = 265.38 shares. Rounding the target holds 265 (sell 235); rounding the order, as
Backtrader and Zipline do, sells trunc(265.38 - 500) = -234.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed, run_weights
from scripted import run

PRICES = [10.0, 10.0, 13.0, 13.0, 13.0]


def feed() -> DataFeed:
    n = len(PRICES)
    return DataFeed(
        pl.DataFrame(
            {
                "timestamp": [datetime(2024, 1, 1) + timedelta(days=t) for t in range(n)],
                "asset": ["A"] * n,
                "open": PRICES,
                "high": PRICES,
                "low": PRICES,
                "close": PRICES,
                "volume": [1e6] * n,
            }
        )
    )


def sold(rounding: str, call: str) -> float:
    targets = {
        "percent": lambda b, d: b.order_target_percent("A", 0.3),
        "percents": lambda b, d: b.order_target_percents(np.array([0.3])),
        "rebalance": lambda b, d: b.rebalance({"A": 0.3}),
    }
    result, _ = run(
        feed(),
        {0: lambda b, d: b.submit_order("A", 500), 2: targets[call]},
        target_rounding=rounding,
    )
    return float(result.fills["quantity"][1])


@pytest.mark.parametrize("call", ["percent", "percents", "rebalance"])
def test_target_rounding_rounds_the_target(call):
    assert sold("target", call) == 500 - 265


@pytest.mark.parametrize("call", ["percent", "percents", "rebalance"])
def test_order_rounding_rounds_the_order(call):
    assert sold("order", call) == 234


def test_the_compiled_driver_rounds_the_same_way():
    w = np.full((len(PRICES), 1), np.nan)
    w[0] = 0.5  # 500 shares at 10
    w[2] = 0.3
    for rounding, expected in [("target", 235.0), ("order", 234.0)]:
        result = run_weights(
            feed(), w, config=BacktestConfig(initial_cash=10_000.0, target_rounding=rounding)
        )
        assert result.fills["quantity"].to_list() == [500.0, expected]


def test_the_backtrader_and_zipline_presets_round_the_order():
    assert BacktestConfig.preset("backtrader").target_rounding == "order"
    assert BacktestConfig.preset("zipline").target_rounding == "order"
    assert BacktestConfig().target_rounding == "target"


def test_an_unknown_rounding_is_a_config_error():
    with pytest.raises(ConfigError, match="target_rounding"):
        BacktestConfig(target_rounding="nearest")  # type: ignore[arg-type]
