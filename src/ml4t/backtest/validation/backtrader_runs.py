"""Backtrader's side of the comparisons: a plan run on a default ``Cerebro``.

With ``cheat_on_open=True`` the plan runs the look-ahead-free way: Cerebro(cheat_on_open=True)
calls ``next_open`` before the broker fills a bar, and the plan decides there on the previous
bar (its close is the decision close), so market orders fill at the bar's open. Orders carry
``price=data.open[0]`` so Backtrader's submission cash check prices them at that known open,
and a target is sized as a careful user does it: equity marked at the open (cash plus the
position at the open), the order rounded to whole shares (Backtrader's built-in
``order_target_*`` would read the bar's close, which ``next_open`` must not use).

Costs are set the way a Backtrader user would: a percentage commission through
``CommInfoBase(percabs=True)``, a per-share commission with a minimum through a ``CommInfoBase``
subclass, and slippage through ``set_slippage_perc`` / ``set_slippage_fixed`` with
``slip_open=True`` (without it Backtrader does not slip fills at the open at all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..execution.commission import PerShareCommission
from ..execution.slippage import PerShareSlippage
from .plans import Plan

if TYPE_CHECKING:
    from .suite import Market


def run_backtrader(
    market: Market,
    plan: Plan,
    *,
    cash: float,
    commission: float | PerShareCommission = 0.0,
    slippage: float | PerShareSlippage = 0.0,
    cheat_on_open: bool = False,
) -> tuple[NDArray[np.float64], float]:
    """Fill rows ``(bar, asset, signed quantity, price, commission)`` and the final value."""
    import backtrader as bt
    import pandas as pd

    data = market.arrays()
    frame = pd.DataFrame(
        {name: data[name][:, 0] for name in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex(market.timestamps()),
    )
    fills: list[tuple[float, ...]] = []

    class Api:
        def __init__(self, strategy: Any) -> None:
            self.s = strategy

        def position(self) -> float:
            return float(self.s.position.size)

        def live_orders(self) -> int:
            return len(self.s.broker.get_orders_open())

        def market(self, qty: float) -> Any:
            price = float(self.s.data.open[0]) if cheat_on_open else None
            if qty > 0:
                return self.s.buy(size=qty, price=price)
            return self.s.sell(size=-qty, price=price)

        def target_percent(self, percent: float) -> Any:
            if not cheat_on_open:
                return self.s.order_target_percent(target=percent)
            # Equity and the order at the open already known; int() rounds the order towards
            # zero as CommInfoBase.getsize does for order_target_value.
            price = float(self.s.data.open[0])
            held = float(self.s.position.size)
            equity = float(self.s.broker.getcash()) + held * price
            qty = int((percent * equity - held * price) / price)
            return self.market(qty) if qty else None

        def all_in(self) -> Any:
            return self.target_percent(1.0)

        def close(self) -> None:
            self.s.close()

        def stop(self, qty: float, price: float) -> Any:
            side = self.s.buy if qty > 0 else self.s.sell
            return side(size=abs(qty), exectype=bt.Order.Stop, price=price)

        def limit(self, qty: float, price: float) -> Any:
            side = self.s.buy if qty > 0 else self.s.sell
            return side(size=abs(qty), exectype=bt.Order.Limit, price=price)

        def trail(self, qty: float, percent: float) -> Any:
            side = self.s.buy if qty > 0 else self.s.sell
            return side(size=abs(qty), exectype=bt.Order.StopTrail, trailpercent=percent)

        def bracket(self, qty: float, stop: float, take: float) -> None:
            self.s.buy_bracket(size=qty, exectype=bt.Order.Market, stopprice=stop, limitprice=take)

        def cancel(self, handle: Any) -> None:
            self.s.cancel(handle)

        def is_live(self, handle: Any) -> bool:
            return bool(handle.alive())

    class PlanStrategy(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.state: dict[str, Any] = {}
            self.api = Api(self)

        def next(self) -> None:
            if not cheat_on_open:
                plan(len(self) - 1, float(self.data.close[0]), self.api, self.state)

        def next_open(self) -> None:
            # The decision of the bar before, at its close, made before this bar's open fills.
            # The strategy's own clock has not advanced yet: len(self) counts the bars before
            # this one, while the data already shows this bar at [0].
            if cheat_on_open and len(self) > 0:
                plan(len(self) - 1, float(self.data.close[-1]), self.api, self.state)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                done = order.executed
                fills.append((len(self) - 1, 0, done.size, done.price, done.comm))

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=cheat_on_open)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(PlanStrategy)
    cerebro.broker.setcash(cash)
    if isinstance(commission, PerShareCommission):
        cerebro.broker.addcommissioninfo(_per_share(bt, commission))
    else:
        cerebro.broker.addcommissioninfo(
            bt.CommInfoBase(
                commission=commission,
                percabs=True,
                stocklike=True,
                commtype=bt.CommInfoBase.COMM_PERC,
            )
        )
    if isinstance(slippage, PerShareSlippage):
        cerebro.broker.set_slippage_fixed(slippage.amount, slip_open=True)
    elif slippage:
        cerebro.broker.set_slippage_perc(slippage, slip_open=True)
    cerebro.run()
    rows = np.array(fills, dtype=np.float64).reshape(-1, 5)
    return rows, float(cerebro.broker.getvalue())


def _per_share(bt: Any, model: PerShareCommission) -> Any:
    rate, minimum = model.per_share, model.minimum

    class PerShare(bt.CommInfoBase):  # type: ignore[misc]
        params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_FIXED))

        def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
            return max(abs(size) * rate, minimum)

    return PerShare()
