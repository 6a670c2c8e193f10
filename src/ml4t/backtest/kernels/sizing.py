"""Target sizing as array code: from weights of equity to the orders that reach them.

The event driver's ``Broker.rebalance`` calls it once per rebalance; the compiled driver can
call it from its own loop with the same result.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# What ``target_deltas`` found wrong with the weights (a code and the asset it concerns).
OK = 0
NOT_FINITE = 1
NEGATIVE_IN_CASH_ACCOUNT = 2
NO_PRICE = 3


@njit(cache=True)
def target_deltas(
    weights: np.ndarray,
    equity: float,
    last_price: np.ndarray,
    positions: np.ndarray,
    pending: np.ndarray,
    fractional: bool,
    round_order: bool,
    allow_negative: bool,
    rtol: float,
    out_assets: np.ndarray,
    out_quantities: np.ndarray,
) -> tuple[int, int, int]:
    """Orders that move ``positions`` (plus ``pending``) to ``weights`` of ``equity``.

    Shares are ``weight * equity / last_price``, truncated towards zero unless ``fractional``
    (with ``round_order``, the order is truncated instead: target less what is held);
    differences within ``rtol`` of the larger of target and position are float noise, not
    orders. Writes the assets and signed quantities into the ``out_`` arrays and returns
    ``(count, problem, asset)``; with a problem (a code above), nothing is written.
    """
    n = weights.shape[0]
    for i in range(n):
        w = weights[i]
        if not np.isfinite(w):
            return 0, NOT_FINITE, i
        if w < 0.0 and not allow_negative:
            return 0, NEGATIVE_IN_CASH_ACCOUNT, i
        if w != 0.0 and np.isnan(last_price[i]):
            return 0, NO_PRICE, i
    count = 0
    for i in range(n):
        w = weights[i]
        target = 0.0
        if w != 0.0:
            target = w * equity / last_price[i]
            if not fractional and not round_order:
                target = np.trunc(target)
        delta = target - positions[i] - pending[i]
        if not fractional and round_order:
            delta = np.trunc(delta)
        scale = max(abs(target), abs(positions[i]), 1.0)
        if abs(delta) > rtol * scale:
            out_assets[count] = i
            out_quantities[count] = delta
            count += 1
    return count, OK, 0


@njit(cache=True)
def target_percent_deltas(
    percents: np.ndarray,
    equity: float,
    last_price: np.ndarray,
    positions: np.ndarray,
    pending: np.ndarray,
    fractional: bool,
    round_order: bool,
    rtol: float,
    out_assets: np.ndarray,
    out_quantities: np.ndarray,
) -> tuple[int, int, int]:
    """``order_target_percent`` for every asset with a finite percent (NaN: leave it alone).

    Same arithmetic as the one-asset call: value ``percent * equity``, shares ``value / price``
    truncated unless ``fractional`` (the order instead, with ``round_order``), and no order
    within ``rtol`` of what is held and pending.
    Returns ``(count, problem, asset)`` like ``target_deltas``; ``NO_PRICE`` for a non-zero
    percent on an asset without a price yet.
    """
    n = percents.shape[0]
    for i in range(n):
        p = percents[i]
        if np.isinf(p):
            return 0, NOT_FINITE, i
        if not np.isnan(p) and p != 0.0 and np.isnan(last_price[i]):
            return 0, NO_PRICE, i
    count = 0
    for i in range(n):
        p = percents[i]
        if np.isnan(p):
            continue
        target = 0.0
        if p != 0.0:
            target = p * equity / last_price[i]
            if not fractional and not round_order:
                target = np.trunc(target)
        held = positions[i] + pending[i]
        delta = target - held
        if not fractional and round_order:
            delta = np.trunc(delta)
        if abs(delta) > rtol * max(abs(target), abs(held), 1.0):
            out_assets[count] = i
            out_quantities[count] = delta
            count += 1
    return count, OK, 0
