"""Record layouts and integer codes shared by the numba kernels and the Python API around them.

Kernels see only these dtypes and integers; the Python side turns them into readable names for
results. Both live here so a code and its name can never drift apart.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple, TypeVar

import numpy as np

# One row of ORDER_DTYPE or FILL_DTYPE as kernels see it: numba gives field access by attribute,
# which numpy's typing of np.void does not describe.
Record = Any

# Each set of codes is one table: a NamedTuple whose field names are the names results show
# and whose values are the codes (VectorBT's ``enums.py`` style), so a code and its name can
# never drift apart. Kernels read the short ``X: Final`` aliases below: module-level ints, which
# numba freezes into the compiled code as constants. Each alias is bound by field name.


_Table = TypeVar("_Table", bound=tuple[Any, ...])


def names(table: type[tuple[Any, ...]]) -> tuple[str, ...]:
    """A table's names, indexed by code: its NamedTuple field names.

    Example:
        >>> names(FillTimingT)
        ('next_open', 'same_close', 'next_close')
    """
    fields: tuple[str, ...] = table._fields  # type: ignore[attr-defined]  # a NamedTuple's
    return fields


def codes(table: type[_Table]) -> _Table:
    """A table's codes: each field holds its own position, so ``names(table)[code]`` is the
    code's name.

    Example:
        >>> codes(FillTimingT).same_close
        1
    """
    return table(*range(len(names(table))))


class OrderTypeT(NamedTuple):
    market: int
    limit: int
    stop: int
    stop_limit: int
    trailing_stop: int


OrderType: Final = codes(OrderTypeT)
MARKET: Final = OrderType.market
LIMIT: Final = OrderType.limit
STOP: Final = OrderType.stop
STOP_LIMIT: Final = OrderType.stop_limit
TRAILING_STOP: Final = OrderType.trailing_stop


class StatusT(NamedTuple):
    open: int
    partially_filled: int
    filled: int
    cancelled: int
    rejected: int
    expired: int
    waiting_for_parent: int  # a bracket child waiting for its entry to fill


Status: Final = codes(StatusT)
OPEN: Final = Status.open
PARTIALLY_FILLED: Final = Status.partially_filled
FILLED: Final = Status.filled
CANCELLED: Final = Status.cancelled
REJECTED: Final = Status.rejected
EXPIRED: Final = Status.expired
INACTIVE: Final = Status.waiting_for_parent


class TimeInForceT(NamedTuple):
    gtc: int
    day: int


TimeInForce: Final = codes(TimeInForceT)
GTC: Final = TimeInForce.gtc
DAY: Final = TimeInForce.day


class ReasonT(NamedTuple):
    """Why an order ended the way it did (or why a fill was smaller than asked)."""

    none: int  # shown as an empty reason
    insufficient_cash: int
    scaled_down_insufficient_cash: int
    short_not_allowed: int
    cancelled_by_user: int
    open_at_end: int
    day_order_expired: int
    other_bracket_leg_filled: int
    bracket_entry_ended_unfilled: int
    both_bracket_legs_touched_stop_filled: int
    both_bracket_legs_touched_limit_filled: int
    volume_limit_remainder_cancelled: int
    insufficient_margin: int
    scaled_down_insufficient_margin: int
    target_already_met_at_fill_price: int
    max_positions: int
    max_position_weight: int
    max_gross_exposure: int
    max_net_exposure: int
    daily_loss_limit: int
    max_drawdown_halt: int
    replaced_by_target_order: int
    replaced_by_position_rule: int  # open_priority="rules": a rule exit replaced the order


Reason: Final = codes(ReasonT)
R_NONE: Final = Reason.none
R_INSUFFICIENT_CASH: Final = Reason.insufficient_cash
R_SCALED_DOWN: Final = Reason.scaled_down_insufficient_cash
R_SHORT_NOT_ALLOWED: Final = Reason.short_not_allowed
R_CANCELLED_BY_USER: Final = Reason.cancelled_by_user
R_END_OF_DATA: Final = Reason.open_at_end
R_DAY_EXPIRED: Final = Reason.day_order_expired
R_OCO: Final = Reason.other_bracket_leg_filled
R_PARENT_ENDED: Final = Reason.bracket_entry_ended_unfilled
R_BOTH_STOP_FIRST: Final = Reason.both_bracket_legs_touched_stop_filled
R_BOTH_LIMIT_FIRST: Final = Reason.both_bracket_legs_touched_limit_filled
R_VOLUME_REMAINDER: Final = Reason.volume_limit_remainder_cancelled
R_INSUFFICIENT_MARGIN: Final = Reason.insufficient_margin
R_SCALED_DOWN_MARGIN: Final = Reason.scaled_down_insufficient_margin
R_TARGET_MET: Final = Reason.target_already_met_at_fill_price
R_MAX_POSITIONS: Final = Reason.max_positions
R_MAX_POSITION_WEIGHT: Final = Reason.max_position_weight
R_MAX_GROSS_EXPOSURE: Final = Reason.max_gross_exposure
R_MAX_NET_EXPOSURE: Final = Reason.max_net_exposure
R_DAILY_LOSS_LIMIT: Final = Reason.daily_loss_limit
R_MAX_DRAWDOWN_HALT: Final = Reason.max_drawdown_halt
R_REPLACED_BY_TARGET: Final = Reason.replaced_by_target_order
R_REPLACED_BY_RULE: Final = Reason.replaced_by_position_rule


class OriginT(NamedTuple):
    """Where an order came from; a fill carries its order's origin as its reason."""

    order: int
    target: int
    rebalance: int
    close_position: int
    take_profit: int
    stop_loss: int
    margin_call: int
    trailing_stop: int
    volatility_stop: int
    time_exit: int
    signal_exit: int
    daily_loss_limit: int
    max_drawdown_halt: int
    fold_end: int  # walk-forward: a fold ends flat at its last close
    end_of_run: int  # close_at_end=True: the run ends flat at its last close


