"""The fill step as array code: match open orders against one bar, apply costs, move cash.

Both drivers run it through the phases of a bar (``kernels.clock``). ``fill_orders`` visits the
open orders in their visiting order and takes each through named phases, each a function with
one job:

1. visiting order (``_visiting_order``): exits and reductions first, entries smallest first when
   asked, bracket legs armed on this bar last;
2. eligibility and the price before costs (``_eligible``, ``_reference_price``), sizing at the
   fill price (``_size_at_fill``, from equity at the fill bar with ``sizing_equity="fill"``),
   all-in orders resolved (``_resolve_all_in``), the race of two bracket legs (``_oco_race``);
3. participation caps (``_participation``) and the cash account's no-short rule;
4. prices and costs: slippage, the clamp to the bar, commission (``kernels.costs``);
5. portfolio limits, cash and margin checks (``kernels.accounts``);
6. bookkeeping (``_book_fill``): positions, cash, the order's status, OCO, bracket legs, the
   fill record;
7. expiry (``_expire_and_compact``): DAY orders, trailing references, the open list compacted.

Fill prices follow DESIGN.md ("The clock"): market orders take the open (or the close in
same-bar mode); a limit fills at the open when the open is already at or better than the limit,
else at the limit when the bar reaches it; a stop fills at the open when the bar gaps through
it, else at the stop when the bar touches it. Only market orders fill in the close phase: a
limit or stop placed at the close can only meet prices of later bars.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .accounts import (
    M_LIMITS,
    M_TRACKS,
    M_WIDTH,
    MIN_SCALED_QTY,
    all_in_quantity,
    book_position,
    broken_limit,
    cash_check,
    equity_at_prices,
    exposure_at_marks,
    margin_check,
    stable_order,
    track_fill,
)
from .book import activate_children, end_children, end_order
from .costs import fee, slipped
from .jit import counted, folded, kernel, leaf
from .levels import (
    LEVEL_GAPPED,
    LEVEL_TOUCHED,
    level_touch,
    limit_price_on_bar,
    stop_price_on_bar,
)
from .prefetch import prefetch
from .records import (
    CANCELLED,
    CASH_ALLOW,
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
    PHASE_CLOSE,
    PHASE_OPEN,
    PRIORITY_STOP,
    R_BOTH_LIMIT_FIRST,
    R_BOTH_STOP_FIRST,
    R_DAY_EXPIRED,
    R_INSUFFICIENT_CASH,
    R_INSUFFICIENT_MARGIN,
    R_OCO,
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
from .state import (
    A_PENDING,
    A_POSITION,
    A_VOLUME_USED,
    C_FILLS,
    C_ORDERS,
    S_CASH,
    S_FILL_EQUITY,
    S_MARKS,
    S_MONTH_VOLUME,
    Account,
    Bar,
    Book,
    Full,
    Settings,
)

# Quantities within this relative distance of a position are that position: float round-off
# must not turn "sell everything" into a tiny short that a cash account would reject.
_QTY_RTOL: Final = 1e-9

# What ``_eligible`` says of an order on this visit.
_SKIP: Final = 0
_ARMED_HERE: Final = 1  # a bracket leg armed during this step: only group 2 may fill it
_GO: Final = 2

# A bracket, OCO or all-in order reached the plain fill step: the run should have asked for the
# full one (``clock.fill_features``). A bug, said loudly rather than filled wrongly.
_NOT_PLAIN = "an all-in, bracket or OCO order reached the plain fill step (see fill_features)"


@folded
def _trail_level(order: Record, buy: bool) -> float:
    """A trailing stop's level from the best price seen: below it for sells, above for buys."""
    ref: float = order.trail_ref
    amount: float = order.trail_amount
    percent: float = order.trail_percent
    if not np.isnan(amount):
        return ref + amount if buy else ref - amount
    return ref * (1.0 + percent) if buy else ref * (1.0 - percent)


