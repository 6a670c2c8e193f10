"""The next-open scenarios: each peer run the way a user who avoids look-ahead runs it.

- **VectorBT**: ``from_signals`` / ``from_orders`` with the decisions shifted one bar and
  ``price=open`` (what ``from_signals``' docstring advises), ``val_price=np.inf`` (the order
  price) and ``stop_entry_price="fillprice"``; ours runs the same unshifted decisions with
  ``BacktestConfig.preset("vectorbt_next_open")``.
- **Backtrader**: ``Cerebro(cheat_on_open=True)`` with the plan deciding in ``next_open`` on
  the bar before (``backtrader_runs``); ours runs the plan with
  ``preset("backtrader_cheat_on_open")``.
- **backtesting.py**: its defaults (``backtesting_runs``); ours runs the plan with
  ``preset("backtesting_py")``.

Stop scenarios run on real prices backtesting.py ships (``backtesting.test.GOOG``, daily
2004-2013, and ``EURUSD``, hourly 2017-2018): their bars gap and open at their high or low.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..compiled import run_signals, run_weights
from ..config import BacktestConfig
from ..data.feed import DataFeed
from ..engine import Engine
from ..execution.slippage import PerShareSlippage
from ..risk.position import AnyOf, PositionRule, StopLoss, TakeProfit, TrailingStop
from .plans import (
    Api,
    Plan,
    PlanStrategy,
    bracket_plan,
    long_short_plan,
    protective_plan,
    signal_plan,
    target_percent_plan,
)
from .suite import INITIAL_CASH, Market, Scenario, ma_cross, our_rows

Run = tuple[NDArray[np.float64], NDArray[np.float64], float, float]


@dataclass(frozen=True)
class PeerData:
    """A real OHLCV series backtesting.py ships (``"GOOG"`` daily, ``"EURUSD"`` hourly)."""

    name: str

    @property
    def n_bars(self) -> int:
        return len(self._frame())

    n_assets = 1

    def _frame(self) -> Any:
        import backtesting.test as data

        return getattr(data, self.name)

    def arrays(self) -> dict[str, NDArray[np.float64]]:
        frame = self._frame()
        return {
            field.lower(): frame[field].to_numpy(dtype=np.float64).reshape(-1, 1)
            for field in ("Open", "High", "Low", "Close", "Volume")
        }

    def timestamps(self) -> NDArray[np.datetime64]:
        return np.asarray(self._frame().index.values, dtype="datetime64[us]")

    def assets(self) -> list[str]:
        return [self.name]

    def feed(self) -> DataFeed:
        return DataFeed.from_arrays(self.timestamps(), self.assets(), self.arrays())


OhlcSource = Market | PeerData


def all_in_plan(entries: NDArray[np.bool_], exits: NDArray[np.bool_]) -> Plan:
    """Spend all the cash on an entry while flat (``buy()`` / ``size=np.inf``); close on an exit."""

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        held = api.position()
        if exits[t, 0] and held > 0:
            api.close()
        elif entries[t, 0] and held == 0:
            api.all_in()

    return plan


def fraction_bracket_plan(
    entries: NDArray[np.bool_], exits: NDArray[np.bool_], qty: float, stop: float, take: float
) -> Plan:
    """On an entry while flat, buy ``qty`` with a stop at ``stop`` x close and a target at
    ``take`` x close (backtesting.py's ``buy(sl=, tp=)``); an exit signal closes the position
    and cancels the legs (in backtesting.py closing the trade removes them)."""

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        held = api.position()
        handle = state.get("bracket")
        if exits[t, 0] and held > 0:
            api.close()
            if handle is not None and api.is_live(handle):
                api.cancel(handle)
        elif entries[t, 0] and held == 0 and api.live_orders() == 0:
            state["bracket"] = api.bracket(qty, close * stop, close * take)

    return plan


# ---- VectorBT ----------------------------------------------------------------------------------


def _shift(x: NDArray[Any]) -> NDArray[Any]:
    """Decisions at the close of t moved to row t+1, where VectorBT fills them at the open."""
    out = np.zeros_like(x) if x.dtype == np.bool_ else np.full_like(x, np.nan)
    out[1:] = x[:-1]
    return out


def vbt_next_open_signals(
    market: OhlcSource,
    *,
    size: float,
    size_type: Literal["shares", "value", "percent", "all"] = "shares",
    fees: float = 0.0,
    slippage: float = 0.0,
    reverse: bool = False,
    rules: PositionRule | None = None,
    **stops: Any,
) -> Run:
    """``from_signals`` on shifted moving-average signals, filled at the open."""
    import pandas as pd
    import vectorbt as vbt

    data = market.arrays()
    entries, exits = ma_cross(data["close"])
    index = pd.DatetimeIndex(market.timestamps())

    def frame(x: NDArray[Any]) -> Any:
        return pd.DataFrame(x, index=index, columns=market.assets())

    signals: dict[str, Any] = {"entries": frame(_shift(entries))}
    if reverse:
        signals["short_entries"] = frame(_shift(exits))
    else:
        signals["exits"] = frame(_shift(exits))
    vbt_size = np.inf if size_type == "all" else size
    pf = vbt.Portfolio.from_signals(
        frame(data["close"]), **signals, price=frame(data["open"]), open=frame(data["open"]),
        high=frame(data["high"]), low=frame(data["low"]), size=vbt_size,
        size_type="value" if size_type == "value" else "amount", val_price=np.inf,
        stop_entry_price="fillprice", init_cash=INITIAL_CASH, fees=fees, slippage=slippage,
        freq="1D", **stops,
    )  # fmt: skip
    theirs = _vbt_rows(pf)
    feed = market.feed()
    # Reversals short: VectorBT's from_signals opens a short of the size asked, as a margin
    # account of 100% initial margin does for one not worth more than the equity.
    account = {"account": "margin", "initial_margin": 1.0, "maintenance_margin": 0.0}
    config = BacktestConfig.preset(
        "vectorbt_next_open", initial_cash=INITIAL_CASH, commission=fees, slippage=slippage,
        **(account if reverse else {}),
    )  # fmt: skip
    # All-in on both sides: size=np.inf takes its size at the fill, all the cash can pay.
    our_size: float = np.inf if size_type == "all" else size
    our_type: Literal["shares", "value", "percent"] = "value" if size_type == "all" else size_type
    if reverse:
        ours = run_signals(
            feed, entries, None, short_entries=exits, short_exits=np.zeros_like(exits),
            size=our_size,
            size_type=our_type, config=config, position_rules=rules,
        )  # fmt: skip
    else:
        ours = run_signals(
            feed, entries, exits, size=our_size, size_type=our_type,
            config=config, position_rules=rules,
        )  # fmt: skip
    return our_rows(ours, feed), theirs, ours.final_value, _final_value(pf)


def vbt_next_open_weights(
    market: Market, weights: NDArray[np.float64], *, fees: float, slippage: float
) -> Run:
    """``from_orders`` with target percents shifted one bar, filled and valued at the open."""
    import pandas as pd
    import vectorbt as vbt

    data = market.arrays()
    index = pd.DatetimeIndex(market.timestamps())

    def frame(x: NDArray[Any]) -> Any:
        return pd.DataFrame(x, index=index, columns=market.assets())

    pf = vbt.Portfolio.from_orders(
        frame(data["close"]), size=frame(_shift(weights)), size_type="targetpercent",
        price=frame(data["open"]), val_price=np.inf, fees=fees, slippage=slippage,
        init_cash=INITIAL_CASH, group_by=True, cash_sharing=True, call_seq="auto", freq="1D",
    )  # fmt: skip
    theirs = _vbt_rows(pf)
    feed = market.feed()
    config = BacktestConfig.preset(
        "vectorbt_next_open", initial_cash=INITIAL_CASH, commission=fees, slippage=slippage,
        execution_order="exits_first_smallest_entries_first",
    )  # fmt: skip
    ours = run_weights(feed, weights, config=config)
    return our_rows(ours, feed), theirs, ours.final_value, _final_value(pf)


def _vbt_rows(pf: Any) -> NDArray[np.float64]:
    from .suite import vbt_rows  # suite imports this module: imported when called

    return vbt_rows(pf)


def _final_value(pf: Any) -> float:
    from .suite import vbt_final_value

    return vbt_final_value(pf)


# ---- Backtrader (cheat-on-open) and backtesting.py --------------------------------------------


MakePlan = Callable[[NDArray[np.bool_], NDArray[np.bool_]], Plan]


def bt_cheat_on_open(
    market: OhlcSource,
    make_plan: MakePlan,
    *,
    commission: float = 0.0,
    slippage: float | PerShareSlippage = 0.0,
    **overrides: Any,
) -> Run:
    """The plan ``make_plan(entries, exits)`` makes from the market's moving-average signals, in
    ``Cerebro(cheat_on_open=True)`` and here with ``preset("backtrader_cheat_on_open")``."""
    from .backtrader_runs import run_backtrader

    plan = make_plan(*ma_cross(market.arrays()["close"]))
    feed = market.feed()
    theirs, final_theirs = run_backtrader(
        market,  # type: ignore[arg-type]
        plan, cash=INITIAL_CASH, commission=commission, slippage=slippage, cheat_on_open=True,
    )  # fmt: skip
    config = BacktestConfig.preset(
        "backtrader_cheat_on_open", initial_cash=INITIAL_CASH, commission=commission,
        slippage=slippage, **overrides,
    )  # fmt: skip
    ours = Engine(feed, PlanStrategy(plan), config).run()
    return our_rows(ours, feed), theirs, ours.final_value, final_theirs


def backtesting_py(
    market: OhlcSource,
    make_plan: MakePlan,
    *,
    commission: float = 0.0,
    finalize_trades: bool = False,
    **overrides: Any,
) -> Run:
    """The plan ``make_plan(entries, exits)`` makes from the market's moving-average signals, in
    ``backtesting.Backtest`` at its defaults and here with ``preset("backtesting_py")``."""
    from .backtesting_runs import run_backtesting

    plan = make_plan(*ma_cross(market.arrays()["close"]))
    feed = market.feed()
    theirs, final_theirs = run_backtesting(
        market, plan, cash=INITIAL_CASH, commission=commission, finalize_trades=finalize_trades
    )
    config = BacktestConfig.preset(
        "backtesting_py", initial_cash=INITIAL_CASH, commission=commission, **overrides
    )
    ours = Engine(feed, PlanStrategy(plan), config).run()
    return our_rows(ours, feed), theirs, ours.final_value, final_theirs


# ---- The scenarios -----------------------------------------------------------------------------


def ranked_rotation(market: Market, every: int, weights: tuple[float, ...]) -> NDArray[np.float64]:
    """The top ``len(weights)`` by 20-bar momentum, the strongest at ``weights[0]``, every
    ``every`` bars (NaN between). Distinct weights, so no two entries tie on value."""
    close = market.arrays()["close"]
    momentum = np.full(close.shape, np.nan)
    momentum[20:] = close[20:] / close[:-20] - 1.0
    out = np.full(close.shape, np.nan)
    for t in range(20, market.n_bars, every):
        out[t] = 0.0
        out[t, np.argsort(-momentum[t], kind="stable")[: len(weights)]] = weights
    return out


def next_open_scenarios() -> list[Scenario]:
    """The next-open scenarios of all three peers (names start with the set-up)."""
    return _vectorbt() + _backtrader() + _backtesting()


def _vectorbt() -> list[Scenario]:
    one = Market(1, 500, 1)
    goog, eurusd = PeerData("GOOG"), PeerData("EURUSD")
    wide = Market(25, 300, 3)
    vbt = "vectorbt"
    tag = ("next_open",)
    return [
        Scenario(
            "next_open_fixed_size", vbt, lambda: vbt_next_open_signals(one, size=50), tags=tag
        ),
        Scenario(
            "next_open_all_in_costs",
            vbt,
            lambda: vbt_next_open_signals(
                one, size=1.0, size_type="all", fees=0.001, slippage=0.001
            ),
            tags=tag,
        ),
        Scenario(
            "next_open_stop_loss_take_profit_goog",
            vbt,
            lambda: vbt_next_open_signals(
                goog,
                size=10,
                sl_stop=0.05,
                tp_stop=0.1,
                rules=AnyOf(StopLoss(0.05), TakeProfit(0.1)),
            ),
            tags=tag,
        ),
        Scenario(
            "next_open_trailing_stop_goog",
            vbt,
            lambda: vbt_next_open_signals(
                goog, size=10, sl_stop=0.03, sl_trail=True, rules=TrailingStop(0.03)
            ),
            tags=tag,
        ),
        Scenario(
            "next_open_stops_eurusd",
            vbt,
            lambda: vbt_next_open_signals(
                eurusd,
                size=5000,
                sl_stop=0.002,
                tp_stop=0.004,
                rules=AnyOf(StopLoss(0.002), TakeProfit(0.004)),
            ),
            tags=tag,
        ),
        Scenario(
            "next_open_reversals",
            vbt,
            lambda: vbt_next_open_signals(one, size=40, reverse=True),
            tags=tag,
        ),
        Scenario(
            "next_open_rotation_shortfall_25",
            vbt,
            lambda: vbt_next_open_weights(
                wide,
                ranked_rotation(wide, 20, (0.3, 0.25, 0.2, 0.15, 0.1)),
                fees=0.001,
                slippage=0.001,
            ),
            tags=tag,
        ),
    ]


def _backtrader() -> list[Scenario]:
    one, goog = Market(1, 500, 1), PeerData("GOOG")
    btr = "backtrader"
    tag = ("cheat_on_open",)
    return [
        Scenario(
            "cheat_on_open_fixed_size",
            btr,
            lambda: bt_cheat_on_open(one, lambda e, x: signal_plan(e, x, 50), commission=0.001),
            tags=tag,
        ),
        Scenario(
            "cheat_on_open_target_percent",
            btr,
            lambda: bt_cheat_on_open(
                one, lambda e, x: target_percent_plan(0.5, 5), commission=0.001
            ),
            tags=tag,
            known_gap="A target whose change rounds to no shares at the decision close",
            gap_effect=(34, 5.67e-4),
        ),
        Scenario(
            "cheat_on_open_stop_loss_goog",
            btr,
            lambda: bt_cheat_on_open(goog, lambda e, x: protective_plan(e, x, 10, "stop", 0.95)),
            tags=tag,
        ),
        Scenario(
            "cheat_on_open_reversals",
            btr,
            lambda: bt_cheat_on_open(one, lambda e, x: long_short_plan(e, x, 40)),
            tags=tag,
        ),
    ]


def _backtesting() -> list[Scenario]:
    one, goog, eurusd = Market(1, 500, 1), PeerData("GOOG"), PeerData("EURUSD")
    bpy = "backtesting"
    tag = ("next_open",)
    return [
        Scenario(
            "fixed_size_goog",
            bpy,
            lambda: backtesting_py(goog, lambda e, x: signal_plan(e, x, 10), commission=0.001),
            tags=tag,
        ),
        Scenario(
            "all_in_commission",
            bpy,
            lambda: backtesting_py(one, all_in_plan, commission=0.002),
            tags=tag,
        ),
        Scenario(
            "all_in_finalize_trades",
            bpy,
            lambda: backtesting_py(
                Market(1, 480, 1),
                all_in_plan,
                commission=0.002,
                finalize_trades=True,
                close_at_end=True,
            ),
            tags=tag,
            known_gap="The end of the run (backtesting.py `finalize_trades=True`)",
            gap_effect=(1, 1.83e-2),
        ),
        Scenario(
            "stop_loss_take_profit_goog",
            bpy,
            lambda: backtesting_py(goog, lambda e, x: fraction_bracket_plan(e, x, 10, 0.95, 1.1)),
            tags=tag,
        ),
        Scenario(
            "stop_loss_take_profit_eurusd",
            bpy,
            lambda: backtesting_py(
                eurusd, lambda e, x: fraction_bracket_plan(e, x, 5000, 0.998, 1.004)
            ),
            tags=tag,
        ),
        Scenario(
            "reversals",
            bpy,
            lambda: backtesting_py(one, lambda e, x: long_short_plan(e, x, 40), commission=0.001),
            tags=tag,
        ),
        Scenario(
            "bracket_orders_goog",
            bpy,
            lambda: backtesting_py(goog, lambda e, x: bracket_plan(e, 10, 0.97, 1.05)),
            tags=tag,
        ),
    ]
