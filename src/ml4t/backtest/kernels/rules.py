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

from .accounts import set_bits
from .jit import counted, folded, kernel, leaf
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
from .state import (
    A_POSITION,
    B_HELD,
    RF_ENTRY_PRICE,
    RF_EXTREME,
    RF_HELD,
    RF_OUT_LEVEL,
    RI_ASSET_SET,
    RI_ENTRY_BAR,
    RI_ENTRY_REF,
    RI_EXIT_ORDER,
    RI_OUT_ASSET,
    RI_OUT_ORIGIN,
    RI_OUT_TYPE,
    RI_POSITION_SET,
    RI_SCRATCH_HELD,
    Account,
    Bar,
    RuleState,
    Settings,
)


@leaf
def track_entries(
    fills: np.ndarray, first: int, last: int, orders: np.ndarray, rs: RuleState, at_close: bool
) -> None:
    """Fold fills ``[first, last)`` into each asset's entry state.

    A fill that opens or flips a position starts it: entry price and extreme at the fill price,
    entry bar at the fill's bar, and the bar whose close the entry was decided on (the previous
    bar for fills at the open, this bar for fills at the close). Adding to a position averages
    its entry price; reducing leaves it; closing clears it. An order carrying its own rule set
    hands it to the position it opens or adds to.
    """
    held, entry_price = rs.floats[RF_HELD], rs.floats[RF_ENTRY_PRICE]
    extreme = rs.floats[RF_EXTREME]
    entry_bar, entry_ref = rs.ints[RI_ENTRY_BAR], rs.ints[RI_ENTRY_REF]
    position_set = rs.ints[RI_POSITION_SET]
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


@folded
def update_extremes(t: int, bar: Bar, acc: Account, rs: RuleState, s: Settings) -> None:
    """After the rules ran on bar ``t``, fold its best price into each position's extreme: the
    high for longs, the low for shorts (or the close with ``trail_basis="close"``). Trailing
    levels read the extreme of earlier bars only, so a bar's own high never raises its own stop.

    With ``stops_on_entry_bar`` off, a position entered on bar ``t`` keeps its entry price as
    its extreme: its rules start on the next bar, and so does its trail. VectorBT
    (``simulate_from_signals_nb``: the trail moves only once a stop is armed, after the bar is
    checked), Backtrader and backtesting.py (stops re-placed after each bar, from the entry
    price on) all measure the first bar a stop watches from the entry price.

    Only the assets held are visited, listed from their bits (``B_HELD``) as the rules list
    them: a test of every asset took 33-49 ms of a 2,520-bar run on 5,000 assets with 100
    held, the held ones alone 6.4-6.6 ms (a microbenchmark of this loop)."""
    positions, held = acc.assets[A_POSITION], rs.ints[RI_SCRATCH_HELD]
    for k in range(set_bits(acc.bits[B_HELD], held)):
        a = held[k]
        q = positions[a]
        if np.isnan(bar.close[a]) or (not s.stops_on_entry_bar and rs.ints[RI_ENTRY_BAR, a] == t):
            continue
        own_extreme = bar.high[a] if q > 0.0 else bar.low[a]
        best = bar.close[a] if s.trail_basis == TRAIL_CLOSE else own_extreme
        if q > 0.0:
            rs.floats[RF_EXTREME, a] = max(rs.floats[RF_EXTREME, a], best)
        else:
            rs.floats[RF_EXTREME, a] = min(rs.floats[RF_EXTREME, a], best)


def reads_extremes(rs: RuleState) -> bool:
    """Whether any rule of ``rs`` reads a position's best price since entry (``RF_EXTREME``):
    a trailing stop (``_leaf_rule``). Without one, a run whose rules cannot change need not
    keep best prices (``S_KEEP_EXTREMES``).

    Example:
        >>> reads_extremes(broker.kernel_state.rules)  # doctest: +SKIP
        False
    """
    return bool(rs.nodes.shape[0] and np.any(rs.nodes[:, RN_KIND] == RULE_TRAILING_STOP))


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


