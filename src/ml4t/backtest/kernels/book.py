"""The order book as array code: writing orders, ending them (with their bracket legs), and the
orders the engine itself submits: rule exits, halts, and withdrawals of market orders a target
order replaces.

Both drivers use these: the event driver from ``Broker`` (orders the strategy submits) and from
the phases of a bar (``kernels.clock``), the compiled driver inside its loop. Each function that
adds orders needs room in the book for one order per asset (the caller makes it).
"""

from __future__ import annotations

import numpy as np

from .jit import counted, folded, kernel, leaf
from .records import (
    CANCELLED,
    GTC,
    INACTIVE,
    LIMIT,
    MARKET,
    O_DAILY_LOSS_LIMIT,
    O_MAX_DRAWDOWN_HALT,
    OPEN,
    PARTIALLY_FILLED,
    R_DAILY_LOSS_LIMIT,
    R_MAX_DRAWDOWN_HALT,
    R_PARENT_ENDED,
    R_REPLACED_BY_TARGET,
    STOP,
    Record,
)
from .sizing import TARGET_RTOL
from .state import (
    A_PENDING,
    A_POSITION,
    C_OPEN,
    C_ORDERS,
    S_DAILY_LIMIT,
    S_DAILY_LIQUIDATE,
    S_DRAWDOWN_LIMIT,
    S_DRAWDOWN_LIQUIDATE,
    S_HALT,
    Account,
    Book,
)

# The state of the portfolio halts, one float array: see ``check_halts``.
H_DAY_START: int = 0  # equity at the last close of the previous calendar day
H_PEAK: int = 1  # highest equity at a close so far
H_BLOCK: int = 2  # reason code blocking entries now, 0 for none
H_FOR_GOOD: int = 3  # 1 once a drawdown halt fired: the block never lifts
H_STOPPED: int = 4  # 1 once a liquidating drawdown halt fired: the strategy is not called
H_WIDTH: int = 5


@leaf
def _write(
    order: Record,
    asset: int,
    quantity: float,
    bar: int,
    origin: int,
    order_type: int,
    limit_price: float,
    stop_price: float,
    trail_amount: float,
    trail_percent: float,
    trail_ref: float,
    level_offset: float,
    target_value: float,
    tif: int,
    parent: int,
    oco: int,
    status: int,
) -> None:
    """Every field of a new order: what is given, and nothing filled, ended or decided yet."""
    order.asset = asset
    order.quantity = quantity
    order.filled = 0.0
    order.avg_price = np.nan
    order.commission = 0.0
    order.limit_price = limit_price
    order.stop_price = stop_price
    order.trail_amount = trail_amount
    order.trail_percent = trail_percent
    order.trail_ref = trail_ref
    order.target_value = target_value
    order.target_weight = np.nan  # set by the callers that size from a weight of equity
    order.level_offset = level_offset
    order.parent = parent
    order.oco = oco
    order.rule_set = -1
    order.submit_bar = bar
    order.active_bar = bar
    order.end_bar = -1
    order.order_type = order_type
    order.tif = tif
    order.triggered = False
    order.status = status
    order.reason = 0
    order.origin = origin


@kernel
def write_orders(
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
    assets: np.ndarray,
    quantities: np.ndarray,
    bar: int,
    origin: int,
    order_type: int,
    limit_price: float,
    stop_price: float,
    trail_amount: float,
    trail_percent: float,
    trail_ref: float,
    level_offset: float,
    target_values: np.ndarray,
    tif: int,
    parent: int,
    oco: int,
    status: int,
) -> None:
    """``OrderBook.add``'s records (no pending bookkeeping here): one order per asset and
    quantity, the rest shared; ``target_values`` has one value or one per order."""
    one_value = target_values.shape[0] == 1
    for k in range(assets.shape[0]):
        _write(
            orders[n_orders + k], assets[k], quantities[k], bar, origin, order_type,
            limit_price, stop_price, trail_amount, trail_percent, trail_ref, level_offset,
            target_values[0] if one_value else target_values[k], tif, parent, oco, status,
        )  # fmt: skip
        open_ids[n_open + k] = n_orders + k


@leaf
def end_order(order: Record, status: int, reason: int, bar: int, pending: np.ndarray) -> None:
    """Close an order's life; market orders stop counting towards the asset's pending quantity."""
    if order.order_type == MARKET:
        pending[order.asset] -= order.quantity - order.filled
    order.status = status
    order.reason = reason
    order.end_bar = bar


@leaf
def end_children(
    orders: np.ndarray, parent: int, n_orders: int, bar: int, pending: np.ndarray
) -> None:
    """An entry that ended without any fill takes its bracket legs with it."""
    # Children are submitted right after their entry, so they sit in the next two rows.
    for oid in range(parent + 1, min(parent + 3, n_orders)):
        child = orders[oid]
        if child.parent == parent and child.status == INACTIVE:
            end_order(child, CANCELLED, R_PARENT_ENDED, bar, pending)


