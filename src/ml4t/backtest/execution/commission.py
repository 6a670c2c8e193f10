"""Commission models: what a broker charges for one fill, in Python and as compiled parameters.

Each model is a small frozen class with one public method, ``commission(quantity, price, *,
monthly_volume=0.0)``. The built-in models also describe themselves as a fixed-length row of
floats (``to_params()``) that :func:`commission_kernel` turns into the same number inside numba
code, so the compiled broker step charges commission without calling back into Python. The
built-ins' ``commission()`` *is* ``commission_kernel(self.to_params(), ...)``: one implementation,
so the Python and compiled paths cannot drift apart.

Parameter row layout (``N_COMMISSION_PARAMS`` floats, unused slots are 0.0)::

    [0] PARAM_CODE      model code: COMMISSION_PERCENT, ..., or COMMISSION_PYTHON (-1)
    [1] PARAM_RATE      percent rate, per-share rate or fixed amount (unused by tiered models)
    [2] PARAM_MINIMUM   minimum charge per fill (0.0 = none)
    [3] PARAM_MAX_PCT   cap as a fraction of the fill's notional (+inf = no cap)
    [4] PARAM_N_TIERS   number of tiers in use (tiered models; 0 otherwise)
    [5 + 2k]            tier k threshold (shares of monthly volume, or notional)
    [6 + 2k]            tier k rate (per share, or fraction of notional), k < MAX_TIERS

Every model computes a raw fee, raises it to the minimum, then caps it at ``max_pct * notional``;
the cap wins over the minimum, as in Interactive Brokers' published US stock schedule ("if the
calculated maximum per order is less than the minimum per order, the maximum per order will be
assessed").

The ``monthly_volume`` contract (kept by the engine, not by the models): the absolute number of
shares the account has filled, summed over all assets, from the start of the calendar month of
the current bar's timestamp up to but NOT including this fill. It resets to 0 on the first bar
of a new calendar month. Fills on the same bar are counted in the order the step makes them, so
the second fill of a bar sees the first one's shares. Only ``TieredCommission(basis=
"monthly_volume")`` and user callables taking three arguments read it; IB's tiered schedule
counts "monthly cumulative trade volume summed across all US ... stock and ETF shares" the same
way.

A quantity of 0 costs nothing under every built-in model (no fill, no minimum); negative
quantities are taken as their absolute value.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Final, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..kernels.jit import folded, leaf

__all__ = [
    "COMMISSION_FIXED",
    "COMMISSION_PERCENT",
    "COMMISSION_PER_SHARE",
    "COMMISSION_PYTHON",
    "COMMISSION_TIERED_NOTIONAL",
    "COMMISSION_TIERED_VOLUME",
    "MAX_TIERS",
    "N_COMMISSION_PARAMS",
    "CallableCommission",
    "CommissionModel",
    "CommissionSpec",
    "FixedCommission",
    "PerShareCommission",
    "PercentCommission",
    "TieredCommission",
    "affordable_quantity",
    "as_commission_model",
    "commission_kernel",
    "commission_table",
]

# Model codes (params[PARAM_CODE]). COMMISSION_PYTHON marks a model the kernel cannot compute:
# the engine must call its .commission() from Python.
COMMISSION_PYTHON: Final = -1
COMMISSION_PERCENT: Final = 0
COMMISSION_PER_SHARE: Final = 1
COMMISSION_FIXED: Final = 2
COMMISSION_TIERED_VOLUME: Final = 3
COMMISSION_TIERED_NOTIONAL: Final = 4
COMMISSION_CODE_NAMES: Final = {
    COMMISSION_PYTHON: "python",
    COMMISSION_PERCENT: "percent",
    COMMISSION_PER_SHARE: "per_share",
    COMMISSION_FIXED: "fixed",
    COMMISSION_TIERED_VOLUME: "tiered_monthly_volume",
    COMMISSION_TIERED_NOTIONAL: "tiered_notional",
}

# Parameter row layout; see the module docstring.
PARAM_CODE: Final = 0
PARAM_RATE: Final = 1
PARAM_MINIMUM: Final = 2
PARAM_MAX_PCT: Final = 3
PARAM_N_TIERS: Final = 4
PARAM_TIERS: Final = 5
# IB's US stock tiered schedule has 5 volume tiers; 8 leaves room for other brokers' schedules
# while keeping a row at 21 floats (one cache line pair per asset).
MAX_TIERS: Final = 8
N_COMMISSION_PARAMS: Final = PARAM_TIERS + 2 * MAX_TIERS

TierBasis: TypeAlias = Literal["monthly_volume", "notional"]
_TIER_BASES: Final = ("monthly_volume", "notional")


# ---------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------


@folded
def _tier_rate(params: np.ndarray, x: float) -> float:
    """Rate of the last tier whose threshold is <= ``x`` (thresholds ascend from 0)."""
    n = int(params[PARAM_N_TIERS])
    rate = params[PARAM_TIERS + 1]
    for k in range(1, n):
        if x < params[PARAM_TIERS + 2 * k]:
            break
        rate = params[PARAM_TIERS + 2 * k + 1]
    return float(rate)


@leaf
def commission_kernel(
    params: np.ndarray, quantity: float, price: float, monthly_volume: float
) -> float:
    """Commission for one fill of ``quantity`` shares at ``price`` under the model ``params``.

    ``params`` is one row from ``to_params()`` / ``commission_table``. Returns NaN for
    ``COMMISSION_PYTHON`` (and any unknown code): the caller must use the model's
    ``.commission()`` instead.
    """
    code = int(params[PARAM_CODE])
    if code < COMMISSION_PERCENT or code > COMMISSION_TIERED_NOTIONAL:
        return np.nan
    qty = abs(quantity)
    if qty == 0.0:
        return 0.0
    notional = qty * price
    if code == COMMISSION_PERCENT:
        fee = params[PARAM_RATE] * notional
    elif code == COMMISSION_PER_SHARE:
        fee = params[PARAM_RATE] * qty
    elif code == COMMISSION_FIXED:
        fee = params[PARAM_RATE]
    elif code == COMMISSION_TIERED_VOLUME:
        # IB tiered: the tier reached by the month's volume before this order prices the whole
        # fill; a fill that crosses a threshold is not split across tiers.
        fee = _tier_rate(params, monthly_volume) * qty
    else:
        # Slab schedule: the whole notional at the rate of the band the notional falls in.
        fee = _tier_rate(params, notional) * notional
    minimum = params[PARAM_MINIMUM]
    if fee < minimum:
        fee = minimum
    # The cap is applied last so it wins over the minimum (IB: "the maximum per order will be
    # assessed"). No cap is stored as +inf.
    cap = params[PARAM_MAX_PCT] * notional
    if fee > cap:
        fee = cap
    return float(fee)


@folded
def _total_cost(params: np.ndarray, qty: float, price: float, monthly_volume: float) -> float:
    # Written exactly as the broker step debits cash (qty * price + commission) so that a
    # quantity accepted here can never push cash below zero there.
    return qty * price + commission_kernel(params, qty, price, monthly_volume)


@leaf
def _narrow(
    params: np.ndarray,
    cash: float,
    price: float,
    monthly_volume: float,
    fractional: bool,
    lo: float,
    hi: float,
) -> tuple[float, float]:
    """A smaller ``[lo, hi]`` with cost(lo) <= cash < cost(hi), found by galloping from a guess."""
    guess = cash / (price + commission_kernel(params, hi, price, monthly_volume) / hi)
    if not fractional:
        guess = np.floor(guess)
    if not (lo < guess < hi):
        return lo, hi
    # Steps start near the guess's own resolution and double: a few calls when it is close.
    step = 1.0 if not fractional else max(guess * 2.0**-50, 5e-324)
    if _total_cost(params, guess, price, monthly_volume) <= cash:
        lo = guess
        while True:
            up = lo + step
            if up >= hi:
                return lo, hi
            if _total_cost(params, up, price, monthly_volume) > cash:
                return lo, up
            lo = up
            step *= 2.0
    hi = guess
    while True:
        down = hi - step
        if down <= lo:
            return lo, hi
        if _total_cost(params, down, price, monthly_volume) <= cash:
            return down, hi
        hi = down
        step *= 2.0


@leaf
def _largest_affordable(
    params: np.ndarray,
    cash: float,
    price: float,
    monthly_volume: float,
    fractional: bool,
    lo: float,
    hi: float,
) -> float:
    """Largest q in [lo, hi] with total cost <= cash, cost non-decreasing there; -1.0 if none."""
    if not fractional:
        lo = np.ceil(lo)
        hi = np.floor(hi)
    if hi < lo or _total_cost(params, lo, price, monthly_volume) > cash:
        return -1.0
    if _total_cost(params, hi, price, monthly_volume) <= cash:
        return hi
    # Invariant: cost(lo) <= cash < cost(hi). The fee is not linear in quantity once a minimum
    # or a cap is in play, so there is no closed form shared by all models: narrow the bracket
    # around the answer the fee's average rate at ``hi`` predicts (exact for percent and
    # per-share fees), then bisect. The cost is monotone in the quantity, so the answer is the
    # same largest affordable quantity whatever the bracket: only the number of steps changes.
    lo, hi = _narrow(params, cash, price, monthly_volume, fractional, lo, hi)
    if not fractional:
        while hi - lo > 1.0:
            mid = np.floor(0.5 * (lo + hi))
            if _total_cost(params, mid, price, monthly_volume) <= cash:
                lo = mid
            else:
                hi = mid
        return lo
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            return lo
        if _total_cost(params, mid, price, monthly_volume) <= cash:
            lo = mid
        else:
            hi = mid


@leaf
def affordable_quantity(
    params: np.ndarray, cash: float, price: float, monthly_volume: float, fractional: bool
) -> float:
    """Largest buy quantity whose ``quantity * price + commission`` does not exceed ``cash``.

    Whole shares unless ``fractional``. Evaluates the cost through ``commission_kernel`` itself,
    so the answer is affordable by the same arithmetic the broker step uses. Returns NaN for
    ``COMMISSION_PYTHON`` rows and 0.0 when nothing is affordable.
    """
    code = int(params[PARAM_CODE])
    if code < COMMISSION_PERCENT or code > COMMISSION_TIERED_NOTIONAL:
        return np.nan
    if not (cash > 0.0) or not (price > 0.0):
        return 0.0
    # Commission is never negative, so cash / price bounds every answer.
    q_max = cash / price
    if code != COMMISSION_TIERED_NOTIONAL:
        # Every other model's total cost is non-decreasing in quantity.
        return max(
            _largest_affordable(params, cash, price, monthly_volume, fractional, 0.0, q_max), 0.0
        )
    # A slab schedule lowers the rate on the whole notional at each threshold, so the total cost
    # can drop there: search each band (where it is monotone) and keep the best.
    best = 0.0
    n = int(params[PARAM_N_TIERS])
    for k in range(n):
        lo = params[PARAM_TIERS + 2 * k] / price
        if lo > q_max:
            break
        hi = q_max
        if k + 1 < n:
            hi = min(hi, np.nextafter(params[PARAM_TIERS + 2 * k + 2] / price, 0.0))
        q = _largest_affordable(params, cash, price, monthly_volume, fractional, lo, hi)
        if q > best:
            best = q
    return best


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


def _params_row(
    code: int,
    *,
    rate: float = 0.0,
    minimum: float = 0.0,
    maximum_pct: float | None = None,
    tiers: Sequence[tuple[float, float]] = (),
) -> NDArray[np.float64]:
    row = np.zeros(N_COMMISSION_PARAMS, dtype=np.float64)
    row[PARAM_CODE] = code
    row[PARAM_RATE] = rate
    row[PARAM_MINIMUM] = minimum
    row[PARAM_MAX_PCT] = math.inf if maximum_pct is None else maximum_pct
    row[PARAM_N_TIERS] = len(tiers)
    for k, (threshold, tier_rate) in enumerate(tiers):
        row[PARAM_TIERS + 2 * k] = threshold
        row[PARAM_TIERS + 2 * k + 1] = tier_rate
    return row


class CommissionModel(ABC):
    """What a broker charges for one fill. Subclass it and implement ``commission``.

    A subclass that does not override ``to_params`` is computed from Python by the engine
    (slower than the built-ins, which run inside the compiled step).

    Example:
        >>> class HalfPenny(CommissionModel):
        ...     def commission(self, quantity, price, *, monthly_volume=0.0):
        ...         return 0.005 * quantity
        >>> HalfPenny().commission(200, 10.0)
        1.0
    """

    @abstractmethod
    def commission(self, quantity: float, price: float, *, monthly_volume: float = 0.0) -> float:
        """Commission in cash for a fill of ``quantity`` shares (absolute) at ``price``.

        ``monthly_volume`` is the shares the account filled this calendar month before this fill.
        """

    def to_params(self) -> NDArray[np.float64]:
        """This model as a ``commission_kernel`` parameter row; ``COMMISSION_PYTHON`` here."""
        return _params_row(COMMISSION_PYTHON)


class _CompiledCommission(CommissionModel):
    """Shared body of the built-ins: ``commission`` is ``commission_kernel`` on ``to_params``."""

    _params: NDArray[np.float64]

    def _build_params(self) -> NDArray[np.float64]:
        raise NotImplementedError

    def _freeze_params(self) -> None:
        # Built once in __post_init__ (the models are frozen) so a Python-side call does not
        # allocate a row per fill.
        object.__setattr__(self, "_params", self._build_params())

    def commission(self, quantity: float, price: float, *, monthly_volume: float = 0.0) -> float:
        return float(
            commission_kernel(self._params, float(quantity), float(price), float(monthly_volume))
        )

    def to_params(self) -> NDArray[np.float64]:
        """This model as a ``commission_kernel`` parameter row (a fresh copy)."""
        # A user subclass of a built-in that overrides commission() must not be silently
        # replaced by the built-in formula in the compiled step.
        if type(self).commission is not _CompiledCommission.commission:
            return _params_row(COMMISSION_PYTHON)
        return self._params.copy()


def _check_amount(
    owner: str,
    key: str,
    value: object,
    *,
    fraction: bool = False,
    fraction_inclusive: bool = False,
) -> float:
    """A finite number >= 0 (and < 1 or <= 1 for a fraction of notional), as float."""
    what = f"{owner} {key}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x) or x < 0.0:
        raise ConfigError(f"{what} must be a finite number >= 0, got {value!r}")
    if fraction and (x > 1.0 or (x == 1.0 and not fraction_inclusive)):
        bound = "<= 1" if fraction_inclusive else "< 1"
        raise ConfigError(
            f"{what} is a fraction of notional and must be {bound} (0.001 = 10 bps), got {value!r}"
        )
    return x


@dataclass(frozen=True)
class PercentCommission(_CompiledCommission):
    """A fraction of the fill's notional: ``rate * quantity * price``.

    ``rate`` is a fraction, not bps: 0.001 is 10 bps. What VectorBT's ``fees`` and Backtrader's
    ``commission`` (percentage mode) charge.

    Example:
        >>> model = PercentCommission(0.001)
        >>> model.commission(100, 50.0)
        5.0
    """

    rate: float

    def __post_init__(self) -> None:
        _check_amount("PercentCommission", "rate", self.rate, fraction=True)
        self._freeze_params()

    def _build_params(self) -> NDArray[np.float64]:
        return _params_row(COMMISSION_PERCENT, rate=self.rate)


@dataclass(frozen=True)
class PerShareCommission(_CompiledCommission):
    """A rate per share with an optional minimum per fill and cap as a fraction of notional.

    Interactive Brokers' "fixed" US stock pricing is ``PerShareCommission(0.005, minimum=1.0,
    maximum_pct=0.01)``: USD 0.005 per share, at least USD 1.00, at most 1% of trade value.
    When the minimum exceeds the cap (a small trade in a cheap stock) the cap wins, as IB
    charges. The minimum applies per fill: an order filled in parts pays it on each part
    (IB charges it once per order; per fill is the conservative reading).

    Example:
        >>> ib_fixed = PerShareCommission(0.005, minimum=1.0, maximum_pct=0.01)
        >>> ib_fixed.commission(100, 50.0)  # 0.50 raised to the 1.00 minimum
        1.0
    """

    per_share: float
    _: KW_ONLY
    minimum: float = 0.0
    maximum_pct: float | None = None

    def __post_init__(self) -> None:
        _check_amount("PerShareCommission", "per_share", self.per_share)
        _check_amount("PerShareCommission", "minimum", self.minimum)
        if self.maximum_pct is not None:
            _check_amount(
                "PerShareCommission",
                "maximum_pct",
                self.maximum_pct,
                fraction=True,
                fraction_inclusive=True,
            )
        self._freeze_params()

    def _build_params(self) -> NDArray[np.float64]:
        return _params_row(
            COMMISSION_PER_SHARE,
            rate=self.per_share,
            minimum=self.minimum,
            maximum_pct=self.maximum_pct,
        )


@dataclass(frozen=True)
class FixedCommission(_CompiledCommission):
    """A fixed amount per fill, whatever its size (a flat ticket fee).

    Example:
        >>> model = FixedCommission(4.95)
        >>> model.commission(1_000, 12.5)
        4.95
    """

    amount: float

    def __post_init__(self) -> None:
        _check_amount("FixedCommission", "amount", self.amount)
        self._freeze_params()

    def _build_params(self) -> NDArray[np.float64]:
        return _params_row(COMMISSION_FIXED, rate=self.amount)


@dataclass(frozen=True)
class TieredCommission(_CompiledCommission):
    """A rate picked from a schedule of ``(threshold, rate)`` tiers, thresholds ascending from 0.

    ``basis="monthly_volume"`` (default): Interactive Brokers' "tiered" US stock pricing. The rate
    is per share, chosen by the shares the account already traded this calendar month: the tier
    whose threshold is the largest one <= ``monthly_volume``. So with tiers ``[(0, 0.0035),
    (300_000, 0.002), ...]`` the 300,001st share of the month is the first at 0.002, as in IB's
    "<= 300,000 shares: 0.0035" schedule. The tier reached before a fill prices the whole fill:
    a fill that crosses a threshold is not split (IB prices each order at the tier in force
    when it executes).

    ``basis="notional"``: the rate is a fraction of notional, chosen by the fill's own notional,
    and applied to the whole notional (a slab schedule, not marginal bands), e.g.
    ``[(0, 0.001), (100_000, 0.0008)]``: a USD 150,000 fill pays 0.08% of 150,000.

    ``minimum`` (per fill) and ``maximum_pct`` (cap as a fraction of notional) work as in
    :class:`PerShareCommission`, the cap winning; IB tiered uses a USD 0.35 minimum and a 1% cap.
    At most ``MAX_TIERS`` tiers.

    Example:
        >>> tiers = [(0, 0.0035), (300_000, 0.002), (3_000_000, 0.0015)]
        >>> ib_tiered = TieredCommission(tiers, minimum=0.35, maximum_pct=0.01)
        >>> ib_tiered.commission(1_000, 20.0, monthly_volume=500_000)
        2.0
    """

    tiers: Sequence[tuple[float, float]]
    _: KW_ONLY
    basis: TierBasis = "monthly_volume"
    minimum: float = 0.0
    maximum_pct: float | None = None

    def __post_init__(self) -> None:
        # Stored as a tuple of float pairs: hashable, and immune to the caller mutating its list.
        object.__setattr__(self, "tiers", _check_tiers(self.tiers, self.basis))
        _check_amount("TieredCommission", "minimum", self.minimum)
        if self.maximum_pct is not None:
            _check_amount(
                "TieredCommission",
                "maximum_pct",
                self.maximum_pct,
                fraction=True,
                fraction_inclusive=True,
            )
        self._freeze_params()

    def _build_params(self) -> NDArray[np.float64]:
        code = (
            COMMISSION_TIERED_VOLUME
            if self.basis == "monthly_volume"
            else COMMISSION_TIERED_NOTIONAL
        )
        return _params_row(
            code, minimum=self.minimum, maximum_pct=self.maximum_pct, tiers=self.tiers
        )


def _check_tiers(tiers: object, basis: object) -> tuple[tuple[float, float], ...]:
    if basis not in _TIER_BASES:
        raise ConfigError(
            f"TieredCommission basis must be one of {', '.join(map(repr, _TIER_BASES))}, "
            f"got {basis!r}"
        )
    example = (
        "[(0, 0.0035), (300_000, 0.002)]"
        if basis == "monthly_volume"
        else ("[(0, 0.001), (100_000, 0.0008)]")
    )
    if isinstance(tiers, str | bytes) or not isinstance(tiers, Sequence) or len(tiers) == 0:
        raise ConfigError(
            f"TieredCommission tiers must be a non-empty list of (threshold, rate) pairs such as "
            f"{example}, got {tiers!r}"
        )
    if len(tiers) > MAX_TIERS:
        raise ConfigError(
            f"TieredCommission tiers has {len(tiers)} tiers; at most {MAX_TIERS} are supported"
        )
    unit = "per share" if basis == "monthly_volume" else "fraction of notional"
    out: list[tuple[float, float]] = []
    for k, pair in enumerate(tiers):
        if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ConfigError(
                f"TieredCommission tiers[{k}] must be a (threshold, rate) pair, got {pair!r}"
            )
        threshold = _check_amount("TieredCommission", f"tiers[{k}] threshold", pair[0])
        rate = _check_amount(
            "TieredCommission",
            f"tiers[{k}] rate ({unit})",
            pair[1],
            fraction=basis == "notional",
        )
        if k == 0 and threshold != 0.0:
            raise ConfigError(
                f"TieredCommission tiers must start at threshold 0 so every fill has a rate, "
                f"got first threshold {pair[0]!r} in {tiers!r}"
            )
        if k > 0 and threshold <= out[-1][0]:
            raise ConfigError(
                f"TieredCommission tiers thresholds must be strictly increasing, got "
                f"{pair[0]!r} after {out[-1][0]!r} at tiers[{k}] in {tiers!r}"
            )
        out.append((threshold, rate))
    return tuple(out)


@dataclass(frozen=True)
class CallableCommission(CommissionModel):
    """Wraps a function ``fn(quantity, price)`` or ``fn(quantity, price, monthly_volume)``.

    A third positional parameter (or ``*args``) receives ``monthly_volume``. The engine calls it
    from Python on every fill of the assets that use it, so it is slower than the built-ins. It
    must return a finite commission >= 0.

    Example:
        >>> model = CallableCommission(lambda q, p: max(1.0, 0.0005 * q * p))
        >>> model.commission(10, 20.0)
        1.0
    """

    fn: Callable[..., float]
    # 2 or 3: how many positional arguments fn takes; worked out once, not per fill.
    _n_args: int = field(init=False, repr=False, compare=False, default=2)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_n_args", _callable_arity(self.fn))

    def commission(self, quantity: float, price: float, *, monthly_volume: float = 0.0) -> float:
        if self._n_args == 3:
            value = self.fn(quantity, price, monthly_volume)
        else:
            value = self.fn(quantity, price)
        try:
            fee = float(value)
        except (TypeError, ValueError):
            fee = math.nan
        if not math.isfinite(fee) or fee < 0.0:
            raise ConfigError(
                f"commission callable {_callable_name(self.fn)} returned {value!r} for "
                f"quantity={quantity!r}, price={price!r}; it must return a finite number >= 0"
            )
        return fee


def _callable_name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


def _callable_arity(fn: object) -> int:
    """2 or 3: how many positional arguments to pass ``fn``."""
    if not callable(fn):
        raise ConfigError(
            f"CallableCommission fn must be callable as fn(quantity, price) or "
            f"fn(quantity, price, monthly_volume), got {fn!r}"
        )
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        # Some builtins have no signature; assume the two-argument form.
        return 2
    positional = [
        p
        for p in sig.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    var_positional = any(
        p.kind == inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values()
    )
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    required_kw = [
        p.name
        for p in sig.parameters.values()
        if p.kind == inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if (len(positional) < 2 and not var_positional) or len(required) > 3 or required_kw:
        raise ConfigError(
            f"CallableCommission fn {_callable_name(fn)}{sig} must accept (quantity, price) or "
            f"(quantity, price, monthly_volume)"
        )
    return 3 if var_positional or len(positional) >= 3 else 2


CommissionSpec: TypeAlias = CommissionModel | float | Callable[..., float]


def as_commission_model(spec: CommissionSpec, *, name: str = "commission") -> CommissionModel:
    """A ``CommissionModel`` from a model, a float (fraction of notional) or a callable.

    A float keeps ``BacktestConfig(commission=0.001)`` meaning 0.1% of notional. ``name`` is the
    setting reported in error messages.

    Example:
        >>> as_commission_model(0.001)
        PercentCommission(rate=0.001)
        >>> isinstance(as_commission_model(lambda q, p: 1.0), CallableCommission)
        True
    """
    if isinstance(spec, CommissionModel):
        return spec
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        try:
            return PercentCommission(float(spec))
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    if callable(spec):
        return CallableCommission(spec)
    raise ConfigError(
        f"{name} must be a CommissionModel, a fraction of notional (0.001 = 10 bps) or a "
        f"callable fn(quantity, price[, monthly_volume]), got {spec!r}"
    )


def commission_table(
    default: CommissionSpec,
    assets: Sequence[str],
    overrides: Mapping[str, CommissionSpec] | None = None,
) -> tuple[NDArray[np.float64], list[CommissionModel]]:
    """Per-asset commission: a ``[N, N_COMMISSION_PARAMS]`` params table and the models.

    Row ``i`` (and ``models[i]``) is ``overrides[assets[i]]`` if given, else ``default``. Each
    spec is anything :func:`as_commission_model` takes. Rows with code ``COMMISSION_PYTHON``
    need the model's ``.commission()`` from Python.

    Example:
        >>> table, models = commission_table(0.001, ["AAPL", "BTC"], {"BTC": 0.0025})
        >>> table[:, PARAM_RATE].tolist()
        [0.001, 0.0025]
    """
    default_model = as_commission_model(default)
    overrides = {} if overrides is None else overrides
    known = set(assets)
    for key in overrides:
        if key not in known:
            close = difflib.get_close_matches(str(key), [str(a) for a in assets], n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(
                f"commission override for {key!r}: no such asset among the {len(assets)} "
                f"assets{hint}"
            )
    override_models = {
        key: as_commission_model(spec, name=f"commission override for {key!r}")
        for key, spec in overrides.items()
    }
    models = [default_model] * len(assets)
    table = np.empty((len(assets), N_COMMISSION_PARAMS), dtype=np.float64)
    table[:] = _checked_params(default_model)
    if override_models:
        for i, asset in enumerate(assets):
            model = override_models.get(asset)
            if model is not None:
                models[i] = model
                table[i] = _checked_params(model)
    return table, models


def _checked_params(model: CommissionModel) -> NDArray[np.float64]:
    row = np.asarray(model.to_params(), dtype=np.float64)
    if row.shape != (N_COMMISSION_PARAMS,):
        raise ConfigError(
            f"{type(model).__name__}.to_params() must return {N_COMMISSION_PARAMS} floats, got "
            f"shape {row.shape}"
        )
    return row
