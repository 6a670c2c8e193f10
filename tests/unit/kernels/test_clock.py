"""The open phase's step order is written once (``OPEN_STEPS``): the compiled ``open_phase``,
the plain ``open_plain`` and the event driver's step list all follow it."""

from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np
import pytest

from ml4t.backtest import BacktestConfig, Broker
from ml4t.backtest.kernels import clock
from ml4t.backtest.kernels.state import (
    S_DRAWDOWN_LIMIT,
    S_KEEP_EXTREMES,
    S_RULES_ON,
    KernelState,
)


def _calls(kernel: object) -> list[str]:
    """The names of the functions a kernel's body calls, in order."""
    source = textwrap.dedent(inspect.getsource(kernel.py_func))  # type: ignore[attr-defined]
    body = ast.parse(source).body[0]
    return [
        node.value.func.id
        for node in body.body  # type: ignore[attr-defined]
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
    ]


def _names(steps: tuple[object, ...]) -> list[str]:
    return [s.py_func.__name__ for s in steps]  # type: ignore[attr-defined]


def test_open_phase_calls_the_steps_in_open_steps_order() -> None:
    assert _calls(clock.open_phase) == _names(clock.OPEN_STEPS)


def test_open_plain_is_the_open_steps_without_the_optional_ones() -> None:
    # The rules step without rules keeps only the best prices (track_extremes).
    expected = ["start_bar", "fill_open", "track_extremes", "mark_bar"]
    assert _calls(clock.open_plain) == expected


def test_open_fixed_is_open_plain_without_best_prices() -> None:
    # The compiled driver's plain loops: rules fixed for the run, none set, nothing to keep.
    assert _calls(clock.open_fixed) == ["start_bar", "fill_open", "mark_bar"]


def test_a_plain_compiled_run_keeping_best_prices_is_refused() -> None:
    from ml4t.backtest.kernels import driver

    state = _state()
    state.account.scalars[S_KEEP_EXTREMES] = 1.0  # as an event run keeps them
    with pytest.raises(AssertionError, match="best prices"):
        driver.loop_for(driver.MODE_SIGNALS, state.settings, state.account)
    state.account.scalars[S_KEEP_EXTREMES] = 0.0  # as the compiled driver sets it without rules
    assert driver.loop_for(driver.MODE_SIGNALS, state.settings, state.account) is (
        driver.signals_loop_plain
    )


def _state(**config: object) -> KernelState:
    broker = Broker(np.array(["A", "B"]), BacktestConfig(**config))  # type: ignore[arg-type]
    return broker.kernel_state


def test_a_plain_cash_run_calls_only_open_plain() -> None:
    state = _state()
    assert clock.open_steps(state.settings, state.account) == (clock.open_plain,)


def test_steps_one_by_one_follow_open_steps_and_skip_what_is_unset() -> None:
    state = _state()
    steps = clock.open_steps(state.settings, state.account, one_by_one=True)
    assert _names(steps) == ["start_bar", "fill_open", "track_extremes", "mark_bar"]


def test_rules_next_close_margin_and_halts_add_their_steps_in_order() -> None:
    state = _state(account="margin", fill_timing="next_close", open_priority="rules")
    state.account.scalars[S_RULES_ON] = 1.0
    state.account.scalars[S_DRAWDOWN_LIMIT] = 0.2
    steps = clock.open_steps(state.settings, state.account, one_by_one=True)
    assert steps == clock.OPEN_STEPS
    # Without on_fill: one compiled call a bar, every step in it.
    assert clock.open_steps(state.settings, state.account) == (clock.open_phase,)


class _Trader:
    """Buys every third bar, sells every fifth; ``on_fill`` (when given) forces the steps of
    the open phase one by one."""

    def __init__(self, hear_fills: bool) -> None:
        from ml4t.backtest import Strategy

        class Trader(Strategy):
            def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
                t = data.index
                if t % 3 == 0:
                    broker.order_target_percent("A", 0.9)
                    broker.submit_order("B", -5)
                elif t % 5 == 0:
                    broker.close_position("A")

        if hear_fills:
            Trader.on_fill = lambda self, fill, broker: None  # type: ignore[method-assign]
        self.strategy = Trader()


@pytest.mark.parametrize(
    ("account", "halts", "kernel"),
    [("margin", True, "open_phase"), ("cash", False, "open_rules")],
)
def test_open_phase_in_one_call_fills_as_its_steps_one_by_one(make_feed, account, halts, kernel):
    from ml4t.backtest import Engine
    from ml4t.backtest.risk import MaxDrawdownHalt, StopLoss

    rng = np.random.default_rng(11)
    prices = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.04, (60, 2)), axis=0))
    feed = make_feed({a: [(p * 1.01, p) for p in prices[:, i]] for i, a in enumerate("AB")})
    config = BacktestConfig(initial_cash=10_000.0, commission=0.001, account=account)
    portfolio_rules = [MaxDrawdownHalt(0.5)] if halts else []
    engines = [
        Engine(
            feed, _Trader(hear).strategy, config, position_rules=StopLoss(0.03),
            portfolio_rules=portfolio_rules,
        )
        for hear in (False, True)
    ]  # fmt: skip
    runs = [e.run() for e in engines]
    broker = Broker(feed.assets, config)
    broker.set_position_rules(StopLoss(0.03))
    broker.set_portfolio_rules(portfolio_rules)
    state = broker.kernel_state
    assert clock.open_steps(state.settings, state.account) == (getattr(clock, kernel),)
    assert len(runs[0].fills) > 20
    assert runs[0].fills.equals(runs[1].fills)
    assert runs[0].equity.equals(runs[1].equity)
