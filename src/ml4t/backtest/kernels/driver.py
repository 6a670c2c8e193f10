"""The compiled driver: the event driver's loop over bars, compiled, with decisions from arrays.

Each bar runs the phases ``Engine.run`` runs (``kernels.clock.open_phase``, the decisions,
``close_phase``): the same functions, so the two drivers give the same fills for the same
decisions. Only the decisions differ: here they are one of three rules over precomputed arrays,
written to make exactly the broker calls a strategy would make:

- signals: per asset in order, an entry signal against the position held reverses it (by
  default, as VectorBT's ``upon_opposite_entry="reverse"``); an exit signal closes a long (or
  a short exit a short) as ``close_position`` does; an entry signal on an asset with no
  position and no pending order orders ``size`` as ``order_target_value`` (or
  ``order_target_quantity`` for shares) does. A position rule's exit replaces the signals
  that would have filled on its bar (``signal_replaced``). A ``size`` of inf is an all-in
  order, as ``order_target_value(asset, +-inf)``.
- weights: on bars with any finite weight, ``rebalance`` to the row (NaN counts as 0).
- orders: each non-zero quantity is ``submit_order`` (a limit, stop or stop-limit when
  the price arrays give levels; +-inf is all-in).

The loop stops early when the order book or the fill log could overflow on the next bar and
returns that bar; the caller grows them and calls again from there (``room_for_bar`` is the
bound both drivers reserve).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import numpy as np

from .accounts import bit_of, trailing_zeros
from .book import H_BLOCK, H_STOPPED, add_order, reject_growing, withdraw
from .clock import close_phase, open_fixed, open_phase, open_plain, open_rules, open_steps
from .jit import counted, folded, leaf, released
from .records import (
    LIMIT,
    MARKET,
    O_CLOSE,
    O_ORDER,
    O_REBALANCE,
    O_TARGET,
    REJECTED,
    SIZE_AT_DECISION,
    STOP,
    STOP_LIMIT,
    FillTiming,
    codes,
)
from .sizing import all_in_estimate, shares_for_value, target_order
from .state import (
    A_LAST_PRICE,
    A_PENDING,
    A_POSITION,
    B_HELD,
    B_SCRATCH,
    C_FILLS,
    C_OPEN,
    C_ORDERS,
    RF_SCRATCH_QTY,
    RI_EXIT_ORDER,
    RI_SCRATCH_ASSETS,
    S_CASH,
    S_EQUITY,
    S_HALT,
    S_KEEP_EXTREMES,
    Account,
    Book,
    Full,
    Market,
    RuleState,
    Settings,
    bit_words,
    pack_bits,
)
from .targets import target_orders

TIMING_SAME_CLOSE = FillTiming.same_close

MODE_SIGNALS = 0
MODE_WEIGHTS = 1
MODE_ORDERS = 2


# The rows of ``signal_words``: the assets with an entry signal, and those with an exit signal.
SIGNAL_ENTRIES: Final = 0
SIGNAL_EXITS: Final = 1
SIGNAL_ROWS: Final = 2


class SizeTypeT(NamedTuple):
    """``run_signals``' ``size_type``: a fraction of equity, an amount of cash, or shares."""

    percent: int
    value: int
    shares: int


SizeType: Final = codes(SizeTypeT)
SIZE_PERCENT: Final = SizeType.percent
SIZE_VALUE: Final = SizeType.value
SIZE_SHARES: Final = SizeType.shares


class OppositeEntryT(NamedTuple):
    """``run_signals``' ``upon_opposite_entry``: what an entry signal against the position held
    does. ``reverse``: one order from the position to ``size`` on the other side (VectorBT's
    default, ``OppositeEntryMode.Reverse``); ``close``: close the position only; ``ignore``:
    nothing (an exit signal on the same bar still closes)."""

    reverse: int
    close: int
    ignore: int


OppositeEntry: Final = codes(OppositeEntryT)
OPPOSITE_REVERSE: Final = OppositeEntry.reverse
OPPOSITE_CLOSE: Final = OppositeEntry.close


