"""The compiled driver: the event driver's loop over bars, compiled, with decisions from arrays.

Each bar runs the steps ``Engine.run`` runs, in the same order and through the same kernels
(``step``, ``rules``, ``book``), so the two drivers give the same fills for the same decisions.
Only the strategy differs: here it is one of three decision rules over precomputed arrays,
written to make exactly the broker calls a strategy would make:

- signals: per asset in order, an exit signal closes a long (or a short exit a short) as
  ``close_position`` does; an entry signal on an asset with no position and no pending order
  orders ``size`` as ``order_target_value`` (or ``order_target_quantity`` for shares) does,
  unless a position rule closed the asset's position on this bar.
- weights: on bars with any finite weight, ``rebalance`` to the row (NaN counts as 0).
- orders: each finite, non-zero quantity is ``submit_order`` (a limit, stop or stop-limit when
  the price arrays give levels).

The loop stops early when the order book or the fill log could overflow on the next bar and
returns that bar; the caller grows them and calls again from there.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np

from .book import (
    H_BLOCK,
    H_STOPPED,
    add_exit_orders,
    add_order,
    check_halts,
    margin_call,
    start_day,
    withdraw,
    withdraw_opposed,
)
from .jit import kernel, leaf
from .records import (
    LIMIT,
    MARKET,
    O_CLOSE,
    O_DAILY_LOSS_LIMIT,
    O_MARGIN_CALL,
    O_MAX_DRAWDOWN_HALT,
    O_ORDER,
    O_REBALANCE,
    O_TARGET,
    PHASE_CLOSE,
    PHASE_OPEN,
    REJECTED,
    SIZE_AT_DECISION,
    STOP,
    STOP_LIMIT,
    FillTiming,
)
from .rules import evaluate_position_rules, track_entries, update_extremes
from .sizing import order_toward, shares_for_value, target_deltas
from .step import accrue_financing, fill_orders, mark_to_market, reject_growing

MODE_SIGNALS = 0
MODE_WEIGHTS = 1
MODE_ORDERS = 2


class SizeTypeT(NamedTuple):
    """``run_signals``' ``size_type``: a fraction of equity, an amount of cash, or shares."""

    percent: int
    value: int
    shares: int


SizeType: Final = SizeTypeT(*range(len(SizeTypeT._fields)))
SIZE_PERCENT: Final = SizeType.percent
SIZE_VALUE: Final = SizeType.value
SIZE_SHARES: Final = SizeType.shares

TIMING_NEXT_OPEN: Final = FillTiming.next_open
TIMING_SAME_CLOSE: Final = FillTiming.same_close
TIMING_NEXT_CLOSE: Final = FillTiming.next_close


@kernel
def _row(field: np.ndarray, t: int) -> np.ndarray:
    """Bar ``t`` of a field; a field the feed lacks is one row of NaN, shared by every bar."""
    row: np.ndarray = field[t] if field.shape[0] > 1 else field[0]
    return row


@leaf
def _toward(
    a: int,
    target: float,
    origin: int,
    target_value: float,
    rounding: int,
    bar: int,
    positions: np.ndarray,
    pending: np.ndarray,
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
) -> tuple[int, int]:
    """``Broker._order_towards``: order the difference to ``target``, unless it is noise;
    market orders still working the other way are withdrawn first."""
    delta = order_toward(target, positions[a] + pending[a], rounding)
    if delta == 0.0:
        return n_orders, n_open
    if pending[a] != 0.0 and (delta > 0.0) != (pending[a] > 0.0):
        withdraw(orders, n_orders, open_ids, n_open, a, bar, pending)
        delta = order_toward(target, positions[a], rounding)
        if delta == 0.0:
            return n_orders, n_open
    return add_order(
        orders, n_orders, open_ids, n_open, a, delta, bar, origin, MARKET, np.nan, np.nan,
        target_value, pending,
    )  # fmt: skip


