"""The plain fill step (``kernels.clock.fill_features``): a run that needs none of the
optional fill features takes a fill step compiled without them, and gives the fills the full
step gives; an order that needs the full step switches the run to it, mid-run if need be."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml4t.backtest import BacktestConfig, Broker, Engine, Strategy
from ml4t.backtest.kernels.state import FULL_FILLS, PLAIN_FILLS
from ml4t.backtest.risk import MaxPositions


class Churn(Strategy):
    """Market, limit and target orders over three assets; from ``all_in_from`` on, everything
    is closed and asset A goes all-in and back out every few bars."""

    def __init__(self, all_in_from: int | None = None) -> None:
        self.all_in_from = all_in_from
        self.steps: list[object] = []

    def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
        t = data.index
        self.steps.append(broker.fill_step())
        if self.all_in_from is not None and t >= self.all_in_from:
            if t == self.all_in_from:
                for order in broker.open_orders:
                    broker.cancel_order(order.id)
                for asset in "ABC":
                    broker.close_position(asset)
            elif t % 4 == 0:
                broker.submit_order("A", math.inf)
            elif t % 4 == 2:
                broker.close_position("A")
            return
        if t % 3 == 0:
            broker.order_target_percent("B", 0.3)
            broker.submit_order("C", 7, limit_price=float(data.close[2]) * 0.99)
        elif t % 3 == 1:
            broker.order_target_percent("B", 0.0)
            broker.submit_order("A", 11)
        else:
            broker.close_position("A")
            broker.close_position("C")


def _feed(make_feed):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(8)
    prices = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.03, (30, 3)), axis=0))
    table = {a: [(p * 1.004, p) for p in prices[:, i]] for i, a in enumerate("ABC")}
    return make_feed(table)


CONFIG = BacktestConfig(initial_cash=10_000.0, commission=0.001)


def test_a_plain_run_takes_the_plain_step_and_fills_as_the_full_one(make_feed, monkeypatch):
    feed = _feed(make_feed)
    strategy = Churn()
    plain = Engine(feed, strategy, CONFIG).run()
    assert set(strategy.steps) == {PLAIN_FILLS}
    monkeypatch.setattr(Broker, "fill_step", lambda self: FULL_FILLS)
    full = Engine(feed, Churn(), CONFIG).run()
    assert len(plain.fills) > 30
    assert plain.fills.equals(full.fills)
    assert plain.equity.equals(full.equity)


def test_an_all_in_order_switches_the_run_to_the_full_step(make_feed):
    feed = _feed(make_feed)
    strategy = Churn(all_in_from=11)
    result = Engine(feed, strategy, CONFIG).run()
    assert strategy.steps[:13] == [PLAIN_FILLS] * 13
    assert set(strategy.steps[13:]) == {FULL_FILLS}
    # The all-in buys took all the cash there was at their fill (less the commission).
    bar_of = {ts: i for i, ts in enumerate(result.equity["timestamp"].to_list())}
    fills = result.fills.filter(result.fills["asset"] == "A").rows(named=True)
    buys = [f for f in fills if f["side"] == "buy" and bar_of[f["timestamp"]] >= 13]
    assert len(buys) >= 3
    for f in buys:
        cash_before = float(result.equity["cash"][bar_of[f["timestamp"]] - 1])
        spent = f["quantity"] * f["price"] + f["commission"]
        assert spent <= cash_before
        assert cash_before - spent < f["price"] * 1.001  # one more share would not fit


@pytest.mark.parametrize(
    "config",
    [
        BacktestConfig(account="margin"),
        BacktestConfig(slippage=0.001),
        BacktestConfig(sizing_price="fill"),
        BacktestConfig(execution_order="exits_first_smallest_entries_first"),
        # A commission model written in Python: the plain step compiles no callback.
        BacktestConfig(commission=lambda quantity, price: 1.0 + 0.01 * quantity),
    ],
)
def test_settings_with_optional_fill_features_take_the_full_step(config):
    broker = Broker(np.array(["A"]), config)
    assert broker.fill_step() is FULL_FILLS


def test_a_portfolio_limit_and_a_bracket_take_the_full_step():
    broker = Broker(np.array(["A", "B"]), BacktestConfig())
    assert broker.fill_step() is PLAIN_FILLS
    broker.set_portfolio_rules([MaxPositions(1)])
    assert broker.fill_step() is FULL_FILLS
    broker.set_portfolio_rules([])
    assert broker.fill_step() is PLAIN_FILLS
    broker.start_bar(0)
    broker.mark(0, np.array([10.0, 20.0]), np.zeros(1), np.zeros(1), np.zeros(1))
    broker.submit_bracket("A", 5, stop_loss=9.0, take_profit=11.0)
    assert broker.fill_step() is FULL_FILLS
