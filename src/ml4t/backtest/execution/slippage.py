"""Slippage models: the price an order really fills at, given the price it would fill at without.

Each model is a small frozen class with one method, ``fill_price``. The built-in models also
have a compiled form: ``to_params()`` packs the model into a fixed-length float row whose first
entry is a model code, and ``slippage_kernel`` (numba) turns that row plus one bar's quote data
into the fill price. The built-ins' ``fill_price`` calls the same kernel, so the Python API and
the compiled broker step share one implementation. Models the kernel cannot run (a plain
callable, a user subclass) get the code ``SLIPPAGE_PYTHON``; the engine calls their
``fill_price`` from Python instead.

Slippage is always adverse: a buy never fills below the reference price, a sell never above it.
Whether slippage may push a fill outside the bar's [low, high] range is an engine setting.

A constant a model is given wins over any column; a model without one reads its column (the
default name, or the one the model names) from the bar's quote fields. The broker hands the step
each asset's named column in the field's slot (``engine.step_arrays``).

Params row layout (``SLIPPAGE_PARAMS_WIDTH`` floats; unused entries are 0)::

    leaf models     [code, p1, p2, p3, 0, ...]            code and parameters in row[0:8]
      SLIPPAGE_NONE          [0]
      SLIPPAGE_PERCENT       [1, rate]
      SLIPPAGE_FIXED_BPS     [2, bps]
      SLIPPAGE_PER_SHARE     [3, amount]
      SLIPPAGE_SPREAD        [4, spread or NaN, spread_bps or NaN, 1 if a named column]
      SLIPPAGE_VOLUME_SHARE  [5, impact, exponent, volatility or NaN, 1 if cumulative]
    SLIPPAGE_ORDER_TYPE      [6, 0 x 7 | market leaf row | limit leaf row | stop leaf row]
                             three leaf rows of SLIPPAGE_LEAF_WIDTH at offsets 8, 16 and 24
    SLIPPAGE_PYTHON          [-1]                         the kernel returns NaN
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from numbers import Real
from typing import Final, TypeAlias

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..kernels.jit import leaf
from ..kernels.records import LIMIT, MARKET, STOP, STOP_LIMIT, TRAILING_STOP

__all__ = [
    "NO_QUOTE",
    "QUOTE_FIELDS",
    "SLIPPAGE_COMBINED",
    "SLIPPAGE_FIXED_BPS",
    "SLIPPAGE_LEAF_WIDTH",
    "SLIPPAGE_NONE",
    "SLIPPAGE_ORDER_TYPE",
    "SLIPPAGE_PARAMS_WIDTH",
    "SLIPPAGE_PERCENT",
    "SLIPPAGE_PER_SHARE",
    "SLIPPAGE_PYTHON",
    "SLIPPAGE_SPREAD",
    "SLIPPAGE_VOLUME_SHARE",
    "BarQuote",
    "CallableSlippage",
    "CombinedSlippage",
    "FixedBpsSlippage",
    "NoSlippage",
    "OrderTypeSlippage",
    "PerShareSlippage",
    "PercentSlippage",
    "SlippageFn",
    "SlippageModel",
    "SlippageSpec",
    "SpreadSlippage",
    "VolumeShareSlippage",
    "as_slippage_model",
    "check_slippage_fields",
    "prices_at_reference",
    "slippage_kernel",
    "slippage_table",
]

# Model codes: the first entry of a params row.
SLIPPAGE_PYTHON: Final = -1
SLIPPAGE_NONE: Final = 0
SLIPPAGE_PERCENT: Final = 1
SLIPPAGE_FIXED_BPS: Final = 2
SLIPPAGE_PER_SHARE: Final = 3
SLIPPAGE_SPREAD: Final = 4
SLIPPAGE_VOLUME_SHARE: Final = 5
SLIPPAGE_ORDER_TYPE: Final = 6
SLIPPAGE_COMBINED: Final = 7

# A leaf model fits in 8 floats; an order-type or combined model is a header plus up to three
# leaf rows, so every row of a per-asset table has the same width whatever model each asset uses.
SLIPPAGE_LEAF_WIDTH: Final = 8
SLIPPAGE_PARAMS_WIDTH: Final = 4 * SLIPPAGE_LEAF_WIDTH
_MARKET_OFFSET: Final = SLIPPAGE_LEAF_WIDTH
_LIMIT_OFFSET: Final = 2 * SLIPPAGE_LEAF_WIDTH
_STOP_OFFSET: Final = 3 * SLIPPAGE_LEAF_WIDTH
_MAX_COMBINED: Final = 3

# Names of the per-bar quote fields a model may read (BarQuote's fields, the feed's columns).
QUOTE_FIELDS: Final = ("volume", "bid", "ask", "spread", "volatility")

_BPS: Final = 10_000.0


# --------------------------------------------------------------------------------------------
# The kernel: one implementation of every built-in model.
# --------------------------------------------------------------------------------------------


@leaf
def _leaf_fill_price(
    params: np.ndarray,
    base: int,
    price: float,
    quantity: float,
    volume: float,
    bid: float,
    ask: float,
    spread: float,
    volatility: float,
    used: float,
) -> float:
    """Fill price of the leaf model whose row starts at ``params[base]``; ``used`` is the
    volume already filled on the asset in this bar (cumulative volume-share models)."""
    code = params[base]
    if code == SLIPPAGE_NONE:
        return price
    buy = quantity > 0.0

    if code in (SLIPPAGE_PERCENT, SLIPPAGE_FIXED_BPS):
        rate = float(params[base + 1])
        if code == SLIPPAGE_FIXED_BPS:
            rate = rate / _BPS
        # Same expression as the original flat-rate step, so PercentSlippage(s) reproduces
        # BacktestConfig(slippage=s) results bit for bit. Validation keeps rate < 1.
        return price * (1.0 + rate) if buy else price * (1.0 - rate)

    if code == SLIPPAGE_PER_SHARE:
        amount = float(params[base + 1])
        # A fixed amount can exceed a low price; a sell cannot fill below zero.
        return price + amount if buy else max(price - amount, 0.0)

    if code == SLIPPAGE_SPREAD:
        # A constant the user gave wins over columns; without one, the bar's own quotes, then
        # its spread column (a column the model names: that column only).
        if not np.isnan(params[base + 1]):
            half = 0.5 * float(params[base + 1])
        elif not np.isnan(params[base + 2]):
            half = 0.5 * price * float(params[base + 2]) / _BPS
        elif params[base + 3] == 0.0 and not (np.isnan(bid) or np.isnan(ask)):
            half = 0.5 * (ask - bid)
        elif not np.isnan(spread):
            half = 0.5 * spread
        else:
            return np.nan
        # A crossed quote (ask < bid) or a negative spread value is bad data, not a rebate:
        # slippage stays adverse, at worst zero.
        half = max(half, 0.0)
        return price + half if buy else max(price - half, 0.0)

    if code == SLIPPAGE_VOLUME_SHARE:
        # No volume, no fill: the engine does not fill such a bar, the kernel says it cannot.
        if not volume > 0.0:
            return np.nan
        # A constant the user gave wins over the column.
        sigma = float(params[base + 3])
        if np.isnan(sigma):
            sigma = volatility
            if np.isnan(sigma):
                return np.nan
        sigma = max(sigma, 0.0)
        impact = float(params[base + 1])
        exponent = float(params[base + 2])
        # Cumulative: the participation of everything filled on the bar so far plus this fill,
        # as Zipline's VolumeShareSlippage prices it (volume_for_bar + cur_volume).
        shares = abs(quantity) + (used if params[base + 4] == 1.0 else 0.0)
        fraction: float = impact * sigma * (shares / volume) ** exponent
        return price * (1.0 + fraction) if buy else price * max(1.0 - fraction, 0.0)

    # SLIPPAGE_PYTHON and unknown codes: the kernel cannot price this fill.
    return np.nan


@leaf
def slippage_kernel(
    params: np.ndarray,
    price: float,
    quantity: float,
    order_type: int,
    volume: float,
    bid: float,
    ask: float,
    spread: float,
    volatility: float,
    used: float = 0.0,
) -> float:
    """Fill price after slippage for the model packed in ``params`` (one row of a table).

    ``price`` is the reference price (open, close, limit or stop level) and ``quantity`` the
    signed fill quantity (> 0 buys). ``order_type`` is a code from ``kernels.records``.
    ``volume``, ``bid``, ``ask``, ``spread`` and ``volatility`` are the bar's quote fields for
    the asset, NaN where the feed has no such column or no value at this bar. ``used`` is the
    volume already filled on the asset in this bar, which only a cumulative
    ``VolumeShareSlippage`` reads.

    Returns NaN when the model cannot price the fill: a ``SLIPPAGE_PYTHON`` row, no spread
    source, zero or missing volume or volatility for the volume-share model, an order type the
    order-type model does not route. A zero quantity fills at ``price``.
    """
    if np.isnan(quantity):
        return np.nan
    if quantity == 0.0:
        return price
    if params[0] == SLIPPAGE_COMBINED:
        # Each part's slippage from the same reference price, added up.
        total = 0.0
        for k in range(1, int(params[1]) + 1):
            part = _leaf_fill_price(
                params, k * SLIPPAGE_LEAF_WIDTH, price, quantity, volume, bid, ask, spread,
                volatility, used,
            )  # fmt: skip
            if np.isnan(part):
                return np.nan
            total += part - price
        return price + total if quantity > 0.0 else max(price + total, 0.0)
    base = 0
    if params[0] == SLIPPAGE_ORDER_TYPE:
        # Stop-limit orders fill as limit orders once triggered (at the limit or better);
        # trailing stops fill as stops (a market order once triggered).
        if order_type == MARKET:
            base = _MARKET_OFFSET
        elif order_type in (LIMIT, STOP_LIMIT):
            base = _LIMIT_OFFSET
        elif order_type in (STOP, TRAILING_STOP):
            base = _STOP_OFFSET
        else:
            return np.nan
    return _leaf_fill_price(
        params, base, price, quantity, volume, bid, ask, spread, volatility, used
    )


# --------------------------------------------------------------------------------------------
# The Python API.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BarQuote:
    """One asset's quote data at one bar, as a slippage model sees it; NaN where absent.

    Example:
        >>> quote = BarQuote(volume=1e6, bid=99.95, ask=100.05)
        >>> SpreadSlippage().fill_price(100.0, 10, bar=quote)
        100.05
    """

    volume: float = math.nan
    bid: float = math.nan
    ask: float = math.nan
    # In price units: the feed's ``spread`` column, or the column the model names.
    spread: float = math.nan
    # Per bar (daily vol for daily bars) as a fraction: ``volatility``, or the named column.
    volatility: float = math.nan


NO_QUOTE: Final = BarQuote()


def _python_row() -> NDArray[np.float64]:
    row = np.zeros(SLIPPAGE_PARAMS_WIDTH, dtype=np.float64)
    row[0] = SLIPPAGE_PYTHON
    return row


class SlippageModel(ABC):
    """Base class of slippage models; subclass it and implement ``fill_price`` for your own.

    A subclass is run from Python for each fill (the compiled step cannot call it). It must be
    adverse: a buy (``quantity > 0``) never fills below ``price``, a sell never above; NaN
    means the model cannot price the fill at this bar.

    Example:
        >>> class HalfTick(SlippageModel):
        ...     def fill_price(self, price, quantity, *, order_type=MARKET, bar=NO_QUOTE):
        ...         return price + 0.005 if quantity > 0 else price - 0.005
    """

    @abstractmethod
    def fill_price(
        self,
        price: float,
        quantity: float,
        *,
        order_type: int = MARKET,
        bar: BarQuote = NO_QUOTE,
    ) -> float:
        """The fill price after slippage.

        Args:
            price: The price the order would fill at without slippage (open, close, limit or
                stop level).
            quantity: Signed fill quantity: > 0 buys (pays more), < 0 sells (gets less).
            order_type: ``MARKET``, ``LIMIT``, ``STOP``, ``STOP_LIMIT`` or ``TRAILING_STOP``
                from ``ml4t.backtest.kernels.records``.
            bar: The bar's quote data for the asset.
        """

    def to_params(self) -> NDArray[np.float64]:
        """The model as a kernel params row; ``SLIPPAGE_PYTHON`` unless the kernel can run it."""
        return _python_row()

    def required_fields(self) -> tuple[tuple[str, ...], ...]:
        """Feed columns the model needs, as alternatives.

        The feed must hold every column of at least one returned group; an empty tuple means
        the model needs no column. ``(("bid", "ask"), ("spread",))`` reads "bid and ask, or
        spread".
        """
        return ()

    def quote_columns(self) -> dict[str, str]:
        """The feed column behind each quote field the model reads under another name.

        ``{"volatility": "vol_20d"}`` means ``bar.volatility`` is the ``vol_20d`` column; a
        field not listed is read from the column of its own name (``volume``, ``bid``, ...).
        """
        return {}


class _CompiledSlippage(SlippageModel):
    """A built-in model: its params row drives both ``fill_price`` and the compiled step."""

    @abstractmethod
    def _build_params(self) -> NDArray[np.float64]: ...

    @cached_property
    def _params(self) -> NDArray[np.float64]:
        # cached_property writes the instance __dict__ directly, so it works on frozen
        # dataclasses; the row is built once per model, not per fill.
        return self._build_params()

    def fill_price(
        self,
        price: float,
        quantity: float,
        *,
        order_type: int = MARKET,
        bar: BarQuote = NO_QUOTE,
    ) -> float:
        params = self._params
        if params[0] == SLIPPAGE_PYTHON:
            return self._python_fill_price(price, quantity, order_type=order_type, bar=bar)
        return float(
            slippage_kernel(
                params,
                float(price),
                float(quantity),
                int(order_type),
                float(bar.volume),
                float(bar.bid),
                float(bar.ask),
                float(bar.spread),
                float(bar.volatility),
                0.0,
            )
        )

    def _python_fill_price(
        self, price: float, quantity: float, *, order_type: int, bar: BarQuote
    ) -> float:
        # Only a model whose params can be SLIPPAGE_PYTHON (OrderTypeSlippage with a Python
        # child) overrides this; the leaf built-ins always compile.
        return math.nan

    def to_params(self) -> NDArray[np.float64]:
        # A user subclass that overrides fill_price no longer computes what the params say:
        # run it from Python rather than let the compiled step silently disagree with it.
        if type(self).fill_price is not _CompiledSlippage.fill_price:
            return _python_row()
        return self._params.copy()


def _check_column(owner: str, name: str, value: str) -> None:
    if not value.strip():
        raise ConfigError(
            f"{owner} {name} must be a number (a constant) or a feed column name; got {value!r}"
        )


def _leaf_row(code: int, *values: float) -> NDArray[np.float64]:
    row = np.zeros(SLIPPAGE_PARAMS_WIDTH, dtype=np.float64)
    row[0] = code
    row[1 : 1 + len(values)] = values
    return row


def _check_number(
    owner: str,
    name: str,
    value: object,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float in the stated range, else a ConfigError naming owner and parameter."""
    lo = "(" if low_open else "["
    hi = ")" if high_open or high == math.inf else "]"
    valid = f"a finite number in {lo}{low:g}, {high:g}{hi}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{owner} {name} must be {valid}; got {value!r}")
    x = float(value)
    below = x <= low if low_open else x < low
    above = x >= high if high_open else x > high
    if not math.isfinite(x) or below or above:
        raise ConfigError(f"{owner} {name} must be {valid}; got {value!r}")
    return x


