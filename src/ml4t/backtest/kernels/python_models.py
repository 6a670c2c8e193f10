"""The bridge from the compiled step to cost models written in Python.

A commission or slippage model that is a user function or subclass has no compiled form; its
row in the model table carries the code -1, and the step calls back into Python for that asset
through these functions (numba's object mode). The broker installs its models here before each
step, so the callbacks cost nothing for assets whose models compile. The models installed are
the calling thread's: runs on threads of one process (a sweep on a ``ThreadPoolExecutor``)
each call their own.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

from ..execution.slippage import BarQuote


class _Active(threading.local):
    """The per-asset models of this thread's run (none until a broker installs them)."""

    commission: Sequence[Any] = ()
    slippage: Sequence[Any] = ()


_ACTIVE = _Active()


def install(commission_models: Sequence[Any], slippage_models: Sequence[Any]) -> None:
    """Make these per-asset models the ones the step's callbacks use, in this thread."""
    _ACTIVE.commission = commission_models
    _ACTIVE.slippage = slippage_models


def commission(asset: int, quantity: float, price: float, monthly_volume: float) -> float:
    """The commission of asset ``asset``'s Python model for one fill."""
    model = _ACTIVE.commission[asset]
    return float(model.commission(abs(quantity), price, monthly_volume=monthly_volume))


def fill_price(
    asset: int,
    price: float,
    quantity: float,
    order_type: int,
    volume: float,
    bid: float,
    ask: float,
    spread: float,
    volatility: float,
) -> float:
    """The fill price from asset ``asset``'s Python slippage model (NaN: cannot fill now)."""
    model = _ACTIVE.slippage[asset]
    quote = BarQuote(volume=volume, bid=bid, ask=ask, spread=spread, volatility=volatility)
    out = float(model.fill_price(price, quantity, order_type=order_type, bar=quote))
    return out if math.isfinite(out) else math.nan
