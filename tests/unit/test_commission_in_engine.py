"""Commission models through the broker step: fees and cash worked out by hand."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed
from ml4t.backtest.execution.commission import (
    FixedCommission,
    PerShareCommission,
    TieredCommission,
)
from scripted import run


def flat_feed(dates: list[datetime], assets: tuple[str, ...] = ("A",), price: float = 100.0):
    rows = [
        {"timestamp": d, "asset": a, "open": price, "high": price, "low": price,
         "close": price, "volume": 1e6}
        for d in dates
        for a in assets
    ]  # fmt: skip
    return DataFeed(pl.DataFrame(rows))


DAYS = [datetime(2024, 1, d) for d in (2, 3, 4, 5)]


def test_per_share_commission_charges_the_minimum_on_a_small_order():
    model = PerShareCommission(0.005, minimum=1.0, maximum_pct=0.01)
    result, _ = run(
        flat_feed(DAYS),
        {0: lambda b, d: b.submit_order("A", 100), 1: lambda b, d: b.submit_order("A", 1000)},
        commission=model,
        initial_cash=1e6,
    )
    # 100 x 0.005 = 0.50 -> minimum 1.00; 1000 x 0.005 = 5.00 (under the 1% cap of 1,000).
    assert result.fills["commission"].to_list() == [1.0, 5.0]
    assert result.equity["cash"][2] == pytest.approx(1e6 - 110_000.0 - 6.0)


def test_fixed_commission_charges_each_fill_the_same():
    result, _ = run(
        flat_feed(DAYS),
        {0: lambda b, d: b.submit_order("A", 3), 1: lambda b, d: b.submit_order("A", -3)},
        commission=FixedCommission(2.5),
    )
    assert result.fills["commission"].to_list() == [2.5, 2.5]
    assert result.final_value == pytest.approx(10_000.0 - 5.0)


def test_volume_tiered_commission_counts_the_months_shares_and_resets_each_month():
    model = TieredCommission([(0, 0.01), (150, 0.005)])
    buy = lambda b, d: b.submit_order("A", 100)  # noqa: E731
    dates = [datetime(2024, 1, d) for d in (26, 29, 30, 31)] + [datetime(2024, 2, 1)]
    result, _ = run(
        flat_feed(dates), {0: buy, 1: buy, 2: buy, 3: buy}, commission=model, initial_cash=1e6
    )
    # Jan 29: 0 -> 1.00; Jan 30: 100 -> 1.00; Jan 31: 200 >= 150 -> 0.005 x 100 = 0.50;
    # Feb 1: new month -> 1.00.
    assert result.fills["commission"].to_list() == [1.0, 1.0, 0.5, 1.0]


def test_scale_down_accounts_for_a_minimum_commission():
    model = PerShareCommission(0.005, minimum=5.0)
    result, _ = run(
        flat_feed(DAYS), {0: lambda b, d: b.submit_order("A", 15)}, commission=model,
        initial_cash=1000.0,
    )  # fmt: skip
    # 9 shares cost 900 + 5 (minimum) = 905 <= 1000; 10 would cost 1005.
    assert result.fills.select("quantity", "commission").row(0) == (9.0, 5.0)
    assert result.equity["cash"][1] == pytest.approx(95.0)


def test_per_asset_commission_override():
    result, _ = run(
        flat_feed(DAYS, assets=("A", "B")),
        {0: lambda b, d: (b.submit_order("A", 10), b.submit_order("B", 10))},
        commission=0.001,
        commission_overrides={"B": FixedCommission(7.0)},
    )
    assert result.fills["commission"].to_list() == [pytest.approx(1.0), 7.0]


def test_a_python_commission_function_is_charged_and_respected_by_the_cash_check():
    def flat_plus_per_share(quantity, price):  # type: ignore[no-untyped-def]
        return 3.0 + 0.01 * quantity

    result, _ = run(
        flat_feed(DAYS),
        {0: lambda b, d: b.submit_order("A", 5), 1: lambda b, d: b.submit_order("A", 200)},
        commission=flat_plus_per_share,
        initial_cash=10_000.0,
    )
    # 5 shares: 3.05. Then cash 9,496.95 buys q with 100q + 3 + 0.01q <= 9,496.95: q = 94.
    assert result.fills.select("quantity", "commission").rows() == [
        (5.0, pytest.approx(3.05)),
        (94.0, pytest.approx(3.94)),
    ]
    assert result.equity["cash"][2] == pytest.approx(10_000 - 503.05 - 9_403.94)


def test_unknown_override_asset_is_a_config_error():
    with pytest.raises(ConfigError, match="'AAPL'"):
        run(flat_feed(DAYS), {}, commission_overrides={"AAPL": 0.001})


def test_config_with_commission_models_round_trips_through_yaml():
    config = BacktestConfig(
        commission=TieredCommission([(0, 0.0035), (300_000, 0.002)], minimum=0.35),
        commission_overrides={"X": PerShareCommission(0.01, minimum=1.0)},
    )
    assert BacktestConfig.from_yaml(config.to_yaml()) == config
