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


# 39.999995% of 10,000 at 10 is 399.99995 shares, 5e-5 below 400: within Zipline's 1e-4, so
# snap_near_whole buys 400; truncation alone buys 399 (under either rounding, nothing held).
NEAR_WHOLE_WEIGHT = 0.39999995


@pytest.mark.parametrize("rounding", ["target", "order"])
@pytest.mark.parametrize(("snap", "expected"), [(True, 400.0), (False, 399.0)])
def test_snap_near_whole_buys_the_whole_number_an_amount_falls_just_below(rounding, snap, expected):
    result, _ = run(
        feed(),
        {0: lambda b, d: b.order_target_percent("A", NEAR_WHOLE_WEIGHT)},
        target_rounding=rounding,
        snap_near_whole=snap,
    )
    assert result.fills["quantity"].to_list() == [expected]


@pytest.mark.parametrize(("snap", "expected"), [(True, 400.0), (False, 399.0)])
def test_the_compiled_driver_snaps_near_whole_amounts_the_same_way(snap, expected):
    w = np.full((len(PRICES), 1), np.nan)
    w[0] = NEAR_WHOLE_WEIGHT
    config = BacktestConfig(initial_cash=10_000.0, target_rounding="order", snap_near_whole=snap)
    assert run_weights(feed(), w, config=config).fills["quantity"].to_list() == [expected]


def test_the_zipline_preset_snaps_near_whole_amounts():
    assert BacktestConfig.preset("zipline").snap_near_whole
    assert not BacktestConfig.preset("backtrader").snap_near_whole
    assert not BacktestConfig().snap_near_whole


def test_a_non_boolean_snap_near_whole_is_a_config_error():
    with pytest.raises(ConfigError, match="snap_near_whole must be true or false"):
        BacktestConfig(snap_near_whole="yes")  # type: ignore[arg-type]
