"""Orders and fills: the value objects users see, and the growable record stores behind them.

The stores keep every order and fill as one preallocated record array each (layouts in
``kernels.records``), so the compiled step reads and writes them without Python objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from .kernels.book import write_orders
from .kernels.jit import compiled_entry
from .kernels.records import (
    FILL_DTYPE,
    GTC,
    MARKET,
    OPEN,
    ORDER_DTYPE,
    ORDER_TYPE_NAMES,
    ORIGIN_NAMES,
    REASON_NAMES,
    STATUS_NAMES,
    TIF_NAMES,
)
from .kernels.state import C_FILLS, C_OPEN, C_ORDERS, C_WIDTH

_INITIAL_CAPACITY = 1024
_T = TypeVar("_T", bound=np.generic)


@dataclass(frozen=True, slots=True)
class Order:
    """A snapshot of one order, as ``broker.open_orders`` returns it.

    Example:
        >>> order = broker.open_orders[0]  # doctest: +SKIP
        >>> order.asset, order.quantity, order.status  # doctest: +SKIP
        ('AAPL', 100.0, 'open')
    """

    id: int
    asset: str
    quantity: float
    filled: float
    order_type: str
    status: str
    reason: str
    origin: str
    submit_bar: int
    limit_price: float
    stop_price: float
    tif: str
    parent: int

    @property
    def side(self) -> str:
        """``"buy"`` or ``"sell"``."""
        return "buy" if self.quantity > 0 else "sell"

    @property
    def remaining(self) -> float:
        """Signed quantity still to fill."""
        return self.quantity - self.filled


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution, as ``Strategy.on_fill`` receives it.

    ``quantity`` is positive; ``side`` says the direction. ``price`` includes slippage;
    ``slippage`` is its cost in cash.

    Example:
        >>> def on_fill(self, fill, broker):  # doctest: +SKIP
        ...     print(fill.timestamp, fill.asset, fill.side, fill.quantity, fill.price)
    """

    timestamp: datetime
    asset: str
    side: str
    quantity: float
    price: float
    commission: float
    slippage: float
    order_id: int
    reason: str


class OrderBook:
    """Every order ever submitted (one record each, id = row) and the ids still open.

    The counts live in ``counts`` (``kernels.state.C_*``), shared with the ``FillLog`` of the
    same run, so compiled phases update them in place."""

    def __init__(self) -> None:
        self.records: NDArray[np.void] = np.zeros(_INITIAL_CAPACITY, dtype=ORDER_DTYPE)
        self.open_ids: NDArray[np.int64] = np.zeros(_INITIAL_CAPACITY, dtype=np.int64)
        self.counts: NDArray[np.int64] = np.zeros(C_WIDTH, dtype=np.int64)
        # Whether an all-in, bracket or OCO order was ever added: the phases then take the full
        # fill step (``kernels.clock.fill_features``). Kernels that add orders set it through
        # their driver (the compiled driver, from its decisions).
        self.needs_full_fills = False

    @property
    def n(self) -> int:
        """How many orders were submitted (the next order's id)."""
        return int(self.counts[C_ORDERS])

    @n.setter
    def n(self, value: int) -> None:
        self.counts[C_ORDERS] = value

    @property
    def n_open(self) -> int:
        """How many ids of ``open_ids`` are open orders (or bracket legs waiting)."""
        return int(self.counts[C_OPEN])

    @n_open.setter
    def n_open(self, value: int) -> None:
        self.counts[C_OPEN] = value

    def add(
        self,
        assets: NDArray[np.int64],
        quantities: NDArray[np.float64],
        *,
        bar: int,
        origin: int,
        order_type: int = MARKET,
        limit_price: float = np.nan,
        stop_price: float = np.nan,
        trail_amount: float = np.nan,
        trail_percent: float = np.nan,
        trail_ref: float = np.nan,
        level_offset: float = np.nan,
        target_value: NDArray[np.float64] | float = np.nan,
        target_weight: NDArray[np.float64] | float = np.nan,
        tif: int = GTC,
        parent: int = -1,
        oco: int = -1,
        status: int = OPEN,
    ) -> NDArray[np.int64]:
        """Append orders (one per asset/quantity pair, the rest shared) and return their ids."""
        k = len(assets)
        self.reserve(k)
        n, n_open = int(self.counts[C_ORDERS]), int(self.counts[C_OPEN])
        assets, quantities = _c_array(assets, np.int64), _c_array(quantities, np.float64)
        values = _c_array(np.asarray(target_value, dtype=np.float64).reshape(-1), np.float64)
        if not self.needs_full_fills and (
            parent >= 0 or oco >= 0 or (np.isinf(values[0]) if k == 1 else np.isinf(values).any())
        ):
            self.needs_full_fills = True
        global _write_orders_call
        if _write_orders_call is None:
            # Typed once with the scalars as their kernel types; later calls go straight to
            # the compiled function, whose unboxing converts each scalar to that type.
            args = (
                self.records, n, self.open_ids, n_open, assets, quantities, int(bar),
                int(origin), int(order_type), float(limit_price), float(stop_price),
                float(trail_amount), float(trail_percent), float(trail_ref),
                float(level_offset), values, int(tif), int(parent), int(oco), int(status),
            )  # fmt: skip
            write_orders(*args)
            _write_orders_call = compiled_entry(write_orders, args)
        else:
            _write_orders_call(
                self.records, n, self.open_ids, n_open, assets, quantities, bar, origin,
                order_type, limit_price, stop_price, trail_amount, trail_percent, trail_ref,
                level_offset, values, tif, parent, oco, status,
            )  # fmt: skip
        # A weight of equity (sizing_equity="fill"), one or one per order; the kernel wrote
        # NaN (none).
        if not (isinstance(target_weight, float) and math.isnan(target_weight)):
            self.records["target_weight"][n : n + k] = target_weight
        self.counts[C_ORDERS] = n + k
        self.counts[C_OPEN] = n_open + k
        return np.arange(n, n + k, dtype=np.int64)

    def snapshot(self, oid: int, assets: NDArray[np.str_]) -> Order:
        """A readable copy of order ``oid``."""
        r = self.records[oid]
        return Order(
            id=int(oid),
            asset=str(assets[r["asset"]]),
            quantity=float(r["quantity"]),
            filled=float(r["filled"]),
            order_type=ORDER_TYPE_NAMES[r["order_type"]],
            status=STATUS_NAMES[r["status"]],
            reason=REASON_NAMES[r["reason"]],
            origin=ORIGIN_NAMES[r["origin"]],
            submit_bar=int(r["submit_bar"]),
            limit_price=float(r["limit_price"]),
            stop_price=float(r["stop_price"]),
            tif=TIF_NAMES[r["tif"]],
            parent=int(r["parent"]),
        )

    def reserve(self, k: int) -> None:
        """Make room for ``k`` more orders (kernels that add orders cannot grow the arrays)."""
        self.records = _with_room(self.records, self.n, k)
        self.open_ids = _with_room(self.open_ids, self.n_open, k)