@dataclass(frozen=True)
class NoSlippage(_CompiledSlippage):
    """Fills at the reference price exactly.

    Example:
        >>> NoSlippage().fill_price(100.0, 10)
        100.0
    """

    def _build_params(self) -> NDArray[np.float64]:
        return _leaf_row(SLIPPAGE_NONE)


@dataclass(frozen=True)
class PercentSlippage(_CompiledSlippage):
    """Slippage as a fraction of price: buys pay ``price * (1 + rate)``, sells get ``(1 - rate)``.

    This is what ``BacktestConfig(slippage=0.001)`` means (0.1% per fill).

    Example:
        >>> model = PercentSlippage(0.001)
        >>> model.fill_price(100.0, 10), model.fill_price(100.0, -10)
        (100.1, 99.9)
    """

    rate: float

    def __post_init__(self) -> None:
        # rate >= 1 would let a sell fill at or below zero.
        _check_number("PercentSlippage", "rate", self.rate, low=0.0, high=1.0, high_open=True)

    def _build_params(self) -> NDArray[np.float64]:
        return _leaf_row(SLIPPAGE_PERCENT, self.rate)


@dataclass(frozen=True)
class FixedBpsSlippage(_CompiledSlippage):
    """Slippage in basis points of price: buys pay ``price * (1 + bps / 10_000)``.

    Example:
        >>> model = FixedBpsSlippage(5)
        >>> model.fill_price(100.0, 10)
        100.05
    """

    bps: float

    def __post_init__(self) -> None:
        _check_number("FixedBpsSlippage", "bps", self.bps, low=0.0, high=_BPS, high_open=True)

    def _build_params(self) -> NDArray[np.float64]:
        return _leaf_row(SLIPPAGE_FIXED_BPS, self.bps)