@folded
def _reference_price(
    order: Record, phase: int, market_at_open: bool, close_trigger: bool, bar: Bar, a: int
) -> float:
    """The price ``order`` fills at on this bar before costs, NaN if it does not fill.

    A stop-limit whose stop is touched is marked triggered here and works as a limit from then
    on. Touched inside the bar (no gap), it fills at the stop only when the stop is within the
    limit: the bar's path after the touch is unknown, so no better price is assumed.
    With ``close_trigger`` (``order_trigger="close"``) level orders are checked at the close
    phase only, against the close alone: the bar seen as one price, so a level the close
    reached fills at the close (Zipline's ``Order.check_order_triggers`` gets the close).

    Reads only the fields of asset ``a``'s bar the order needs: each is a row of its own, and
    a market order's step would otherwise miss the cache on the high and the low as well.
    """
    kind = order.order_type
    buy = order.quantity - order.filled > 0.0
    if kind == MARKET:
        market: float = bar.close[a]
        if phase == PHASE_OPEN:
            market = bar.open[a] if market_at_open else np.nan
        return market
    if close_trigger:
        if phase != PHASE_CLOSE:
            return np.nan
        o = h = lo = bar.close[a]
    elif phase != PHASE_OPEN:
        return np.nan
    else:
        o, h, lo = bar.open[a], bar.high[a], bar.low[a]
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


@folded
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
def fill_orders(
    t: int,
    phase: int,
    market_at_open: bool,
    children_on_entry_bar: bool,
    ids: np.ndarray,
    n_ids: int,
    s: Settings,
    bar: Bar,
    book: Book,
    acc: Account,
    full: Full,
) -> int:
    """Fill every order of ``ids[:n_ids]`` this bar can fill; returns how many stay open
    (``ids`` is compacted in place; fills are appended to the book's fill log).

    Orders that reduce a position go first, then the rest, each group in submission order, so
    cash freed by exits pays for entries on the same bar; bracket legs armed by an entry filled
    at this open may then fill on the rest of the bar (``children_on_entry_bar``). An asset
    whose price is NaN has no bar: its orders wait. The fill log must have room for ``n_ids``
    more records.

    Compiled without reference counting (the phases call it a few times a bar): it allocates
    nothing, its marks are account scratch values (``S_MARKS``); only the smallest-first order
    needs an array, made in ``_fill_by_size``.
    """
    for k in range(n_ids):
        # Each order reads its asset's close (has it a bar?) and the price it fills at: start
        # loading them all now, so that their cache misses overlap (``kernels.prefetch``).
        a = book.orders[ids[k]].asset
        prefetch(bar.close, a)
        if phase == PHASE_OPEN:
            prefetch(bar.open, a)
    marks = acc.scalars[S_MARKS : S_MARKS + M_WIDTH]
    exposure_at_marks(s, acc, marks)
    if s.fill_equity:
        # Percent targets are valued at this step's prices before any of its fills, as
        # VectorBT values its group once per row (val_price=np.inf, update_value=False).
        prices = bar.open if phase == PHASE_OPEN else bar.close
        acc.scalars[S_FILL_EQUITY] = equity_at_prices(prices, acc)
    if full is not None and s.execution_order == EXEC_EXITS_FIRST_SMALLEST:
        _fill_by_size(t, phase, market_at_open, children_on_entry_bar, ids, n_ids, s, bar, book,
                      acc, full)  # fmt: skip
    else:
        # ``visit`` is read only smallest first: any int array stands in for it.
        _fill_groups(t, phase, market_at_open, children_on_entry_bar, ids, n_ids, ids, s, bar,
                     book, acc, full)  # fmt: skip
    return _expire_and_compact(t, phase, s, bar, book, acc, ids, n_ids)


@counted
def _fill_by_size(
    t: int,
    phase: int,
    market_at_open: bool,
    children_on_entry_bar: bool,
    ids: np.ndarray,
    n_ids: int,
    s: Settings,
    bar: Bar,
    book: Book,
    acc: Account,
    full: Full,
) -> None:
    """``_fill_groups`` with entries visited smallest first (the one order that needs an
    array of its own, so it is made here, with reference counting)."""
    visit = _visiting_order(phase, ids, n_ids, bar, book.orders)
    _fill_groups(t, phase, market_at_open, children_on_entry_bar, ids, n_ids, visit, s, bar,
                 book, acc, full)  # fmt: skip