@leaf
def _signal_orders(
    t: int,
    entries: np.ndarray,
    exits: np.ndarray,
    short_entries: np.ndarray,
    short_exits: np.ndarray,
    closes: np.ndarray,
    last_price: np.ndarray,
    equity: float,
    size: float,
    size_type: int,
    rounding: int,
    size_at_fill: bool,
    exit_order: np.ndarray,
    positions: np.ndarray,
    pending: np.ndarray,
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
) -> tuple[int, int]:
    shorts = short_entries.shape[0] > 0
    for a in range(closes.shape[1]):
        if not (entries[t, a] or exits[t, a]) and not (
            shorts and (short_entries[t, a] or short_exits[t, a])
        ):
            continue  # no signal on this asset: most assets on most bars
        if np.isnan(closes[t, a]):
            continue
        go_long = entries[t, a] and not exits[t, a]
        leave_long = exits[t, a] and not entries[t, a]
        go_short = False
        leave_short = False
        if shorts:
            go_short = short_entries[t, a] and not short_exits[t, a]
            leave_short = short_exits[t, a] and not short_entries[t, a]
        if go_long and go_short:
            go_long = go_short = False
        held = positions[a] + pending[a]
        if (leave_long and held > 0.0) or (leave_short and held < 0.0):
            n_orders, n_open = _toward(
                a, 0.0, O_CLOSE, np.nan, rounding, t, positions, pending, orders, n_orders,
                open_ids, n_open,
            )  # fmt: skip
        elif (
            (go_long or go_short)
            and positions[a] == 0.0
            and pending[a] == 0.0
            and not _ruled_out(exit_order[a], orders, t)
        ):
            side = 1.0 if go_long else -1.0
            if size_type == SIZE_SHARES:
                n_orders, n_open = _toward(
                    a, side * size, O_TARGET, np.nan, rounding, t, positions, pending, orders,
                    n_orders, open_ids, n_open,
                )  # fmt: skip
                continue
            if size_type == SIZE_PERCENT and not equity > 0.0:
                continue  # Broker._no_equity: a percent of equity <= 0 would flip the side
            # order_target_value(asset, value), with value = size * equity for percents.
            value = side * (size * equity if size_type == SIZE_PERCENT else size)
            target = shares_for_value(value, last_price[a], rounding)
            n_orders, n_open = _toward(
                a, target, O_TARGET, value if size_at_fill else np.nan, rounding, t, positions,
                pending, orders, n_orders, open_ids, n_open,
            )  # fmt: skip
    return n_orders, n_open


@leaf
def _ruled_out(oid: int, orders: np.ndarray, t: int) -> bool:
    """Whether a position rule closed (part of) the asset's position on bar ``t``: the bar's
    entry signal is then ignored, as VectorBT lets a stop replace the bar's signals."""
    return oid >= 0 and orders[oid].end_bar == t and orders[oid].filled != 0.0


@kernel
def _weight_orders(
    t: int,
    weights: np.ndarray,
    rebalance_bar: np.ndarray,
    equity: float,
    last_price: np.ndarray,
    rounding: int,
    allow_short: bool,
    size_at_fill: bool,
    scratch_assets: np.ndarray,
    scratch_qty: np.ndarray,
    positions: np.ndarray,
    pending: np.ndarray,
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
) -> tuple[int, int]:
    if not rebalance_bar[t] or not equity > 0.0:
        # Broker.rebalance places nothing while equity <= 0 (percents of it flip sides).
        return n_orders, n_open
    w = weights[t]
    count, _, _ = target_deltas(
        w, equity, last_price, positions, pending, rounding, allow_short, False, scratch_assets,
        scratch_qty,
    )  # fmt: skip
    count = withdraw_opposed(
        orders, n_orders, open_ids, n_open, scratch_assets, scratch_qty, count, positions,
        pending, t,
    )  # fmt: skip
    for k in range(count):
        a = scratch_assets[k]
        value = w[a] * equity if size_at_fill else np.nan
        n_orders, n_open = add_order(
            orders, n_orders, open_ids, n_open, a, scratch_qty[k], t, O_REBALANCE, MARKET,
            np.nan, np.nan, value, pending,
        )  # fmt: skip
    return n_orders, n_open