class Decisions(NamedTuple):
    """The decisions of a compiled run: ``mode`` says which arrays hold them (the others are
    empty): entry and exit signals with a size, weights per rebalance bar, or quantities with
    optional limit and stop levels, all ``[bars, assets]``. Their first row is bar
    ``first_bar``: 0 for a run's arrays, the bar itself for one bar's row
    (``Broker.order_signals``). ``signal_words`` marks the assets with an entry signal and
    those with an exit signal on each row, as bits (``signal_words``; no rows for weights and
    quantities)."""

    mode: int
    entries: np.ndarray
    exits: np.ndarray
    short_entries: np.ndarray
    short_exits: np.ndarray
    size: float
    size_type: int
    weights: np.ndarray
    rebalance_bar: np.ndarray
    quantities: np.ndarray
    limit_prices: np.ndarray
    stop_prices: np.ndarray
    upon_opposite_entry: int
    first_bar: int
    signal_words: np.ndarray


@leaf
def room_for_bar(n_open: int, n_assets: int) -> tuple[int, int]:
    """Room a bar needs in the order book and in the fill log: every order a bar can add
    (decisions, rule exits, margin calls and a liquidation, one per asset each), and at most
    one fill per open order per step, three steps."""
    bound = n_open + 4 * n_assets
    return bound, 3 * bound


@folded
def _toward(
    a: int, target: float, origin: int, target_value: float, target_weight: float, t: int,
    s: Settings, book: Book, acc: Account,
) -> None:  # fmt: skip
    """``Broker``'s target orders: order the difference to ``target``, unless it is noise
    (an all-in order: ``target`` itself, ``sizing.target_order``); market orders still
    working the other way are withdrawn first. The order carries
    ``target_weight`` (a weight of equity, NaN for none) when ``sizing_equity="fill"``."""
    positions, pending = acc.assets[A_POSITION], acc.assets[A_PENDING]
    delta = target_order(target, positions[a] + pending[a], target_value, s.rounding)
    if delta == 0.0:
        return
    n_orders, n_open = book.counts[C_ORDERS], book.counts[C_OPEN]
    if pending[a] != 0.0 and (delta > 0.0) != (pending[a] > 0.0):
        withdraw(book.orders, n_orders, book.open_ids, n_open, a, t, pending)
        delta = target_order(target, positions[a], target_value, s.rounding)
        if delta == 0.0:
            return
    book.counts[C_ORDERS], book.counts[C_OPEN] = add_order(
        book.orders, n_orders, book.open_ids, n_open, a, delta, t, origin, MARKET, np.nan,
        np.nan, target_value, pending,
    )  # fmt: skip
    if s.fill_equity:
        book.orders[n_orders].target_weight = target_weight


@leaf
def broker_target(
    a: int, target: float, value: float, origin: int, target_value: float, target_weight: float,
    t: int, s: Settings, book: Book, acc: Account,
) -> int:  # fmt: skip
    """``Broker``'s target orders, one asset from Python, by this driver's rule (``_toward``):
    towards ``target`` shares or, when ``target`` is NaN, towards ``value`` at the asset's last
    mark (``sizing.shares_for_value``, as ``_entry``). Returns the new order's id, -1 when no
    order is needed. The book has room for one more order."""
    if np.isnan(target):
        target = shares_for_value(value, acc.assets[A_LAST_PRICE, a], s.rounding)
    first = book.counts[C_ORDERS]
    _toward(a, target, origin, target_value, target_weight, t, s, book, acc)
    return int(first) if book.counts[C_ORDERS] > first else -1