@leaf
def _fill_groups(
    t: int,
    phase: int,
    market_at_open: bool,
    children_on_entry_bar: bool,
    ids: np.ndarray,
    n_ids: int,
    visit: np.ndarray,
    s: Settings,
    bar: Bar,
    book: Book,
    acc: Account,
    full: Full,
) -> None:
    """The visits of ``fill_orders``: reductions, then entries (in ``visit`` order when
    smallest first), then bracket legs armed on this bar; orders visited for good are marked
    in ``ids``."""
    marks = acc.scalars[S_MARKS : S_MARKS + M_WIDTH]
    smallest_first = s.execution_order == EXEC_EXITS_FIRST_SMALLEST
    armed_here = False  # a bracket leg armed on this bar is waiting for group 2
    for group in range(3):
        if group == 1 and s.execution_order == EXEC_AS_SUBMITTED:
            continue  # one pass took every order in turn
        if group == 2 and (phase != PHASE_OPEN or not children_on_entry_bar or not armed_here):
            break  # group 2 is for bracket legs armed on this bar: none, nothing to do
        for j in range(n_ids):
            k = visit[j] if group == 1 and smallest_first else j
            oid = ids[k]
            if oid < 0:
                continue
            order = book.orders[oid]
            verdict = _eligible(t, order, group, s, bar, acc)
            if verdict == _ARMED_HERE:
                armed_here = True
            if verdict != _GO:
                continue
            a = order.asset
            price = _reference_price(order, phase, market_at_open, s.close_trigger, bar, a)
            if np.isnan(price):
                continue
            # An order visited for good is marked in place, its id flipped to ``~id``
            # (negative), and restored when the list is compacted: no per-call array.
            ids[k] = ~oid
            fills, qty, fill_price, cost, reason, capped = _fill_one(
                t, phase, market_at_open, oid, price, s, bar, book, acc, marks, full
            )
            if fills and _book_fill(
                t, oid, qty, price, fill_price, cost, reason, capped, s, book, acc, marks, full
            ):
                armed_here = True


@kernel
def _visiting_order(
    phase: int, ids: np.ndarray, n_ids: int, bar: Bar, orders: np.ndarray
) -> np.ndarray:
    """Positions of ``ids`` in ascending order of value, so the last (largest) entry is the
    one a cash shortfall trims."""
    size = np.empty(n_ids)
    for k in range(n_ids):
        order = orders[ids[k]]
        # Sized at the price this phase fills at: the open, or the close in same-bar mode.
        at = bar.open[order.asset] if phase == PHASE_OPEN else bar.close[order.asset]
        size[k] = abs(order.quantity - order.filled) * at
    visit = np.empty(n_ids, dtype=np.int64)
    stable_order(size, n_ids, visit)
    return visit


@folded
def _eligible(t: int, order: Record, group: int, s: Settings, bar: Bar, acc: Account) -> int:
    """Whether ``order`` is visited in ``group`` on this bar (``_GO``), waits (``_SKIP``), or
    is a bracket leg armed on this bar, which only group 2 may fill (``_ARMED_HERE``)."""
    if order.status != OPEN and order.status != PARTIALLY_FILLED:
        return _SKIP
    if group == 2:
        if order.active_bar != t:
            return _SKIP
    elif order.active_bar == t and order.parent >= 0:
        return _ARMED_HERE
    asset = order.asset
    remaining = order.quantity - order.filled
    pos = acc.assets[A_POSITION, asset]
    reduces = pos != 0.0 and (remaining > 0.0) != (pos > 0.0)
    if group < 2 and s.execution_order != EXEC_AS_SUBMITTED and (group == 0) != reduces:
        return _SKIP
    if np.isnan(bar.close[asset]):
        return _SKIP  # no bar for this asset: its orders wait
    return _GO


# ``_fill_one``'s answer when the order does not fill now.
_NO_FILL = (False, 0.0, 0.0, 0.0, 0, False)