@dataclass(frozen=True)
class PerShareSlippage(_CompiledSlippage):
    """A fixed amount per share: buys pay ``price + amount``, sells get ``price - amount``.

    A sell never fills below zero. Useful for tick-size slippage (``amount=0.01``).

    Example:
        >>> model = PerShareSlippage(0.02)
        >>> model.fill_price(50.0, -100)
        49.98
    """

    amount: float

    def __post_init__(self) -> None:
        _check_number("PerShareSlippage", "amount", self.amount, low=0.0)

    def _build_params(self) -> NDArray[np.float64]:
        return _leaf_row(SLIPPAGE_PER_SHARE, self.amount)


@dataclass(frozen=True, kw_only=True)
class SpreadSlippage(_CompiledSlippage):
    """Crossing the spread: each fill pays half the bid-ask spread.

    Where the spread comes from is what you pass:

    - ``spread=0.02`` (price units) or ``spread_bps=10`` (basis points of price): that
      constant, on every fill; the feed's columns are not read.
    - ``spread="spread_est"``: that feed column, in price units, on every bar.
    - nothing: the bar's ``bid`` and ``ask`` (both present), else its ``spread`` column (the
      column names Zipline and VectorBT users usually have).

    A bar where the columns read are NaN cannot be priced (the kernel returns NaN; the run
    warns before it starts). A negative value in a spread column is a ``DataError`` before the
    run; a crossed quote (ask below bid) costs nothing.

    Example:
        >>> model = SpreadSlippage(spread_bps=10)
        >>> model.fill_price(100.0, 10)  # half of 10 bps of 100 is 0.05
        100.05
    """

    spread: float | str | None = None
    spread_bps: float | None = None

    def __post_init__(self) -> None:
        if self.spread is not None and self.spread_bps is not None:
            raise ConfigError(
                f"SpreadSlippage takes spread or spread_bps, not both; got spread={self.spread!r}"
                f" and spread_bps={self.spread_bps!r}"
            )
        if isinstance(self.spread, str):
            _check_column("SpreadSlippage", "spread", self.spread)
        elif self.spread is not None:
            _check_number("SpreadSlippage", "spread", self.spread, low=0.0)
        if self.spread_bps is not None:
            # A full spread of 20,000 bps would put a sell's fill at zero.
            _check_number(
                "SpreadSlippage",
                "spread_bps",
                self.spread_bps,
                low=0.0,
                high=2 * _BPS,
                high_open=True,
            )

    def _build_params(self) -> NDArray[np.float64]:
        named = isinstance(self.spread, str)
        spread = math.nan if self.spread is None or isinstance(self.spread, str) else self.spread
        spread_bps = math.nan if self.spread_bps is None else self.spread_bps
        return _leaf_row(SLIPPAGE_SPREAD, spread, spread_bps, 1.0 if named else 0.0)

    def required_fields(self) -> tuple[tuple[str, ...], ...]:
        if isinstance(self.spread, str):
            return ((self.spread,),)
        if self.spread is not None or self.spread_bps is not None:
            return ()
        return (("ask", "bid"), ("spread",))

    def quote_columns(self) -> dict[str, str]:
        return {"spread": self.spread} if isinstance(self.spread, str) else {}


