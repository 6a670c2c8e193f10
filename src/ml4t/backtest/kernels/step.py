"""The broker step as array code: match open orders against one bar, apply costs, move cash.

Both drivers call these functions unchanged: the event driver once per bar from Python, the
compiled driver from inside its own compiled loop. State lives in arrays owned by the caller:
the order book (``ORDER_DTYPE`` records), the list of open order ids, positions and last prices
over assets, and ``account`` (``account[0]`` is cash).

Fill prices follow DESIGN.md ("The clock"): market orders take the open (or the close in
same-bar mode); a limit fills at the open when the open is already at or better than the limit,
else at the limit when the bar reaches it; a stop fills at the open when the bar gaps through
it, else at the stop when the bar touches it. Only market orders fill in the close phase: a
limit or stop placed at the close can only meet prices of later bars.
"""

from __future__ import annotations

import numpy as np
from numba import objmode

from ..execution.commission import affordable_quantity, commission_kernel
from ..execution.slippage import slippage_kernel
from . import python_models
from .jit import kernel, leaf
from .levels import (
    LEVEL_GAPPED,
    LEVEL_TOUCHED,
    level_touch,
    limit_price_on_bar,
    stop_price_on_bar,
)
from .records import (
    CANCELLED,
    CASH_REJECT,
    DAY,
    EXEC_AS_SUBMITTED,
    EXEC_EXITS_FIRST_SMALLEST,
    EXPIRED,
    FILLED,
    INACTIVE,
    LIMIT,
    MARKET,
    OPEN,
    PARTIALLY_FILLED,
    PHASE_OPEN,
    PRIORITY_STOP,
    R_BOTH_LIMIT_FIRST,
    R_BOTH_STOP_FIRST,
    R_DAY_EXPIRED,
    R_INSUFFICIENT_CASH,
    R_INSUFFICIENT_MARGIN,
    R_MAX_GROSS_EXPOSURE,
    R_MAX_NET_EXPOSURE,
    R_MAX_POSITION_WEIGHT,
    R_MAX_POSITIONS,
    R_OCO,
    R_PARENT_ENDED,
    R_SCALED_DOWN,
    R_SCALED_DOWN_MARGIN,
    R_SHORT_NOT_ALLOWED,
    R_TARGET_MET,
    R_VOLUME_REMAINDER,
    REJECTED,
    SIZE_AT_DECISION,
    STOP,
    STOP_LIMIT,
    TRAIL_CLOSE,
    TRAILING_STOP,
    Record,
)
from .sizing import order_toward, shares_for_value

# Quantities within this relative distance of a position are that position: float round-off
# must not turn "sell everything" into a tiny short that a cash account would reject.
_QTY_RTOL = 1e-9
# A buy the cash scales down below this many shares is rejected rather than filled as dust
# (VectorBT's default min_size): a 1e-13 share position would count as a position held.
_MIN_SCALED_QTY = 1e-8


@leaf
def _fee(fee: np.ndarray, asset: int, quantity: float, price: float, month: float) -> float:
    """Commission for one fill: compiled model, or the asset's Python model (code -1)."""
    if fee[0] >= 0.0:
        return float(commission_kernel(fee, quantity, price, month))
    return _python_fee(asset, quantity, price, month)


@kernel
def _python_fee(asset: int, quantity: float, price: float, month: float) -> float:
    with objmode(out="float64"):
        out = python_models.commission(asset, quantity, price, month)
    return out


