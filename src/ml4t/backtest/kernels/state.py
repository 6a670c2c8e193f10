"""The state of a backtest as a few named records, shared by both drivers.

Every phase of a bar (``kernels.clock``) takes these records instead of long argument lists:

- ``Settings``: the config as codes and numbers, built only by ``settings_from_config``, the one
  translation of a ``BacktestConfig`` into what kernels read;
- ``Market``: the ``[bars, assets]`` fields the phases read (a field the feed lacks is one row of
  NaN), and the calendar flags; ``Bar`` is one bar's rows of it (``bar_rows``);
- ``Book``: the order book, the ids of open orders, the fill log, and their counts in one small
  int64 array (``C_ORDERS``, ``C_OPEN``, ``C_FILLS``) that kernels update in place;
- ``Account``: cash and the other account scalars (``S_*``), the per-asset rows (``A_*``:
  positions, pending market quantities, marks, volume used on the bar, borrow rates), the
  commission and slippage tables, and rows of bits over assets (``B_*``: which hold a position);
- ``RuleState``: the entry state of each position and the compiled position-rule tables;
- ``Records``: what is recorded per bar (``REC_*`` rows: cash, positions value, gross exposure,
  borrow fees, interest).

Records group arrays by concern (one 2-D array of rows over assets rather than one array per
quantity) because the event driver hands them to compiled code twice a bar, and numba unboxes
every array of every record on each call. Python keeps views of the rows (``Broker``), so both
sides read and write the same memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple, TypeVar

import numpy as np

from .records import (
    SIZE_AT_DECISION,
    CashPolicy,
    ExecutionOrder,
    FillTiming,
    IntrabarPriority,
    TrailBasis,
)
from .sizing import rounding_code

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..config import BacktestConfig

_Scalar = TypeVar("_Scalar", bound=np.generic)


class Settings(NamedTuple):
    """The settings of a ``BacktestConfig`` as the codes the kernels read (``kernels.records``).

    Built once per run by ``settings_from_config``; both drivers read their codes from it, so a
    setting is turned into its code in one place.
    """

    fractional: bool
    cash_account: bool
    cash_policy: int
    intrabar_priority: int
    max_participation: float  # 0.0: no volume cap
    keep_remainder: bool
    execution_order: int
    clamp_to_bar: bool
    fill_timing: int
    market_at_open: bool  # market orders fill at the open (fill_timing="next_open")
    rounding: int
    fill_sizing: int  # SIZE_AT_DECISION, or the rounding code to size again at the fill
    fill_equity: bool  # sizing_equity="fill": percent targets value equity at the fill bar
    trail_basis: int
    close_trigger: bool  # order_trigger="close": level orders checked at the close only
    stops_on_entry_bar: bool
    rules_first: bool  # open_priority="rules": position rules before the open's fills
    financing: bool
    initial_margin: float
    maintenance_margin: float
    margin_calls: bool  # False: no position is ever closed for margin (Zipline)
    cash_rate: float
    margin_rate: float


def settings_from_config(config: BacktestConfig) -> Settings:
    """The kernel codes of ``config``: each code table's field names are the config's values.

    Example:
        >>> from ml4t.backtest import BacktestConfig
        >>> settings_from_config(BacktestConfig(trail_basis="close")).trail_basis
        1
    """
    rounding = rounding_code(
        fractional=config.fractional_shares,
        target_rounding=config.target_rounding,
        near_whole=config.snap_near_whole,
    )
    return Settings(
        fractional=bool(config.fractional_shares),
        cash_account=config.account == "cash",
        cash_policy=int(getattr(CashPolicy, config.on_insufficient_cash)),
        intrabar_priority=int(getattr(IntrabarPriority, config.intrabar_priority)),
        max_participation=float(config.max_participation or 0.0),
        keep_remainder=config.participation_remainder == "keep",
        execution_order=int(getattr(ExecutionOrder, config.execution_order)),
        clamp_to_bar=bool(config.slippage_within_bar),
        fill_timing=int(getattr(FillTiming, config.fill_timing)),
        market_at_open=config.fill_timing == "next_open",
        rounding=int(rounding),
        fill_sizing=int(rounding if config.sizing_price == "fill" else SIZE_AT_DECISION),
        fill_equity=config.sizing_equity == "fill",
        trail_basis=int(getattr(TrailBasis, config.trail_basis)),
        close_trigger=config.order_trigger == "close",
        stops_on_entry_bar=config.stops_start_on_entry_bar,
        rules_first=config.open_priority == "rules",
        financing=(
            config.borrow_rate_annual > 0.0
            or config.cash_interest_rate_annual > 0.0
            or config.margin_interest_rate_annual > 0.0
        ),
        initial_margin=float(config.initial_margin),
        maintenance_margin=float(config.maintenance_margin),
        margin_calls=bool(config.margin_calls),
        cash_rate=float(config.cash_interest_rate_annual),
        margin_rate=float(config.margin_interest_rate_annual),
    )


class Market(NamedTuple):
    """``[bars, assets]`` fields (read-only; an absent quote field is one row of NaN) and the
    calendar: bars that start a month or a day, and the years since the previous bar."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    spread: np.ndarray
    volatility: np.ndarray
    new_month: np.ndarray
    new_day: np.ndarray
    years: np.ndarray