@dataclass(frozen=True, kw_only=True)
class VolumeShareSlippage(_CompiledSlippage):
    """Market impact that grows with participation: the square-root law by default.

    The fill moves by the fraction ``impact * sigma * (|quantity| / volume) ** exponent`` of
    price. ``sigma`` is per-bar volatility as a fraction (daily for daily bars: 0.02 is 2%),
    from what you pass as ``volatility``:

    - a number (``volatility=0.02``): that constant on every fill; the feed is not read.
    - a column name (``volatility="vol_20d"``): that feed column on every bar.
    - nothing: the feed's ``volatility`` column.

    A column value below 0 or above 5 (500% per bar: a column in percent, not a fraction) is a
    ``DataError`` before the run.

    The square-root law (Grinold & Kahn, *Active Portfolio Management*, 2000; Almgren, Thum,
    Hauptmann & Li, "Direct Estimation of Equity Market Impact", 2005, estimate an exponent
    near 0.6; Toth et al., 2011) scales impact with volatility and the square root of
    participation; Zipline's ``VolatilityVolumeShare`` for futures uses the same form. Zipline's
    equity ``VolumeShareSlippage`` instead moves price by ``price_impact * volume_share ** 2``
    with no volatility: ``VolumeShareSlippage(impact=0.1, exponent=2, volatility=1.0)`` is that
    model. Zipline also caps participation (``volume_limit``); here the cap is the engine's
    volume-limit setting, which makes partial fills.

    ``cumulative=True`` measures participation as Zipline does: the volume already filled on
    the asset in the bar, by any order, plus this fill, so a second order on a bar pays the
    impact of both. The engine counts a bar's filled volume under ``max_participation``,
    which a cumulative model therefore needs (as Zipline's ``volume_limit``).

    Zero or missing volume means no fill; the kernel then returns NaN, as it does when neither
    the column nor the constant gives a volatility.

    Example:
        >>> model = VolumeShareSlippage(impact=0.1, volatility=0.02)
        >>> model.fill_price(100.0, 10_000, bar=BarQuote(volume=1e6))  # 0.1*0.02*sqrt(0.01)
        100.02
    """

    impact: float = 0.1
    exponent: float = 0.5
    volatility: float | str | None = None
    cumulative: bool = False

    def __post_init__(self) -> None:
        _check_number("VolumeShareSlippage", "impact", self.impact, low=0.0)
        _check_number("VolumeShareSlippage", "exponent", self.exponent, low=0.0, low_open=True)
        if isinstance(self.volatility, str):
            _check_column("VolumeShareSlippage", "volatility", self.volatility)
        elif self.volatility is not None:
            _check_number("VolumeShareSlippage", "volatility", self.volatility, low=0.0)

    def _build_params(self) -> NDArray[np.float64]:
        volatility = self.volatility
        if volatility is None or isinstance(volatility, str):
            volatility = math.nan
        return _leaf_row(
            SLIPPAGE_VOLUME_SHARE, self.impact, self.exponent, volatility, float(self.cumulative)
        )

    def required_fields(self) -> tuple[tuple[str, ...], ...]:
        if isinstance(self.volatility, str):
            return (tuple(sorted((self.volatility, "volume"))),)
        if self.volatility is not None:
            return (("volume",),)
        return (("volatility", "volume"),)

    def quote_columns(self) -> dict[str, str]:
        return {"volatility": self.volatility} if isinstance(self.volatility, str) else {}