@leaf
def _slipped(
    quote: np.ndarray,
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
    """Fill price after slippage: compiled model, or the asset's Python model (code -1)."""
    if quote[0] >= 0.0:
        return float(
            slippage_kernel(quote, price, quantity, kind, volume, bid, ask, spread, volatility)
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


@kernel
def _affordable(
    fee: np.ndarray, asset: int, cash: float, price: float, month: float, fractional: bool
) -> float:
    """Largest buy whose cost and commission fit ``cash``; bisection for Python models."""
    if fee[0] >= 0.0:
        return float(affordable_quantity(fee, cash, price, month, fractional))
    # Paying cash for shares is a margin check with a 100% requirement and nothing held.
    hi = cash / price
    hi = np.floor(hi) + 1.0 if not fractional else hi
    return _largest_margin_quantity(
        asset, 0.0, hi, cash, 0.0, 0.0, True, price, 1.0, fee, month, fractional
    )


@kernel
def _margin_fits(
    asset: int,
    size: float,
    equity_now: float,
    gross_now: float,
    pos: float,
    buy: bool,
    price: float,
    initial_margin: float,
    fee: np.ndarray,
    month: float,
) -> bool:
    """Whether filling ``size`` leaves equity >= initial_margin x gross exposure."""
    new_pos = pos + size if buy else pos - size
    equity = equity_now - _fee(fee, asset, size, price, month)
    gross = gross_now + (abs(new_pos) - abs(pos)) * price
    return equity >= initial_margin * gross


@kernel
def _largest_margin_quantity(
    asset: int,
    lo: float,
    hi: float,
    equity_now: float,
    gross_now: float,
    pos: float,
    buy: bool,
    price: float,
    initial_margin: float,
    fee: np.ndarray,
    month: float,
    fractional: bool,
) -> float:
    """Largest size in [lo, hi] that still meets the initial margin (bisection), or 0."""
    if not _margin_fits(
        asset, lo, equity_now, gross_now, pos, buy, price, initial_margin, fee, month
    ):
        return 0.0
    for _ in range(200):
        if hi - lo <= (1.0 if not fractional else 1e-9 * max(hi, 1.0)):
            break
        mid = 0.5 * (lo + hi)
        if not fractional:
            mid = np.floor(mid)
            if mid <= lo:
                mid = lo + 1.0
        if _margin_fits(
            asset, mid, equity_now, gross_now, pos, buy, price, initial_margin, fee, month
        ):
            lo = mid
        else:
            hi = mid
    return lo


@leaf
def _trail_level(order: Record, buy: bool) -> float:
    """A trailing stop's level from the best price seen: below it for sells, above for buys."""
    ref: float = order.trail_ref
    amount: float = order.trail_amount
    percent: float = order.trail_percent
    if not np.isnan(amount):
        return ref + amount if buy else ref - amount
    return ref * (1.0 + percent) if buy else ref * (1.0 - percent)


@leaf
def _reference_price(
    order: Record, phase: int, market_at_open: bool, o: float, h: float, lo: float, c: float
) -> float:
    """The price ``order`` fills at on this bar before costs, NaN if it does not fill.

    A stop-limit whose stop is touched is marked triggered here and works as a limit from then
    on. Touched inside the bar (no gap), it fills at the stop only when the stop is within the
    limit: the bar's path after the touch is unknown, so no better price is assumed.
    """
    kind = order.order_type
    buy = order.quantity - order.filled > 0.0
    if kind == MARKET:
        if phase == PHASE_OPEN:
            return o if market_at_open else np.nan
        return c
    if phase != PHASE_OPEN:
        return np.nan
    if kind == LIMIT:
        return limit_price_on_bar(buy, order.limit_price, o, h, lo)
    if kind == STOP:
        return stop_price_on_bar(buy, order.stop_price, o, h, lo)
    if kind == TRAILING_STOP:
        return stop_price_on_bar(buy, _trail_level(order, buy), o, h, lo)
    if kind == STOP_LIMIT:
        if order.triggered:
            return limit_price_on_bar(buy, order.limit_price, o, h, lo)
        stop = order.stop_price
        touch = level_touch(not buy, stop, o, h, lo)
        if touch == LEVEL_GAPPED:
            order.triggered = True
            return limit_price_on_bar(buy, order.limit_price, o, h, lo)
        if touch == LEVEL_TOUCHED:
            order.triggered = True
            within = order.limit_price >= stop if buy else order.limit_price <= stop
            return stop if within else np.nan
    return np.nan


@leaf
def _end(order: Record, status: int, reason: int, bar: int, pending: np.ndarray) -> None:
    """Close an order's life; market orders stop counting towards the asset's pending quantity."""
    if order.order_type == MARKET:
        pending[order.asset] -= order.quantity - order.filled
    order.status = status
    order.reason = reason
    order.end_bar = bar


@leaf
def _end_children(
    orders: np.ndarray, parent: int, n_orders: int, bar: int, pending: np.ndarray
) -> None:
    """An entry that ended without any fill takes its bracket legs with it."""
    # Children are submitted right after their entry, so they sit in the next two rows.
    for oid in range(parent + 1, min(parent + 3, n_orders)):
        child = orders[oid]
        if child.parent == parent and child.status == INACTIVE:
            _end(child, CANCELLED, R_PARENT_ENDED, bar, pending)


@leaf
def _activate_children(orders: np.ndarray, parent: int, n_orders: int, bar: int) -> bool:
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
def fill_orders(
    bar: int,
    phase: int,
    market_at_open: bool,
    opens: np.ndarray,
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    volumes: np.ndarray,
    bids: np.ndarray,
    asks: np.ndarray,
    spreads: np.ndarray,
    volatilities: np.ndarray,
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
    positions: np.ndarray,
    pending: np.ndarray,
    account: np.ndarray,
    commission: np.ndarray,
    month_volume: np.ndarray,
    slippage: np.ndarray,
    cash_account: bool,
    initial_margin: float,
    last_price: np.ndarray,
    fractional: bool,
    cash_policy: int,
    max_participation: float,
    keep_remainder: bool,
    intrabar_priority: int,
    children_on_entry_bar: bool,
    execution_order: int,
    clamp_to_bar: bool,
    fill_sizing: int,
    trail_basis: int,
    limits: np.ndarray,
    volume_used: np.ndarray,
    fills: np.ndarray,
    n_fills: int,
) -> tuple[int, int]:
    """Fill every open order this bar can fill (one row per field over assets).

    Orders that reduce a position go first, then the rest, each group in submission order, so
    cash freed by exits pays for entries on the same bar; bracket legs armed by an entry filled
    at this open may then fill on the rest of the bar (``children_on_entry_bar``). An asset
    whose price is NaN has no bar: its orders wait. With ``max_participation`` > 0, fills on an
    asset share at most that fraction of its bar volume (a zero-volume bar fills nothing); an
    order cut by it keeps working (``keep_remainder``) or has the rest cancelled; what the bar's
    volume has given so far is in ``volume_used``, shared by every step of the bar.
    ``limits`` holds the portfolio rules checked on each order that grows a position (NaN when
    unset): max positions, max position weight, max gross and max net exposure, the last three
    as multiples of equity; an order breaking one is rejected with the rule as its reason. The
    other arguments are the settings of ``BacktestConfig`` as codes (see ``Broker.fill_orders``);
    ``fill_sizing`` is ``SIZE_AT_DECISION``, or the ``Rounding`` code with which target orders
    are sized again at the fill price (``sizing_price="fill"``, see ``kernels.sizing``).

    ``fills`` must have room for ``n_open`` more records. Returns the new number of open orders
    (``open_ids`` is compacted in place) and of fills.
    """
    checks_limits = False
    for i in range(limits.shape[0]):
        checks_limits = checks_limits or not np.isnan(limits[i])
    # Equity, gross and net exposure at the last marks, kept current through the fills below.
    tracks_equity = not cash_account or checks_limits
    equity_marks = account[0]
    gross_marks = 0.0
    net_marks = 0.0
    n_held = 0
    if tracks_equity:
        for i in range(positions.shape[0]):
            if positions[i] != 0.0:
                equity_marks += positions[i] * last_price[i]
                gross_marks += abs(positions[i] * last_price[i])
                net_marks += positions[i] * last_price[i]
                n_held += 1
    # Visiting order: submission order, except entries smallest first when asked, so the last
    # (largest) entry is the one a cash shortfall trims.
    armed_here = False  # a bracket leg armed on this bar is waiting for group 2
    # An order visited for good is marked in place, its id flipped to ``~id`` (negative), and
    # restored when the list is compacted: no per-call array (this runs on every bar).
    smallest_first = execution_order == EXEC_EXITS_FIRST_SMALLEST
    visit = open_ids[:0]
    if smallest_first:
        size = np.empty(n_open)
        for k in range(n_open):
            order = orders[open_ids[k]]
            # Sized at the price this phase fills at: the open, or the close in same-bar mode.
            at = opens[order.asset] if phase == PHASE_OPEN else closes[order.asset]
            size[k] = abs(order.quantity - order.filled) * at
        visit = np.argsort(size, kind="mergesort")
    for group in range(3):
        if group == 1 and execution_order == EXEC_AS_SUBMITTED:
            continue  # one pass took every order in turn
        if group == 2 and (phase != PHASE_OPEN or not children_on_entry_bar or not armed_here):
            break  # group 2 is for bracket legs armed on this bar: none, nothing to do
        for j in range(n_open):
            k = visit[j] if group == 1 and smallest_first else j
            oid = open_ids[k]
            if oid < 0:
                continue
            order = orders[oid]
            if order.status != OPEN and order.status != PARTIALLY_FILLED:
                continue
            if group == 2:
                if order.active_bar != bar:
                    continue
            elif order.active_bar == bar and order.parent >= 0:
                armed_here = True
                continue  # armed during this step: only group 2 may fill it
            asset = order.asset
            remaining = order.quantity - order.filled
            pos = positions[asset]
            reduces = pos != 0.0 and (remaining > 0.0) != (pos > 0.0)
            if group < 2 and execution_order != EXEC_AS_SUBMITTED and (group == 0) != reduces:
                continue
            if np.isnan(closes[asset]):
                continue  # no bar for this asset: its orders wait
            o = opens[asset]
            price = _reference_price(
                order, phase, market_at_open, o, highs[asset], lows[asset], closes[asset]
            )
            if np.isnan(price):
                continue
            open_ids[k] = ~oid

            if (
                fill_sizing != SIZE_AT_DECISION
                and order.filled == 0.0
                and not np.isnan(order.target_value)
            ):
                # Size the target at this bar's price instead of the decision close, with the
                # rounding rule decision-time sizing uses.
                target = shares_for_value(order.target_value, price, fill_sizing)
                resized = order_toward(target, pos, fill_sizing)
                if resized == 0.0 or (resized > 0.0) != (remaining > 0.0):
                    _end(order, CANCELLED, R_TARGET_MET, bar, pending)
                    continue
                if order.order_type == MARKET:
                    pending[asset] += resized - remaining
                order.quantity = resized
                remaining = resized

            reason = order.reason
            sibling = order.oco
            if sibling >= 0:
                other = orders[sibling]
                if other.status == OPEN or other.status == PARTIALLY_FILLED:
                    other_price = _reference_price(
                        other, phase, market_at_open, o, highs[asset], lows[asset], closes[asset]
                    )
                    if not np.isnan(other_price):
                        # The bar touched both legs; which came first is unknown. The setting
                        # decides, pessimistic (stop first) by default, as backtesting.py does.
                        both = (
                            R_BOTH_STOP_FIRST
                            if intrabar_priority == PRIORITY_STOP
                            else R_BOTH_LIMIT_FIRST
                        )
                        mine_is_stop = order.order_type != LIMIT
                        if mine_is_stop != (intrabar_priority == PRIORITY_STOP):
                            # The other leg wins: it fills when the loop reaches it.
                            _end(order, CANCELLED, R_OCO, bar, pending)
                            other.reason = both
                            continue
                        reason = both

            qty = remaining
            capped = False
            if max_participation > 0.0:
                # The bar's volume is shared by every order on the asset within this step.
                room = max_participation * volumes[asset] - volume_used[asset]
                if not fractional:
                    room = np.floor(room + 1e-9)
                if room <= 0.0 or np.isnan(room):
                    continue  # no volume left for it on this bar: it waits for a later one
                if abs(qty) > room:
                    qty = room if qty > 0.0 else -room
                    capped = True
            if cash_account and qty < 0.0:
                # A cash account can only sell what it holds.
                if pos + qty < -_QTY_RTOL * max(abs(qty), 1.0):
                    _end(order, REJECTED, R_SHORT_NOT_ALLOWED, bar, pending)
                    if order.parent < 0:
                        _end_children(orders, oid, n_orders, bar, pending)
                    continue
                qty = -pos if pos + qty < 0.0 else qty

            grows = abs(pos + qty) > abs(pos)
            kind = order.order_type
            quote = slippage[asset]
            fill_price = _slipped(
                quote, asset, price, qty, kind, volumes[asset], bids[asset], asks[asset],
                spreads[asset], volatilities[asset],
            )  # fmt: skip
            if np.isnan(fill_price):
                continue  # the model cannot price this bar (e.g. no volume): the order waits
            if clamp_to_bar:
                # Slippage cannot buy above the bar's high nor sell below its low.
                fill_price = min(max(fill_price, lows[asset]), highs[asset])
            if checks_limits and grows:
                mark = last_price[asset] if not np.isnan(last_price[asset]) else fill_price
                broken = _broken_limit(
                    limits, n_held, pos, qty, fill_price,
                    equity_marks + pos * (fill_price - mark),
                    gross_marks + abs(pos) * (fill_price - mark),
                    net_marks + pos * (fill_price - mark),
                )  # fmt: skip
                if broken:
                    _end(order, REJECTED, broken, bar, pending)
                    _end_children(orders, oid, n_orders, bar, pending)
                    continue
            fee = commission[asset]
            month = month_volume[0]
            cost = _fee(fee, asset, abs(qty), fill_price, month)
            if cash_account and qty > 0.0:
                cash = account[0]
                if qty * fill_price + cost > cash:
                    if cash_policy == CASH_REJECT or (
                        fee[0] >= 0.0 and not (cash >= _MIN_SCALED_QTY * fill_price)
                    ):
                        # A compiled fee is never negative, so cash / price bounds what is
                        # affordable: below the smallest fill, there is nothing to search for.
                        affordable = 0.0
                    else:
                        affordable = _affordable(fee, asset, cash, fill_price, month, fractional)
                    if affordable < _MIN_SCALED_QTY:
                        _end(order, REJECTED, R_INSUFFICIENT_CASH, bar, pending)
                        _end_children(orders, oid, n_orders, bar, pending)
                        continue
                    qty = affordable
                    cost = _fee(fee, asset, qty, fill_price, month)
                    # A smaller order may pay less slippage per share (volume-share models);
                    # take the better price only if the fee at it still fits the cash.
                    better = _slipped(
                        quote, asset, price, qty, kind, volumes[asset], bids[asset],
                        asks[asset], spreads[asset], volatilities[asset],
                    )  # fmt: skip
                    if better < fill_price:
                        better_cost = _fee(fee, asset, qty, better, month)
                        if qty * better + better_cost <= cash:
                            fill_price = better
                            cost = better_cost
                    reason = R_SCALED_DOWN
            elif not cash_account and abs(pos + qty) > abs(pos):
                # A margin account checks the initial margin on what the fill would hold: equity
                # after the fill must cover initial_margin of the gross exposure. Other assets
                # are valued at their marks, this one at the fill price.
                mark = last_price[asset] if not np.isnan(last_price[asset]) else fill_price
                equity_now = equity_marks + pos * (fill_price - mark)
                gross_now = gross_marks + abs(pos) * (fill_price - mark)
                lo = abs(pos) if (pos > 0.0) != (qty > 0.0) and pos != 0.0 else 0.0
                fits = _margin_fits(
                    asset, abs(qty), equity_now, gross_now, pos, qty > 0.0, fill_price,
                    initial_margin, fee, month,
                )  # fmt: skip
                if not fits:
                    best = 0.0
                    if cash_policy != CASH_REJECT:
                        best = _largest_margin_quantity(
                            asset, lo, abs(qty), equity_now, gross_now, pos, qty > 0.0, fill_price,
                            initial_margin, fee, month, fractional,
                        )  # fmt: skip
                    if best <= 0.0 or (lo > 0.0 and best <= lo):
                        if lo > 0.0 and cash_policy != CASH_REJECT:
                            best = lo  # the reducing part of a reversal always fits
                        else:
                            _end(order, REJECTED, R_INSUFFICIENT_MARGIN, bar, pending)
                            _end_children(orders, oid, n_orders, bar, pending)
                            continue
                    qty = best if qty > 0.0 else -best
                    cost = _fee(fee, asset, abs(qty), fill_price, month)
                    reason = R_SCALED_DOWN_MARGIN

            if tracks_equity:
                mark = last_price[asset] if not np.isnan(last_price[asset]) else fill_price
                equity_marks += qty * (mark - fill_price) - cost
                gross_marks += (abs(pos + qty) - abs(pos)) * mark
                net_marks += qty * mark
                if pos == 0.0:
                    n_held += 1
                elif pos + qty == 0.0:
                    n_held -= 1
            positions[asset] = pos + qty
            account[0] -= qty * fill_price + cost
            month_volume[0] += abs(qty)
            if max_participation > 0.0:
                volume_used[asset] += abs(qty)
            if order.order_type == MARKET:
                pending[asset] -= qty
            prev_filled = order.filled
            new_filled = prev_filled + qty
            if prev_filled == 0.0:
                order.avg_price = fill_price
            else:
                order.avg_price = (
                    order.avg_price * abs(prev_filled) + fill_price * abs(qty)
                ) / abs(new_filled)
            order.filled = new_filled
            order.commission += cost
            order.end_bar = bar
            if capped and reason != R_SCALED_DOWN:
                if keep_remainder:
                    order.status = PARTIALLY_FILLED
                else:
                    _end(order, CANCELLED, R_VOLUME_REMAINDER, bar, pending)
            else:
                # Done after this fill: what a scale-down for cash cut is not left working.
                _end(order, FILLED, reason, bar, pending)
            if order.filled != 0.0 and _activate_children(orders, oid, n_orders, bar):
                armed_here = True
            if sibling >= 0 and (
                orders[sibling].status == OPEN or orders[sibling].status == PARTIALLY_FILLED
            ):
                _end(orders[sibling], CANCELLED, R_OCO, bar, pending)

            rec = fills[n_fills]
            rec.bar = bar
            rec.asset = asset
            rec.order_id = oid
            rec.quantity = qty
            rec.price = fill_price
            rec.commission = cost
            rec.slippage = abs(qty) * abs(fill_price - price)
            rec.origin = order.origin
            n_fills += 1

    n_kept = 0
    for k in range(n_open):
        oid = open_ids[k]
        if oid < 0:
            oid = ~oid
        order = orders[oid]
        status = order.status
        if status in (OPEN, PARTIALLY_FILLED):
            if phase == PHASE_OPEN and order.tif == DAY and order.submit_bar < bar:
                # A day order had its one bar; what is left of it expires.
                _end(order, EXPIRED, R_DAY_EXPIRED, bar, pending)
                _end_children(orders, oid, n_orders, bar, pending)
                continue
            if phase == PHASE_OPEN and order.order_type == TRAILING_STOP:
                a = order.asset
                _update_trail(order, highs[a], lows[a], closes[a], trail_basis)
        elif status != INACTIVE:
            continue
        open_ids[n_kept] = oid
        n_kept += 1
    return n_kept, n_fills


@leaf
def _broken_limit(
    limits: np.ndarray,
    n_held: int,
    pos: float,
    qty: float,
    price: float,
    equity: float,
    gross: float,
    net: float,
) -> int:
    """The portfolio rule a fill growing a position would break (a reason code), or 0.

    Exposures are measured after the fill, with this asset at the fill price and the others at
    their marks; a hair of tolerance keeps an order sized exactly at a cap inside it."""
    slack = 1.0 + 1e-9
    new_pos = pos + qty
    if not np.isnan(limits[0]) and pos == 0.0 and n_held >= limits[0]:
        return R_MAX_POSITIONS
    if not np.isnan(limits[1]) and abs(new_pos) * price > limits[1] * equity * slack:
        return R_MAX_POSITION_WEIGHT
    if not np.isnan(limits[2]):
        new_gross = gross + (abs(new_pos) - abs(pos)) * price
        if new_gross > limits[2] * equity * slack:
            return R_MAX_GROSS_EXPOSURE
    if not np.isnan(limits[3]):
        new_net = net + qty * price
        if abs(new_net) > limits[3] * equity * slack and abs(new_net) > abs(net):
            return R_MAX_NET_EXPOSURE
    return 0


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
            _end(order, status, reason, bar, pending)
            _end_children(orders, ids[k], n_orders, bar, pending)
            count += 1
    return count


@leaf
def _update_trail(order: Record, h: float, lo: float, c: float, trail_basis: int) -> None:
    """After a bar the stop did not fill on, move its reference to the bar's best price."""
    if np.isnan(c):
        return
    buy = order.quantity - order.filled > 0.0
    best = c if trail_basis == TRAIL_CLOSE else (lo if buy else h)
    if buy:
        order.trail_ref = min(order.trail_ref, best)
    else:
        order.trail_ref = max(order.trail_ref, best)


@leaf
def cancel_order(
    orders: np.ndarray, n_orders: int, oid: int, bar: int, reason: int, pending: np.ndarray
) -> bool:
    """Cancel an open (or waiting) order and its unarmed bracket legs; False if already ended."""
    order = orders[oid]
    if order.status != OPEN and order.status != PARTIALLY_FILLED and order.status != INACTIVE:
        return False
    _end(order, CANCELLED, reason, bar, pending)
    _end_children(orders, oid, n_orders, bar, pending)
    return True


@leaf
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


@leaf
def accrue_financing(
    years: float,
    positions: np.ndarray,
    last_price: np.ndarray,
    account: np.ndarray,
    borrow_rate: np.ndarray,
    cash_rate: float,
    margin_rate: float,
) -> tuple[float, float]:
    """Charge borrow fees on shorts and interest on cash for ``years`` of holding.

    Shorts pay ``borrow_rate`` a year on their value at the last marks; positive cash earns
    ``cash_rate``, negative cash (a margin loan) pays ``margin_rate``. Returns the borrow fee
    paid and the net interest received, both already applied to ``account[0]``.
    """
    if years <= 0.0:
        return 0.0, 0.0
    borrow = 0.0
    for i in range(positions.shape[0]):
        q = positions[i]
        if q < 0.0:
            borrow += -q * last_price[i] * borrow_rate[i] * years
    cash = account[0]
    interest = cash * cash_rate * years if cash > 0.0 else cash * margin_rate * years
    account[0] = cash - borrow + interest
    return borrow, interest
