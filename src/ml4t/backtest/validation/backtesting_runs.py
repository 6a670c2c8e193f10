"""backtesting.py's side of the comparisons: a plan run by ``backtesting.Backtest``, one asset.

backtesting.py 0.6 is run at its defaults, which are already free of look-ahead: ``next()`` is
called at each bar's close and market orders fill at the next bar's open
(``trade_on_close=False``); ``buy()`` without a size spends the margin available at that open
(``size=_FULL_EQUITY``, floored to whole units after commission); ``sl=`` / ``tp=`` brackets
are checked from the entry's own bar on (``_Broker._process_orders`` reprocesses them). The
broker records trades, not orders, so a fill here is a trade's entry or exit: the legs one order
makes on one bar at one price (a reversal closes one trade and opens another) are summed into
that order's fill.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .plans import Plan

if TYPE_CHECKING:
    from .next_open import OhlcSource


def run_backtesting(
    market: OhlcSource,
    plan: Plan,
    *,
    cash: float,
    commission: float = 0.0,
    spread: float = 0.0,
    finalize_trades: bool = False,
) -> tuple[NDArray[np.float64], float]:
    """Fill rows ``(bar, asset, signed quantity, price, commission)`` and the final value."""
    from unittest import mock

    import backtesting.backtesting as engine
    import pandas as pd
    from backtesting import Backtest, Strategy

    data = market.arrays()
    frame = pd.DataFrame(
        {
            "Open": data["open"][:, 0],
            "High": data["high"][:, 0],
            "Low": data["low"][:, 0],
            "Close": data["close"][:, 0],
            "Volume": data["volume"][:, 0],
        },
        index=pd.DatetimeIndex(market.timestamps()),
    )

    class Api:
        def __init__(self, strategy: Any) -> None:
            self.s = strategy

        def position(self) -> float:
            return float(self.s.position.size)

        def live_orders(self) -> int:
            return sum(1 for o in self.s.orders if not o.is_contingent)

        def market(self, qty: float) -> Any:
            return self.s.buy(size=qty) if qty > 0 else self.s.sell(size=-qty)

        def all_in(self) -> Any:
            return self.s.buy()

        def target_percent(self, percent: float) -> Any:
            raise NotImplementedError("backtesting.py has no target orders")

        def close(self) -> None:
            self.s.position.close()

        def stop(self, qty: float, price: float) -> Any:
            raise NotImplementedError("the scenarios use sl= / tp= brackets")

        def limit(self, qty: float, price: float) -> Any:
            side = self.s.buy if qty > 0 else self.s.sell
            return side(size=abs(qty), limit=price)

        def trail(self, qty: float, percent: float) -> Any:
            raise NotImplementedError("backtesting.py has no trailing stop order")

        def bracket(self, qty: float, stop: float, take: float) -> Any:
            return self.s.buy(size=qty, sl=stop, tp=take)

        def cancel(self, handle: Any) -> None:
            handle.cancel()

        def is_live(self, handle: Any) -> bool:
            return handle in self.s.orders

    class PlanStrategy(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.state: dict[str, Any] = {}
            self.api = Api(self)

        def next(self) -> None:
            plan(len(self.data) - 1, float(self.data.Close[-1]), self.api, self.state)

    backtest = Backtest(
        frame,
        PlanStrategy,
        cash=cash,
        commission=commission,
        spread=spread,
        finalize_trades=finalize_trades,
    )
    # No progress bar on stderr; "some trades remain open" and margin cancellations show in
    # the fills.
    with warnings.catch_warnings(), mock.patch.object(engine, "_tqdm", lambda seq, **_: seq):
        warnings.simplefilter("ignore", UserWarning)
        stats = backtest.run()
    broker = stats._strategy._broker
    rows: list[tuple[float, ...]] = []
    for trade in [*broker.closed_trades, *broker.trades]:
        size = float(trade.size)
        rows.append((trade.entry_bar, 0.0, size, trade.entry_price, _fee(broker, size, trade)))
        if trade.exit_bar is not None:
            exit_fee = float(broker._commission(trade.size, trade.exit_price))
            rows.append((trade.exit_bar, 0.0, -size, trade.exit_price, exit_fee))
    return merge_order_legs(np.array(rows, dtype=np.float64)), float(stats["Equity Final [$]"])


def _fee(broker: Any, size: float, trade: Any) -> float:
    return float(broker._commission(size, trade.entry_price))


def merge_order_legs(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sum rows on the same bar, asset, side and price: the legs of one order's fill."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    merged: dict[tuple[float, float, bool, float], NDArray[np.float64]] = {}
    for row in rows:
        key = (row[0], row[1], bool(row[2] > 0), row[3])
        if key in merged:
            merged[key][2] += row[2]
            merged[key][4] += row[4]
        else:
            merged[key] = row.copy()
    return np.array(list(merged.values()), dtype=np.float64).reshape(-1, 5)