SlippageFn: TypeAlias = Callable[[float, float, int, BarQuote], float]
SlippageSpec: TypeAlias = SlippageModel | float | SlippageFn


@dataclass(frozen=True)
class CallableSlippage(SlippageModel):
    """A slippage model from a function ``fn(price, quantity, order_type, bar) -> fill price``.

    Runs from Python for each fill. Its result must be adverse (a buy at or above ``price``, a
    sell at or below) or NaN (cannot fill at this bar); anything else raises ``ConfigError``.

    Example:
        >>> model = CallableSlippage(lambda p, q, t, bar: p + 0.01 if q > 0 else p - 0.01)
        >>> model.fill_price(10.0, -5)
        9.99
    """

    fn: SlippageFn

    def __post_init__(self) -> None:
        if not callable(self.fn) or isinstance(self.fn, type):
            raise ConfigError(
                f"CallableSlippage fn must be a function fn(price, quantity, order_type, bar) "
                f"returning the fill price; got {self.fn!r}"
            )
        try:
            signature = inspect.signature(self.fn)
        except (TypeError, ValueError):  # some builtins have no introspectable signature
            return
        try:
            signature.bind(1.0, 1.0, MARKET, NO_QUOTE)
        except TypeError as exc:
            raise ConfigError(
                f"CallableSlippage fn {_name(self.fn)}{signature} cannot be called as "
                f"fn(price, quantity, order_type, bar): {exc}"
            ) from None

    def fill_price(
        self,
        price: float,
        quantity: float,
        *,
        order_type: int = MARKET,
        bar: BarQuote = NO_QUOTE,
    ) -> float:
        result = self.fn(price, quantity, order_type, bar)
        if isinstance(result, bool) or not isinstance(result, Real):
            raise ConfigError(
                f"CallableSlippage fn {_name(self.fn)} must return a fill price (a number); "
                f"got {result!r} for price={price!r}, quantity={quantity!r}"
            )
        fill = float(result)
        favourable = fill < price if quantity > 0 else (fill > price if quantity < 0 else False)
        if favourable:
            side = "buy" if quantity > 0 else "sell"
            bound = ">=" if quantity > 0 else "<="
            raise ConfigError(
                f"CallableSlippage fn {_name(self.fn)} returned {fill!r} for a {side} of "
                f"{quantity!r} at {price!r}; slippage must be adverse: a {side} fills "
                f"{bound} {price!r} (or NaN when it cannot fill)"
            )
        return fill


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


