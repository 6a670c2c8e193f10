"""Target sizing, written once: from a value or a weight of equity to the order that reaches it.

Every target order of both drivers goes through these functions: ``Broker.order_target_*`` and
``Broker.rebalance`` (event driver), the decision rules of ``kernels.driver`` (compiled driver),
and the re-sizing of target orders at the fill price in ``kernels.step`` (``sizing_price="fill"``).

Whole shares follow a ``Rounding`` code (``kernels.records``): fractional shares are not rounded;
``target_rounding="target"`` rounds the target towards zero, then orders the difference;
``target_rounding="order"`` orders the difference rounded towards zero. Holding 12 shares with a
target of 10.7, the first sells 2 (to 10), the second 1 (to 11), as Backtrader's
``order_target_*`` does. With ``snap_near_whole=True`` (the ``_near_whole`` codes), an amount
within ``NEAR_WHOLE`` of a whole number is that number before it is rounded towards zero, as
Zipline's ``TradingAlgorithm.round_order`` (``round_if_near_integer``, epsilon 1e-4) does to
every order amount: 3.99995 shares buy 4, not 3.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .jit import leaf
from .records import (
    ROUND_NONE,
    ROUND_ORDER,
    ROUND_ORDER_NEAR_WHOLE,
    ROUND_TARGET,
    ROUND_TARGET_NEAR_WHOLE,
)

# Target orders smaller than this share of the target (or of what is held) are float noise, not
# trades: a target of exactly what is held must not become a 1e-13 share order.
TARGET_RTOL: Final = 1e-9

# Zipline's ``round_if_near_integer`` epsilon (``zipline/utils/math_utils.py``): an order amount
# at most this far from a whole number is that number (``snap_near_whole=True``).
NEAR_WHOLE: Final = 1e-4

# What ``target_deltas`` found wrong with the targets (a code and the asset it concerns).
OK: Final = 0
NOT_FINITE: Final = 1
NEGATIVE_IN_CASH_ACCOUNT: Final = 2
NO_PRICE: Final = 3


def rounding_code(*, fractional: bool, target_rounding: str, near_whole: bool = False) -> int:
    """The ``Rounding`` code of a config's ``fractional_shares``, ``target_rounding`` and
    ``snap_near_whole``.

    Example:
        >>> rounding_code(fractional=False, target_rounding="order") == ROUND_ORDER
        True
    """
    if fractional:
        return ROUND_NONE
    if target_rounding == "order":
        return ROUND_ORDER_NEAR_WHOLE if near_whole else ROUND_ORDER
    return ROUND_TARGET_NEAR_WHOLE if near_whole else ROUND_TARGET


@leaf
def _whole(amount: float, near_whole: bool) -> float:
    """``amount`` rounded towards zero; with ``near_whole``, first snapped to the nearest whole
    number when within ``NEAR_WHOLE`` of it (Zipline's ``round_order``)."""
    # Any nearest whole number will do (a half is never within NEAR_WHOLE of one); numba's
    # np.round costs a first run a third of a second of compile.
    nearest = np.floor(amount + 0.5)
    if near_whole and abs(amount - nearest) <= NEAR_WHOLE:
        return float(nearest)
    return float(np.trunc(amount))


@leaf
def shares_for_value(value: float, price: float, rounding: int) -> float:
    """The target position worth ``value`` at ``price``: whole shares (towards zero) only
    under the target codes; the order codes round the order instead (``order_toward``).

    Example:
        >>> shares_for_value(1_000.0, 30.0, ROUND_TARGET)
        33.0
    """
    shares = value / price
    if rounding in (ROUND_TARGET, ROUND_TARGET_NEAR_WHOLE):
        return _whole(shares, rounding == ROUND_TARGET_NEAR_WHOLE)
    return shares


@leaf
def order_toward(target: float, held: float, rounding: int) -> float:
    """The signed order that moves ``held`` shares to ``target`` shares, 0.0 for none.

    Under the order codes the order is rounded towards zero (after the near-whole snap of
    ``ROUND_ORDER_NEAR_WHOLE``). A difference within ``TARGET_RTOL`` of the larger of target
    and holding is float noise: no order.

    Example:
        >>> near = ROUND_ORDER_NEAR_WHOLE
        >>> order_toward(39.99995, 0.0, ROUND_ORDER), order_toward(39.99995, 0.0, near)
        (39.0, 40.0)
    """
    delta = target - held
    if rounding in (ROUND_ORDER, ROUND_ORDER_NEAR_WHOLE):
        delta = _whole(delta, rounding == ROUND_ORDER_NEAR_WHOLE)
    if abs(delta) <= TARGET_RTOL * max(abs(target), abs(held), 1.0):
        return 0.0
    return float(delta)


@leaf
def target_order(target: float, held: float, target_value: float, rounding: int) -> float:
    """The order a target order places towards ``target`` shares from ``held`` (position plus
    waiting orders): ``order_toward``, except an all-in order (``target_value`` of +-inf),
    which is its estimate ``target`` itself, whatever is held: its size is set at its fill
    (``step._resolve_all_in``), so the order must keep the side of its ``target_value``. Both
    ``Broker`` and the compiled driver's target orders use it.

    Example:
        >>> target_order(10.0, 4.0, 500.0, ROUND_TARGET), target_order(10.0, 4.0, np.inf, 1)
        (6.0, 10.0)
    """
    if np.isinf(target_value):
        return target
    return order_toward(target, held, rounding)


@leaf
def all_in_estimate(cash: float, price: float, fractional: bool) -> float:
    """The quantity an all-in order (``target_value`` of +-inf) is submitted with: what
    ``cash`` buys at ``price``, whole shares unless ``fractional``; 1 when that is less than
    the smallest fill (``accounts.MIN_SCALED_QTY``: fractional dust left by an earlier all-in
    would otherwise be an order of float noise). Only an estimate that orders still waiting
    count towards (``pending``): the fill step sizes the order again from the cash and costs
    at its fill (``step._resolve_all_in``).

    Example:
        >>> all_in_estimate(1_000.0, 30.0, False), all_in_estimate(10.0, 30.0, False)
        (33.0, 1.0)
    """
    q = cash / price if cash > 0.0 and price > 0.0 else 0.0
    if not fractional:
        q = np.floor(q)
    return float(q) if q >= 1e-8 else 1.0


@leaf
def target_deltas(
    targets: np.ndarray,
    scale: float,
    last_price: np.ndarray,
    positions: np.ndarray,
    pending: np.ndarray,
    rounding: int,
    allow_negative: bool,
    nan_leaves_alone: bool,
    out_assets: np.ndarray,
    out_quantities: np.ndarray,
) -> tuple[int, int, int]:
    """Orders that move ``positions`` (plus ``pending``) to ``targets`` x ``scale`` in value.

    ``targets`` are weights or percents of an equity ``scale`` (or values, with a scale of 1).
    NaN leaves an asset alone with ``nan_leaves_alone`` and is a problem otherwise; negative
    targets are a problem unless ``allow_negative``. Each asset's order is
    ``order_toward(shares_for_value(target x scale, price), held)``.
    Writes the assets and signed quantities into the ``out_`` arrays and returns
    ``(count, problem, asset)``; with a problem (a code above), nothing is written.
    """
    n = targets.shape[0]
    for i in range(n):
        w = targets[i]
        if np.isnan(w) and nan_leaves_alone:
            continue
        if not np.isfinite(w):
            return 0, NOT_FINITE, i
        if w < 0.0 and not allow_negative:
            return 0, NEGATIVE_IN_CASH_ACCOUNT, i
        if w != 0.0 and np.isnan(last_price[i]):
            return 0, NO_PRICE, i
    count = 0
    for i in range(n):
        w = targets[i]
        if np.isnan(w):
            continue
        target = 0.0
        if w != 0.0:
            target = shares_for_value(w * scale, last_price[i], rounding)
        delta = order_toward(target, positions[i] + pending[i], rounding)
        if delta != 0.0:
            out_assets[count] = i
            out_quantities[count] = delta
            count += 1
    return count, OK, 0