@leaf
def _signal_orders(
    t: int, d: Decisions, s: Settings, m: Market, book: Book, acc: Account, rs: RuleState
) -> None:
    """Per asset in order: an entry signal against the position held reverses it to ``size``
    on the other side (``upon_opposite_entry``: or closes it, or is ignored); an exit signal
    closes a long (a short exit a short), as ``close_position``; an entry signal on an asset
    with no position and no pending order orders ``size`` as ``order_target_value`` (or
    ``order_target_quantity`` for shares). Entries and reversals a position rule's exit
    replaces (``signal_replaced``) are dropped, as VectorBT's stop replaces them."""
    shorts = d.short_entries.shape[0] > 0
    positions, pending = acc.assets[A_POSITION], acc.assets[A_PENDING]
    r = t - d.first_bar
    # The assets with a signal, in order, from the row's bits: most assets on most bars have
    # none, and a test of each asset's bytes was a sixth of a wide universe's compiled run.
    # An exit signal alone acts only where ``held`` below (the position plus the market
    # orders working) is not 0, so only on an asset with a position or an open order: the
    # others' are not visited (their branches, which no CPU predicts on random signals, were
    # most of a fill-heavy run's decisions).
    entry_words, exit_words = d.signal_words[r, SIGNAL_ENTRIES], d.signal_words[r, SIGNAL_EXITS]
    _mark_busy(book, acc)
    busy = acc.bits[B_SCRATCH]
    for w in range(entry_words.shape[0]):
        word = entry_words[w] | (exit_words[w] & busy[w])
        while word:
            a = 64 * w + trailing_zeros(word)
            word &= word - np.uint64(1)  # the next set bit: the next asset with a signal
            if np.isnan(m.close[t, a]):
                continue  # its bit says it has a signal: no need to test for one
            entry, leave = d.entries[r, a], d.exits[r, a]
            short_entry = shorts and d.short_entries[r, a]
            short_leave = shorts and d.short_exits[r, a]
            go_long = entry and not leave
            leave_long = leave and not entry
            go_short = short_entry and not short_leave
            leave_short = short_leave and not short_entry
            if go_long and go_short:
                go_long = go_short = False
            held = positions[a] + pending[a]
            replaced = signal_replaced(a, t, s, book.orders, rs)
            # VectorBT (signals_to_size_nb) reads an opposite entry before the exits.
            opposite = (go_short and held > 0.0) or (go_long and held < 0.0)
            side = 1.0 if go_long else -1.0
            if opposite and d.upon_opposite_entry == OPPOSITE_REVERSE and not replaced:
                go, target, value, weight = _entry(a, side, d, s, acc)
                origin = O_TARGET
            elif (
                (leave_long and held > 0.0)
                or (leave_short and held < 0.0)
                or (opposite and d.upon_opposite_entry == OPPOSITE_CLOSE)
            ):
                go, target, value, weight = True, 0.0, np.nan, np.nan
                origin = O_CLOSE
            elif (
                (go_long or go_short) and positions[a] == 0.0 and pending[a] == 0.0 and not replaced
            ):
                go, target, value, weight = _entry(a, side, d, s, acc)
                origin = O_TARGET
            else:
                continue
            # One call site: ``_toward`` is folded in here once (a call would copy the records).
            if go:
                _toward(a, target, origin, value, weight, t, s, book, acc)


@folded
def _mark_busy(book: Book, acc: Account) -> None:
    """Set the account's scratch row of bits (``B_SCRATCH``) to the assets with a position
    (``B_HELD``) or an open order (any working market order among them)."""
    busy, held = acc.bits[B_SCRATCH], acc.bits[B_HELD]
    for w in range(busy.shape[0]):  # a loop: slice assignment needs reference counting
        busy[w] = held[w]
    for k in range(book.counts[C_OPEN]):
        word, bit = bit_of(book.orders[book.open_ids[k]].asset)
        busy[word] |= bit


@folded
def _entry(
    a: int, side: float, d: Decisions, s: Settings, acc: Account
) -> tuple[bool, float, float, float]:
    """The target order that takes asset ``a`` to ``size`` on ``side`` (+1 long, -1 short)
    from what it holds, as ``order_target_value`` (``order_target_quantity`` for shares) does:
    ``(go, target, value at the fill, weight)``, the last three ``_toward``'s; one order,
    through zero for a reversal. ``go`` is False for a percent of an equity <= 0."""
    if np.isinf(d.size):
        # All-in: Broker.order_target_value(asset, side * inf); sized at the fill.
        estimate = all_in_estimate(acc.scalars[S_CASH], acc.assets[A_LAST_PRICE, a], s.fractional)
        return True, side * estimate, side * np.inf, np.nan
    if d.size_type == SIZE_SHARES:
        return True, side * d.size, np.nan, np.nan
    equity = acc.scalars[S_EQUITY]
    if d.size_type == SIZE_PERCENT and not equity > 0.0:
        return False, 0.0, np.nan, np.nan  # as Broker: a percent of equity <= 0 flips the side
    # order_target_value(asset, value), with value = size * equity for percents.
    value = side * (d.size * equity if d.size_type == SIZE_PERCENT else d.size)
    target = shares_for_value(value, acc.assets[A_LAST_PRICE, a], s.rounding)
    value_at_fill = value if s.fill_sizing != SIZE_AT_DECISION else np.nan
    weight = side * d.size if d.size_type == SIZE_PERCENT else np.nan
    return True, target, value_at_fill, weight