@dataclass(frozen=True, init=False)
class OrderTypeSlippage(_CompiledSlippage):
    """Slippage that depends on the order type: market orders pay more than limit orders.

    ``market`` prices market orders; ``stop`` stop and trailing-stop orders (they become market
    orders when triggered; the default is the ``market`` model); ``limit`` limit and stop-limit
    orders (they fill at their limit or better, so the default is no slippage). Each may be a
    model, a rate (``PercentSlippage``) or a function, but not another ``OrderTypeSlippage``.
    With all three built-in the model compiles; with a function among them it runs in Python.

    Example:
        >>> model = OrderTypeSlippage(market=0.001, stop=FixedBpsSlippage(20))
        >>> model.fill_price(100.0, 10, order_type=STOP)
        100.2
    """

    market: SlippageModel
    stop: SlippageModel
    limit: SlippageModel

    def __init__(
        self,
        *,
        market: SlippageSpec = NoSlippage(),  # frozen, so one shared default is safe
        stop: SlippageSpec | None = None,
        limit: SlippageSpec = NoSlippage(),
    ) -> None:
        resolved = {}
        for name, spec in (("market", market), ("stop", stop), ("limit", limit)):
            if spec is None:
                continue
            model = as_slippage_model(spec, name=f"OrderTypeSlippage {name}")
            if isinstance(model, OrderTypeSlippage | CombinedSlippage):
                raise ConfigError(
                    f"OrderTypeSlippage {name} must be a single model such as PercentSlippage, "
                    f"SpreadSlippage or VolumeShareSlippage, not {model!r}"
                )
            resolved[name] = model
        object.__setattr__(self, "market", resolved["market"])
        object.__setattr__(self, "stop", resolved.get("stop", resolved["market"]))
        object.__setattr__(self, "limit", resolved["limit"])
        self.quote_columns()  # one column per quote field: the step has one slot for each

    def _build_params(self) -> NDArray[np.float64]:
        rows = [child.to_params() for child in (self.market, self.limit, self.stop)]
        if any(row[0] == SLIPPAGE_PYTHON for row in rows):
            return _python_row()
        params = np.zeros(SLIPPAGE_PARAMS_WIDTH, dtype=np.float64)
        params[0] = SLIPPAGE_ORDER_TYPE
        for offset, row in zip((_MARKET_OFFSET, _LIMIT_OFFSET, _STOP_OFFSET), rows, strict=True):
            params[offset : offset + SLIPPAGE_LEAF_WIDTH] = row[:SLIPPAGE_LEAF_WIDTH]
        return params

    def _route(self, order_type: int) -> SlippageModel | None:
        if order_type == MARKET:
            return self.market
        if order_type in (LIMIT, STOP_LIMIT):
            return self.limit
        if order_type in (STOP, TRAILING_STOP):
            return self.stop
        return None

    def _python_fill_price(
        self, price: float, quantity: float, *, order_type: int, bar: BarQuote
    ) -> float:
        model = self._route(order_type)
        if model is None:
            return math.nan  # same as the kernel for an order type it does not route
        return model.fill_price(price, quantity, order_type=order_type, bar=bar)

    def required_fields(self) -> tuple[tuple[str, ...], ...]:
        return _all_of((self.market, self.stop, self.limit))

    def quote_columns(self) -> dict[str, str]:
        return _merged_columns("OrderTypeSlippage", (self.market, self.stop, self.limit))