@kernel
def _quantity_orders(
    t: int,
    quantities: np.ndarray,
    limit_prices: np.ndarray,
    stop_prices: np.ndarray,
    pending: np.ndarray,
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
) -> tuple[int, int]:
    has_limit = limit_prices.shape[0] > 0
    has_stop = stop_prices.shape[0] > 0
    for a in range(quantities.shape[1]):
        q = quantities[t, a]
        if not np.isfinite(q) or q == 0.0:
            continue
        limit = limit_prices[t, a] if has_limit else np.nan
        stop = stop_prices[t, a] if has_stop else np.nan
        kind = MARKET
        if not np.isnan(limit) and not np.isnan(stop):
            kind = STOP_LIMIT
        elif not np.isnan(limit):
            kind = LIMIT
        elif not np.isnan(stop):
            kind = STOP
        n_orders, n_open = add_order(
            orders, n_orders, open_ids, n_open, a, q, t, O_ORDER, kind, limit, stop, np.nan,
            pending,
        )  # fmt: skip
    return n_orders, n_open


@kernel
def _fill_at_close(
    t: int,
    market_at_open: bool,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    spread: np.ndarray,
    vol: np.ndarray,
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
    priority: int,
    stops_on_entry_bar: bool,
    execution_order: int,
    clamp_to_bar: bool,
    fill_sizing: int,
    trail_basis: int,
    limits: np.ndarray,
    volume_used: np.ndarray,
    fills: np.ndarray,
    n_fills: int,
    held: np.ndarray,
    entry_price: np.ndarray,
    entry_bar: np.ndarray,
    entry_ref: np.ndarray,
    extreme: np.ndarray,
    position_set: np.ndarray,
) -> tuple[int, int]:
    """The close's fill step (market orders only), then the entries it made."""
    first = n_fills
    n_open, n_fills = fill_orders(
        t, PHASE_CLOSE, market_at_open, o, h, lo, c, v, bid, ask, spread, vol, orders, n_orders,
        open_ids, n_open, positions, pending, account, commission, month_volume, slippage,
        cash_account, initial_margin, last_price, fractional, cash_policy, max_participation,
        keep_remainder, priority, stops_on_entry_bar, execution_order, clamp_to_bar,
        fill_sizing, trail_basis, limits, volume_used, fills, n_fills,
    )  # fmt: skip
    track_entries(
        fills, first, n_fills, orders, held, entry_price, entry_bar, entry_ref, extreme,
        position_set, True,
    )  # fmt: skip
    return n_open, n_fills