@folded
def _fill_one(
    t: int,
    phase: int,
    market_at_open: bool,
    oid: int,
    price: float,
    s: Settings,
    bar: Bar,
    book: Book,
    acc: Account,
    marks: np.ndarray,
    full: Full,
) -> tuple[bool, float, float, float, int, bool]:
    """Take one order that meets ``price`` on this bar through caps, costs and checks: what of
    it fills, ``(fills, qty, fill_price, cost, reason, capped)`` for ``_book_fill``
    (``_NO_FILL`` when nothing does now). Folded into ``_fill_groups`` (its one caller): a
    call would copy the settings, bar, book and account records per order. The booking is
    folded there too, beside it, not into it: numba copies a folded function's code with its
    whole scope per block, so one large body costs a first run more than two halves."""
    order = book.orders[oid]
    asset = order.asset
    pending = acc.assets[A_PENDING]
    pos = acc.assets[A_POSITION, asset]
    remaining = order.quantity - order.filled
    resizes = full is not None and s.fill_sizing != SIZE_AT_DECISION and order.filled == 0.0
    if order.filled == 0.0 and np.isinf(order.target_value):
        if full is None:
            raise AssertionError(_NOT_PLAIN)
        remaining = _resolve_all_in(t, oid, price, pos, remaining, s, bar, book, acc, marks)
        if remaining == 0.0:
            return _NO_FILL
    elif resizes and not np.isnan(order.target_value):
        value = order.target_value
        if s.fill_equity and not np.isnan(order.target_weight):
            value = order.target_weight * acc.scalars[S_FILL_EQUITY]
        remaining = _size_at_fill(t, order, value, price, pos, remaining, s.fill_sizing, pending)
        if remaining == 0.0:
            return _NO_FILL
    reason = order.reason
    sibling = order.oco
    if full is None and (sibling >= 0 or order.parent >= 0):
        raise AssertionError(_NOT_PLAIN)
    if full is not None and sibling >= 0:
        reason = _oco_race(t, order, book.orders[sibling], phase, market_at_open, s, bar, pending)
        if reason < 0:
            return _NO_FILL
    qty, capped = _participation(asset, remaining, s, bar, acc)
    if qty == 0.0:
        return _NO_FILL  # no volume left for it on this bar: it waits for a later one
    if s.cash_account and qty < 0.0:
        # A cash account can only sell what it holds.
        if pos + qty < -_QTY_RTOL * max(abs(qty), 1.0):
            end_order(order, REJECTED, R_SHORT_NOT_ALLOWED, t, pending)
            if order.parent < 0:
                end_children(book.orders, oid, book.counts[C_ORDERS], t, pending)
            return _NO_FILL
        qty = -pos if pos + qty < 0.0 else qty

    grows = abs(pos + qty) > abs(pos)
    kind = order.order_type
    used = acc.assets[A_VOLUME_USED, asset]
    fill_price = price  # plain fills: no asset has a slippage model
    if full is not None:
        fill_price = slipped(acc.slippage[asset], asset, price, qty, kind, bar, used)
    if np.isnan(fill_price):
        return _NO_FILL  # the model cannot price this bar (e.g. no volume): the order waits
    if s.clamp_to_bar:
        # Slippage cannot buy above the bar's high nor sell below its low.
        fill_price = min(max(fill_price, bar.low[asset]), bar.high[asset])
    rejected = 0
    if full is not None and marks[M_LIMITS] != 0.0 and grows:
        rejected = broken_limit(acc, marks, asset, pos, qty, fill_price)
    cost = 0.0
    if not rejected:
        table = acc.commission[asset]
        cost = fee(table, asset, abs(qty), fill_price, acc.scalars[S_MONTH_VOLUME], full)
        checked = s.cash_policy != CASH_ALLOW  # Zipline's unchecked cash: no check at all
        # A buy the cash pays for (the common case) needs no call to ``cash_check``.
        buys_on_cash = s.cash_account and qty > 0.0 and checked
        if buys_on_cash and qty * fill_price + cost > acc.scalars[S_CASH]:
            qty, fill_price, cost, scaled = cash_check(
                asset, qty, price, fill_price, cost, kind, s, bar, acc, full
            )
            rejected = R_INSUFFICIENT_CASH if qty == 0.0 else 0
            reason = R_SCALED_DOWN if scaled else reason
        elif full is not None and not s.cash_account and abs(pos + qty) > abs(pos) and checked:
            qty, scaled = margin_check(asset, pos, qty, fill_price, s, acc, marks)
            rejected = R_INSUFFICIENT_MARGIN if qty == 0.0 else 0
            if scaled and qty != 0.0:
                cost = fee(table, asset, abs(qty), fill_price, acc.scalars[S_MONTH_VOLUME], full)
                reason = R_SCALED_DOWN_MARGIN
    if rejected:
        end_order(order, REJECTED, rejected, t, pending)
        end_children(book.orders, oid, book.counts[C_ORDERS], t, pending)
        return _NO_FILL
    return True, qty, fill_price, cost, reason, capped