@folded
def signal_replaced(a: int, t: int, s: Settings, orders: np.ndarray, rs: RuleState) -> bool:
    """Whether a position rule's exit replaces asset ``a``'s entry signal decided at bar
    ``t``: a rule fired on the bar the entry would fill on, which VectorBT
    (``simulate_from_signals_nb``: the stop is checked first and its exit replaces the bar's
    signals) gives to the stop alone. With ``same_close`` fills that is bar ``t`` itself. With
    fills on a later bar it is never: an entry decided at the close of a rule's bar fills on
    the next bar, as in VectorBT with signals shifted one bar and ``price=open``.

    Fired means the rule's exit order was placed on bar ``t``, whatever it filled: under a
    volume cap its first fill may be a part, or nothing, and what is left of it may fill,
    or be rejected, on later bars, which are not the rule's bar (a rule does not fire again
    while its exit is working). VectorBT, without volume caps, fills a stop whole on the bar
    it fires.

    (VectorBT also drops a shifted exit or reversal when the stop fires on the bar it would
    fill at the open: ``open_priority="rules"``, ``clock.rules_before_fills``.)"""
    if s.fill_timing != TIMING_SAME_CLOSE:
        return False
    oid = rs.ints[RI_EXIT_ORDER, a]
    return bool(oid >= 0 and orders[oid].submit_bar == t)


@leaf
def signals_replaced(
    t: int, s: Settings, orders: np.ndarray, rs: RuleState, out: np.ndarray
) -> None:
    """``signal_replaced`` of every asset, into ``out`` (``Broker.signals_replaced``)."""
    for a in range(out.shape[0]):
        out[a] = signal_replaced(a, t, s, orders, rs)


@leaf
def _weight_orders(
    t: int, d: Decisions, s: Settings, m: Market, book: Book, acc: Account, rs: RuleState
) -> None:
    """On a rebalance bar, ``Broker.rebalance`` to the row (nothing while equity <= 0)."""
    equity = acc.scalars[S_EQUITY]
    r = t - d.first_bar
    if not d.rebalance_bar[r] or not equity > 0.0:
        # Broker.rebalance places nothing while equity <= 0 (percents of it flip sides).
        return
    # The broker's batch targets, the same compiled function (``Broker.rebalance``).
    target_orders(
        t, d.weights[r], equity, s.rounding, not s.cash_account, False, False, O_REBALANCE,
        s.fill_sizing != SIZE_AT_DECISION, s.fill_equity, book.orders, book.open_ids,
        book.counts, acc.assets, rs.ints[RI_SCRATCH_ASSETS], rs.floats[RF_SCRATCH_QTY],
    )  # fmt: skip


@leaf
def _quantity_orders(
    t: int, d: Decisions, s: Settings, m: Market, book: Book, acc: Account, rs: RuleState
) -> None:
    """Each non-zero quantity is ``submit_order``: a limit, stop or stop-limit where the level
    arrays hold a level; +-inf is all-in (``submit_order(asset, math.inf)``)."""
    has_limit = d.limit_prices.shape[0] > 0
    has_stop = d.stop_prices.shape[0] > 0
    pending = acc.assets[A_PENDING]
    r = t - d.first_bar
    n_orders, n_open = book.counts[C_ORDERS], book.counts[C_OPEN]
    for a in range(d.quantities.shape[1]):
        q = d.quantities[r, a]
        if np.isnan(q) or q == 0.0:
            continue
        value = np.nan
        if np.isinf(q):
            value = q  # all-in: sized at the fill; submitted with what the cash buys now
            side = 1.0 if q > 0.0 else -1.0
            q = side * all_in_estimate(acc.scalars[S_CASH], acc.assets[A_LAST_PRICE, a],
                                       s.fractional)  # fmt: skip
        limit = d.limit_prices[r, a] if has_limit else np.nan
        stop = d.stop_prices[r, a] if has_stop else np.nan
        kind = MARKET
        if not np.isnan(limit) and not np.isnan(stop):
            kind = STOP_LIMIT
        elif not np.isnan(limit):
            kind = LIMIT
        elif not np.isnan(stop):
            kind = STOP
        n_orders, n_open = add_order(
            book.orders, n_orders, book.open_ids, n_open, a, q, t, O_ORDER, kind, limit, stop,
            value, pending,
        )  # fmt: skip
    book.counts[C_ORDERS], book.counts[C_OPEN] = n_orders, n_open


