"""Slippage models through the broker step: fill prices and costs worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import (
    BacktestConfig,
    ConfigError,
    DataError,
    DataFeed,
    DataWarning,
    run_signals,
)
from ml4t.backtest.execution.slippage import (
    CombinedSlippage,
    FixedBpsSlippage,
    OrderTypeSlippage,
    SpreadSlippage,
    VolumeShareSlippage,
)
from scripted import run


def feed(**extra: list[float]) -> DataFeed:
    n = 3
    columns = {
        "timestamp": [datetime(2024, 1, 1) + timedelta(days=t) for t in range(n)],
        "asset": ["A"] * n,
        "open": [100.0] * n,
        "high": [101.0] * n,
        "low": [97.0] * n,
        "close": [100.0] * n,
        "volume": [10_000.0] * n,
    }
    return DataFeed(pl.DataFrame(columns | extra))


def test_fixed_bps_buy_pays_the_bps_and_records_its_cost():
    result, _ = run(
        feed(), {0: lambda b, d: b.submit_order("A", 50)}, slippage=FixedBpsSlippage(10)
    )
    fill = result.fills.row(0, named=True)
    assert fill["price"] == pytest.approx(100.0 * 1.001)
    assert fill["slippage"] == pytest.approx(50 * 0.1)


def test_spread_model_pays_half_the_quoted_spread_from_bid_and_ask():
    quotes = feed(bid=[99.8, 99.7, 99.9], ask=[100.2, 100.3, 100.1])
    result, _ = run(quotes, {0: lambda b, d: b.submit_order("A", 10)}, slippage=SpreadSlippage())
    # Bar 1's quote: ask - bid = 0.6, half of it on top of the open of 100.
    assert result.fills["price"].to_list() == [pytest.approx(100.3)]


def test_volume_share_impact_grows_with_the_square_root_of_participation():
    model = VolumeShareSlippage(impact=0.1, volatility=0.02)
    result, _ = run(
        feed(), {0: lambda b, d: b.submit_order("A", 400)}, slippage=model, initial_cash=1e6
    )
    # 400 of 10,000 shares = 4%; sqrt(0.04) = 0.2; 0.1 * 0.02 * 0.2 = 0.0004 of the price.
    assert result.fills["price"].to_list() == [pytest.approx(100.04)]


def test_order_type_model_charges_market_orders_and_not_limits():
    model = OrderTypeSlippage(market=0.002)
    result, _ = run(
        feed(),
        {0: lambda b, d: (b.submit_order("A", 5), b.submit_order("A", 5, limit_price=98.0))},
        slippage=model,
    )
    assert result.fills.select("order_id", "price").rows() == [
        (0, pytest.approx(100.2)),
        (1, 98.0),
    ]


def test_per_asset_override_replaces_the_default_for_that_asset():
    two = DataFeed(pl.concat([_frame("A"), _frame("B")]))
    result, _ = run(
        two,
        {0: lambda b, d: (b.submit_order("A", 1), b.submit_order("B", 1))},
        slippage=0.001,
        slippage_overrides={"B": FixedBpsSlippage(50)},
    )
    assert result.fills["price"].to_list() == [pytest.approx(100.1), pytest.approx(100.5)]


def _frame(asset: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [datetime(2024, 1, 1) + timedelta(days=t) for t in range(2)],
            "asset": [asset] * 2,
            "open": [100.0] * 2,
            "high": [100.0] * 2,
            "low": [100.0] * 2,
            "close": [100.0] * 2,
            "volume": [1e6] * 2,
        }
    )


def test_a_model_needing_columns_the_feed_lacks_is_a_config_error():
    with pytest.raises(ConfigError, match=r"needs the feed columns \(ask, bid\) or \(spread\)"):
        run(feed(), {}, slippage=SpreadSlippage())


def test_a_python_slippage_function_prices_fills_from_inside_the_step():
    def half_spread_of_range(price, qty, order_type, bar):  # type: ignore[no-untyped-def]
        # 0.25 per share when the order is over 10% of the bar's volume, else 0.05.
        step = 0.25 if abs(qty) > 0.1 * bar.volume else 0.05
        return price + step if qty > 0 else price - step

    result, _ = run(
        feed(),
        {0: lambda b, d: b.submit_order("A", 2_000), 1: lambda b, d: b.submit_order("A", -50)},
        slippage=half_spread_of_range,
        initial_cash=1e6,
    )
    assert result.fills["price"].to_list() == [100.25, 99.95]
    assert result.fills["slippage"].to_list() == [pytest.approx(500.0), pytest.approx(2.5)]


def test_config_with_a_model_round_trips_through_a_dict_and_yaml():
    config = BacktestConfig(
        slippage=OrderTypeSlippage(market=FixedBpsSlippage(5)),
        slippage_overrides={"B": VolumeShareSlippage(impact=0.2, volatility=0.01)},
    )
    assert BacktestConfig.from_dict(config.to_dict()) == config
    assert BacktestConfig.from_yaml(config.to_yaml()) == config
    with pytest.raises(ConfigError, match=r"unknown model 'FixedBpSlippage'.*FixedBpsSlippage"):
        BacktestConfig.from_dict({"slippage": {"model": "FixedBpSlippage", "bps": 5}})


def test_a_model_column_missing_on_priced_bars_warns_and_its_orders_wait():
    # Volatility is unknown on bar 1, where the buy decided at bar 0 would fill.
    data = feed(volatility=[0.02, float("nan"), 0.02])
    with pytest.warns(DataWarning, match=r"1 bars of 1 assets.*asset A at 2024-01-02"):
        result, _ = run(
            data, {0: lambda b, d: b.submit_order("A", 50)}, slippage=VolumeShareSlippage()
        )
    # The order waited through the blind bar and filled at the next one it could price.
    assert result.fills["timestamp"].to_list() == [datetime(2024, 1, 3)]


def test_no_warning_when_the_model_has_a_constant_fallback(recwarn):
    data = feed(volatility=[0.02, float("nan"), 0.02])
    run(data, {0: lambda b, d: b.submit_order("A", 50)},
        slippage=VolumeShareSlippage(volatility=0.02))  # fmt: skip
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]


def test_the_compiled_driver_warns_the_same():
    data = feed(volatility=[0.02, float("nan"), 0.02])
    entries = np.array([[True], [False], [False]])
    with pytest.warns(DataWarning, match="asset A at 2024-01-02"):
        run_signals(data, entries, ~entries, size=0.1,
                    config=BacktestConfig(slippage=VolumeShareSlippage()))  # fmt: skip


def test_combined_spread_and_impact_through_both_drivers():
    # Spread column 0.2: half is 0.1. Impact 0.1 x 2% x sqrt(100 / 10,000) of 100 = 0.02.
    # The buy decided at bar 0 fills at bar 1's open, 100, at 100.12; the config round-trips.
    data = feed(spread=[0.2, 0.2, 0.2])
    model = CombinedSlippage(SpreadSlippage(), VolumeShareSlippage(impact=0.1, volatility=0.02))
    result, _ = run(
        data, {0: lambda b, d: b.submit_order("A", 100)}, slippage=model, initial_cash=1e5
    )
    fill = result.fills.row(0, named=True)
    assert fill["quantity"] == 100.0
    assert fill["price"] == pytest.approx(100.12, abs=1e-9)
    assert fill["slippage"] == pytest.approx(100 * 0.12, abs=1e-7)
    config = BacktestConfig(initial_cash=1e5, slippage=model)
    assert BacktestConfig.from_yaml(config.to_yaml()) == config
    entries = np.array([[True], [False], [False]])
    compiled = run_signals(data, entries, np.zeros_like(entries), size=100.0,
                           size_type="shares", config=config)  # fmt: skip
    assert compiled.fills["price"].to_list() == result.fills["price"].to_list()


def both_drivers(data: DataFeed, model: object, quantity: float) -> list[list[float]]:
    """Fill prices of a buy of ``quantity`` decided at bar 0, from each driver."""
    result, _ = run(data, {0: lambda b, d: b.submit_order("A", quantity)}, slippage=model,
                    initial_cash=1e6)  # fmt: skip
    entries = np.array([[True], [False], [False]])
    compiled = run_signals(data, entries, np.zeros_like(entries), size=quantity,
                           size_type="shares",
                           config=BacktestConfig(initial_cash=1e6, slippage=model))  # fmt: skip
    return [result.fills["price"].to_list(), compiled.fills["price"].to_list()]


def test_an_explicit_volatility_wins_over_a_volatility_column_in_both_drivers():
    # The column is in percent (30); the model's 0.02 is used: 400 of 10,000 shares is 4%,
    # sqrt 0.2; 0.1 x 0.02 x 0.2 = 0.0004 of the open of 100. (Reading 30 gave 100 x 1.6.)
    data = feed(volatility=[30.0, 30.0, 30.0])
    model = VolumeShareSlippage(impact=0.1, volatility=0.02)
    assert both_drivers(data, model, 400) == [[pytest.approx(100.04)]] * 2


def test_an_explicit_spread_bps_ignores_a_negative_spread_column_in_both_drivers():
    # The spread column is a z-score of -5; 10 bps of 100 is 0.10, half of it 0.05.
    data = feed(spread=[-5.0, -5.0, -5.0])
    model = SpreadSlippage(spread_bps=10)
    assert both_drivers(data, model, 10) == [[pytest.approx(100.05)]] * 2


def test_a_named_volatility_column_is_read_in_both_drivers():
    # vol_20d is 0.03: 0.1 x 0.03 x sqrt(400 / 10,000) = 0.0006 of 100; the unrelated
    # volatility column (percent units) is not read, so it is not checked either.
    data = feed(vol_20d=[0.03, 0.03, 0.03], volatility=[30.0, 30.0, 30.0])
    model = VolumeShareSlippage(impact=0.1, volatility="vol_20d")
    assert both_drivers(data, model, 400) == [[pytest.approx(100.06)]] * 2


def test_assets_naming_different_columns_each_read_their_own_in_both_drivers():
    n = 3
    rows = {
        "timestamp": [datetime(2024, 1, 1) + timedelta(days=t) for t in range(n)] * 2,
        "asset": ["A"] * n + ["B"] * n,
        "open": [100.0] * 2 * n,
        "high": [101.0] * 2 * n,
        "low": [97.0] * 2 * n,
        "close": [100.0] * 2 * n,
        "volume": [10_000.0] * 2 * n,
        "volatility": [0.02] * 2 * n,
        "vol_b": [0.08] * 2 * n,
    }
    data = DataFeed(pl.DataFrame(rows))
    costs = {
        "slippage": VolumeShareSlippage(impact=0.1),
        "slippage_overrides": {"B": VolumeShareSlippage(impact=0.1, volatility="vol_b")},
    }
    config = BacktestConfig(initial_cash=1e6, **costs)
    buy = {0: lambda b, d: (b.submit_order("A", 400), b.submit_order("B", 400))}
    result, _ = run(data, buy, initial_cash=1e6, **costs)
    entries = np.array([[True, True], [False, False], [False, False]])
    compiled = run_signals(data, entries, np.zeros_like(entries), size=400.0,
                           size_type="shares", config=config)  # fmt: skip
    # sqrt(400 / 10,000) = 0.2. A: 0.1 x 0.02 x 0.2 = 0.0004; B: 0.1 x 0.08 x 0.2 = 0.0016.
    expected = [pytest.approx(100.04), pytest.approx(100.16)]
    assert result.fills.sort("asset")["price"].to_list() == expected
    assert compiled.fills.sort("asset")["price"].to_list() == expected


def test_a_volatility_column_in_percent_is_a_data_error_naming_it():
    data = feed(volatility=[30.0, 30.0, 30.0])
    message = (
        r"column 'volatility', read by .* as the volatility, is 30.0 for asset A at 2024-01-01"
    )
    config = BacktestConfig(slippage=VolumeShareSlippage())
    with pytest.raises(DataError, match=message):
        run(data, {}, slippage=config.slippage)
    with pytest.raises(DataError, match=message):
        run_signals(data, np.zeros((3, 1), dtype=bool), config=config)


def test_a_negative_spread_column_read_by_the_model_is_a_data_error_naming_it():
    data = feed(spread=[0.2, -5.0, 0.2])
    with pytest.raises(DataError, match=r"column 'spread'.* is -5.0 for asset A at 2024-01-02"):
        run(data, {}, slippage=SpreadSlippage())


def test_crossed_quotes_the_model_reads_are_a_warning_naming_asset_and_time():
    # Bar 1's bid is above its ask: half of a negative spread is charged as 0.
    quotes = feed(bid=[99.8, 100.4, 99.9], ask=[100.2, 100.0, 100.1])
    with pytest.warns(DataWarning, match=r"crossed quotes on 1 bars .*asset A at 2024-01-02"):
        result, _ = run(
            quotes, {0: lambda b, d: b.submit_order("A", 10)}, slippage=SpreadSlippage()
        )
    assert result.fills["price"].to_list() == [100.0]  # the open, no spread paid


def test_quotes_a_model_does_not_read_are_not_checked_for_crossing(recwarn):
    quotes = feed(bid=[99.8, 100.4, 99.9], ask=[100.2, 100.0, 100.1])
    run(quotes, {0: lambda b, d: b.submit_order("A", 10)}, slippage=FixedBpsSlippage(10))
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]


ZIPLINE_IMPACT = VolumeShareSlippage(impact=0.1, exponent=2, volatility=1.0, cumulative=True)


def _two_buys_of_1000(model: VolumeShareSlippage) -> list[float]:
    result, _ = run(
        feed(),
        {0: lambda b, d: (b.submit_order("A", 1_000), b.submit_order("A", 1_000))},
        slippage=model,
        max_participation=0.5,
        initial_cash=1e6,
    )
    return result.fills["price"].to_list()


def test_cumulative_volume_share_prices_a_second_order_by_the_bar_volume_already_filled():
    # Bar volume 10,000. The first 1,000: 0.1 x (1,000 / 10,000)^2 = 0.001, 100.1. The second
    # counts the first: 0.1 x (2,000 / 10,000)^2 = 0.004, 100.4 (Zipline's volume_for_bar).
    assert _two_buys_of_1000(ZIPLINE_IMPACT) == [pytest.approx(100.1), pytest.approx(100.4)]


def test_volume_share_prices_each_order_by_its_own_volume_unless_cumulative():
    plain = VolumeShareSlippage(impact=0.1, exponent=2, volatility=1.0)
    assert _two_buys_of_1000(plain) == [pytest.approx(100.1), pytest.approx(100.1)]


def test_cumulative_volume_share_needs_a_participation_cap():
    with pytest.raises(ConfigError, match=r"cumulative=True\) needs max_participation"):
        BacktestConfig(slippage=ZIPLINE_IMPACT)
    with pytest.raises(ConfigError, match=r"slippage_overrides\['A'\]"):
        BacktestConfig(slippage_overrides={"A": OrderTypeSlippage(market=ZIPLINE_IMPACT)})
