"""Zipline's side of the comparisons: a plan run by ``zipline.run_algorithm`` on daily bars.

The scenario's bars are written into a Zipline data bundle (ingested once per market into a
temporary ``ZIPLINE_ROOT``) on the XNYS sessions the market is built on. Zipline's daily bar
writer stores prices to three decimals, so these markets round their prices to three decimals
for both sides. Costs are set in ``initialize`` with ``set_commission`` / ``set_slippage``.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..execution.commission import PercentCommission, PerShareCommission
from ..execution.slippage import FixedBpsSlippage, PerShareSlippage, VolumeShareSlippage

if TYPE_CHECKING:
    from .suite import Market

_BUNDLES: dict[tuple[int, int, int, float], tuple[str, str]] = {}


def xnys_sessions(n_bars: int) -> NDArray[np.datetime64]:
    """The first ``n_bars`` New York Stock Exchange sessions from 2010-01-04."""
    import exchange_calendars as xcals

    calendar = xcals.get_calendar("XNYS")
    sessions = calendar.sessions_in_range("2010-01-04", "2020-12-31")[:n_bars]
    return np.asarray(sessions.values, dtype="datetime64[us]")


def _bundle(market: Market) -> tuple[str, str]:
    """Ingest the market once; returns (bundle name, ZIPLINE_ROOT)."""
    key = (market.n_assets, market.n_bars, market.seed, market.volume_scale)
    if key in _BUNDLES:
        return _BUNDLES[key]
    import pandas as pd
    from zipline.data.bundles import ingest, register

    data = market.arrays()
    sessions = pd.DatetimeIndex(market.timestamps())
    name = f"ml4t-validation-{market.n_assets}-{market.n_bars}-{market.seed}-{market.volume_scale}"
    root = tempfile.mkdtemp(prefix="ml4t-zipline-")
    symbols = market.assets()

    def write(environ: Any, asset_db_writer: Any, minute_bar_writer: Any,
              daily_bar_writer: Any, adjustment_writer: Any, *args: Any) -> None:  # fmt: skip
        equities = pd.DataFrame(
            {
                "symbol": symbols,
                "asset_name": symbols,
                "start_date": [sessions[0]] * len(symbols),
                "end_date": [sessions[-1]] * len(symbols),
                "exchange": ["NYSE"] * len(symbols),
            }
        )
        exchanges = pd.DataFrame(
            {"exchange": ["NYSE"], "canonical_name": ["NYSE"], "country_code": ["US"]}
        )
        asset_db_writer.write(equities=equities, exchanges=exchanges)
        bars = (
            (
                sid,
                pd.DataFrame(
                    {f: data[f][:, sid] for f in ("open", "high", "low", "close", "volume")},
                    index=sessions,
                ),
            )
            for sid in range(len(symbols))
        )
        daily_bar_writer.write(bars, show_progress=False)
        adjustment_writer.write()

    register(name, write, calendar_name="XNYS", start_session=sessions[0], end_session=sessions[-1])
    ingest(name, environ=dict(os.environ, ZIPLINE_ROOT=root), show_progress=False)
    _BUNDLES[key] = (name, root)
    return name, root


def run_zipline(
    market: Market,
    plan: Any,
    *,
    cash: float,
    commission: PerShareCommission | PercentCommission,
    slippage: FixedBpsSlippage | PerShareSlippage | VolumeShareSlippage,
    volume_limit: float = 0.1,
) -> tuple[NDArray[np.float64], float]:
    """Fill rows ``(bar, asset, signed quantity, price, commission)`` and the final value.

    ``volume_limit`` is the slippage model's share of a bar's volume (our
    ``max_participation``); a ``VolumeShareSlippage`` is Zipline's, with ``price_impact`` its
    ``impact`` (its exponent 2 and volatility 1 are Zipline's fixed form).
    """
    import pandas as pd
    from zipline import run_algorithm
    from zipline.api import (
        cancel_order,
        get_open_orders,
        order,
        order_target_percent,
        set_commission,
        set_slippage,
    )
    from zipline.api import symbol as zsymbol
    from zipline.finance import commission as zc
    from zipline.finance import slippage as zs

    name, root = _bundle(market)
    sessions = pd.DatetimeIndex(market.timestamps())
    close = market.arrays()["close"]

    class Api:
        def __init__(self, context: Any) -> None:
            self.c = context

        def position(self) -> float:
            return float(self.c.portfolio.positions[self.c.asset].amount)

        def live_orders(self) -> int:
            return len(get_open_orders(self.c.asset))

        def market(self, qty: float) -> Any:
            return order(self.c.asset, int(qty))

        def target_percent(self, percent: float) -> Any:
            return order_target_percent(self.c.asset, percent)

        def close(self) -> None:
            held = self.position()
            if held:
                order(self.c.asset, -int(held))

        def stop(self, qty: float, price: float) -> Any:
            return order(self.c.asset, int(qty), stop_price=price)

        def limit(self, qty: float, price: float) -> Any:
            return order(self.c.asset, int(qty), limit_price=price)

        def cancel(self, handle: Any) -> None:
            cancel_order(handle)

        def is_live(self, handle: Any) -> bool:
            return any(o.id == handle for o in get_open_orders(self.c.asset))

    def initialize(context: Any) -> None:
        context.asset = zsymbol(market.assets()[0])
        context.state = {}
        if isinstance(commission, PerShareCommission):
            set_commission(
                zc.PerShare(cost=commission.per_share, min_trade_cost=commission.minimum)
            )
        else:
            set_commission(zc.PerDollar(cost=commission.rate))
        if isinstance(slippage, PerShareSlippage):
            # Zipline's FixedSlippage moves the price by half a spread.
            set_slippage(zs.FixedSlippage(spread=2.0 * slippage.amount))
        elif isinstance(slippage, VolumeShareSlippage):
            set_slippage(
                zs.VolumeShareSlippage(volume_limit=volume_limit, price_impact=slippage.impact)
            )
        else:
            set_slippage(
                zs.FixedBasisPointsSlippage(basis_points=slippage.bps, volume_limit=volume_limit)
            )

    def handle_data(context: Any, data: Any) -> None:
        t = int(sessions.searchsorted(data.current_session))
        plan(t, float(close[t, 0]), Api(context), context.state)

    perf = run_algorithm(
        start=sessions[0], end=sessions[-1], initialize=initialize, handle_data=handle_data,
        capital_base=cash, data_frequency="daily", bundle=name,
        environ=dict(os.environ, ZIPLINE_ROOT=root),
    )  # fmt: skip
    fees = {o["id"]: o["commission"] for day in perf["orders"] for o in day}
    rows = [
        (t, 0.0, float(tx["amount"]), float(tx["price"]), float(fees.get(tx["order_id"], 0.0)))
        for t, day in enumerate(perf["transactions"])
        for tx in day
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 5), float(perf["portfolio_value"].iloc[-1])