@kernel
def run_bars(
    t0: int,
    mode: int,
    fill_timing: int,
    opens: np.ndarray,
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    volumes: np.ndarray,
    bids: np.ndarray,
    asks: np.ndarray,
    spreads: np.ndarray,
    volatilities: np.ndarray,
    new_month: np.ndarray,
    new_day: np.ndarray,
    years: np.ndarray,
    entries: np.ndarray,
    exits: np.ndarray,
    short_entries: np.ndarray,
    short_exits: np.ndarray,
    size: float,
    size_type: int,
    weights: np.ndarray,
    rebalance_bar: np.ndarray,
    quantities: np.ndarray,
    limit_prices: np.ndarray,
    stop_prices: np.ndarray,
    orders: np.ndarray,
    n_orders: int,
    open_ids: np.ndarray,
    n_open: int,
    fills: np.ndarray,
    n_fills: int,
    positions: np.ndarray,
    pending: np.ndarray,
    account: np.ndarray,
    last_price: np.ndarray,
    equity_now: np.ndarray,
    month_volume: np.ndarray,
    volume_used: np.ndarray,
    commission: np.ndarray,
    slippage: np.ndarray,
    financing: bool,
    borrow_rate: np.ndarray,
    cash_rate: float,
    margin_rate: float,
    cash_account: bool,
    initial_margin: float,
    maintenance_margin: float,
    fractional: bool,
    cash_policy: int,
    max_participation: float,
    keep_remainder: bool,
    priority: int,
    stops_on_entry_bar: bool,
    execution_order: int,
    clamp_to_bar: bool,
    rounding: int,
    fill_sizing: int,
    trail_basis: int,
    limits: np.ndarray,
    halt: np.ndarray,
    daily_limit: float,
    daily_liquidate: bool,
    drawdown_limit: float,
    drawdown_liquidate: bool,
    rules_on: bool,
    held: np.ndarray,
    entry_price: np.ndarray,
    entry_bar: np.ndarray,
    entry_ref: np.ndarray,
    extreme: np.ndarray,
    position_set: np.ndarray,
    asset_set: np.ndarray,
    set_start: np.ndarray,
    set_root: np.ndarray,
    nodes: np.ndarray,
    children: np.ndarray,
    child_keys: np.ndarray,
    columns: np.ndarray,
    exit_order: np.ndarray,
    out_asset: np.ndarray,
    out_type: np.ndarray,
    out_level: np.ndarray,
    out_origin: np.ndarray,
    scratch_ids: np.ndarray,
    scratch_assets: np.ndarray,
    scratch_qty: np.ndarray,
    cash_out: np.ndarray,
    positions_value_out: np.ndarray,
    gross_out: np.ndarray,
    borrow_out: np.ndarray,
    interest_out: np.ndarray,
) -> tuple[int, int, int, int]:
    """Run bars ``t0, t0 + 1, ...``; returns ``(next bar, n_orders, n_open, n_fills)``.

    The next bar is the number of bars when the run is complete, or the bar that might not
    fit in the books (the caller grows them and calls again from it).
    """
    n_bars, n_assets = closes.shape
    market_at_open = fill_timing == TIMING_NEXT_OPEN
    size_at_fill = fill_sizing != SIZE_AT_DECISION
    equity = equity_now[0]
    for t in range(t0, n_bars):
        # Every order a bar can add: decisions, rule exits, margin calls and a liquidation,
        # one per asset each; every fill: at most one per open order per step, three steps.
        bound = n_open + 4 * n_assets
        if n_orders + bound > orders.shape[0] or n_open + bound > open_ids.shape[0]:
            equity_now[0] = equity
            return t, n_orders, n_open, n_fills
        if n_fills + 3 * bound > fills.shape[0]:
            equity_now[0] = equity
            return t, n_orders, n_open, n_fills
        if new_month[t]:
            month_volume[0] = 0.0
        if max_participation > 0.0:
            volume_used[:] = 0.0
        if new_day[t]:
            start_day(halt, equity)
        if t > 0 and financing:
            borrow_out[t], interest_out[t] = accrue_financing(
                years[t], positions, last_price, account, borrow_rate, cash_rate, margin_rate
            )
        o, h, lo, c = _row(opens, t), _row(highs, t), _row(lows, t), closes[t]
        v, bid, ask = _row(volumes, t), _row(bids, t), _row(asks, t)
        spread, vol = _row(spreads, t), _row(volatilities, t)

        # 1. Orders from earlier bars fill at the open (or their level inside the bar).
        if n_open:
            first = n_fills
            n_open, n_fills = fill_orders(
                t, PHASE_OPEN, market_at_open, o, h, lo, c, v, bid, ask, spread, vol, orders,
                n_orders, open_ids, n_open, positions, pending, account, commission,
                month_volume, slippage, cash_account, initial_margin, last_price, fractional,
                cash_policy, max_participation, keep_remainder, priority, stops_on_entry_bar,
                execution_order, clamp_to_bar, fill_sizing, trail_basis, limits, volume_used,
                fills, n_fills,
            )  # fmt: skip
            track_entries(
                fills, first, n_fills, orders, held, entry_price, entry_bar, entry_ref, extreme,
                position_set, False,
            )  # fmt: skip

        # 2. Position rules: exits found on this bar fill alone, now.
        if rules_on:
            count = evaluate_position_rules(
                t, o, h, lo, c, positions, entry_price, entry_bar, entry_ref, extreme,
                position_set, asset_set, set_start, set_root, nodes, children, child_keys,
                columns, priority, stops_on_entry_bar, exit_order, orders, out_asset, out_type,
                out_level, out_origin,
            )  # fmt: skip
            if count:
                n_orders = add_exit_orders(
                    count, out_asset, out_type, out_level, out_origin, t, positions, pending,
                    exit_order, orders, n_orders, scratch_ids,
                )  # fmt: skip
                first = n_fills
                kept, n_fills = fill_orders(
                    t, PHASE_OPEN, True, o, h, lo, c, v, bid, ask, spread, vol, orders,
                    n_orders, scratch_ids, count, positions, pending, account, commission,
                    month_volume, slippage, cash_account, initial_margin, last_price,
                    fractional, cash_policy, max_participation, keep_remainder, priority, False,
                    execution_order, clamp_to_bar, fill_sizing, trail_basis, limits,
                    volume_used, fills, n_fills,
                )  # fmt: skip
                track_entries(
                    fills, first, n_fills, orders, held, entry_price, entry_bar, entry_ref,
                    extreme, position_set, False,
                )  # fmt: skip
                open_ids[n_open : n_open + kept] = scratch_ids[:kept]
                n_open += kept
        if rules_on:
            # Rules are fixed for the whole compiled run: without them no extreme is read.
            update_extremes(h, lo, c, positions, extreme, trail_basis)

        # Zipline's daily mode: market orders from earlier bars fill at this close.
        if fill_timing == TIMING_NEXT_CLOSE and n_open:
            n_open, n_fills = _fill_at_close(
                t, market_at_open, o, h, lo, c, v, bid, ask, spread, vol, orders, n_orders,
                open_ids, n_open, positions, pending, account, commission, month_volume,
                slippage, cash_account, initial_margin, last_price, fractional, cash_policy,
                max_participation, keep_remainder, priority, stops_on_entry_bar,
                execution_order, clamp_to_bar, fill_sizing, trail_basis, limits, volume_used,
                fills, n_fills, held, entry_price, entry_bar, entry_ref, extreme, position_set,
            )  # fmt: skip

        # 3. Mark at the close; margin calls and halts.
        equity = mark_to_market(
            t, c, last_price, positions, account, cash_out, positions_value_out, gross_out
        )
        if not cash_account:
            n_orders, n_open = margin_call(
                equity, gross_out[t], maintenance_margin, t, positions, last_price, pending,
                O_MARGIN_CALL, orders, n_orders, open_ids, n_open,
            )  # fmt: skip
        n_orders, n_open = check_halts(
            equity, halt, daily_limit, daily_liquidate, drawdown_limit, drawdown_liquidate,
            O_DAILY_LOSS_LIMIT, O_MAX_DRAWDOWN_HALT, t, positions, pending, orders, n_orders,
            open_ids, n_open,
        )  # fmt: skip

        # 4. The decisions of this bar, from the arrays.
        if not halt[H_STOPPED]:
            first_new = n_orders
            if mode == MODE_SIGNALS:
                n_orders, n_open = _signal_orders(
                    t, entries, exits, short_entries, short_exits, closes, last_price, equity,
                    size, size_type, rounding, size_at_fill, exit_order, positions, pending,
                    orders, n_orders, open_ids, n_open,
                )  # fmt: skip
            elif mode == MODE_WEIGHTS:
                n_orders, n_open = _weight_orders(
                    t, weights, rebalance_bar, equity, last_price, rounding, not cash_account,
                    size_at_fill, scratch_assets, scratch_qty, positions,
                    pending, orders, n_orders, open_ids, n_open,
                )  # fmt: skip
            else:
                n_orders, n_open = _quantity_orders(
                    t, quantities, limit_prices, stop_prices, pending, orders, n_orders,
                    open_ids, n_open,
                )  # fmt: skip
            if halt[H_BLOCK] and n_orders > first_new:
                reject_growing(
                    orders, n_orders, np.arange(first_new, n_orders), positions, t, REJECTED,
                    int(halt[H_BLOCK]), pending,
                )  # fmt: skip

        # 5. Same-bar mode: this bar's decisions fill at its close, and the bar is recorded again.
        if fill_timing == TIMING_SAME_CLOSE and n_open:
            first = n_fills
            n_open, n_fills = _fill_at_close(
                t, market_at_open, o, h, lo, c, v, bid, ask, spread, vol, orders, n_orders,
                open_ids, n_open, positions, pending, account, commission, month_volume,
                slippage, cash_account, initial_margin, last_price, fractional, cash_policy,
                max_participation, keep_remainder, priority, stops_on_entry_bar,
                execution_order, clamp_to_bar, fill_sizing, trail_basis, limits, volume_used,
                fills, n_fills, held, entry_price, entry_bar, entry_ref, extreme, position_set,
            )  # fmt: skip
            if n_fills > first:
                equity = mark_to_market(
                    t, c, last_price, positions, account, cash_out, positions_value_out,
                    gross_out,
                )  # fmt: skip
    equity_now[0] = equity
    return n_bars, n_orders, n_open, n_fills
