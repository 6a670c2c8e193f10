"""Target orders for many assets in one compiled call: ``Broker.order_target_percents``,
``order_target_values`` and ``rebalance``.

The broker's batch orders were four calls from Python (sizing, withdrawing opposed orders,
writing the orders, their weights), each unboxing its arguments; a strategy calling one a bar
paid more for them than for the bar's fills. ``target_orders`` is those steps in one call, the
same kernels in the same order (``sizing.target_deltas``, ``book.withdraw_opposed``,
``book.add_order``), so the orders, their ids and the pending quantities are the same. It takes
plain arrays rather than the run's records: the broker calls it through the compiled function
for its argument types, which never change (``Broker._order_targets``).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .book import add_order, withdraw_opposed
from .jit import leaf
from .records import MARKET
from .sizing import OK, target_deltas
from .state import A_LAST_PRICE, A_PENDING, A_POSITION, C_OPEN, C_ORDERS

# ``target_orders`` placed nothing because ``refuse`` was set and there were orders to place
# (percents of an equity <= 0); beside the codes of ``sizing.target_deltas``.
REFUSED: Final = 4
# Nothing written: the order book has no room for one more order per asset (the caller grows it
# and calls again).
NO_ROOM: Final = 5


@leaf
def target_orders(
    t: int,
    targets: np.ndarray,
    scale: float,
    rounding: int,
    allow_negative: bool,
    nan_leaves_alone: bool,
    refuse: bool,
    origin: int,
    value_at_fill: bool,
    weight_at_fill: bool,
    orders: np.ndarray,
    open_ids: np.ndarray,
    counts: np.ndarray,
    acc_assets: np.ndarray,
    out_assets: np.ndarray,
    out_quantities: np.ndarray,
) -> tuple[int, int, int, int]:
    """Market orders (``origin``, stamped bar ``t``) that move each asset to ``targets`` x
    ``scale`` in value (``target_deltas``, net of pending orders); orders still working
    against a delta are withdrawn first (``withdraw_opposed``). Each order carries its target
    value when ``value_at_fill`` and its target as a weight when ``weight_at_fill``.

    Returns ``(first id, count, problem, asset)``. With a problem (a ``sizing`` code, or
    ``REFUSED`` when ``refuse`` is set and some order was due) nothing is written. The order
    book must have room for one order per asset: else ``NO_ROOM``, nothing written."""
    n_orders, n_open = counts[C_ORDERS], counts[C_OPEN]
    n = targets.shape[0]
    if n_orders + n > orders.shape[0] or n_open + n > open_ids.shape[0]:
        return n_orders, 0, NO_ROOM, 0
    positions, pending = acc_assets[A_POSITION], acc_assets[A_PENDING]
    count, problem, i = target_deltas(
        targets, scale, acc_assets[A_LAST_PRICE], positions, pending, rounding,
        allow_negative, nan_leaves_alone, out_assets, out_quantities,
    )  # fmt: skip
    if problem != OK:
        return n_orders, 0, problem, i
    if count and refuse:
        return n_orders, 0, REFUSED, 0
    first = n_orders
    count = withdraw_opposed(
        orders, n_orders, open_ids, n_open, out_assets, out_quantities, count, positions,
        pending, t,
    )  # fmt: skip
    for k in range(count):
        a = out_assets[k]
        value = targets[a] * scale if value_at_fill else np.nan
        n_orders, n_open = add_order(
            orders, n_orders, open_ids, n_open, a, out_quantities[k], t, origin, MARKET, np.nan,
            np.nan, value, pending,
        )  # fmt: skip
        if weight_at_fill:
            orders[n_orders - 1].target_weight = targets[a]
    counts[C_ORDERS], counts[C_OPEN] = n_orders, n_open
    return first, count, OK, 0