@folded
def _screened(
    t: int,
    d: Decisions,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    decisions: Any,
) -> None:
    """The ``decisions`` of bar ``t``; while a halt blocks entries, new orders that would grow
    a position are rejected (as ``Broker`` screens each order it submits)."""
    halt = acc.scalars[S_HALT:]
    if halt[H_STOPPED]:
        return
    first_new = book.counts[C_ORDERS]
    decisions(t, d, s, m, book, acc, rs)
    if halt[H_BLOCK] and book.counts[C_ORDERS] > first_new:
        _reject_new(t, first_new, int(halt[H_BLOCK]), book, acc)


@leaf
def bar_signals(
    t: int, entries: np.ndarray, exits: np.ndarray, short_entries: np.ndarray,
    short_exits: np.ndarray, size: float, size_type: int, upon_opposite_entry: int,
    no_floats: np.ndarray, no_bars: np.ndarray, words: np.ndarray, s: Settings, m: Market,
    book: Book, acc: Account, rs: RuleState,
) -> tuple[int, int, bool]:  # fmt: skip
    """``Broker.order_signals``: the orders of bar ``t``'s signals (rows over assets; the short
    rows empty for none), decided and screened as the compiled signal loops decide them (the
    same folded functions, on a ``Decisions`` of one row); ``words`` (``[2, words]``, a word
    per 64 assets) takes the row's bits.

    Returns ``(first, last, refused)``: the ids ``[first, last)`` of the orders placed, and
    whether the row has an entry while equity is <= 0 and ``size`` a percent of it (no such
    entry is placed). Without room in the book for one order per asset it does nothing and
    returns ``(-1, -1, False)``: the caller grows the book and calls again."""
    n = entries.shape[0]
    first = book.counts[C_ORDERS]
    if first + n > book.orders.shape[0] or book.counts[C_OPEN] + n > book.open_ids.shape[0]:
        return -1, -1, False
    shorts = (1, n) if short_entries.shape[0] else (0, 0)
    d = Decisions(
        MODE_SIGNALS, entries.reshape((1, n)), exits.reshape((1, n)),
        short_entries.reshape(shorts), short_exits.reshape(shorts), size, size_type, no_floats,
        no_bars, no_floats, no_floats, no_floats, upon_opposite_entry, t,
        words.reshape((1, SIGNAL_ROWS, words.shape[1])),
    )  # fmt: skip
    _pack_row(entries, exits, short_entries, short_exits, words)
    _screened(t, d, s, m, book, acc, rs, _signal_orders)
    refused = False
    if size_type == SIZE_PERCENT and not acc.scalars[S_EQUITY] > 0.0:
        for w in range(words.shape[1]):
            refused = refused or words[SIGNAL_ENTRIES, w] != 0
    return first, book.counts[C_ORDERS], refused


def signal_words(signals: tuple[np.ndarray, ...] | None, n_bars: int, n_assets: int) -> np.ndarray:
    """The assets with a signal on each bar, as bits (``uint64 [bars, 2, words]``): bit
    ``a % 64`` of word ``a // 64`` of row ``[t, SIGNAL_ENTRIES]`` is set when asset ``a`` has an
    entry signal (long or short) on bar ``t``, of row ``[t, SIGNAL_EXITS]`` when it has an exit
    signal. ``_signal_orders`` visits only those assets (an exit's only with a position or an
    open order); no rows without ``signals``.

    Example:
        >>> e = np.zeros((2, 70), dtype=bool); e[1, 3] = e[1, 65] = True
        >>> words = signal_words((e, e[::-1], e[:0], e[:0]), 2, 70)
        >>> words.shape, [int(x) for x in words[1, SIGNAL_ENTRIES]]
        ((2, 2, 2), [8, 2])
        >>> [int(x) for x in words[0, SIGNAL_EXITS]]  # the exits: e upside down
        [8, 2]
    """
    if not signals:
        return np.zeros((0, SIGNAL_ROWS, bit_words(n_assets)), dtype=np.uint64)
    entries, exits, short_entries, short_exits = signals
    if short_entries.size:
        entries, exits = entries | short_entries, exits | short_exits
    words = np.zeros((n_bars, SIGNAL_ROWS, bit_words(n_assets)), dtype=np.uint64)
    pack_bits(entries, words[:, SIGNAL_ENTRIES])
    pack_bits(exits, words[:, SIGNAL_EXITS])
    return words