class Bar(NamedTuple):
    """One bar of ``Market``: a row over assets per field."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    spread: np.ndarray
    volatility: np.ndarray


# Which fill step a bar's phases compile: ``None`` for plain fills (a cash account, no
# slippage, no portfolio limit, sizing at the decision, no smallest-first entries, and no
# all-in, bracket or OCO order in the book), ``True`` for the full one. Numba types
# ``None`` apart and drops every branch under ``full is not None`` when it compiles the plain
# step: a run that needs none of those features does not compile them (``clock.fill_features``).
Full = bool | None
FULL_FILLS: Full = True
PLAIN_FILLS: Full = None


class Book(NamedTuple):
    """Orders (``ORDER_DTYPE``), open order ids, fills (``FILL_DTYPE``) and their counts."""

    orders: np.ndarray
    open_ids: np.ndarray
    fills: np.ndarray
    counts: np.ndarray


C_ORDERS: Final = 0
C_OPEN: Final = 1
C_FILLS: Final = 2
C_WIDTH: Final = 3


class Account(NamedTuple):
    """Cash and account scalars (``S_*``), rows over assets (``A_*``), the cost tables, and
    rows of bits over assets (``B_*``: bit ``a % 64`` of word ``a // 64``)."""

    scalars: np.ndarray
    assets: np.ndarray
    commission: np.ndarray
    slippage: np.ndarray
    bits: np.ndarray


S_CASH: Final = 0
S_MONTH_VOLUME: Final = 1  # shares traded so far this calendar month (tiered commissions)
S_EQUITY: Final = 2  # equity at the latest mark
S_HALT: Final = 3  # the halt state (``kernels.book.H_*``), H_WIDTH values from here
S_LIMITS: Final = 8  # max positions, max position weight, max gross, max net (NaN: unset)
S_DAILY_LIMIT: Final = 12  # loss fraction of the daily loss limit (NaN: unset)
S_DAILY_LIQUIDATE: Final = 13
S_DRAWDOWN_LIMIT: Final = 14
S_DRAWDOWN_LIQUIDATE: Final = 15
S_RULES_ON: Final = 16  # 1 when any position rule is set
# Scratch of the fill step: the account's exposure as its fills move it (``accounts.M_*``, six
# values), kept here so the step allocates nothing.
S_MARKS: Final = 17
# 1 while positions' best prices are kept for rules set later (the event driver, whose strategy
# may set rules mid-run); the compiled driver's rules are fixed, so it keeps them only for a rule
# that reads them (``rules.reads_extremes``: a trailing stop).
S_KEEP_EXTREMES: Final = 23
# Equity marked at the prices of the fill step under way, before its fills (cash plus positions
# at this bar's open, or close in a close step; the last mark where the bar has no price): what
# percent targets are valued at with ``sizing_equity="fill"`` (``step.fill_orders``).
S_FILL_EQUITY: Final = 24
S_WIDTH: Final = 25

A_POSITION: Final = 0
A_PENDING: Final = 1  # signed quantities of market orders still working
A_LAST_PRICE: Final = 2  # the latest close (NaN before the first bar)
A_VOLUME_USED: Final = 3  # volume the fills of this bar took (participation caps)
A_BORROW_RATE: Final = 4
A_WIDTH: Final = 5

# Set where the position is not 0, kept by the one kernel that books a fill
# (``accounts.book_position``): sums over positions visit these assets only, in asset order.
B_HELD: Final = 0
B_SCRATCH: Final = 1  # scratch: the assets a bar's signals may act on (``driver._signal_orders``)
B_WIDTH: Final = 2


def bit_words(n_assets: int) -> int:
    """How many 64-bit words a row of bits over ``n_assets`` assets takes."""
    return (n_assets + 63) // 64


def pack_bits(mask: NDArray[np.bool_], out: NDArray[np.uint64] | None = None) -> NDArray[np.uint64]:
    """Rows of bits (``uint64 [rows, words]``) from a ``[rows, assets]`` mask: bit ``a % 64``
    of word ``a // 64`` of a row is set where the mask is True at asset ``a``. Into ``out``
    (zeros, its rows contiguous) when given.

    Example:
        >>> mask = np.zeros((1, 70), dtype=bool); mask[0, [3, 65]] = True
        >>> [int(w) for w in pack_bits(mask)[0]]
        [8, 2]
    """
    rows, n_assets = mask.shape
    if out is None:
        out = np.zeros((rows, bit_words(n_assets)), dtype=np.uint64)
    # Little-endian words, as the bits are packed: a native view on little-endian machines.
    out.view(np.uint8)[:, : (n_assets + 7) // 8] = np.packbits(mask, axis=1, bitorder="little")
    return out


class RuleState(NamedTuple):
    """Each position's entry state (``RF_*``, ``RI_*`` rows over assets, with the scratch
    rows of the rule exits) and the compiled rule tables (``risk.position.RuleTables``)."""

    floats: np.ndarray
    ints: np.ndarray
    set_start: np.ndarray
    set_root: np.ndarray
    nodes: np.ndarray
    children: np.ndarray
    child_keys: np.ndarray
    columns: np.ndarray


RF_HELD: Final = 0  # the position as the entry tracking last saw it
RF_ENTRY_PRICE: Final = 1
RF_EXTREME: Final = 2  # best price since entry (trailing stops)
RF_OUT_LEVEL: Final = 3  # scratch: levels of the exits a bar triggers
RF_SCRATCH_QTY: Final = 4  # scratch: target deltas of a rebalance
RF_WIDTH: Final = 5

RI_ENTRY_BAR: Final = 0
RI_ENTRY_REF: Final = 1  # the bar the entry was decided on
RI_POSITION_SET: Final = 2  # the rule set of the position (-1: its asset's)
RI_ASSET_SET: Final = 3  # the asset's rule set (its own, else the global one; -1: none)
RI_EXIT_ORDER: Final = 4  # the last rule exit order of the asset
RI_OUT_ASSET: Final = 5  # scratch rows of the exits a bar triggers
RI_OUT_TYPE: Final = 6
RI_OUT_ORIGIN: Final = 7
RI_SCRATCH_IDS: Final = 8
RI_SCRATCH_ASSETS: Final = 9
RI_SCRATCH_HELD: Final = 10  # scratch: the assets holding a position (``rules``, ``set_bits``)
RI_WIDTH: Final = 11

REC_CASH: Final = 0
REC_POSITIONS_VALUE: Final = 1
REC_GROSS: Final = 2
REC_BORROW: Final = 3
REC_INTEREST: Final = 4
REC_WIDTH: Final = 5


def new_account(
    initial_cash: float,
    n_assets: int,
    *,
    borrow_rate: float,
    commission: NDArray[np.float64],
    slippage: NDArray[np.float64],
) -> Account:
    """A fresh account: all cash, nothing held, no marks, no portfolio rules.

    Example:
        >>> acc = new_account(100.0, 2, borrow_rate=0.0, commission=np.zeros((2, 1)),
        ...                   slippage=np.zeros((2, 1)))
        >>> float(acc.scalars[S_CASH]), acc.assets.shape
        (100.0, (5, 2))
    """
    from .book import H_DAY_START, H_PEAK

    scalars = np.zeros(S_WIDTH)
    scalars[S_CASH] = scalars[S_EQUITY] = initial_cash
    scalars[S_HALT + H_DAY_START] = scalars[S_HALT + H_PEAK] = initial_cash
    scalars[S_LIMITS : S_LIMITS + 4] = np.nan
    scalars[S_DAILY_LIMIT] = scalars[S_DRAWDOWN_LIMIT] = np.nan
    scalars[S_KEEP_EXTREMES] = 1.0
    assets = np.zeros((A_WIDTH, n_assets))
    assets[A_LAST_PRICE] = np.nan
    assets[A_BORROW_RATE] = borrow_rate
    bits = np.zeros((B_WIDTH, bit_words(n_assets)), dtype=np.uint64)
    return Account(scalars, assets, commission, slippage, bits)


def new_rule_rows(n_assets: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The ``RuleState`` rows of ``n_assets`` assets with nothing held and no rules set."""
    floats = np.zeros((RF_WIDTH, n_assets))
    floats[RF_ENTRY_PRICE] = floats[RF_EXTREME] = np.nan
    ints = np.zeros((RI_WIDTH, n_assets), dtype=np.int64)
    ints[[RI_ENTRY_BAR, RI_ENTRY_REF, RI_POSITION_SET, RI_ASSET_SET, RI_EXIT_ORDER]] = -1
    return floats, ints


def read_only(array: NDArray[_Scalar]) -> NDArray[_Scalar]:
    """A read-only view of ``array``: every ``Market`` field has one type for numba, so the
    phases compile once (feed arrays are read-only; rows made here must be too)."""
    view = array.view()
    view.setflags(write=False)
    return view


class KernelState(NamedTuple):
    """The records of one run a driver hands to the compiled phases (``Broker.kernel_state``)."""

    settings: Settings
    book: Book
    account: Account
    rules: RuleState