@counted
def evaluate_position_rules(
    t: int,
    s: Settings,
    bar: Bar,
    acc: Account,
    orders: np.ndarray,
    rs: RuleState,
    entered_only: bool,
) -> int:
    """Find the positions bar ``t`` exits; returns how many, written to the scratch rows of
    ``rs`` (``RI_OUT_ASSET``, ``RI_OUT_TYPE``, ``RF_OUT_LEVEL``, ``RI_OUT_ORIGIN``).

    Each exit is an asset, the order type that executes it (stop, limit or market at the open),
    its level, and its reason (an origin code). A position uses its own rule set if the order
    that opened it had one, else its asset's (which holds the global set for assets without
    their own). Positions without a bar, opened at this bar's open while ``stops_on_entry_bar``
    is off, or with an exit from an earlier bar still working are skipped; ``entered_only``
    checks only the positions opened on this bar (``open_priority="rules"`` checked the others
    before the open's fills).
    """
    width = 0
    for k in range(rs.set_start.shape[0]):
        width = max(width, rs.set_root[k] - rs.set_start[k] + 1)
    work_f = np.empty((2, width))
    work_i = np.zeros((3, width), dtype=np.int64)
    return _find_exits(
        t, s, bar, acc.assets[A_POSITION], acc.bits[B_HELD], orders, rs, entered_only, work_f,
        work_i,
    )  # fmt: skip


@leaf
def _find_exits(
    t: int,
    s: Settings,
    bar: Bar,
    positions: np.ndarray,
    held_bits: np.ndarray,
    orders: np.ndarray,
    rs: RuleState,
    entered_only: bool,
    work_f: np.ndarray,
    work_i: np.ndarray,
) -> int:
    """``evaluate_position_rules`` given its working rows. Compiled without reference
    counting: the rule steps it inlines take views of the rule tables per node, and counting
    each would cost more than the rules themselves."""
    adverse_leg = 1.0 if s.intrabar_priority == PRIORITY_STOP else 2.0
    # The assets holding a position first, from their bits (``B_HELD``), in asset order.
    held = rs.ints[RI_SCRATCH_HELD]
    n_held = set_bits(held_bits, held)
    count = 0
    for k in range(n_held):
        a = held[k]
        if entered_only and rs.ints[RI_ENTRY_BAR, a] != t:
            continue
        sid = _rule_set_of(t, a, s, bar, positions, orders, rs)
        if sid < 0:
            continue
        root = _evaluate_set(t, a, sid, positions[a] > 0.0, adverse_leg, rs, bar, work_f, work_i)
        if work_i[W_TRIG, root]:
            rs.ints[RI_OUT_ASSET, count] = a
            rs.ints[RI_OUT_TYPE, count] = work_i[W_KIND, root]
            rs.floats[RF_OUT_LEVEL, count] = work_f[W_LEVEL, root]
            rs.ints[RI_OUT_ORIGIN, count] = work_i[W_ORIGIN, root]
            count += 1
    return count


# The working rows of a rule set's nodes while it is evaluated.
W_WHEN = 0  # floats: when inside the bar the node fires (a key along the bar's path)
W_LEVEL = 1  # floats: the level it exits at
W_TRIG = 0  # ints: 1 when it fires
W_KIND = 1  # ints: the order type that executes it
W_ORIGIN = 2  # ints: its origin code


@folded
def _rule_set_of(
    t: int, a: int, s: Settings, bar: Bar, positions: np.ndarray, orders: np.ndarray,
    rs: RuleState,
) -> int:  # fmt: skip
    """The rule set that watches asset ``a``'s position on this bar, -1 for none (no position,
    no bar, no rules, entered on this bar with ``stops_on_entry_bar`` off, or an exit from an
    earlier bar still working)."""
    if positions[a] == 0.0 or np.isnan(bar.close[a]):
        return -1
    own = rs.ints[RI_POSITION_SET, a]
    sid = own if own >= 0 else rs.ints[RI_ASSET_SET, a]
    if sid < 0:
        return -1
    if rs.ints[RI_ENTRY_BAR, a] == t and not s.stops_on_entry_bar:
        return -1
    pending_exit = rs.ints[RI_EXIT_ORDER, a]
    if pending_exit >= 0:
        status = orders[pending_exit].status
        if status in (OPEN, PARTIALLY_FILLED):
            return -1
    return int(sid)


@folded
def _evaluate_set(
    t: int,
    a: int,
    sid: int,
    long: bool,
    adverse_leg: float,
    rs: RuleState,
    bar: Bar,
    wf: np.ndarray,
    wi: np.ndarray,
) -> int:
    """Evaluate rule set ``sid`` on asset ``a``'s position, children before parents, into the
    working rows; returns the row of its root."""
    start = rs.set_start[sid]
    for node in range(start, rs.set_root[sid] + 1):
        j = node - start
        row = rs.nodes[node]
        wi[W_TRIG, j] = 0
        wf[W_WHEN, j] = np.inf
        wf[W_LEVEL, j] = np.nan
        wi[W_KIND, j] = STOP
        wi[W_ORIGIN, j] = int(row[RN_ORIGIN])
        if int(row[RN_KIND]) <= RULE_SIGNAL_EXIT:
            _leaf_rule(t, a, j, row, long, adverse_leg, rs, bar, wf, wi)
            continue
        pick = _combine(t, a, row, start, rs, wf, wi)
        if pick >= 0:
            wi[W_TRIG, j] = 1
            wf[W_WHEN, j] = wf[W_WHEN, pick]
            wf[W_LEVEL, j] = wf[W_LEVEL, pick]
            wi[W_KIND, j] = wi[W_KIND, pick]
            wi[W_ORIGIN, j] = wi[W_ORIGIN, pick]
    return int(rs.set_root[sid] - start)