@leaf
def _size_at_fill(
    t: int,
    order: Record,
    value: float,
    price: float,
    pos: float,
    remaining: float,
    rounding: int,
    pending: np.ndarray,
) -> float:
    """A target order of ``value`` sized again at this bar's price instead of the decision
    close, with the rounding rule decision-time sizing uses; 0.0 when the target is already
    met (the order is cancelled) or would now need the other side."""
    target = shares_for_value(value, price, rounding)
    resized = order_toward(target, pos, rounding)
    if resized == 0.0 or (resized > 0.0) != (remaining > 0.0):
        end_order(order, CANCELLED, R_TARGET_MET, t, pending)
        return 0.0
    if order.order_type == MARKET:
        pending[order.asset] += resized - remaining
    order.quantity = resized
    return resized


@leaf
def _resolve_all_in(
    t: int,
    oid: int,
    price: float,
    pos: float,
    remaining: float,
    s: Settings,
    bar: Bar,
    book: Book,
    acc: Account,
    marks: np.ndarray,
) -> float:
    """An all-in order (``target_value`` of +-inf) takes its size now, at its first fill: the
    largest quantity the account pays for at this price, costs included
    (``accounts.all_in_quantity``); the quantity it was submitted with was an estimate at the
    decision close. Returns the signed quantity, or 0.0 when not even the smallest fill is
    affordable (the order is rejected, as a buy the cash cannot pay for)."""
    order = book.orders[oid]
    asset = order.asset
    pending = acc.assets[A_PENDING]
    buy = order.target_value > 0.0
    qty = all_in_quantity(asset, buy, pos, price, order.order_type, s, bar, acc, marks)
    if not qty >= MIN_SCALED_QTY:
        reason = R_INSUFFICIENT_CASH if s.cash_account else R_INSUFFICIENT_MARGIN
        end_order(order, REJECTED, reason, t, pending)
        end_children(book.orders, oid, book.counts[C_ORDERS], t, pending)
        return 0.0
    signed = qty if buy else -qty
    if order.order_type == MARKET:
        pending[asset] += signed - remaining
    order.quantity = signed
    return float(signed)


@leaf
def _oco_race(
    t: int,
    order: Record,
    other: Record,
    phase: int,
    market_at_open: bool,
    s: Settings,
    bar: Bar,
    pending: np.ndarray,
) -> int:
    """When the bar also touched the other leg of a bracket, which came first is unknown: the
    setting decides, pessimistic (stop first) by default, as backtesting.py does. Returns the
    fill's reason, or -1 when the other leg wins (this one is cancelled)."""
    reason: int = order.reason
    if other.status != OPEN and other.status != PARTIALLY_FILLED:
        return reason
    a = order.asset
    other_price = _reference_price(other, phase, market_at_open, s.close_trigger, bar, a)
    if np.isnan(other_price):
        return reason
    stop_first = s.intrabar_priority == PRIORITY_STOP
    both = R_BOTH_STOP_FIRST if stop_first else R_BOTH_LIMIT_FIRST
    mine_is_stop = order.order_type != LIMIT
    if mine_is_stop != stop_first:
        # The other leg wins: it fills when the loop reaches it.
        end_order(order, CANCELLED, R_OCO, t, pending)
        other.reason = both
        return -1
    return both


@folded
def _participation(
    asset: int, remaining: float, s: Settings, bar: Bar, acc: Account
) -> tuple[float, bool]:
    """``(qty, capped)``: with ``max_participation`` > 0, fills on an asset share at most that
    fraction of its bar volume (what the bar's volume has given so far is in the volume-used
    row, shared by every step of the bar); 0.0 when no volume is left (a zero-volume bar fills
    nothing)."""
    if not s.max_participation > 0.0:
        return remaining, False
    room = s.max_participation * bar.volume[asset] - acc.assets[A_VOLUME_USED, asset]
    if not s.fractional:
        room = np.floor(room + 1e-9)
    if room <= 0.0 or np.isnan(room):
        return 0.0, False
    if abs(remaining) > room:
        return (room if remaining > 0.0 else -room), True
    return remaining, False


