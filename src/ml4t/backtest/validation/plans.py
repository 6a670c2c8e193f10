"""Trading plans written once and run by both sides of a comparison.

A plan decides at each bar's close from the signals and its own position, through a small
interface (``Api``) that our ``Broker`` and Backtrader's ``Strategy`` both implement, so the two
runs make the same decisions by construction and only execution can differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..broker import Broker
from ..data.view import BarView
from ..strategy import Strategy


class Api(Protocol):
    """What a plan may do; asset 0 is the first (and usually only) asset."""

    def position(self) -> float: ...
    def live_orders(self) -> int: ...
    def market(self, qty: float) -> Any: ...
    def target_percent(self, percent: float) -> Any: ...
    def all_in(self) -> Any: ...
    def close(self) -> None: ...
    def stop(self, qty: float, price: float) -> Any: ...
    def limit(self, qty: float, price: float) -> Any: ...
    def trail(self, qty: float, percent: float) -> Any: ...
    def bracket(self, qty: float, stop: float, take: float) -> Any: ...
    def cancel(self, handle: Any) -> None: ...
    def is_live(self, handle: Any) -> bool: ...


Plan = Callable[[int, float, Api, dict[str, Any]], None]
Signals = NDArray[np.bool_]


def signal_plan(
    entries: Signals, exits: Signals, qty: float, alternate: float | None = None
) -> Plan:
    """Buy ``qty`` (every other entry ``alternate``) when flat on an entry; close on an exit."""

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        held = api.position()
        if exits[t, 0] and held > 0:
            api.close()
        elif entries[t, 0] and held == 0:
            k = state.get("entries", 0)
            state["entries"] = k + 1
            api.market(alternate if alternate is not None and k % 2 else qty)

    return plan


def split_entry_plan(entries: Signals, exits: Signals, qty: float, parts: int) -> Plan:
    """Like ``signal_plan``, but each entry is ``parts`` market orders of ``qty`` placed on
    the same bar (where a peer prices each order by the volume already filled in the bar)."""

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        held = api.position()
        if exits[t, 0] and held > 0:
            api.close()
        elif entries[t, 0] and held == 0 and api.live_orders() == 0:
            for _ in range(parts):
                api.market(qty)

    return plan


def scheduled_plan(orders: dict[int, float], limits: dict[int, float] | None = None) -> Plan:
    """Orders of ``orders[t]`` shares at the close of bar ``t`` (0 closes the position): limit
    orders at ``limits[t]`` where given, market orders otherwise."""

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        qty = orders.get(t)
        if qty is None:
            return
        if qty == 0:
            if api.position() != 0:
                api.close()
        elif limits is not None and t in limits:
            api.limit(qty, limits[t])
        else:
            api.market(qty)

    return plan


def long_short_plan(entries: Signals, exits: Signals, qty: float) -> Plan:
    """Long ``qty`` on an entry, short ``qty`` on an exit (reversing in one order)."""

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        held = api.position()
        if entries[t, 0] and held <= 0:
            api.market(qty - held)
        elif exits[t, 0] and held >= 0:
            api.market(-qty - held)

    return plan


def protective_plan(
    entries: Signals, exits: Signals, qty: float, kind: str, level: float, tick: float = 0.0
) -> Plan:
    """Enter with a protective sell placed at the same close: a stop at ``level`` x close, a
    limit at ``level`` x close, or a trailing stop ``level`` (a fraction) behind; an exit
    signal cancels it and closes. With a ``tick``, stop and limit prices are whole ticks (as
    Zipline rounds them, ``asymmetric_round_price``)."""

    def at(price: float) -> float:
        return round(price / tick) * tick if tick else price

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        held = api.position()
        handle = state.get("protect")
        if exits[t, 0] and held > 0:
            if handle is not None and api.is_live(handle):
                api.cancel(handle)
            api.close()
        elif entries[t, 0] and held == 0 and api.live_orders() == 0:
            api.market(qty)
            if kind == "stop":
                state["protect"] = api.stop(-qty, at(close * level))
            elif kind == "limit":
                state["protect"] = api.limit(-qty, at(close * level))
            else:
                state["protect"] = api.trail(-qty, level)

    return plan


def bracket_plan(entries: Signals, qty: float, stop: float, take: float) -> Plan:
    """On an entry while flat with nothing working: a market buy with a stop-loss at
    ``stop`` x close and a take-profit at ``take`` x close that cancel each other."""

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        if entries[t, 0] and api.position() == 0 and api.live_orders() == 0:
            api.bracket(qty, close * stop, close * take)

    return plan


def limit_entry_plan(
    entries: Signals, exits: Signals, qty: float, level: float, tick: float = 0.0
) -> Plan:
    """Enter with a limit buy at ``level`` x close (whole ``tick``s, if given); an exit cancels
    it if unfilled, and closes."""

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        held = api.position()
        handle = state.get("entry")
        if exits[t, 0]:
            if handle is not None and api.is_live(handle):
                api.cancel(handle)
            if held > 0:
                api.close()
        elif entries[t, 0] and held == 0 and api.live_orders() == 0:
            price = close * level
            state["entry"] = api.limit(qty, round(price / tick) * tick if tick else price)

    return plan


def target_percent_plan(percent: float, every: int) -> Plan:
    """Hold ``percent`` of equity, re-targeted every ``every`` bars: as prices move, each
    re-target trims or adds to the position (where peers round the order, not the target)."""

    def plan(t: int, close: float, api: Api, state: dict[str, Any]) -> None:
        if t % every == 0:
            api.target_percent(percent)

    return plan


class _OurApi:
    def __init__(self, broker: Broker, asset: str) -> None:
        self.b, self.asset = broker, asset

    def position(self) -> float:
        return self.b.position(self.asset)

    def live_orders(self) -> int:
        return len(self.b.open_orders)

    def market(self, qty: float) -> Any:
        return self.b.submit_order(self.asset, qty)

    def target_percent(self, percent: float) -> Any:
        return self.b.order_target_percent(self.asset, percent)

    def all_in(self) -> Any:
        return self.b.submit_order(self.asset, math.inf)

    def close(self) -> None:
        self.b.close_position(self.asset)

    def stop(self, qty: float, price: float) -> Any:
        return self.b.submit_order(self.asset, qty, stop_price=price)

    def limit(self, qty: float, price: float) -> Any:
        return self.b.submit_order(self.asset, qty, limit_price=price)

    def trail(self, qty: float, percent: float) -> Any:
        return self.b.submit_order(self.asset, qty, trail_percent=percent)

    def bracket(self, qty: float, stop: float, take: float) -> Any:
        return self.b.submit_bracket(self.asset, qty, stop_loss=stop, take_profit=take)

    def cancel(self, handle: Any) -> None:
        # A bracket's handle is its (entry, take-profit, stop-loss) ids.
        for order_id in handle if isinstance(handle, tuple) else (handle,):
            if self.is_live(order_id):
                self.b.cancel_order(order_id)

    def is_live(self, handle: Any) -> bool:
        ids = handle if isinstance(handle, tuple) else (handle,)
        return any(o.id in ids for o in self.b.open_orders)


class PlanStrategy(Strategy):
    """Runs a plan on our engine, on the feed's first asset."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.state: dict[str, Any] = {}

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        asset = str(data.assets[0])
        self.plan(data.index, float(data.close[0]), _OurApi(broker, asset), self.state)
