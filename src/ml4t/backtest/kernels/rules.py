"""Position rules as array code: track what each position was entered at, find the exits a bar
triggers, and ratchet trailing references.

Rules arrive compiled (``risk.position``): one row per node of a rule tree, children before
their parents, so one pass over a rule set's rows evaluates it bottom-up. Every node answers
"does this bar exit the position, when inside the bar, and at what level". When is a key
along the path the bar is assumed to take: ``0`` at the open (a gap through a level, a time
or signal exit), then the first extreme, then the second; the config's ``intrabar_priority``
says which extreme comes first (``stop``: the adverse one, as backtesting.py assumes). Within
one leg, levels nearer the open are met first.

What a rule may read at bar ``t``: the bar's own open, high and low (the rules run inside the
bar), the position's entry price, entry bar and extreme up to bar ``t - 1``, and rule columns
(signals, regimes, volatilities) at bar ``t - 1`` or at the bar the entry was decided on.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel, leaf
from .levels import LEVEL_GAPPED, LEVEL_TOUCHED, level_touch
from .records import (
    LIMIT,
    MARKET,
    OPEN,
    PARTIALLY_FILLED,
    PRIORITY_STOP,
    RN_AMOUNT,
    RN_CHILD_COUNT,
    RN_CHILD_START,
    RN_FIXED,
    RN_KIND,
    RN_ORIGIN,
    RN_SLOT,
    RN_VALUE,
    RULE_ALL_OF,
    RULE_ANY_OF,
    RULE_CHAIN,
    RULE_REGIME,
    RULE_SIGNAL_EXIT,
    RULE_STOP_LOSS,
    RULE_TAKE_PROFIT,
    RULE_TIME_EXIT,
    RULE_TRAILING_STOP,
    RULE_VOLATILITY_STOP,
    STOP,
    TRAIL_CLOSE,
)


@leaf
def track_entries(
    fills: np.ndarray,
    first: int,
    last: int,
    orders: np.ndarray,
    held: np.ndarray,
    entry_price: np.ndarray,
    entry_bar: np.ndarray,
    entry_ref: np.ndarray,
    extreme: np.ndarray,
    position_set: np.ndarray,
    at_close: bool,
) -> None:
    """Fold fills ``[first, last)`` into each asset's entry state.

    A fill that opens or flips a position starts it: entry price and extreme at the fill price,
    entry bar at the fill's bar, and the bar whose close the entry was decided on (the previous
    bar for fills at the open, this bar for fills at the close). Adding to a position averages
    its entry price; reducing leaves it; closing clears it. An order carrying its own rule set
    hands it to the position it opens or adds to.
    """
    for i in range(first, last):
        f = fills[i]
        a = f.asset
        q = f.quantity
        prev = held[a]
        new = prev + q
        rule_set = orders[f.order_id].rule_set
        if new == 0.0:
            entry_price[a] = np.nan
            entry_bar[a] = -1
            entry_ref[a] = -1
            extreme[a] = np.nan
            position_set[a] = -1
        elif prev == 0.0 or (prev > 0.0) != (new > 0.0):
            entry_price[a] = f.price
            entry_bar[a] = f.bar
            entry_ref[a] = f.bar if at_close else f.bar - 1
            extreme[a] = f.price
            position_set[a] = rule_set
        elif abs(new) > abs(prev):
            entry_price[a] = (entry_price[a] * abs(prev) + f.price * abs(q)) / abs(new)
            if rule_set >= 0:
                position_set[a] = rule_set
        held[a] = new


@leaf
def update_extremes(
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    positions: np.ndarray,
    extreme: np.ndarray,
    trail_basis: int,
) -> None:
    """After the rules ran on a bar, fold its best price into each position's extreme: the high
    for longs, the low for shorts (or the close with ``trail_basis="close"``). Trailing levels
    read the extreme of earlier bars only, so a bar's own high never raises its own stop."""
    for a in range(positions.shape[0]):
        q = positions[a]
        if q == 0.0 or np.isnan(closes[a]):
            continue
        own_extreme = highs[a] if q > 0.0 else lows[a]
        best = closes[a] if trail_basis == TRAIL_CLOSE else own_extreme
        if q > 0.0:
            extreme[a] = max(extreme[a], best)
        else:
            extreme[a] = min(extreme[a], best)


@kernel
def _hit(
    protective: bool,
    long: bool,
    level: float,
    o: float,
    h: float,
    lo: float,
    adverse_leg: float,
    favorable_leg: float,
) -> tuple[bool, float]:
    """Whether the bar reaches ``level`` and when: a protective level (a stop: below a long,
    above a short) on the adverse leg, a target on the favorable one; 0 when the open is
    already past it. The test itself is ``levels.level_touch``, as for stop and limit orders."""
    span = h - lo if h > lo else 1.0
    # Met by a falling price: a long's stop loss, a short's take profit.
    from_above = long == protective
    touch = level_touch(from_above, level, o, h, lo)
    if touch == LEVEL_GAPPED:
        return True, 0.0
    if touch == LEVEL_TOUCHED:
        if from_above:
            leg = adverse_leg if long else favorable_leg
            return True, leg + 0.5 * (o - level) / span
        leg = favorable_leg if long else adverse_leg
        return True, leg + 0.5 * (level - o) / span
    return False, np.inf


@kernel
def _column_at(columns: np.ndarray, slot: int, bar: int, asset: int) -> float:
    if slot < 0 or bar < 0:
        return np.nan
    return float(columns[slot, bar, asset])