Origin: Final = codes(OriginT)
O_ORDER: Final = Origin.order
O_TARGET: Final = Origin.target
O_REBALANCE: Final = Origin.rebalance
O_CLOSE: Final = Origin.close_position
O_TAKE_PROFIT: Final = Origin.take_profit
O_STOP_LOSS: Final = Origin.stop_loss
O_MARGIN_CALL: Final = Origin.margin_call
O_TRAILING_STOP: Final = Origin.trailing_stop
O_VOLATILITY_STOP: Final = Origin.volatility_stop
O_TIME_EXIT: Final = Origin.time_exit
O_SIGNAL_EXIT: Final = Origin.signal_exit
O_DAILY_LOSS_LIMIT: Final = Origin.daily_loss_limit
O_MAX_DRAWDOWN_HALT: Final = Origin.max_drawdown_halt
O_FOLD_END: Final = Origin.fold_end
O_END_OF_RUN: Final = Origin.end_of_run


class ExecutionOrderT(NamedTuple):
    """The order in which one bar's orders execute."""

    as_submitted: int
    exits_first: int
    exits_first_smallest_entries_first: int


ExecutionOrder: Final = codes(ExecutionOrderT)
EXEC_AS_SUBMITTED: Final = ExecutionOrder.as_submitted
EXEC_EXITS_FIRST: Final = ExecutionOrder.exits_first
EXEC_EXITS_FIRST_SMALLEST: Final = ExecutionOrder.exits_first_smallest_entries_first

# The names results show, indexed by code, each taken from its table.
ORDER_TYPE_NAMES: Final[tuple[str, ...]] = names(OrderTypeT)
STATUS_NAMES: Final[tuple[str, ...]] = names(StatusT)
TIF_NAMES: Final[tuple[str, ...]] = names(TimeInForceT)
REASON_NAMES: Final[tuple[str, ...]] = ("", *names(ReasonT)[1:])  # no reason reads as ""
ORIGIN_NAMES: Final[tuple[str, ...]] = names(OriginT)
EXECUTION_ORDER_NAMES: Final[tuple[str, ...]] = names(ExecutionOrderT)

# When a step runs: at the bar's open (orders decided on earlier bars) or its close (same-bar mode).
PHASE_OPEN: Final = 0
PHASE_CLOSE: Final = 1

# Settings of ``BacktestConfig`` as kernel codes: each table's field names are the config's
# values, so the config compiles to codes by name (``getattr(CashPolicy, value)``).


class CashPolicyT(NamedTuple):
    """What an account does with a fill it cannot pay for in full (a cash account's buy, a
    margin account's fill past its initial margin): cut it, refuse it, or let it through
    unchecked (Zipline: cash may go negative)."""

    scale_down: int
    reject: int
    allow: int


CashPolicy: Final = codes(CashPolicyT)
CASH_SCALE_DOWN: Final = CashPolicy.scale_down
CASH_REJECT: Final = CashPolicy.reject
CASH_ALLOW: Final = CashPolicy.allow


class IntrabarPriorityT(NamedTuple):
    """Which bracket leg fills when one bar touches both (the path inside a bar is unknown)."""

    stop: int
    limit: int


IntrabarPriority: Final = codes(IntrabarPriorityT)
PRIORITY_STOP: Final = IntrabarPriority.stop
PRIORITY_LIMIT: Final = IntrabarPriority.limit


class TrailBasisT(NamedTuple):
    """What a trailing stop trails."""

    high_low: int
    close: int


TrailBasis: Final = codes(TrailBasisT)
TRAIL_HIGH_LOW: Final = TrailBasis.high_low
TRAIL_CLOSE: Final = TrailBasis.close