@folded
def _pack_row(
    entries: np.ndarray,
    exits: np.ndarray,
    short_entries: np.ndarray,
    short_exits: np.ndarray,
    words: np.ndarray,
) -> None:
    """``signal_words`` for one bar's rows (``Broker.order_signals``), into ``words``
    (``[2, words]``)."""
    n = entries.shape[0]
    shorts = short_entries.shape[0] > 0
    for w in range(words.shape[1]):
        entry_word = np.uint64(0)
        exit_word = np.uint64(0)
        for k in range(min(64, n - 64 * w)):
            a = 64 * w + k
            entry = entries[a] or (shorts and short_entries[a])
            leave = exits[a] or (shorts and short_exits[a])
            entry_word |= np.uint64(entry) << np.uint64(k)
            exit_word |= np.uint64(leave) << np.uint64(k)
        words[SIGNAL_ENTRIES, w] = entry_word
        words[SIGNAL_EXITS, w] = exit_word


@counted
def _reject_new(t: int, first_new: int, reason: int, book: Book, acc: Account) -> None:
    """Reject the orders from ``first_new`` on that would grow a position (it makes their id
    list, so it is compiled with reference counting, unlike ``decide``)."""
    n_orders = book.counts[C_ORDERS]
    reject_growing(
        book.orders, n_orders, np.arange(first_new, n_orders), acc.assets[A_POSITION], t,
        REJECTED, reason, acc.assets[A_PENDING],
    )  # fmt: skip


@folded
def _loop(
    t0: int,
    s: Settings,
    m: Market,
    d: Decisions,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
    open_steps: Any,
    decisions: Any,
    screened: bool,
) -> int:
    """Run bars ``t0, t0 + 1, ...``; returns the next bar: the number of bars when the run is
    complete, or the bar that might not fit in the books (the caller grows them and calls
    again from it).

    ``open_steps`` (``clock.open_phase``, ``clock.open_rules``, or ``clock.open_fixed`` for a
    run without its optional steps), ``decisions`` (one of the three rules) and ``screened``
    (halts can block entries) are constants of each loop below, folded in when it compiles:
    numba compiles every kernel a loop reaches, and a loop that cannot reach the rules, margin
    calls, halts or the other decision rules does not compile them (a first run's compile)."""
    n_bars, n_assets = m.close.shape
    for t in range(t0, n_bars):
        orders_needed, fills_needed = room_for_bar(book.counts[C_OPEN], n_assets)
        if (
            book.counts[C_ORDERS] + orders_needed > book.orders.shape[0]
            or book.counts[C_OPEN] + orders_needed > book.open_ids.shape[0]
            or book.counts[C_FILLS] + fills_needed > book.fills.shape[0]
        ):
            return t
        open_steps(t, s, m, book, acc, rs, rec, full)
        if screened:
            _screened(t, d, s, m, book, acc, rs, decisions)
        else:
            decisions(t, d, s, m, book, acc, rs)
        close_phase(t, s, m, book, acc, rs, rec, False, full)
    return int(n_bars)


# One compiled loop per decision rule and open phase: every step of a bar, those of a plain
# run, or those of a run with position rules only (``clock.open_steps``). The arguments are
# those of ``_loop`` before ``open_steps``. Each compiles once per fill step (``full``,
# ``clock.fill_features``) it is called with.


@released
def signals_loop(
    t0: int, s: Settings, m: Market, d: Decisions, book: Book, acc: Account, rs: RuleState,
    rec: np.ndarray, full: Full,
) -> int:  # fmt: skip
    """``_loop`` deciding from signals."""
    return _loop(t0, s, m, d, book, acc, rs, rec, full, open_phase, _signal_orders, True)


@released
def signals_loop_plain(
    t0: int, s: Settings, m: Market, d: Decisions, book: Book, acc: Account, rs: RuleState,
    rec: np.ndarray, full: Full,
) -> int:  # fmt: skip
    """``_loop`` deciding from signals, for a plain run."""
    return _loop(t0, s, m, d, book, acc, rs, rec, full, open_fixed, _signal_orders, False)


