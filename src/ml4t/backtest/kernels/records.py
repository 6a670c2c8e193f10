"""Record layouts and integer codes shared by the numba kernels and the Python API around them.

Kernels see only these dtypes and integers; the Python side turns them into readable names for
results. Both live here so a code and its name can never drift apart.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

# One row of ORDER_DTYPE or FILL_DTYPE as kernels see it: numba gives field access by attribute,
# which numpy's typing of np.void does not describe.
Record = Any

# Order types.
MARKET: Final = 0
LIMIT: Final = 1
STOP: Final = 2
STOP_LIMIT: Final = 3
TRAILING_STOP: Final = 4
ORDER_TYPE_NAMES: Final = ("market", "limit", "stop", "stop_limit", "trailing_stop")

# Order status.
OPEN: Final = 0
PARTIALLY_FILLED: Final = 1
FILLED: Final = 2
CANCELLED: Final = 3
REJECTED: Final = 4
EXPIRED: Final = 5
INACTIVE: Final = 6  # a bracket child waiting for its entry to fill
STATUS_NAMES: Final = (
    "open",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "expired",
    "waiting_for_parent",
)

# Time in force.
GTC: Final = 0
DAY: Final = 1
TIF_NAMES: Final = ("gtc", "day")

# Why an order ended the way it did (or why a fill was smaller than asked).
R_NONE: Final = 0
R_INSUFFICIENT_CASH: Final = 1
R_SCALED_DOWN: Final = 2
R_SHORT_NOT_ALLOWED: Final = 3
R_CANCELLED_BY_USER: Final = 4
R_NO_PRICE: Final = 5
R_END_OF_DATA: Final = 6
R_TOO_SMALL: Final = 7
R_DAY_EXPIRED: Final = 8
R_OCO: Final = 9
R_PARENT_ENDED: Final = 10
R_BOTH_STOP_FIRST: Final = 11
R_BOTH_LIMIT_FIRST: Final = 12
R_VOLUME_REMAINDER: Final = 13
R_INSUFFICIENT_MARGIN: Final = 14
R_SCALED_DOWN_MARGIN: Final = 15
R_TARGET_MET: Final = 16
R_MAX_POSITIONS: Final = 17
R_MAX_POSITION_WEIGHT: Final = 18
R_MAX_GROSS_EXPOSURE: Final = 19
R_MAX_NET_EXPOSURE: Final = 20
R_DAILY_LOSS_LIMIT: Final = 21
R_MAX_DRAWDOWN_HALT: Final = 22
R_REPLACED_BY_TARGET: Final = 23
REASON_NAMES: Final = (
    "",
    "insufficient_cash",
    "scaled_down_insufficient_cash",
    "short_not_allowed",
    "cancelled_by_user",
    "no_price",
    "open_at_end",
    "below_minimum_quantity",
    "day_order_expired",
    "other_bracket_leg_filled",
    "bracket_entry_ended_unfilled",
    "both_bracket_legs_touched_stop_filled",
    "both_bracket_legs_touched_limit_filled",
    "volume_limit_remainder_cancelled",
    "insufficient_margin",
    "scaled_down_insufficient_margin",
    "target_already_met_at_fill_price",
    "max_positions",
    "max_position_weight",
    "max_gross_exposure",
    "max_net_exposure",
    "daily_loss_limit",
    "max_drawdown_halt",
    "replaced_by_target_order",
)

# Where an order came from; a fill carries its order's origin as its reason.
O_ORDER: Final = 0
O_TARGET: Final = 1
O_REBALANCE: Final = 2
O_CLOSE: Final = 3
O_TAKE_PROFIT: Final = 4
O_STOP_LOSS: Final = 5
O_MARGIN_CALL: Final = 6
O_TRAILING_STOP: Final = 7
O_VOLATILITY_STOP: Final = 8
O_TIME_EXIT: Final = 9
O_SIGNAL_EXIT: Final = 10
O_DAILY_LOSS_LIMIT: Final = 11
O_MAX_DRAWDOWN_HALT: Final = 12
O_FOLD_END: Final = 13  # walk-forward: a fold ends flat at its last close
ORIGIN_NAMES: Final = (
    "order",
    "target",
    "rebalance",
    "close_position",
    "take_profit",
    "stop_loss",
    "margin_call",
    "trailing_stop",
    "volatility_stop",
    "time_exit",
    "signal_exit",
    "daily_loss_limit",
    "max_drawdown_halt",
    "fold_end",
)

# When a step runs: at the bar's open (orders decided on earlier bars) or its close (same-bar mode).
PHASE_OPEN: Final = 0
PHASE_CLOSE: Final = 1

# What a cash account does with a buy it cannot pay for in full.
CASH_SCALE_DOWN: Final = 0
CASH_REJECT: Final = 1

# Which bracket leg fills when one bar touches both (the path inside a bar is unknown).
PRIORITY_STOP: Final = 0
PRIORITY_LIMIT: Final = 1

# The order in which one bar's orders execute.
EXEC_AS_SUBMITTED: Final = 0
EXEC_EXITS_FIRST: Final = 1
EXEC_EXITS_FIRST_SMALLEST: Final = 2
EXECUTION_ORDER_NAMES: Final = ("as_submitted", "exits_first", "exits_first_smallest_entries_first")

# What a trailing stop trails.
TRAIL_HIGH_LOW: Final = 0
TRAIL_CLOSE: Final = 1

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