@leaf
def activate_children(orders: np.ndarray, parent: int, n_orders: int, bar: int) -> bool:
    """An entry that filled arms its bracket legs for the quantity filled so far; returns
    whether it armed one that was waiting."""
    armed = False
    filled = orders[parent].filled
    for oid in range(parent + 1, min(parent + 3, n_orders)):
        child = orders[oid]
        if child.parent == parent and (child.status == INACTIVE or child.status == OPEN):
            child.quantity = -filled
            if child.status == INACTIVE:
                armed = True
                child.status = OPEN
                child.active_bar = bar
                if not np.isnan(child.level_offset):
                    # Levels anchored to the entry: set from its fill price, now it is known.
                    level = orders[parent].avg_price * (1.0 + child.level_offset)
                    if child.order_type == LIMIT:
                        child.limit_price = level
                    else:
                        child.stop_price = level
    return armed


@kernel
def reject_growing(
    orders: np.ndarray,
    n_orders: int,
    ids: np.ndarray,
    positions: np.ndarray,
    bar: int,
    status: int,
    reason: int,
    pending: np.ndarray,
) -> int:
    """End (``status``: rejected or cancelled) every live order in ``ids`` that would grow its
    asset's position, with ``reason``; returns how many. Used while entries are blocked."""
    count = 0
    for k in range(ids.shape[0]):
        order = orders[ids[k]]
        if order.status != OPEN and order.status != PARTIALLY_FILLED:
            continue  # bracket legs waiting for their entry go with it
        pos = positions[order.asset]
        if abs(pos + order.quantity - order.filled) > abs(pos):
            end_order(order, status, reason, bar, pending)
            end_children(orders, ids[k], n_orders, bar, pending)
            count += 1
    return count


@leaf
def cancel_order(
    orders: np.ndarray, n_orders: int, oid: int, bar: int, reason: int, pending: np.ndarray
) -> bool:
    """Cancel an open (or waiting) order and its unarmed bracket legs; False if already ended."""
    order = orders[oid]
    if order.status != OPEN and order.status != PARTIALLY_FILLED and order.status != INACTIVE:
        return False
    end_order(order, CANCELLED, reason, bar, pending)
    end_children(orders, oid, n_orders, bar, pending)
    return True


@leaf
def add_order(
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
    asset: int,
    quantity: float,
    bar: int,
    origin: int,
    order_type: int,
    limit_price: float,
    stop_price: float,
    target_value: float,
    pending: np.ndarray,
) -> tuple[int, int]:
    """Append an open GTC order; a market order counts towards its asset's pending quantity.
    Returns the new ``(n_orders, n_open)``."""
    _write(
        orders[n_orders], asset, quantity, bar, origin, order_type, limit_price, stop_price,
        np.nan, np.nan, np.nan, np.nan, target_value, GTC, -1, -1, OPEN,
    )  # fmt: skip
    open_ids[n_open] = n_orders
    if order_type == MARKET:
        pending[asset] += quantity
    return n_orders + 1, n_open + 1


@leaf
def add_exit_orders(
    count: int,
    out_asset: np.ndarray,
    out_type: np.ndarray,
    out_level: np.ndarray,
    out_origin: np.ndarray,
    bar: int,
    positions: np.ndarray,
    pending: np.ndarray,
    exit_order: np.ndarray,
    orders: np.ndarray,
    n_orders: int,
    ids: np.ndarray,
) -> int:
    """Orders for the exits ``evaluate_position_rules`` found, written to the book but not
    opened: their ids go to ``ids[:count]`` for a fill step of their own. Returns n_orders."""
    for k in range(count):
        a = out_asset[k]
        kind = out_type[k]
        level = out_level[k]
        oid = n_orders
        # ``add_order`` opens it in ``ids`` (a scratch list), not in the book's open list.
        n_orders, _ = add_order(
            orders, n_orders, ids, k, a, -positions[a], bar, out_origin[k], kind,
            level if kind == LIMIT else np.nan, level if kind == STOP else np.nan, np.nan,
            pending,
        )  # fmt: skip
        exit_order[a] = oid
    return n_orders


@folded
def start_day(halt: np.ndarray, equity: float) -> None:
    """A new calendar day: its loss is measured from ``equity``; a daily block lifts."""
    halt[H_DAY_START] = equity
    if halt[H_BLOCK] == R_DAILY_LOSS_LIMIT and halt[H_FOR_GOOD] == 0.0:
        halt[H_BLOCK] = 0.0


