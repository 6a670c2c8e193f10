"""``broker.order_target_percents``: one call, the orders of many ``order_target_percent``."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from ml4t.backtest import BacktestConfig, BarView, Broker, DataFeed, Engine, OrderError, Strategy
from ml4t.backtest.datasets import synthetic_universe


class Random(Strategy):
    def __init__(self, batch: bool, values: bool = False) -> None:
        self.batch = batch
        self.values = values
        self.rng = np.random.default_rng(7)

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        n = len(data.assets)
        p = np.where(self.rng.uniform(size=n) < 0.3, self.rng.uniform(0, 0.1, n), np.nan)
        p[self.rng.uniform(size=n) < 0.1] = 0.0
        if self.values:
            p = p * 100_000.0
        if self.batch:
            (broker.order_target_values if self.values else broker.order_target_percents)(p)
            return
        for a in np.flatnonzero(~np.isnan(p)):
            one = broker.order_target_value if self.values else broker.order_target_percent
            one(str(data.assets[a]), float(p[a]))


@pytest.mark.parametrize("values", [False, True])
@pytest.mark.parametrize("sizing_price", ["decision", "fill"])
def test_batch_gives_the_orders_of_one_call_per_asset(sizing_price, values):
    feed = DataFeed(synthetic_universe(n_assets=12, n_bars=60, seed=2))
    config = BacktestConfig(commission=0.001, sizing_price=sizing_price)
    one_by_one = Engine(feed, Random(batch=False, values=values), config).run()
    batch = Engine(feed, Random(batch=True, values=values), config).run()
    assert one_by_one.fills.height > 50
    assert batch.fills.equals(one_by_one.fills)
    assert batch.orders.equals(one_by_one.orders)


def test_batch_takes_a_mapping_and_leaves_other_assets_alone():
    feed = DataFeed(synthetic_universe(n_assets=3, n_bars=5, seed=2))
    seen: list[int] = []

    class Once(Strategy):
        def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
            if data.index == 0:
                broker.order_target_percent("A0002", 0.2)
                seen.append(len(broker.order_target_percents({"A0000": 0.3})))

    result = Engine(feed, Once(), BacktestConfig()).run()
    assert seen == [1]
    assert sorted(set(result.fills["asset"])) == ["A0000", "A0002"]


def test_batch_rejects_a_wrong_shape_and_an_infinite_percent():
    feed = DataFeed(synthetic_universe(n_assets=3, n_bars=3, seed=2))
    errors: list[str] = []

    class Bad(Strategy):
        def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
            for p in (np.zeros(2), np.array([np.inf, 0.0, 0.0])):
                with pytest.raises(OrderError) as info:
                    broker.order_target_percents(p)
                errors.append(str(info.value))

    Engine(feed, Bad(), BacktestConfig()).run()
    assert "shape (3,)" in errors[0]
    assert "A0000" in errors[1]


@pytest.mark.parametrize("layout", ["strided", "read_only", "list"])
def test_batch_takes_any_float_layout_as_a_contiguous_array(layout):
    # The batch runs a compiled function typed once for writeable C-ordered float arrays:
    # other layouts are copied to one, so each bar orders the same.
    feed = DataFeed(synthetic_universe(n_assets=4, n_bars=20, seed=3))

    class Batch(Strategy):
        def __init__(self, layout: str | None) -> None:
            self.layout = layout

        def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
            p = np.full(4, np.nan)
            p[data.index % 4] = 0.2 if data.index % 8 < 4 else 0.0
            if self.layout == "strided":
                wide = np.zeros(8)
                wide[::2] = p
                broker.order_target_percents(wide[::2])
            elif self.layout == "read_only":
                p.flags.writeable = False
                broker.order_target_percents(p)
            elif self.layout == "list":
                broker.order_target_percents(p.tolist())
            else:
                broker.order_target_percents(p)

    config = BacktestConfig(commission=0.001)
    expected = Engine(feed, Batch(None), config).run()
    result = Engine(feed, Batch(layout), config).run()
    assert expected.fills.height >= 8
    assert result.fills.equals(expected.fills)
    assert result.orders.equals(expected.orders)