def _merged_columns(owner: str, children: Sequence[SlippageModel]) -> dict[str, str]:
    """The children's named columns; one quote field cannot come from two columns at once."""
    merged: dict[str, str] = {}
    for child in children:
        for field, column in child.quote_columns().items():
            if merged.get(field, column) != column:
                raise ConfigError(
                    f"{owner} reads the quote field {field!r} from two columns, "
                    f"{merged[field]!r} and {column!r}; its parts must name the same column"
                )
            merged[field] = column
    return merged


def _all_of(children: Sequence[SlippageModel]) -> tuple[tuple[str, ...], ...]:
    """The column groups that satisfy every child: one alternative from each, combined."""
    combos: list[frozenset[str]] = [frozenset()]
    for child in children:
        groups = child.required_fields()
        if groups:
            combos = [acc | frozenset(group) for acc in combos for group in groups]
    if combos == [frozenset()]:
        return ()
    unique = sorted({tuple(sorted(c)) for c in combos}, key=lambda g: (len(g), g))
    return tuple(unique)


@dataclass(frozen=True, init=False)
class CombinedSlippage(_CompiledSlippage):
    """Several costs paid on the same fill, added: a half spread plus market impact, say.

    Each part's slippage is measured from the same reference price and the amounts are added
    (a sell never fills below zero). Up to three parts, each a model, a rate
    (``PercentSlippage``) or a function, but not an ``OrderTypeSlippage`` or another
    ``CombinedSlippage``. A part that cannot price the bar (no spread source, no volume) leaves
    the fill unpriced, so the order waits, as with that model alone. With every part built in
    the model compiles; with a function among them it runs in Python.

    Example:
        >>> model = CombinedSlippage(SpreadSlippage(spread=0.10), FixedBpsSlippage(2))
        >>> round(model.fill_price(100.0, 10), 6)   # 0.05 half spread + 0.02 (2 bps)
        100.07
    """

    models: tuple[SlippageModel, ...]

    def __init__(self, *parts: SlippageSpec, models: Sequence[SlippageSpec] = ()) -> None:
        specs = list(parts) + list(models)
        if not 1 <= len(specs) <= _MAX_COMBINED:
            raise ConfigError(
                f"CombinedSlippage takes 1 to {_MAX_COMBINED} models, got {len(specs)}"
            )
        resolved = []
        for k, spec in enumerate(specs):
            model = as_slippage_model(spec, name=f"CombinedSlippage part {k}")
            if isinstance(model, OrderTypeSlippage | CombinedSlippage):
                raise ConfigError(
                    f"CombinedSlippage part {k} must be a single model such as SpreadSlippage "
                    f"or VolumeShareSlippage, not {model!r}"
                )
            resolved.append(model)
        object.__setattr__(self, "models", tuple(resolved))
        self.quote_columns()  # one column per quote field: the step has one slot for each

    def _build_params(self) -> NDArray[np.float64]:
        rows = [model.to_params() for model in self.models]
        if any(row[0] == SLIPPAGE_PYTHON for row in rows):
            return _python_row()
        params = np.zeros(SLIPPAGE_PARAMS_WIDTH, dtype=np.float64)
        params[0] = SLIPPAGE_COMBINED
        params[1] = len(rows)
        for k, row in enumerate(rows, start=1):
            offset = k * SLIPPAGE_LEAF_WIDTH
            params[offset : offset + SLIPPAGE_LEAF_WIDTH] = row[:SLIPPAGE_LEAF_WIDTH]
        return params

    def _python_fill_price(
        self, price: float, quantity: float, *, order_type: int, bar: BarQuote
    ) -> float:
        total = 0.0
        for model in self.models:
            part = model.fill_price(price, quantity, order_type=order_type, bar=bar)
            if math.isnan(part):
                return math.nan
            total += part - price
        return price + total if quantity > 0 else max(price + total, 0.0)

    def required_fields(self) -> tuple[tuple[str, ...], ...]:
        return _all_of(self.models)

    def quote_columns(self) -> dict[str, str]:
        return _merged_columns("CombinedSlippage", self.models)


