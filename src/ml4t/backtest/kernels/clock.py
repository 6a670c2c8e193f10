"""The phases of a bar, written once: both drivers run a bar through these functions.

One bar ``t`` (DESIGN.md, "The clock"):

``open_phase``, everything before the decisions:

1. ``start_bar``: a new month resets the monthly volume (tiered commissions), a new day the
   daily loss limit; the volume used on the bar is cleared; borrow fees and interest accrue;
   with ``open_priority="rules"``, ``rules_before_fills``: the positions held at the open meet
   their rules first, and an exit cancels the market orders working on its asset;
2. ``fill_open``: orders decided on earlier bars fill at ``open[t]`` (or their level inside the
   bar), reductions before entries;
3. ``apply_rules``: position rules check the bar's open, high and low, and the exits they find
   fill alone, now; then the positions' best prices take in the bar;
4. ``fill_next_close``: with ``fill_timing="next_close"`` (Zipline's daily mode) market orders
   from earlier bars fill at ``close[t]``;
5. ``mark_bar``: positions are marked at ``close[t]`` and the bar is recorded; then margin calls
   and portfolio halts.

Then the decisions: ``strategy.on_data`` (event driver) or the arrays (compiled driver).

``close_phase``: with ``fill_timing="same_close"``, the new orders fill at ``close[t]`` and the
bar is recorded again.

The compiled driver calls ``open_phase`` and ``close_phase`` from its loop (``kernels.driver``).
The event driver calls, around ``on_data``, the steps of ``open_phase`` its run needs
(``open_steps``, in the order of ``OPEN_STEPS``): one compiled call, ``open_plain`` for a run
without position rules, next-close fills, margin or halts, ``open_rules`` with position rules
alone, ``open_phase`` otherwise; the steps one by one when the strategy has an ``on_fill``
(the fills of each step reach it before the next runs).
Numba compiles every kernel a called kernel reaches, whatever the branches taken: a plain run
then never compiles the rules, margin calls or halts. The steps are ``folded`` kernels, inlined
into the phase that calls them (one compiled library, not one per step).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..execution.commission import COMMISSION_PYTHON
from ..execution.slippage import prices_at_reference
from .accounts import accrue_financing, margin_call, mark_to_market
from .book import (
    H_PEAK,
    H_WIDTH,
    add_exit_orders,
    check_halts,
    start_day,
    withdraw_market_orders,
)
from .jit import folded, inlined, leaf
from .prefetch import prefetch_row
from .records import (
    EXEC_EXITS_FIRST_SMALLEST,
    O_MARGIN_CALL,
    PHASE_CLOSE,
    PHASE_OPEN,
    R_REPLACED_BY_RULE,
    SIZE_AT_DECISION,
    FillTiming,
)
from .rules import evaluate_position_rules, track_entries, update_extremes
from .state import (
    A_PENDING,
    A_POSITION,
    A_VOLUME_USED,
    C_FILLS,
    C_OPEN,
    C_ORDERS,
    FULL_FILLS,
    PLAIN_FILLS,
    REC_BORROW,
    REC_GROSS,
    REC_INTEREST,
    RF_OUT_LEVEL,
    RI_EXIT_ORDER,
    RI_OUT_ASSET,
    RI_OUT_ORIGIN,
    RI_OUT_TYPE,
    RI_SCRATCH_IDS,
    S_DAILY_LIMIT,
    S_DRAWDOWN_LIMIT,
    S_EQUITY,
    S_HALT,
    S_KEEP_EXTREMES,
    S_LIMITS,
    S_MONTH_VOLUME,
    S_RULES_ON,
    Account,
    Bar,
    Book,
    Full,
    Market,
    RuleState,
    Settings,
)
from .step import fill_orders

TIMING_NEXT_CLOSE = FillTiming.next_close
TIMING_SAME_CLOSE = FillTiming.same_close


@inlined
def bar_rows(m: Market, t: int) -> Bar:
    """The rows of bar ``t``, one per field. A field the feed lacks is one row of NaN, shared
    by every bar: row ``min(t, 0)``. (Written out per field: a helper inlined per field cost a
    first run a tenth of a second each, nine fields at each of the phases' calls.)"""
    return Bar(
        m.open[min(t, m.open.shape[0] - 1)],
        m.high[min(t, m.high.shape[0] - 1)],
        m.low[min(t, m.low.shape[0] - 1)],
        m.close[t],
        m.volume[min(t, m.volume.shape[0] - 1)],
        m.bid[min(t, m.bid.shape[0] - 1)],
        m.ask[min(t, m.ask.shape[0] - 1)],
        m.spread[min(t, m.spread.shape[0] - 1)],
        m.volatility[min(t, m.volatility.shape[0] - 1)],
    )


@leaf
def open_phase(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """Everything bar ``t`` does before its decisions (steps 1 to 5 above), in the order of
    ``OPEN_STEPS``. A kernel of its own, not folded into the compiled loops that call it:
    inlining its steps' code into each loop cost a first run more (about 0.7 s with a stop
    loss) than one more compiled library."""
    start_bar(t, s, m, book, acc, rs, rec, full)
    rules_before_fills(t, s, m, book, acc, rs, rec, full)
    fill_open(t, s, m, book, acc, rs, rec, full)
    apply_rules(t, s, m, book, acc, rs, rec, full)
    fill_next_close(t, s, m, book, acc, rs, rec, full)
    mark_bar(t, s, m, book, acc, rs, rec, full)
    margin_calls(t, s, m, book, acc, rs, rec, full)
    halts(t, s, m, book, acc, rs, rec, full)


@leaf
def open_plain(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """``open_phase`` for a run with none of the optional steps (``open_steps``): no position
    rules, no next-close fills, a cash account, no halts. Compiled alone, it spares the event
    driver's first run the compile of the steps its run never takes."""
    start_bar(t, s, m, book, acc, rs, rec, full)
    fill_open(t, s, m, book, acc, rs, rec, full)
    track_extremes(t, s, m, book, acc, rs, rec, full)
    mark_bar(t, s, m, book, acc, rs, rec, full)


@leaf
def open_fixed(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """``open_plain`` for the compiled driver: its rules are fixed for the run, so a plain run
    keeps no best prices (``S_KEEP_EXTREMES`` is 0) and its first run compiles no step for
    them."""
    start_bar(t, s, m, book, acc, rs, rec, full)
    fill_open(t, s, m, book, acc, rs, rec, full)
    mark_bar(t, s, m, book, acc, rs, rec, full)


@leaf
def open_rules(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """``open_phase`` for a run whose only optional steps are the position rules (no
    next-close fills, a cash account, no halts): the event driver's first run with a stop loss
    compiles no margin call nor halt."""
    start_bar(t, s, m, book, acc, rs, rec, full)
    rules_before_fills(t, s, m, book, acc, rs, rec, full)
    fill_open(t, s, m, book, acc, rs, rec, full)
    apply_rules(t, s, m, book, acc, rs, rec, full)
    mark_bar(t, s, m, book, acc, rs, rec, full)


@folded
def start_bar(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """Resets of a new month, day and bar; financing since the previous bar."""
    if m.new_month[t]:
        acc.scalars[S_MONTH_VOLUME] = 0.0
    if s.max_participation > 0.0:
        acc.assets[A_VOLUME_USED][:] = 0.0
    if m.new_day[t]:
        start_day(acc.scalars[S_HALT : S_HALT + H_WIDTH], acc.scalars[S_EQUITY])
    if t > 0 and s.financing:
        rec[REC_BORROW, t], rec[REC_INTEREST, t] = accrue_financing(m.years[t], s, acc)


@folded
def fill_open(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """Orders from earlier bars fill at the open, or at their level inside the bar."""
    _fill_book(t, PHASE_OPEN, s, m, book, acc, rs, full)


@folded
def rules_before_fills(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """``open_priority="rules"``: the positions held at the open meet their rules before the
    orders of earlier bars fill there. A rule that fires replaces the market orders working on
    its asset: they are cancelled (``replaced_by_position_rule``), as VectorBT's stop replaces
    the signal of its bar (``simulate_from_signals_nb``: "Stop signal comes first")."""
    if s.rules_first and acc.scalars[S_RULES_ON] != 0.0:
        _exit_by_rules(t, s, bar_rows(m, t), book, acc, rs, False, True, full)


@folded
def apply_rules(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """Exit the positions whose rules this bar triggers, then fold the bar into the positions'
    best prices. With ``open_priority="rules"`` only the positions entered at this bar's open
    are left to check (``rules_before_fills`` checked the others), when
    ``stops_on_entry_bar``."""
    bar = bar_rows(m, t)
    if acc.scalars[S_RULES_ON] != 0.0 and (s.stops_on_entry_bar or not s.rules_first):
        _exit_by_rules(t, s, bar, book, acc, rs, s.rules_first, False, full)
    # Extremes are kept even without rules where rules may be set later (they measure from the
    # best price since entry); the compiled driver's rules are fixed for its run, and it keeps
    # them only for a rule that reads them (``rules.reads_extremes``).
    if acc.scalars[S_KEEP_EXTREMES] != 0.0:
        update_extremes(t, bar, acc, rs, s)


@folded
def _exit_by_rules(
    t: int,
    s: Settings,
    bar: Bar,
    book: Book,
    acc: Account,
    rs: RuleState,
    entered_only: bool,
    replace: bool,
    full: Full,
) -> None:
    """Exit the positions whose rules bar ``t`` triggers (``entered_only``: those entered on
    it); ``replace`` first cancels the market orders working on their assets.

    Each exit becomes an order (a stop at its level, a limit at a take-profit, a market order at
    the open) that fills alone, now, like any other, costs included; what a volume cap leaves of
    it joins the book's open orders."""
    positions, pending = acc.assets[A_POSITION], acc.assets[A_PENDING]
    count = evaluate_position_rules(t, s, bar, acc, book.orders, rs, entered_only)
    if not count:
        return
    if replace:
        for k in range(count):
            withdraw_market_orders(
                book.orders, book.counts[C_ORDERS], book.open_ids, book.counts[C_OPEN],
                rs.ints[RI_OUT_ASSET, k], t, R_REPLACED_BY_RULE, pending,
            )  # fmt: skip
    ids = rs.ints[RI_SCRATCH_IDS]
    book.counts[C_ORDERS] = add_exit_orders(
        count, rs.ints[RI_OUT_ASSET], rs.ints[RI_OUT_TYPE], rs.floats[RF_OUT_LEVEL],
        rs.ints[RI_OUT_ORIGIN], t, positions, pending, rs.ints[RI_EXIT_ORDER], book.orders,
        book.counts[C_ORDERS], ids,
    )  # fmt: skip
    first = book.counts[C_FILLS]
    kept = fill_orders(t, PHASE_OPEN, True, False, ids, count, s, bar, book, acc, full)
    track_entries(book.fills, first, book.counts[C_FILLS], book.orders, rs, False)
    n_open = book.counts[C_OPEN]
    for k in range(kept):  # a loop: slice assignment needs reference counting
        book.open_ids[n_open + k] = ids[k]
    book.counts[C_OPEN] = n_open + kept


@folded
def track_extremes(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """``apply_rules`` without position rules: only the positions' best prices take in the
    bar, where rules may be set later (the compiled driver's cannot)."""
    if acc.scalars[S_KEEP_EXTREMES] != 0.0:
        update_extremes(t, bar_rows(m, t), acc, rs, s)


@folded
def fill_next_close(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """Zipline's daily mode: market orders from earlier bars fill at this close."""
    if s.fill_timing == TIMING_NEXT_CLOSE and book.counts[C_OPEN]:
        fill_close(t, s, m, book, acc, rs, full)


@folded
def fill_close(
    t: int, s: Settings, m: Market, book: Book, acc: Account, rs: RuleState, full: Full
) -> None:
    """The close's fill step (market orders only), then the entries it made."""
    _fill_book(t, PHASE_CLOSE, s, m, book, acc, rs, full)


@folded
def _fill_book(
    t: int, phase: int, s: Settings, m: Market, book: Book, acc: Account, rs: RuleState,
    full: Full,
) -> None:  # fmt: skip
    """The book's open orders through the fill step of ``phase``, then the entries it made,
    while a position rule may read them: rules are set, or may be set later (the event
    driver keeps best prices for them, ``S_KEEP_EXTREMES``; a compiled run's rules are fixed,
    and one without rules skips the tracking, a tenth of a fill-heavy run's open phase)."""
    n_open = book.counts[C_OPEN]
    if n_open:
        first = book.counts[C_FILLS]
        book.counts[C_OPEN] = fill_orders(
            t, phase, s.market_at_open, s.stops_on_entry_bar, book.open_ids, n_open, s,
            bar_rows(m, t), book, acc, full,
        )  # fmt: skip
        if rules_may_read(acc):
            at_close = phase == PHASE_CLOSE
            track_entries(book.fills, first, book.counts[C_FILLS], book.orders, rs, at_close)


@folded
def rules_may_read(acc: Account) -> bool:
    """Whether a position rule may read the positions' state (entries, best prices): rules
    are set, or may be set later (the event driver, ``S_KEEP_EXTREMES``); a compiled run's
    rules are fixed."""
    return bool(acc.scalars[S_RULES_ON] != 0.0 or acc.scalars[S_KEEP_EXTREMES] != 0.0)


@folded
def mark_bar(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """Mark at the close and record the bar; the equity peak (for a drawdown halt, set now or
    later) takes in the mark."""
    equity = mark_to_market(t, m.close[t], acc, rec)
    acc.scalars[S_EQUITY] = equity
    acc.scalars[S_HALT + H_PEAK] = max(acc.scalars[S_HALT + H_PEAK], equity)
    if t + 1 < m.close.shape[0]:
        # The next bar's closes, read by its mark: start loading them now, while the rest of
        # this bar runs (a wide universe's row is about a page, new memory every bar).
        prefetch_row(m.close[t + 1])
        if acc.scalars[S_RULES_ON] != 0.0:
            # Its highs and lows too, read by the rules of the positions. Not for best prices
            # kept only for rules set later (the event driver without rules), which read the
            # held assets' alone: without these rows, and with best prices over the held
            # assets, the engine's bars with an empty ``on_data`` on 5,000 assets went from
            # 38 ms a run to 25 ms.
            prefetch_row(m.high[min(t + 1, m.high.shape[0] - 1)])
            prefetch_row(m.low[min(t + 1, m.low.shape[0] - 1)])


@folded
def margin_calls(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """A margin account below its maintenance margin at the mark orders positions out."""
    if not s.cash_account:
        margin_call(t, acc.scalars[S_EQUITY], rec[REC_GROSS, t], O_MARGIN_CALL, s, book, acc)


@folded
def halts(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    full: Full,
) -> None:
    """The portfolio halts (drawdown, daily loss) at the mark."""
    check_halts(t, acc.scalars[S_EQUITY], book, acc)


@folded
def close_phase(
    t: int,
    s: Settings,
    m: Market,
    book: Book,
    acc: Account,
    rs: RuleState,
    rec: np.ndarray,
    final: bool,
    full: Full,
) -> None:
    """Same-bar mode: this bar's decisions fill at its close, and the bar is recorded again.
    ``final`` fills at the close whatever the timing, and records the bar again (a run that
    ends flat: the engine has ordered every position out)."""
    if not (final or s.fill_timing == TIMING_SAME_CLOSE):
        return
    first = book.counts[C_FILLS]
    fill_close(t, s, m, book, acc, rs, full)
    if final or book.counts[C_FILLS] > first:
        acc.scalars[S_EQUITY] = mark_to_market(t, m.close[t], acc, rec)


# The steps of ``open_phase``, in its order (a test checks it against ``open_phase``'s body).
OPEN_STEPS = (
    start_bar, rules_before_fills, fill_open, apply_rules, fill_next_close, mark_bar,
    margin_calls, halts,
)  # fmt: skip


def open_steps(s: Settings, acc: Account, *, one_by_one: bool = False) -> tuple[Any, ...]:
    """The compiled steps the event driver calls from Python for a bar's open phase: one
    call, ``(open_plain,)`` when the run needs none of the optional steps (numba compiles
    every kernel a called kernel reaches: a run without rules, margin or halts compiles none
    of them), ``(open_rules,)`` when it needs only the position rules, and ``(open_phase,)``
    otherwise. With ``one_by_one`` (a strategy's ``on_fill``
    sees each step's fills), the steps of ``OPEN_STEPS`` in order, leaving out those the
    run's settings make no-ops.

    Example:
        >>> import numpy as np
        >>> from ml4t.backtest import BacktestConfig
        >>> from ml4t.backtest.broker import Broker
        >>> state = Broker(np.array(["A"]), BacktestConfig()).kernel_state
        >>> open_steps(state.settings, state.account) == (open_plain,)  # no rules, no margin
        True
    """
    rules = acc.scalars[S_RULES_ON] != 0.0
    limits = acc.scalars[S_DRAWDOWN_LIMIT], acc.scalars[S_DAILY_LIMIT]
    wanted = {
        rules_before_fills: rules and s.rules_first,
        apply_rules: rules,
        fill_next_close: s.fill_timing == TIMING_NEXT_CLOSE,
        margin_calls: not s.cash_account,
        halts: not (np.isnan(limits[0]) and np.isnan(limits[1])),
    }
    if not one_by_one:
        # One compiled call a bar. ``open_phase`` runs every step and ``open_rules`` the rules
        # steps; those this run does not need do nothing (each checks its setting), so they
        # fill as the steps one by one.
        if not any(wanted.values()):
            return (open_plain,)
        only_rules = not (wanted[fill_next_close] or wanted[margin_calls] or wanted[halts])
        return (open_rules,) if only_rules else (open_phase,)
    # Without rules the rules step still keeps the positions' best prices.
    return tuple(
        kernel if wanted.get(kernel, True) else track_extremes
        for kernel in OPEN_STEPS
        if wanted.get(kernel, True) or kernel is apply_rules
    )


def fill_features(s: Settings, acc: Account, *, orders_need_full: bool) -> Full:
    """The fill step a run's phases take (``state.Full``): the plain one (``None``) while its
    settings and its orders so far need none of the optional features, else the full one.

    Plain fills: a cash account, no slippage (``prices_at_reference``), no commission model
    written in Python, no portfolio limit, orders sized at their decision, no smallest-first
    entries, and no all-in, bracket or OCO order in the book
    (``orders_need_full``: ``OrderBook.needs_full_fills`` for the event driver, the decision
    arrays for the compiled one). Numba compiles each step once per answer, when first taken.

    Example:
        >>> state = broker.kernel_state  # doctest: +SKIP
        >>> fill_features(state.settings, state.account, orders_need_full=False)  # doctest: +SKIP
        >>> # None: plain fills
    """
    if (
        orders_need_full
        or not s.cash_account
        or s.fill_sizing != SIZE_AT_DECISION
        or s.execution_order == EXEC_EXITS_FIRST_SMALLEST
        or not prices_at_reference(acc.slippage)
        or bool((acc.commission[:, 0] == COMMISSION_PYTHON).any())
        or not bool(np.isnan(acc.scalars[S_LIMITS : S_LIMITS + 4]).all())
    ):
        return FULL_FILLS
    return PLAIN_FILLS