class FillTimingT(NamedTuple):
    """When market orders fill: the next bar's open, this bar's close or the next bar's close."""

    next_open: int
    same_close: int
    next_close: int


FillTiming: Final = codes(FillTimingT)


class RoundingT(NamedTuple):
    """How target sizing makes whole shares (``kernels.sizing``): not at all (fractional
    shares), the target rounded towards zero (``target_rounding="target"``), or the order
    (``target_rounding="order"``); the ``_near_whole`` codes first snap an amount within
    ``sizing.NEAR_WHOLE`` of a whole number to it (``snap_near_whole=True``)."""

    fractional: int
    target: int
    order: int
    target_near_whole: int
    order_near_whole: int


Rounding: Final = codes(RoundingT)
ROUND_NONE: Final = Rounding.fractional
ROUND_TARGET: Final = Rounding.target
ROUND_ORDER: Final = Rounding.order
ROUND_TARGET_NEAR_WHOLE: Final = Rounding.target_near_whole
ROUND_ORDER_NEAR_WHOLE: Final = Rounding.order_near_whole
# ``fill_orders``' re-sizing setting when targets are sized at decision time, not at the fill.
SIZE_AT_DECISION: Final = -1

# Position rules, compiled to one row per node of a rule tree (see ``risk.position``). Leaves
# compute a level or a condition; combinators pick among their children.
RULE_STOP_LOSS: Final = 0
RULE_TAKE_PROFIT: Final = 1
RULE_TRAILING_STOP: Final = 2
RULE_VOLATILITY_STOP: Final = 3
RULE_TIME_EXIT: Final = 4
RULE_SIGNAL_EXIT: Final = 5
RULE_CHAIN: Final = 6
RULE_ANY_OF: Final = 7
RULE_ALL_OF: Final = 8
RULE_REGIME: Final = 9
# Columns of a rule node row.
RN_KIND: Final = 0
RN_AMOUNT: Final = 1  # 1: the value is a distance in price units; 0: a fraction of the anchor
RN_VALUE: Final = 2  # the fraction, distance, ATR multiple, bar count or threshold
RN_SLOT: Final = 3  # which column of the rule data the node reads, -1 for none
RN_FIXED: Final = 4  # volatility stops: 1 reads the volatility at entry, 0 the latest
RN_CHILD_START: Final = 5
RN_CHILD_COUNT: Final = 6
RN_ORIGIN: Final = 7  # the exit reason a leaf gives its fill
RULE_NODE_WIDTH: Final = 8

# The order book: one record per order ever submitted; an order's id is its row.
ORDER_DTYPE: Final = np.dtype(
    [
        ("asset", np.int64),
        ("quantity", np.float64),  # signed as submitted: > 0 buys, < 0 sells
        ("filled", np.float64),  # signed quantity filled so far
        ("avg_price", np.float64),  # volume-weighted fill price, NaN until the first fill
        ("commission", np.float64),
        ("limit_price", np.float64),
        ("stop_price", np.float64),
        ("trail_amount", np.float64),  # trailing stops: distance in price units, or NaN
        ("trail_percent", np.float64),  # trailing stops: distance as a fraction, or NaN
        ("trail_ref", np.float64),  # best price seen since submission (high for sells)
        ("target_value", np.float64),  # target orders sized at the fill price; NaN otherwise
        # (+-inf: all-in, resolved at the fill from what the cash or margin allows)
        ("target_weight", np.float64),  # sizing_equity="fill": the weight of equity; else NaN
        ("level_offset", np.float64),  # bracket legs anchored to the entry fill: level/fill - 1
        ("parent", np.int64),  # bracket children: the entry's id; -1 otherwise
        ("oco", np.int64),  # bracket children: the other leg's id; -1 otherwise
        ("rule_set", np.int64),  # position rules for the position it opens; -1: asset's own
        ("submit_bar", np.int64),
        ("active_bar", np.int64),  # bar from which the order works (children: entry fill bar)
        ("end_bar", np.int64),  # bar of the last fill, cancellation or rejection; -1 while open
        ("order_type", np.int8),
        ("tif", np.int8),
        ("triggered", np.bool_),  # stop-limit: the stop has been touched, it is now a limit
        ("status", np.int8),
        ("reason", np.int8),
        ("origin", np.int8),
    ],
    align=True,
)

# One record per fill.
FILL_DTYPE: Final = np.dtype(
    [
        ("bar", np.int64),
        ("asset", np.int64),
        ("order_id", np.int64),
        ("quantity", np.float64),  # signed: > 0 bought, < 0 sold
        ("price", np.float64),  # after slippage
        ("commission", np.float64),
        ("slippage", np.float64),  # cost of slippage in cash, always >= 0
        ("origin", np.int8),
    ],
    align=True,
)
