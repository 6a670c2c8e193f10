"""Prices and costs of one fill: the commission and the slippage of an asset's model.

Each asset has a row in the commission and the slippage table (``Account.commission``,
``Account.slippage``). A row whose code is >= 0 is a built-in model and runs compiled; a model
written in Python has the code -1 and is called back through ``kernels.python_models`` (numba's
object mode), so the callbacks cost nothing for assets whose models compile.
"""

from __future__ import annotations

import numpy as np
from numba import objmode

from ..execution.commission import commission_kernel
from ..execution.slippage import SLIPPAGE_NONE, SLIPPAGE_PER_SHARE, slippage_kernel
from . import python_models
from .jit import folded, kernel
from .state import Bar, Full


@folded
def fee(
    table: np.ndarray, asset: int, quantity: float, price: float, month: float, full: Full
) -> float:
    """Commission for one fill: compiled model, or the asset's Python model (code -1). The
    plain fill step (``full`` None) has no Python model (``clock.fill_features``), so it
    compiles no callback."""
    if full is None or table[0] >= 0.0:
        return float(commission_kernel(table, quantity, price, month))
    return _python_fee(asset, quantity, price, month)


@kernel
def _python_fee(asset: int, quantity: float, price: float, month: float) -> float:
    with objmode(out="float64"):
        out = python_models.commission(asset, quantity, price, month)
    return out


@folded
def slipped(
    quote: np.ndarray,
    asset: int,
    price: float,
    quantity: float,
    kind: int,
    bar: Bar,
    used: float,
) -> float:
    """Fill price after slippage: compiled model, or the asset's Python model (code -1).
    ``used`` is the volume the bar's earlier fills took on the asset."""
    if SLIPPAGE_NONE <= quote[0] <= SLIPPAGE_PER_SHARE:
        # These models read no quote field: the bar's rows (each a likely cache miss, one
        # per field, for an asset the step has not touched yet) are left unread.
        volume = bid = ask = spread = volatility = np.nan
    else:
        volume, bid, ask = bar.volume[asset], bar.bid[asset], bar.ask[asset]
        spread, volatility = bar.spread[asset], bar.volatility[asset]
    if quote[0] >= 0.0:
        return float(
            slippage_kernel(
                quote, price, quantity, kind, volume, bid, ask, spread, volatility, used
            )
        )
    return _python_fill_price(asset, price, quantity, kind, volume, bid, ask, spread, volatility)


@kernel
def _python_fill_price(
    asset: int,
    price: float,
    quantity: float,
    kind: int,
    volume: float,
    bid: float,
    ask: float,
    spread: float,
    volatility: float,
) -> float:
    with objmode(out="float64"):
        out = python_models.fill_price(
            asset, price, quantity, kind, volume, bid, ask, spread, volatility
        )
    return out