@released
def signals_loop_rules(
    t0: int, s: Settings, m: Market, d: Decisions, book: Book, acc: Account, rs: RuleState,
    rec: np.ndarray, full: Full,
) -> int:  # fmt: skip
    """``_loop`` deciding from signals, for a run whose only optional steps are the position
    rules."""
    return _loop(t0, s, m, d, book, acc, rs, rec, full, open_rules, _signal_orders, False)


@released
def weights_loop(
    t0: int, s: Settings, m: Market, d: Decisions, book: Book, acc: Account, rs: RuleState,
    rec: np.ndarray, full: Full,
) -> int:  # fmt: skip
    """``_loop`` deciding from weights."""
    return _loop(t0, s, m, d, book, acc, rs, rec, full, open_phase, _weight_orders, True)


@released
def weights_loop_plain(
    t0: int, s: Settings, m: Market, d: Decisions, book: Book, acc: Account, rs: RuleState,
    rec: np.ndarray, full: Full,
) -> int:  # fmt: skip
    """``_loop`` deciding from weights, for a plain run."""
    return _loop(t0, s, m, d, book, acc, rs, rec, full, open_fixed, _weight_orders, False)


@released
def weights_loop_rules(
    t0: int, s: Settings, m: Market, d: Decisions, book: Book, acc: Account, rs: RuleState,
    rec: np.ndarray, full: Full,
) -> int:  # fmt: skip
    """``_loop`` deciding from weights, for a run whose only optional steps are the position
    rules."""
    return _loop(t0, s, m, d, book, acc, rs, rec, full, open_rules, _weight_orders, False)


@released
def orders_loop(
    t0: int, s: Settings, m: Market, d: Decisions, book: Book, acc: Account, rs: RuleState,
    rec: np.ndarray, full: Full,
) -> int:  # fmt: skip
    """``_loop`` deciding from order quantities."""
    return _loop(t0, s, m, d, book, acc, rs, rec, full, open_phase, _quantity_orders, True)


@released
def orders_loop_plain(
    t0: int, s: Settings, m: Market, d: Decisions, book: Book, acc: Account, rs: RuleState,
    rec: np.ndarray, full: Full,
) -> int:  # fmt: skip
    """``_loop`` deciding from order quantities, for a plain run."""
    return _loop(t0, s, m, d, book, acc, rs, rec, full, open_fixed, _quantity_orders, False)


@released
def orders_loop_rules(
    t0: int, s: Settings, m: Market, d: Decisions, book: Book, acc: Account, rs: RuleState,
    rec: np.ndarray, full: Full,
) -> int:  # fmt: skip
    """``_loop`` deciding from order quantities, for a run whose only optional steps are the
    position rules."""
    return _loop(t0, s, m, d, book, acc, rs, rec, full, open_rules, _quantity_orders, False)


# By decision rule and the open phase a bar takes (``clock.open_steps``).
_LOOPS = {
    (MODE_SIGNALS, open_phase): signals_loop,
    (MODE_SIGNALS, open_plain): signals_loop_plain,
    (MODE_SIGNALS, open_rules): signals_loop_rules,
    (MODE_WEIGHTS, open_phase): weights_loop,
    (MODE_WEIGHTS, open_plain): weights_loop_plain,
    (MODE_WEIGHTS, open_rules): weights_loop_rules,
    (MODE_ORDERS, open_phase): orders_loop,
    (MODE_ORDERS, open_plain): orders_loop_plain,
    (MODE_ORDERS, open_rules): orders_loop_rules,
}


def loop_for(mode: int, s: Settings, acc: Account) -> Any:
    """The compiled loop of a run deciding by ``mode``, with the open phase the event driver
    calls (``clock.open_steps``): the plain one when the run needs none of a bar's optional
    steps, the rules one when it needs only the position rules (a first run then compiles no
    margin call, halt nor next-close fill), else every step. Only the last can have a halt
    block its entries.

    Example:
        >>> loop = loop_for(MODE_SIGNALS, state.settings, state.account)  # doctest: +SKIP
        >>> t = loop(0, state.settings, market, decisions, state.book, state.account,
        ...          state.rules, records, None)  # doctest: +SKIP
    """
    (steps,) = open_steps(s, acc)
    if steps is open_plain and acc.scalars[S_KEEP_EXTREMES] != 0.0:
        # The plain loops' open phase (``clock.open_fixed``) keeps no best prices.
        raise AssertionError("a plain compiled run with best prices to keep")
    return _LOOPS[(mode, steps)]