@kernel
def evaluate_position_rules(
    bar: int,
    opens: np.ndarray,
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    positions: np.ndarray,
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
    priority: int,
    on_entry_bar: bool,
    exit_order: np.ndarray,
    orders: np.ndarray,
    out_asset: np.ndarray,
    out_type: np.ndarray,
    out_level: np.ndarray,
    out_origin: np.ndarray,
) -> int:
    """Find the positions bar ``bar`` exits; returns how many, written to the ``out_`` arrays.

    Each exit is an asset, the order type that executes it (stop, limit or market at the open),
    its level, and its reason (an origin code). A position uses its own rule set if the order
    that opened it had one, else its asset's (``asset_set``, which holds the global set for
    assets without their own). Positions without a bar, opened at this bar's open while
    ``on_entry_bar`` is off, or with an exit from an earlier bar still working are skipped.
    """
    adverse_leg = 1.0 if priority == PRIORITY_STOP else 2.0
    favorable_leg = 3.0 - adverse_leg
    width = 0
    for s in range(set_start.shape[0]):
        width = max(width, set_root[s] - set_start[s] + 1)
    trig = np.zeros(width, dtype=np.bool_)
    when = np.empty(width)
    level = np.empty(width)
    kind = np.empty(width, dtype=np.int64)
    origin = np.empty(width, dtype=np.int64)
    count = 0
    for a in range(positions.shape[0]):
        q = positions[a]
        if q == 0.0 or np.isnan(closes[a]):
            continue
        s = position_set[a] if position_set[a] >= 0 else asset_set[a]
        if s < 0:
            continue
        if entry_bar[a] == bar and not on_entry_bar:
            continue
        pending_exit = exit_order[a]
        if pending_exit >= 0:
            status = orders[pending_exit].status
            if status in (OPEN, PARTIALLY_FILLED):
                continue
        long = q > 0.0
        d = 1.0 if long else -1.0
        e = entry_price[a]
        o = opens[a]
        h = highs[a]
        lo = lows[a]
        start = set_start[s]
        for node in range(start, set_root[s] + 1):
            j = node - start
            row = nodes[node]
            k = int(row[RN_KIND])
            v = row[RN_VALUE]
            amount = row[RN_AMOUNT] == 1.0
            slot = int(row[RN_SLOT])
            trig[j] = False
            when[j] = np.inf
            level[j] = np.nan
            kind[j] = STOP
            origin[j] = int(row[RN_ORIGIN])
            c0 = int(row[RN_CHILD_START])
            nc = int(row[RN_CHILD_COUNT])
            if k <= RULE_VOLATILITY_STOP:
                if k == RULE_STOP_LOSS:
                    lvl = e - d * v if amount else e * (1.0 - d * v)
                elif k == RULE_TAKE_PROFIT:
                    lvl = e + d * v if amount else e * (1.0 + d * v)
                    kind[j] = LIMIT
                elif k == RULE_TRAILING_STOP:
                    x = extreme[a]
                    lvl = x - d * v if amount else x * (1.0 - d * v)
                else:
                    at = entry_ref[a] if row[RN_FIXED] == 1.0 else bar - 1
                    vol = _column_at(columns, slot, at, a)
                    # RN_AMOUNT marks a volatility given as a fraction of price (of the entry).
                    lvl = e - d * v * vol * (e if amount else 1.0)
                hit, at_key = _hit(
                    k != RULE_TAKE_PROFIT, long, lvl, o, h, lo, adverse_leg, favorable_leg
                )
                trig[j] = hit
                when[j] = at_key
                level[j] = lvl
            elif k == RULE_TIME_EXIT:
                if bar - entry_bar[a] >= v:
                    trig[j] = True
                    when[j] = 0.0
                    kind[j] = MARKET
            elif k == RULE_SIGNAL_EXIT:
                value = _column_at(columns, slot, bar - 1, a)
                if (long and value < v) or (not long and value > v):
                    trig[j] = True
                    when[j] = 0.0
                    kind[j] = MARKET
            else:
                pick = -1
                if k == RULE_CHAIN:
                    for c in range(c0, c0 + nc):
                        if trig[children[c] - start]:
                            pick = children[c] - start
                            break
                elif k == RULE_ANY_OF:
                    for c in range(c0, c0 + nc):
                        m = children[c] - start
                        if trig[m] and (pick < 0 or when[m] < when[pick]):
                            pick = m
                elif k == RULE_ALL_OF:
                    for c in range(c0, c0 + nc):
                        m = children[c] - start
                        if not trig[m]:
                            pick = -1
                            break
                        # All must have happened: the exit is when the last of them did.
                        if pick < 0 or when[m] > when[pick]:
                            pick = m
                elif k == RULE_REGIME:
                    regime = _column_at(columns, slot, bar - 1, a)
                    fallback = -1
                    for c in range(c0, c0 + nc):
                        key = child_keys[c]
                        if np.isnan(key):
                            fallback = children[c] - start
                        elif key == regime:
                            pick = children[c] - start
                            break
                    if pick < 0:
                        pick = fallback
                    if pick >= 0 and not trig[pick]:
                        pick = -1
                if pick >= 0:
                    trig[j] = True
                    when[j] = when[pick]
                    level[j] = level[pick]
                    kind[j] = kind[pick]
                    origin[j] = origin[pick]
        root = set_root[s] - start
        if trig[root]:
            out_asset[count] = a
            out_type[count] = kind[root]
            out_level[count] = level[root]
            out_origin[count] = origin[root]
            count += 1
    return count
