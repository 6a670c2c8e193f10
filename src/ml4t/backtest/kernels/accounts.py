"""Account rules as array code, written once for both drivers: what a fill may cost and hold.

- cash accounts: a buy must be paid for (``cash_check``: scale the order down to what the cash
  buys, or reject it);
- margin accounts: equity after a fill that grows a position must cover ``initial_margin`` of
  the gross exposure (``margin_check``); below ``maintenance_margin`` at a close, positions are
  closed largest first (``margin_call``);
- the largest quantity that still fits either rule (``largest_fitting_quantity``), used by both
  checks and by all-in orders (``all_in_quantity``);
- equity marked at a fill step's prices (``equity_at_prices``: ``sizing_equity="fill"``);
- portfolio limits on fills that grow a position (``broken_limit``);
- marks, borrow fees on shorts and interest on cash (``mark_to_market``, ``accrue_financing``).

Fills of one step change equity and exposure as they go; ``exposure_at_marks`` measures them at
the last marks once per step, and the step keeps them current (the ``M_*`` slots).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numba.cpython.unsafe import numbers as numba_numbers

from ..execution.commission import affordable_quantity
from .book import add_order
from .costs import fee, slipped
from .jit import counted, folded, leaf
from .records import (
    CASH_REJECT,
    MARKET,
    R_MAX_GROSS_EXPOSURE,
    R_MAX_NET_EXPOSURE,
    R_MAX_POSITION_WEIGHT,
    R_MAX_POSITIONS,
)
from .state import (
    A_BORROW_RATE,
    A_LAST_PRICE,
    A_PENDING,
    A_POSITION,
    A_VOLUME_USED,
    B_HELD,
    C_OPEN,
    C_ORDERS,
    FULL_FILLS,
    REC_CASH,
    REC_GROSS,
    REC_POSITIONS_VALUE,
    S_CASH,
    S_LIMITS,
    S_MONTH_VOLUME,
    Account,
    Bar,
    Book,
    Full,
    Settings,
)

# A buy the cash scales down below this many shares is rejected rather than filled as dust
# (VectorBT's default min_size): a 1e-13 share position would count as a position held.
MIN_SCALED_QTY: Final = 1e-8

# Equity, gross and net exposure at the last marks and the number of positions held, kept
# current through the fills of one step; and whether they are tracked / limits are checked.
M_EQUITY: Final = 0
M_GROSS: Final = 1
M_NET: Final = 2
M_HELD: Final = 3
M_TRACKS: Final = 4
M_LIMITS: Final = 5
M_WIDTH: Final = 6


# LLVM's count of trailing zero bits, as numba's intrinsic (typed loosely for Python: it is
# called from kernels only).
trailing_zeros: Any = numba_numbers.trailing_zeros


@folded
def bit_of(asset: int) -> tuple[int, np.uint64]:
    """Where ``asset`` is in a row of bits (``state.B_*``): its word, and the mask of its bit."""
    return asset >> 6, np.uint64(1) << np.uint64(asset & 63)


@folded
def set_bits(bits: np.ndarray, out: np.ndarray) -> int:
    """Write the assets whose bits are set in the row ``bits`` (``state.B_*``) to ``out``, in
    asset order; returns how many."""
    n = 0
    for w in range(bits.shape[0]):
        word = bits[w]
        while word:
            out[n] = 64 * w + trailing_zeros(word)
            word &= word - np.uint64(1)  # the next set bit
            n += 1
    return n


@folded
def book_position(acc: Account, asset: int, quantity: float) -> None:
    """Set ``asset``'s position to ``quantity``, and its ``B_HELD`` bit: the one place a
    position changes (``step`` books each fill through it)."""
    acc.assets[A_POSITION, asset] = quantity
    word, bit = bit_of(asset)
    if quantity != 0.0:
        acc.bits[B_HELD, word] |= bit
    else:
        acc.bits[B_HELD, word] &= ~bit


@leaf
def held_sums(acc: Account, prices: np.ndarray, start: float) -> tuple[float, float, float, int]:
    """Over the positions held, in asset order, each valued at ``prices`` (an asset without
    one at its last mark): ``(start + values, values, gross, count)``, each sum taken one
    asset after the other, so every sum over positions gives the same bits.

    Only the held assets (``B_HELD``): adding the 0.0 of a flat asset changes no sum (a sum
    from +0.0 is never -0.0), and on a wide universe with few positions those additions, one
    after the other, were most of a bar's mark. A ``leaf``, typed once for its callers (the
    mark, the fill step's exposure, the equity at fill prices): folded into each, it cost a
    first run about half a second more."""
    total, values, gross, count = start, 0.0, 0.0, 0
    last, positions, held = acc.assets[A_LAST_PRICE], acc.assets[A_POSITION], acc.bits[B_HELD]
    for w in range(held.shape[0]):
        word = held[w]
        while word:
            i = 64 * w + trailing_zeros(word)
            word &= word - np.uint64(1)  # the next set bit: the next asset held
            p = prices[i]
            v = positions[i] * (last[i] if np.isnan(p) else p)
            total += v
            values += v
            gross += abs(v)
            count += 1
    return total, values, gross, count


@folded
def exposure_at_marks(s: Settings, acc: Account, marks: np.ndarray) -> None:
    """Fill ``marks`` (``M_*``) from the account at its last marks."""
    checks_limits = False
    for i in range(4):
        checks_limits = checks_limits or not np.isnan(acc.scalars[S_LIMITS + i])
    tracks = not s.cash_account or checks_limits
    equity = acc.scalars[S_CASH]
    gross = 0.0
    net = 0.0
    n_held = 0
    if tracks:
        equity, net, gross, n_held = held_sums(acc, acc.assets[A_LAST_PRICE], equity)
    marks[M_EQUITY] = equity
    marks[M_GROSS] = gross
    marks[M_NET] = net
    marks[M_HELD] = n_held
    marks[M_TRACKS] = 1.0 if tracks else 0.0
    marks[M_LIMITS] = 1.0 if checks_limits else 0.0


@folded
def track_fill(
    asset: int, pos: float, qty: float, fill_price: float, cost: float, acc: Account, m: np.ndarray
) -> None:
    """Move ``marks`` by a fill of ``qty`` at ``fill_price`` (the asset marked at its mark)."""
    mark = acc.assets[A_LAST_PRICE, asset]
    mark = mark if not np.isnan(mark) else fill_price
    m[M_EQUITY] += qty * (mark - fill_price) - cost
    m[M_GROSS] += (abs(pos + qty) - abs(pos)) * mark
    m[M_NET] += qty * mark
    if pos == 0.0:
        m[M_HELD] += 1.0
    elif pos + qty == 0.0:
        m[M_HELD] -= 1.0


@leaf
def broken_limit(
    acc: Account, marks: np.ndarray, asset: int, pos: float, qty: float, price: float
) -> int:
    """The portfolio rule a fill growing a position would break (a reason code), or 0.

    Exposures are measured after the fill, with this asset at the fill price and the others at
    their marks; a hair of tolerance keeps an order sized exactly at a cap inside it."""
    mark = acc.assets[A_LAST_PRICE, asset]
    mark = mark if not np.isnan(mark) else price
    equity = marks[M_EQUITY] + pos * (price - mark)
    gross = marks[M_GROSS] + abs(pos) * (price - mark)
    net = marks[M_NET] + pos * (price - mark)
    max_positions = acc.scalars[S_LIMITS]
    max_weight = acc.scalars[S_LIMITS + 1]
    max_gross = acc.scalars[S_LIMITS + 2]
    max_net = acc.scalars[S_LIMITS + 3]
    slack = 1.0 + 1e-9
    new_pos = pos + qty
    if not np.isnan(max_positions) and pos == 0.0 and marks[M_HELD] >= max_positions:
        return R_MAX_POSITIONS
    if not np.isnan(max_weight) and abs(new_pos) * price > max_weight * equity * slack:
        return R_MAX_POSITION_WEIGHT
    if not np.isnan(max_gross):
        new_gross = gross + (abs(new_pos) - abs(pos)) * price
        if new_gross > max_gross * equity * slack:
            return R_MAX_GROSS_EXPOSURE
    if not np.isnan(max_net):
        new_net = net + qty * price
        if abs(new_net) > max_net * equity * slack and abs(new_net) > abs(net):
            return R_MAX_NET_EXPOSURE
    return 0


@leaf
def margin_fits(
    table: np.ndarray,
    asset: int,
    size: float,
    equity_now: float,
    gross_now: float,
    pos: float,
    buy: bool,
    price: float,
    initial_margin: float,
    month: float,
    full: Full,
) -> bool:
    """Whether filling ``size`` leaves equity >= initial_margin x gross exposure. Paying cash
    for shares is this check with a 100% margin and nothing held."""
    new_pos = pos + size if buy else pos - size
    equity = equity_now - fee(table, asset, size, price, month, full)
    gross = gross_now + (abs(new_pos) - abs(pos)) * price
    return equity >= initial_margin * gross


@leaf
def largest_fitting_quantity(
    table: np.ndarray,
    asset: int,
    lo: float,
    hi: float,
    equity_now: float,
    gross_now: float,
    pos: float,
    buy: bool,
    price: float,
    initial_margin: float,
    month: float,
    fractional: bool,
    full: Full,
) -> float:
    """The largest size in [lo, hi] that ``margin_fits`` (bisection), or 0.

    With ``initial_margin`` 1 and nothing held or owed this is the largest buy ``equity_now``
    in cash pays for, commission included: ``affordable`` takes it for fee models written in
    Python, and the closed form of ``execution.commission.affordable_quantity`` for built-in
    ones (the same answer, found in fewer fee evaluations)."""
    if not margin_fits(
        table, asset, lo, equity_now, gross_now, pos, buy, price, initial_margin, month, full
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
        if margin_fits(table, asset, mid, equity_now, gross_now, pos, buy, price,
                       initial_margin, month, full):  # fmt: skip
            lo = mid
        else:
            hi = mid
    return lo


@folded
def affordable(
    table: np.ndarray, asset: int, cash: float, price: float, month: float, fractional: bool,
    full: Full,
) -> float:  # fmt: skip
    """Largest buy whose cost and commission fit ``cash``: the closed form of a built-in
    model, a search for a model written in Python (never in the plain fill step)."""
    if full is None or table[0] >= 0.0:
        return float(affordable_quantity(table, cash, price, month, fractional))
    hi = cash / price
    hi = np.floor(hi) + 1.0 if not fractional else hi
    return largest_fitting_quantity(
        table, asset, 0.0, hi, cash, 0.0, 0.0, True, price, 1.0, month, fractional, full
    )


@leaf
def all_in_quantity(
    asset: int,
    buy: bool,
    pos: float,
    price: float,
    kind: int,
    s: Settings,
    bar: Bar,
    acc: Account,
    marks: np.ndarray,
) -> float:
    """The size of an all-in order (VectorBT's ``size=np.inf``, backtesting.py's ``buy()``)
    filling at ``price`` before costs: the largest quantity the account pays for at the
    slipped price with its commission, whole shares unless fractional (0.0: none).

    A cash account buys what its cash pays for (``affordable``, the quantity a scale-down
    finds); a margin account, either side, what keeps equity at its initial margin of the
    gross exposure (``largest_fitting_quantity``, a reversal's closing part included). The
    slipped price is the one of the largest quantity conceivable, so a model whose slippage
    grows with size can only price the fill lower, and the fill still fits."""
    table = acc.commission[asset]
    month = acc.scalars[S_MONTH_VOLUME]
    mark = acc.assets[A_LAST_PRICE, asset]
    if s.cash_account:
        cash = acc.scalars[S_CASH]
        if not buy or not cash > 0.0:
            return 0.0
        hi = cash / price
        fill_price = _all_in_price(asset, hi, price, kind, s, bar, acc)
        return affordable(table, asset, cash, fill_price, month, s.fractional, FULL_FILLS)
    equity = marks[M_EQUITY]
    im = s.initial_margin
    # Equity bounds the exposure: hi shares past the closing part cannot fit at this margin.
    hi = abs(pos) + max(equity, 0.0) / (im * price) + 1.0
    hi = np.floor(hi) if not s.fractional else hi
    fill_price = _all_in_price(asset, hi if buy else -hi, price, kind, s, bar, acc)
    mark = mark if not np.isnan(mark) else fill_price
    equity_now = equity + pos * (fill_price - mark)
    gross_now = marks[M_GROSS] + abs(pos) * (fill_price - mark)
    lo = abs(pos) if pos != 0.0 and (pos > 0.0) != buy else 0.0
    return largest_fitting_quantity(
        table, asset, lo, hi, equity_now, gross_now, pos, buy, fill_price, im, month,
        s.fractional, FULL_FILLS,
    )  # fmt: skip


@folded
def _all_in_price(
    asset: int, qty: float, price: float, kind: int, s: Settings, bar: Bar, acc: Account
) -> float:
    """The fill price of ``qty`` after slippage (and the clamp to the bar), as the fill step
    prices it."""
    used = acc.assets[A_VOLUME_USED, asset]
    fill_price = slipped(acc.slippage[asset], asset, price, qty, kind, bar, used)
    if s.clamp_to_bar:
        fill_price = min(max(fill_price, bar.low[asset]), bar.high[asset])
    return fill_price


@folded
def equity_at_prices(prices: np.ndarray, acc: Account) -> float:
    """Cash plus positions marked at ``prices`` (an asset without one at its last mark),
    summed as ``mark_to_market`` sums them: at the decision close's prices it is the equity
    of that mark to the last bit."""
    _, value, _, _ = held_sums(acc, prices, 0.0)
    return float(acc.scalars[S_CASH]) + value


@leaf
def cash_check(
    asset: int,
    qty: float,
    price: float,
    fill_price: float,
    cost: float,
    kind: int,
    s: Settings,
    bar: Bar,
    acc: Account,
    full: Full,
) -> tuple[float, float, float, bool]:
    """A buy in a cash account: ``(qty, fill_price, cost, scaled)`` it may fill, scaled down to
    what the cash pays for (or 0.0: rejected) when it costs more than the cash. With the plain
    fill step (``full`` None) no asset has slippage to price again."""
    cash = acc.scalars[S_CASH]
    if not qty * fill_price + cost > cash:
        return qty, fill_price, cost, False
    table = acc.commission[asset]
    month = acc.scalars[S_MONTH_VOLUME]
    if s.cash_policy == CASH_REJECT or (
        table[0] >= 0.0 and not (cash >= MIN_SCALED_QTY * fill_price)
    ):
        # A compiled fee is never negative, so cash / price bounds what is affordable: below
        # the smallest fill, there is nothing to search for.
        best = 0.0
    else:
        best = affordable(table, asset, cash, fill_price, month, s.fractional, full)
    if best < MIN_SCALED_QTY:
        return 0.0, fill_price, cost, True
    cost = fee(table, asset, best, fill_price, month, full)
    if full is None:
        return best, fill_price, cost, True
    # A smaller order may pay less slippage per share (volume-share models); take the better
    # price only if the fee at it still fits the cash.
    better = slipped(
        acc.slippage[asset], asset, price, best, kind, bar, acc.assets[A_VOLUME_USED, asset]
    )
    if better < fill_price:
        better_cost = fee(table, asset, best, better, month, full)
        if best * better + better_cost <= cash:
            return best, better, better_cost, True
    return best, fill_price, cost, True


@leaf
def margin_check(
    asset: int, pos: float, qty: float, fill_price: float, s: Settings, acc: Account,
    marks: np.ndarray,
) -> tuple[float, bool]:  # fmt: skip
    """A fill growing a position in a margin account: ``(qty, scaled)``, the signed quantity
    that meets the initial margin on what the fill would hold (``qty`` itself when it fits;
    scaled down unless the policy rejects; 0.0: rejected). Other assets are valued at their
    marks, this one at the fill price; the reducing part of a reversal always fits."""
    table = acc.commission[asset]
    month = acc.scalars[S_MONTH_VOLUME]
    mark = acc.assets[A_LAST_PRICE, asset]
    mark = mark if not np.isnan(mark) else fill_price
    equity_now = marks[M_EQUITY] + pos * (fill_price - mark)
    gross_now = marks[M_GROSS] + abs(pos) * (fill_price - mark)
    lo = abs(pos) if (pos > 0.0) != (qty > 0.0) and pos != 0.0 else 0.0
    im = s.initial_margin
    if margin_fits(table, asset, abs(qty), equity_now, gross_now, pos, qty > 0.0, fill_price, im,
                   month, FULL_FILLS):  # fmt: skip
        return qty, False
    best = 0.0
    if s.cash_policy != CASH_REJECT:
        best = largest_fitting_quantity(
            table, asset, lo, abs(qty), equity_now, gross_now, pos, qty > 0.0, fill_price, im,
            month, s.fractional, FULL_FILLS,
        )  # fmt: skip
    if best <= 0.0 or (lo > 0.0 and best <= lo):
        if lo > 0.0 and s.cash_policy != CASH_REJECT:
            best = lo
        else:
            return 0.0, True
    return (best if qty > 0.0 else -best), True


@folded
def mark_to_market(t: int, closes: np.ndarray, acc: Account, rec: np.ndarray) -> float:
    """Take ``closes`` as the new marks (NaN keeps the last one), record bar ``t`` in ``rec``
    (``REC_*`` rows) and return equity."""
    last = acc.assets[A_LAST_PRICE]
    for i in range(closes.shape[0]):  # no sums here: the compiler takes several at a time
        c = closes[i]
        last[i] = last[i] if np.isnan(c) else c
    _, value, gross, _ = held_sums(acc, last, 0.0)
    rec[REC_CASH, t] = acc.scalars[S_CASH]
    rec[REC_POSITIONS_VALUE, t] = value
    rec[REC_GROSS, t] = gross
    return float(acc.scalars[S_CASH]) + value


@leaf
def accrue_financing(years: float, s: Settings, acc: Account) -> tuple[float, float]:
    """Charge borrow fees on shorts and interest on cash for ``years`` of holding.

    Shorts pay their asset's borrow rate a year on their value at the last marks; positive
    cash earns ``cash_rate``, negative cash (a margin loan) pays ``margin_rate``. Returns the
    borrow fee paid and the net interest received, both already applied to the cash.
    """
    if years <= 0.0:
        return 0.0, 0.0
    borrow = 0.0
    for i in range(acc.assets.shape[1]):
        q = acc.assets[A_POSITION, i]
        if q < 0.0:
            borrow += -q * acc.assets[A_LAST_PRICE, i] * acc.assets[A_BORROW_RATE, i] * years
    cash = acc.scalars[S_CASH]
    interest = cash * s.cash_rate * years if cash > 0.0 else cash * s.margin_rate * years
    acc.scalars[S_CASH] = cash - borrow + interest
    return borrow, interest


@leaf
def stable_order(keys: np.ndarray, n: int, out: np.ndarray) -> None:
    """``out[:n]``: the indices of ``keys[:n]`` in ascending order of key, ties in index order,
    NaN last (what a stable argsort gives). An insertion sort: the lists are short, and numba's
    mergesort costs a second of compile."""
    for i in range(n):
        key = keys[i]
        j = i
        while j > 0:
            other = keys[out[j - 1]]
            before = key < other or (np.isnan(other) and not np.isnan(key))
            if not before:
                break
            out[j] = out[j - 1]
            j -= 1
        out[j] = i


@folded
def margin_call(t: int, equity: float, gross: float, origin: int, s: Settings, book: Book,
                acc: Account) -> None:  # fmt: skip
    """Below maintenance margin (equity < maintenance x gross), close positions largest first
    until the rest meets it; each close is a market order with reason ``margin_call``. None
    with ``margin_calls=False``."""
    maintenance = s.maintenance_margin
    if not s.margin_calls or gross <= 0.0 or equity >= maintenance * gross:
        return
    _close_largest_first(t, equity, gross, origin, maintenance, book, acc)


@counted
def _close_largest_first(t: int, equity: float, gross: float, origin: int, maintenance: float,
                         book: Book, acc: Account) -> None:  # fmt: skip
    """``margin_call``'s closes, largest position first (it sorts, so it allocates)."""
    n = acc.assets.shape[1]
    values = np.zeros(n)
    for a in range(n):
        p = acc.assets[A_LAST_PRICE, a]
        values[a] = -abs(acc.assets[A_POSITION, a] * (0.0 if np.isnan(p) else p))
    order = np.empty(n, dtype=np.int64)
    stable_order(values, n, order)
    positions, pending = acc.assets[A_POSITION], acc.assets[A_PENDING]
    remaining = gross
    n_orders, n_open = int(book.counts[C_ORDERS]), int(book.counts[C_OPEN])
    for x in order:
        a = int(x)
        if values[a] == 0.0:
            break
        delta = -positions[a] - pending[a]
        if delta != 0.0:
            n_orders, n_open = add_order(
                book.orders, n_orders, book.open_ids, n_open, a, delta, t, origin, MARKET,
                np.nan, np.nan, np.nan, pending,
            )  # fmt: skip
        remaining += values[a]
        if equity > 0.0 and equity >= maintenance * remaining:
            break
    book.counts[C_ORDERS] = n_orders
    book.counts[C_OPEN] = n_open