@folded
def check_halts(t: int, equity: float, book: Book, acc: Account) -> None:
    """After a close: fire the drawdown halt (its limit below the peak) and the daily loss limit
    (its limit below the day's start) when breached; NaN limits are off. The limits and the
    halt state are account scalars (``S_DAILY_LIMIT``, ``S_DRAWDOWN_LIMIT``, ``S_HALT``).

    Firing blocks entries with the halt's reason and cancels working orders that would grow a
    position; a liquidating halt instead cancels every working order and closes every position.
    """
    halt = acc.scalars[S_HALT : S_HALT + H_WIDTH]
    drawdown_limit = acc.scalars[S_DRAWDOWN_LIMIT]
    daily_limit = acc.scalars[S_DAILY_LIMIT]
    halt[H_PEAK] = max(halt[H_PEAK], equity)
    if (
        not np.isnan(drawdown_limit)
        and halt[H_FOR_GOOD] == 0.0
        and equity <= halt[H_PEAK] * (1.0 - drawdown_limit)
    ):
        halt[H_FOR_GOOD] = 1.0
        liquidate = acc.scalars[S_DRAWDOWN_LIQUIDATE] != 0.0
        _halt(R_MAX_DRAWDOWN_HALT, O_MAX_DRAWDOWN_HALT, liquidate, halt, t, book, acc)
        if liquidate:
            halt[H_STOPPED] = 1.0
    if (
        not np.isnan(daily_limit)
        and halt[H_BLOCK] == 0.0
        and equity <= halt[H_DAY_START] * (1.0 - daily_limit)
    ):
        liquidate = acc.scalars[S_DAILY_LIQUIDATE] != 0.0
        _halt(R_DAILY_LOSS_LIMIT, O_DAILY_LOSS_LIMIT, liquidate, halt, t, book, acc)


@counted
def _halt(
    reason: int, origin: int, liquidate: bool, halt: np.ndarray, t: int, book: Book, acc: Account
) -> None:
    halt[H_BLOCK] = reason
    orders = book.orders
    n_orders, n_open = book.counts[C_ORDERS], book.counts[C_OPEN]
    positions, pending = acc.assets[A_POSITION], acc.assets[A_PENDING]
    live = book.open_ids[:n_open].copy()
    if not liquidate:
        reject_growing(orders, n_orders, live, positions, t, CANCELLED, reason, pending)
        return
    for k in range(live.shape[0]):
        status = orders[live[k]].status
        if status in (OPEN, PARTIALLY_FILLED, INACTIVE):
            cancel_order(orders, n_orders, live[k], t, reason, pending)
    for a in range(positions.shape[0]):
        if positions[a] != 0.0:
            n_orders, n_open = add_order(
                orders, n_orders, book.open_ids, n_open, a, -positions[a] - pending[a], t,
                origin, MARKET, np.nan, np.nan, np.nan, pending,
            )  # fmt: skip
    book.counts[C_ORDERS] = n_orders
    book.counts[C_OPEN] = n_open


@leaf
def withdraw(
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
    asset: int,
    bar: int,
    pending: np.ndarray,
) -> None:
    """Cancel every market order still working on ``asset`` (reason ``replaced_by_target``):
    a target order that goes the other way replaces them, rather than trading against them."""
    withdraw_market_orders(
        orders, n_orders, open_ids, n_open, asset, bar, R_REPLACED_BY_TARGET, pending
    )


@leaf
def withdraw_market_orders(
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
    asset: int,
    bar: int,
    reason: int,
    pending: np.ndarray,
) -> None:
    """Cancel every market order still working on ``asset``, with ``reason``; they stay in
    ``open_ids`` until the next fill step compacts it."""
    for k in range(n_open):
        oid = open_ids[k]
        order = orders[oid]
        if order.asset == asset and order.order_type == MARKET:
            cancel_order(orders, n_orders, oid, bar, reason, pending)
    # Every working market order on the asset is gone: nothing is pending, not a float residue.
    pending[asset] = 0.0


@leaf
def withdraw_opposed(
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
    assets: np.ndarray,
    quantities: np.ndarray,
    count: int,
    positions: np.ndarray,
    pending: np.ndarray,
    bar: int,
) -> int:
    """Target deltas (``assets[:count]``, ``quantities[:count]``, net of pending market
    orders) that go against the orders still working on their asset: those orders are
    withdrawn and the delta becomes the target less the position alone; one within
    ``sizing.TARGET_RTOL`` is dropped. Compacts the arrays in place and returns the new count."""
    kept = 0
    for k in range(count):
        a = assets[k]
        q = quantities[k]
        p = pending[a]
        if p != 0.0 and (q > 0.0) != (p > 0.0):
            withdraw(orders, n_orders, open_ids, n_open, a, bar, pending)
            q += p  # the target less the position alone
            if abs(q) <= TARGET_RTOL * max(abs(positions[a] + q), abs(positions[a]), 1.0):
                continue
        assets[kept] = a
        quantities[kept] = q
        kept += 1
    return kept