class FillLog:
    """Every fill, in the order they happened, as one growable record array.

    ``counts`` is the counts array of the run's ``OrderBook`` (the fill count is
    ``counts[C_FILLS]``); a log of its own when none is given."""

    def __init__(self, counts: NDArray[np.int64] | None = None) -> None:
        self.records: NDArray[np.void] = np.zeros(_INITIAL_CAPACITY, dtype=FILL_DTYPE)
        self.counts = counts if counts is not None else np.zeros(C_WIDTH, dtype=np.int64)

    @property
    def n(self) -> int:
        """How many fills there are."""
        return int(self.counts[C_FILLS])

    @n.setter
    def n(self, value: int) -> None:
        self.counts[C_FILLS] = value

    def reserve(self, k: int) -> None:
        """Make room for ``k`` more fills (the step writes at most one per open order)."""
        self.records = _with_room(self.records, self.n, k)

    def view(self) -> NDArray[np.void]:
        """The fills recorded so far (a view, not a copy)."""
        return self.records[: self.n]


# ``write_orders``' compiled function for the book's argument types (the same for every book).
_write_orders_call: Callable[..., None] | None = None


def _c_array(values: NDArray[Any], dtype: type) -> NDArray[Any]:
    """``values`` as a writeable, aligned, C-ordered array of ``dtype`` (itself when it is
    one): the layout ``write_orders`` was typed for."""
    out: NDArray[Any] = np.asarray(values, dtype=dtype)
    return out if out.flags.carray else np.array(out, dtype=dtype, order="C")


def _with_room(array: NDArray[_T], used: int, k: int) -> NDArray[_T]:
    """``array`` itself if ``k`` more rows fit after ``used``, else a copy at least twice as big."""
    if used + k <= len(array):
        return array
    # Uninitialised: rows past ``used`` are written before they are read, and pages never
    # touched cost nothing (zeroing a reserve sized for the worst case can cost more than the run).
    grown = np.empty(max(2 * len(array), used + k), dtype=array.dtype)
    # Copied as bytes: numpy copies a record array record by record, field by field (five
    # times slower; a wide universe's book of 140,000 orders took 35 ms to grow).
    size = used * array.dtype.itemsize
    grown.view(np.uint8)[:size] = array.view(np.uint8)[:size]
    return grown