@folded
def _leaf_rule(
    t: int,
    a: int,
    j: int,
    row: np.ndarray,
    long: bool,
    adverse_leg: float,
    rs: RuleState,
    bar: Bar,
    wf: np.ndarray,
    wi: np.ndarray,
) -> None:
    """A rule without children: a level (stop loss, take profit, trailing or volatility stop)
    that the bar may reach, or a time or signal exit at the open."""
    k = int(row[RN_KIND])
    v = row[RN_VALUE]
    amount = row[RN_AMOUNT] == 1.0
    slot = int(row[RN_SLOT])
    if k <= RULE_VOLATILITY_STOP:
        d = 1.0 if long else -1.0
        e = rs.floats[RF_ENTRY_PRICE, a]
        if k == RULE_STOP_LOSS:
            lvl = e - d * v if amount else e * (1.0 - d * v)
        elif k == RULE_TAKE_PROFIT:
            lvl = e + d * v if amount else e * (1.0 + d * v)
            wi[W_KIND, j] = LIMIT
        elif k == RULE_TRAILING_STOP:
            x = rs.floats[RF_EXTREME, a]
            lvl = x - d * v if amount else x * (1.0 - d * v)
        else:
            at = rs.ints[RI_ENTRY_REF, a] if row[RN_FIXED] == 1.0 else t - 1
            vol = _column_at(rs.columns, slot, at, a)
            # RN_AMOUNT marks a volatility given as a fraction of price (of the entry).
            lvl = e - d * v * vol * (e if amount else 1.0)
        hit, at_key = _hit(
            k != RULE_TAKE_PROFIT, long, lvl, bar.open[a], bar.high[a], bar.low[a], adverse_leg,
            3.0 - adverse_leg,
        )  # fmt: skip
        wi[W_TRIG, j] = 1 if hit else 0
        wf[W_WHEN, j] = at_key
        wf[W_LEVEL, j] = lvl
        return
    if k == RULE_TIME_EXIT:
        fires = t - rs.ints[RI_ENTRY_BAR, a] >= v
    else:
        value = _column_at(rs.columns, slot, t - 1, a)
        fires = (long and value < v) or (not long and value > v)
    if fires:
        wi[W_TRIG, j] = 1
        wf[W_WHEN, j] = 0.0
        wi[W_KIND, j] = MARKET


@leaf
def _combine(
    t: int, a: int, row: np.ndarray, start: int, rs: RuleState, wf: np.ndarray, wi: np.ndarray
) -> int:
    """Which child of a combinator node decides it (its working row), -1 when none fires: the
    first that fires (chain), the earliest (any of), the last when all fire (all of), or the
    one for the regime of the previous bar (regime)."""
    k = int(row[RN_KIND])
    c0 = int(row[RN_CHILD_START])
    nc = int(row[RN_CHILD_COUNT])
    pick = -1
    if k == RULE_CHAIN:
        for c in range(c0, c0 + nc):
            if wi[W_TRIG, rs.children[c] - start]:
                return int(rs.children[c] - start)
    elif k == RULE_ANY_OF:
        for c in range(c0, c0 + nc):
            m = rs.children[c] - start
            if wi[W_TRIG, m] and (pick < 0 or wf[W_WHEN, m] < wf[W_WHEN, pick]):
                pick = m
    elif k == RULE_ALL_OF:
        for c in range(c0, c0 + nc):
            m = rs.children[c] - start
            if not wi[W_TRIG, m]:
                return -1
            # All must have happened: the exit is when the last of them did.
            if pick < 0 or wf[W_WHEN, m] > wf[W_WHEN, pick]:
                pick = m
    elif k == RULE_REGIME:
        regime = _column_at(rs.columns, int(row[RN_SLOT]), t - 1, a)
        fallback = -1
        for c in range(c0, c0 + nc):
            key = rs.child_keys[c]
            if np.isnan(key):
                fallback = rs.children[c] - start
            elif key == regime:
                pick = rs.children[c] - start
                break
        if pick < 0:
            pick = fallback
        if pick >= 0 and not wi[W_TRIG, pick]:
            pick = -1
    return pick