@folded
def _book_fill(
    t: int,
    oid: int,
    qty: float,
    price: float,
    fill_price: float,
    cost: float,
    reason: int,
    capped: bool,
    s: Settings,
    book: Book,
    acc: Account,
    marks: np.ndarray,
    full: Full,
) -> bool:
    """Book a fill of ``qty`` at ``fill_price``: position, cash, volumes, the order's average
    price and status, its bracket legs and OCO sibling, and the fill record. Returns whether
    it armed a bracket leg."""
    orders = book.orders
    order = orders[oid]
    asset = order.asset
    pos = acc.assets[A_POSITION, asset]
    pending = acc.assets[A_PENDING]
    if marks[M_TRACKS] != 0.0:
        track_fill(asset, pos, qty, fill_price, cost, acc, marks)
    book_position(acc, asset, pos + qty)
    acc.scalars[S_CASH] -= qty * fill_price + cost
    acc.scalars[S_MONTH_VOLUME] += abs(qty)
    if s.max_participation > 0.0:
        acc.assets[A_VOLUME_USED, asset] += abs(qty)
    if order.order_type == MARKET:
        pending[asset] -= qty
    prev_filled = order.filled
    new_filled = prev_filled + qty
    if prev_filled == 0.0:
        order.avg_price = fill_price
    else:
        order.avg_price = (order.avg_price * abs(prev_filled) + fill_price * abs(qty)) / abs(
            new_filled
        )
    order.filled = new_filled
    order.commission += cost
    order.end_bar = t
    if capped and reason != R_SCALED_DOWN:
        if s.keep_remainder:
            order.status = PARTIALLY_FILLED
        else:
            end_order(order, CANCELLED, R_VOLUME_REMAINDER, t, pending)
    else:
        # Done after this fill: what a scale-down for cash cut is not left working.
        end_order(order, FILLED, reason, t, pending)
    armed = False
    sibling = order.oco
    if full is None:
        # Plain fills have no OCO siblings (``_fill_one`` checked) nor bracket legs.
        if oid + 1 < book.counts[C_ORDERS] and orders[oid + 1].parent == oid:
            raise AssertionError(_NOT_PLAIN)
        sibling = -1
    else:
        armed = order.filled != 0.0 and activate_children(orders, oid, book.counts[C_ORDERS], t)
    if sibling >= 0 and (
        orders[sibling].status == OPEN or orders[sibling].status == PARTIALLY_FILLED
    ):
        end_order(orders[sibling], CANCELLED, R_OCO, t, pending)
    rec = book.fills[book.counts[C_FILLS]]
    rec.bar = t
    rec.asset = asset
    rec.order_id = oid
    rec.quantity = qty
    rec.price = fill_price
    rec.commission = cost
    rec.slippage = abs(qty) * abs(fill_price - price)
    rec.origin = order.origin
    book.counts[C_FILLS] += 1
    return armed


@folded
def _expire_and_compact(
    t: int,
    phase: int,
    s: Settings,
    bar: Bar,
    book: Book,
    acc: Account,
    ids: np.ndarray,
    n_ids: int,
) -> int:
    """After the fills: DAY orders that had their bar expire, trailing stops that did not
    fill move their reference, and ``ids`` keeps the orders still working (or waiting);
    returns how many."""
    pending = acc.assets[A_PENDING]
    n_kept = 0
    for k in range(n_ids):
        oid = ids[k]
        if oid < 0:
            oid = ~oid
        order = book.orders[oid]
        status = order.status
        if status in (OPEN, PARTIALLY_FILLED):
            if phase == PHASE_OPEN and order.tif == DAY and order.submit_bar < t:
                # A day order had its one bar; what is left of it expires.
                end_order(order, EXPIRED, R_DAY_EXPIRED, t, pending)
                end_children(book.orders, oid, book.counts[C_ORDERS], t, pending)
                continue
            if phase == PHASE_OPEN and order.order_type == TRAILING_STOP:
                a = order.asset
                _update_trail(order, bar.high[a], bar.low[a], bar.close[a], s.trail_basis)
        elif status != INACTIVE:
            continue
        ids[n_kept] = oid
        n_kept += 1
    return n_kept