def as_slippage_model(spec: object, *, name: str = "slippage") -> SlippageModel:
    """A slippage model from a model, a rate (``PercentSlippage``) or a function.

    Example:
        >>> as_slippage_model(0.001)
        PercentSlippage(rate=0.001)
    """
    if isinstance(spec, SlippageModel):
        return spec
    if isinstance(spec, Real) and not isinstance(spec, bool):
        return PercentSlippage(float(spec))
    if isinstance(spec, type):
        raise ConfigError(
            f"{name} must be a slippage model instance, not the class {spec.__name__}; "
            f"e.g. {spec.__name__}(...)"
        )
    if callable(spec):
        return CallableSlippage(spec)
    raise ConfigError(
        f"{name} must be a SlippageModel, a rate such as 0.001 (0.1% of price) or a function "
        f"fn(price, quantity, order_type, bar) -> fill price; got {spec!r}"
    )


def prices_at_reference(table: NDArray[np.float64]) -> bool:
    """Whether every row of a slippage table (``slippage_table``) fills at the reference
    price: no model, or a flat rate of zero (the default ``slippage=0.0``, whose
    ``price * (1 + 0)`` is the price to the bit). The plain fill step skips the model then
    (``kernels.clock.fill_features``).

    Example:
        >>> prices_at_reference(slippage_table(0.0, ["A"])[0])
        True
        >>> prices_at_reference(slippage_table(0.001, ["A"])[0])
        False
    """
    codes = table[:, 0]
    flat = (codes == SLIPPAGE_PERCENT) | (codes == SLIPPAGE_FIXED_BPS)
    return bool(((codes == SLIPPAGE_NONE) | (flat & (table[:, 1] == 0.0))).all())


def slippage_table(
    default: SlippageSpec,
    assets: Sequence[str],
    overrides: Mapping[str, SlippageSpec] | None = None,
) -> tuple[NDArray[np.float64], list[SlippageModel]]:
    """Per-asset slippage: a params table [N, SLIPPAGE_PARAMS_WIDTH] and the models behind it.

    Row ``i`` (for ``assets[i]``) is the override's params if the asset has one, else the
    default's. Rows with code ``SLIPPAGE_PYTHON`` need ``models[i].fill_price`` from Python.

    Example:
        >>> table, models = slippage_table(0.001, ["AAPL", "BTC"], {"BTC": FixedBpsSlippage(10)})
        >>> table[:, 0]
        array([1., 2.])
    """
    overrides = {} if overrides is None else overrides
    known = set(assets)
    for key in overrides:
        if key not in known:
            listed = ", ".join(repr(a) for a in list(assets)[:10])
            more = f" and {len(assets) - 10} more" if len(assets) > 10 else ""
            raise ConfigError(
                f"slippage override for unknown asset {key!r}; the feed's assets are {listed}{more}"
            )
    default_model = as_slippage_model(default)
    resolved = {
        key: as_slippage_model(spec, name=f"slippage for {key!r}")
        for key, spec in overrides.items()
    }
    models = [default_model] * len(assets)
    table = np.empty((len(assets), SLIPPAGE_PARAMS_WIDTH), dtype=np.float64)
    table[:] = default_model.to_params()
    if resolved:
        for i, asset in enumerate(assets):
            model = resolved.get(asset)
            if model is not None:
                models[i] = model
                table[i] = model.to_params()
    return table, models


def check_slippage_fields(
    model: SlippageModel, columns: Collection[str], *, asset: str | None = None
) -> None:
    """Raise ConfigError if the feed's ``columns`` cannot satisfy ``model.required_fields()``.

    Example:
        >>> check_slippage_fields(SpreadSlippage(), ["open", "close", "spread"])  # fine
        >>> check_slippage_fields(VolumeShareSlippage(volatility=0.02), ["close"])  # raises
        Traceback (most recent call last):
        ml4t.backtest.errors.ConfigError: ...
    """
    groups = model.required_fields()
    available = set(columns)
    if not groups or any(set(group) <= available for group in groups):
        return
    where = f" for asset {asset!r}" if asset is not None else ""
    options = " or ".join("(" + ", ".join(group) + ")" for group in groups)
    raise ConfigError(
        f"{model!r}{where} needs the feed columns {options}; the feed has "
        f"{', '.join(sorted(available)) or 'no columns'}. Add the columns, name columns the "
        f'feed has (e.g. volatility="vol_20d"), or give the model a constant'
    )
