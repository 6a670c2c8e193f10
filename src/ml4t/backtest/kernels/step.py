"""The broker step as array code: match open orders against one bar, apply costs, move cash.

Both drivers call these functions unchanged: the event driver once per bar from Python, the
compiled driver from inside its own compiled loop. State lives in arrays owned by the caller:
the order book (``ORDER_DTYPE`` records), the list of open order ids, positions and last prices
over assets, and ``account`` (``account[0]`` is cash).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .records import (
    CANCELLED,
    CASH_REJECT,
    FILLED,
    MARKET,
    OPEN,
    PARTIALLY_FILLED,
    R_INSUFFICIENT_CASH,
    R_SCALED_DOWN,
    R_SHORT_NOT_ALLOWED,
    REJECTED,
)

# Quantities within this relative distance of a position are that position: float round-off
# must not turn "sell everything" into a tiny short that a cash account would reject.
_QTY_RTOL = 1e-9


@njit(cache=True)
def _affordable_quantity(
    cash: float, price: float, commission_rate: float, fractional: bool
) -> float:
    """Largest buy quantity whose cost plus commission does not exceed ``cash``."""
    unit_cost = price * (1.0 + commission_rate)
    qty = cash / unit_cost
    if not fractional:
        qty = np.floor(qty)
    # Division rounds; step down until the exact cost fits so cash can never go below zero.
    while qty > 0.0 and qty * price + qty * price * commission_rate > cash:
        qty = qty - 1.0 if not fractional else np.nextafter(qty, 0.0)
    return max(qty, 0.0)


@njit(cache=True)
def fill_market_orders(
    bar: int,
    prices: np.ndarray,
    orders: np.ndarray,
    open_ids: np.ndarray,
    n_open: int,
    positions: np.ndarray,
    pending: np.ndarray,
    account: np.ndarray,
    commission_rate: np.ndarray,
    slippage_rate: np.ndarray,
    cash_account: bool,
    fractional: bool,
    cash_policy: int,
    fills: np.ndarray,
    n_fills: int,
) -> tuple[int, int]:
    """Fill every open market order whose asset has a price in ``prices`` (one bar's row).

    Orders that reduce a position go first, then the rest, each group in submission order, so
    cash freed by exits pays for entries on the same bar. An asset whose price is NaN has no
    bar: its orders stay open. ``fills`` must have room for ``n_open`` more records.

    Returns the new number of open orders (``open_ids`` is compacted in place) and of fills.
    """
    done = np.zeros(n_open, dtype=np.bool_)
    for group in range(2):
        for k in range(n_open):
            if done[k]:
                continue
            oid = open_ids[k]
            order = orders[oid]
            if order.order_type != MARKET:
                continue
            asset = order.asset
            remaining = order.quantity - order.filled
            pos = positions[asset]
            reduces = pos != 0.0 and (remaining > 0.0) != (pos > 0.0)
            if (group == 0) != reduces:
                continue
            price = prices[asset]
            if np.isnan(price):
                continue
            done[k] = True

            qty = remaining
            if cash_account and qty < 0.0:
                # A cash account can only sell what it holds.
                if pos + qty < -_QTY_RTOL * max(abs(qty), 1.0):
                    order.status = REJECTED
                    order.reason = R_SHORT_NOT_ALLOWED
                    order.end_bar = bar
                    pending[asset] -= remaining
                    continue
                qty = -pos if pos + qty < 0.0 else qty

            slip = slippage_rate[asset]
            fill_price = price * (1.0 + slip) if qty > 0.0 else price * (1.0 - slip)
            comm_rate = commission_rate[asset]
            commission = abs(qty) * fill_price * comm_rate
            reason = order.reason
            if cash_account and qty > 0.0:
                cash = account[0]
                if qty * fill_price + commission > cash:
                    if cash_policy == CASH_REJECT:
                        affordable = 0.0
                    else:
                        affordable = _affordable_quantity(cash, fill_price, comm_rate, fractional)
                    if affordable <= 0.0:
                        order.status = REJECTED
                        order.reason = R_INSUFFICIENT_CASH
                        order.end_bar = bar
                        pending[asset] -= remaining
                        continue
                    qty = affordable
                    commission = qty * fill_price * comm_rate
                    reason = R_SCALED_DOWN

            positions[asset] = pos + qty
            account[0] -= qty * fill_price + commission
            prev_filled = order.filled
            new_filled = prev_filled + qty
            if prev_filled == 0.0:
                order.avg_price = fill_price
            else:
                order.avg_price = (
                    order.avg_price * abs(prev_filled) + fill_price * abs(qty)
                ) / abs(new_filled)
            order.filled = new_filled
            order.commission += commission
            order.end_bar = bar
            order.reason = reason
            # A market order is done after its fill: what a scale-down cut is not left working.
            order.status = FILLED
            pending[asset] -= remaining

            rec = fills[n_fills]
            rec.bar = bar
            rec.asset = asset
            rec.order_id = oid
            rec.quantity = qty
            rec.price = fill_price
            rec.commission = commission
            rec.slippage = abs(qty) * price * slip
            rec.origin = order.origin
            n_fills += 1

    n_kept = 0
    for k in range(n_open):
        oid = open_ids[k]
        status = orders[oid].status
        if status in (OPEN, PARTIALLY_FILLED):
            open_ids[n_kept] = oid
            n_kept += 1
    return n_kept, n_fills


@njit(cache=True)
def cancel_order(orders: np.ndarray, oid: int, bar: int, reason: int, pending: np.ndarray) -> bool:
    """Cancel an open order; returns False if it was no longer open."""
    order = orders[oid]
    if order.status != OPEN and order.status != PARTIALLY_FILLED:
        return False
    pending[order.asset] -= order.quantity - order.filled
    order.status = CANCELLED
    order.reason = reason
    order.end_bar = bar
    return True


@njit(cache=True)
def mark_to_market(
    bar: int,
    closes: np.ndarray,
    last_price: np.ndarray,
    positions: np.ndarray,
    account: np.ndarray,
    cash_out: np.ndarray,
    positions_value_out: np.ndarray,
    gross_out: np.ndarray,
) -> float:
    """Take ``closes`` as the new marks (NaN keeps the last one), record and return equity."""
    value = 0.0
    gross = 0.0
    for i in range(closes.shape[0]):
        c = closes[i]
        if not np.isnan(c):
            last_price[i] = c
        q = positions[i]
        if q != 0.0:
            v = q * last_price[i]
            value += v
            gross += abs(v)
    cash_out[bar] = account[0]
    positions_value_out[bar] = value
    gross_out[bar] = gross
    return float(account[0]) + value
