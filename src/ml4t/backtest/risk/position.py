"""Position rules: exits checked inside every bar, before the strategy runs.

A rule watches one open position. Levels (stop loss, take profit, trailing and volatility
stops) are met on the bar's high or low and fill at the level, or at the open when the bar gaps
through it; time and signal exits fill at the open. The fill and the trade carry the rule's
reason (``stop_loss``, ``take_profit``, ``trailing_stop``, ``volatility_stop``, ``time_exit``,
``signal_exit``). Rules combine with ``RuleChain``, ``AnyOf`` and ``AllOf``, and switch with
``RegimeDependent``.

Attach them with ``broker.set_position_rules(rule)`` (every asset), ``asset="AAPL"`` (one
asset) or ``order_id=...`` (the position one order opens), or pass ``position_rules=`` to
``Engine``/``run_backtest``.

Example:
    >>> from ml4t.backtest.risk import AnyOf, StopLoss, TakeProfit, TrailingStop
    >>> rules = AnyOf(StopLoss(0.05), TakeProfit(0.10), TrailingStop(0.08))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..kernels.records import (
    O_SIGNAL_EXIT,
    O_STOP_LOSS,
    O_TAKE_PROFIT,
    O_TIME_EXIT,
    O_TRAILING_STOP,
    O_VOLATILITY_STOP,
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
    RULE_NODE_WIDTH,
    RULE_REGIME,
    RULE_SIGNAL_EXIT,
    RULE_STOP_LOSS,
    RULE_TAKE_PROFIT,
    RULE_TIME_EXIT,
    RULE_TRAILING_STOP,
    RULE_VOLATILITY_STOP,
)


class PositionRule:
    """Base of every position rule; rules are immutable values compared by their settings."""

    def _node(self, slot_of: Callable[[str], int]) -> list[float]:
        raise NotImplementedError

    def _children(self) -> tuple[tuple[float, PositionRule], ...]:
        return ()

    def _settings(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._settings()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._settings()!r}"


def _row(kind: int, origin: int, value: float = math.nan, **extra: float) -> list[float]:
    row = [math.nan] * RULE_NODE_WIDTH
    row[RN_KIND] = kind
    row[RN_ORIGIN] = origin
    row[RN_VALUE] = value
    row[RN_AMOUNT] = extra.get("amount", 0.0)
    row[RN_SLOT] = extra.get("slot", -1.0)
    row[RN_FIXED] = extra.get("fixed", 0.0)
    row[RN_CHILD_START] = -1.0
    row[RN_CHILD_COUNT] = 0.0
    return row


def _distance(rule: str, pct: float | None, amount: float | None, pct_below_one: bool) -> None:
    if (pct is None) == (amount is None):
        raise ConfigError(
            f"{rule} needs exactly one of pct (a fraction of the price, 0.05 = 5%) or amount "
            f"(price units), got pct={pct!r}, amount={amount!r}"
        )
    if pct is not None:
        if not _finite(pct) or pct <= 0.0 or (pct_below_one and pct >= 1.0):
            limit = "in (0, 1)" if pct_below_one else "> 0"
            raise ConfigError(f"{rule} pct must be a fraction {limit}, got {pct!r}")
    elif not _finite(amount) or amount <= 0.0:  # type: ignore[operator]
        raise ConfigError(f"{rule} amount must be a finite price distance > 0, got {amount!r}")


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class _LevelRule(PositionRule):
    _kind = RULE_STOP_LOSS
    _origin = O_STOP_LOSS
    _pct_below_one = True

    def __init__(self, pct: float | None = None, *, amount: float | None = None) -> None:
        _distance(type(self).__name__, pct, amount, self._pct_below_one)
        self.pct = None if pct is None else float(pct)
        self.amount = None if amount is None else float(amount)

    def _settings(self) -> tuple[Any, ...]:
        return (self.pct, self.amount)

    def _node(self, slot_of: Callable[[str], int]) -> list[float]:
        if self.amount is not None:
            return _row(self._kind, self._origin, self.amount, amount=1.0)
        return _row(self._kind, self._origin, self.pct)  # type: ignore[arg-type]


class StopLoss(_LevelRule):
    """Exit when the price moves against the entry by ``pct`` (a fraction) or ``amount``.

    The level is measured from the position's entry price (its average fill price, after
    slippage): ``entry * (1 - pct)`` for a long, ``entry * (1 + pct)`` for a short. It fills at
    the level, or at the open when the bar opens past it. Reason: ``stop_loss``.

    Example:
        >>> StopLoss(0.05)          # 5% below a long's entry
        StopLoss(0.05, None)
        >>> StopLoss(amount=2.5)    # 2.50 below a long's entry
        StopLoss(None, 2.5)
    """

    _kind = RULE_STOP_LOSS
    _origin = O_STOP_LOSS


class TakeProfit(_LevelRule):
    """Exit when the price moves in favour of the entry by ``pct`` or ``amount``.

    ``entry * (1 + pct)`` for a long, ``entry * (1 - pct)`` for a short; fills at the level
    (like a limit order), or at the open when the bar opens past it. Reason: ``take_profit``.

    Example:
        >>> TakeProfit(0.10)
        TakeProfit(0.1, None)
    """

    _kind = RULE_TAKE_PROFIT
    _origin = O_TAKE_PROFIT
    _pct_below_one = False


class TrailingStop(_LevelRule):
    """A stop ``pct`` (or ``amount``) behind the best price since entry; it never loosens.

    For a long the reference is the highest high of the bars since entry (the highest close
    with ``trail_basis="close"``), starting at the entry price; a bar's own high moves the stop
    only from the next bar on, because the order of high and low inside a bar is unknown.
    Reason: ``trailing_stop``.

    Example:
        >>> TrailingStop(0.08)
        TrailingStop(0.08, None)
    """

    _kind = RULE_TRAILING_STOP
    _origin = O_TRAILING_STOP


class VolatilityScaledStop(PositionRule):
    """A stop ``k`` volatilities from the entry price: ``entry - k * vol`` for a long.

    ``vol`` is Wilder's average true range over ``window`` bars (see ``average_true_range``),
    or the feed column ``column`` you supply, in price units, or as a fraction of price with
    ``relative=True`` (then the distance is ``k * vol * entry``). With ``fixed=True`` the
    volatility is the one known when the entry was decided (the close before a fill at the open,
    the fill bar's close for a fill at the close) and the level stays put; with ``fixed=False``
    it is the latest closed bar's, so the level moves each bar. Until the volatility is known
    (the ATR's first ``window`` bars, a NaN in the column) the rule does not fire.
    Reason: ``volatility_stop``.

    Example:
        >>> VolatilityScaledStop(2.0)                     # 2 x ATR(14), fixed at entry
        VolatilityScaledStop(2.0, 14, None, True, False)
        >>> VolatilityScaledStop(3.0, column="vol_20", relative=True, fixed=False)
        VolatilityScaledStop(3.0, 14, 'vol_20', False, True)
    """

    def __init__(
        self,
        k: float,
        *,
        window: int = 14,
        column: str | None = None,
        fixed: bool = True,
        relative: bool = False,
    ) -> None:
        if not _finite(k) or k <= 0.0:
            raise ConfigError(f"VolatilityScaledStop k must be a finite number > 0, got {k!r}")
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ConfigError(
                f"VolatilityScaledStop window must be a whole number of bars >= 1, got {window!r}"
            )
        if column is not None and not isinstance(column, str):
            raise ConfigError(f"VolatilityScaledStop column must be a name, got {column!r}")
        if relative and column is None:
            raise ConfigError(
                "VolatilityScaledStop relative=True needs column= (a volatility as a fraction "
                "of price); the built-in ATR is in price units"
            )
        self.k = float(k)
        self.window = window
        self.column = column
        self.fixed = bool(fixed)
        self.relative = bool(relative)

    def _settings(self) -> tuple[Any, ...]:
        return (self.k, self.window, self.column, self.fixed, self.relative)

    def _node(self, slot_of: Callable[[str], int]) -> list[float]:
        source = self.column if self.column is not None else f"{ATR_PREFIX}{self.window}"
        return _row(
            RULE_VOLATILITY_STOP,
            O_VOLATILITY_STOP,
            self.k,
            amount=1.0 if self.relative else 0.0,
            slot=float(slot_of(source)),
            fixed=1.0 if self.fixed else 0.0,
        )


class TimeExit(PositionRule):
    """Exit at the open once the position has been held ``bars`` bars. Reason: ``time_exit``.

    A position filled at the open of bar ``e`` exits at the open of bar ``e + bars``, as a
    strategy that sold after ``bars`` closes would.

    Example:
        >>> TimeExit(20)
        TimeExit(20,)
    """

    def __init__(self, bars: int) -> None:
        if not isinstance(bars, int) or isinstance(bars, bool) or bars < 1:
            raise ConfigError(f"TimeExit bars must be a whole number >= 1, got {bars!r}")
        self.bars = bars

    def _settings(self) -> tuple[Any, ...]:
        return (self.bars,)

    def _node(self, slot_of: Callable[[str], int]) -> list[float]:
        return _row(RULE_TIME_EXIT, O_TIME_EXIT, float(self.bars))


class SignalExit(PositionRule):
    """Exit at the open after the last close's ``column`` crossed ``threshold`` against you.

    A long exits when the value falls below ``threshold``; a short when it rises above it. The
    value read is the previous bar's (known at its close), so the exit is what a strategy
    selling on that close would get. NaN never triggers. Reason: ``signal_exit``.

    Example:
        >>> SignalExit("score", threshold=0.0)
        SignalExit('score', 0.0)
    """

    def __init__(self, column: str, threshold: float = 0.0) -> None:
        if not isinstance(column, str):
            raise ConfigError(f"SignalExit column must be a name, got {column!r}")
        if not _finite(threshold):
            raise ConfigError(f"SignalExit threshold must be a finite number, got {threshold!r}")
        self.column = column
        self.threshold = float(threshold)

    def _settings(self) -> tuple[Any, ...]:
        return (self.column, self.threshold)

    def _node(self, slot_of: Callable[[str], int]) -> list[float]:
        return _row(
            RULE_SIGNAL_EXIT, O_SIGNAL_EXIT, self.threshold, slot=float(slot_of(self.column))
        )


class _Combinator(PositionRule):
    _kind = RULE_ANY_OF

    def __init__(self, *rules: PositionRule) -> None:
        if not rules:
            raise ConfigError(f"{type(self).__name__} needs at least one rule")
        for rule in rules:
            _check_rule(rule, f"{type(self).__name__} member")
        self.rules = tuple(rules)

    def _settings(self) -> tuple[Any, ...]:
        return self.rules

    def _children(self) -> tuple[tuple[float, PositionRule], ...]:
        return tuple((math.nan, r) for r in self.rules)

    def _node(self, slot_of: Callable[[str], int]) -> list[float]:
        return _row(self._kind, -1)


class RuleChain(_Combinator):
    """The first rule, in the order given, that triggers on the bar decides the exit.

    Example:
        >>> RuleChain(TimeExit(10), StopLoss(0.05))   # the time exit wins a tie
        RuleChain(TimeExit(10,), StopLoss(0.05, None))
    """

    _kind = RULE_CHAIN


class AnyOf(_Combinator):
    """Exit when any rule triggers; the one met first inside the bar sets price and reason.

    Example:
        >>> AnyOf(StopLoss(0.05), TakeProfit(0.1))
        AnyOf(StopLoss(0.05, None), TakeProfit(0.1, None))
    """

    _kind = RULE_ANY_OF


class AllOf(_Combinator):
    """Exit only when every rule triggers on the same bar, at the last one met.

    Example:
        >>> AllOf(TimeExit(5), StopLoss(0.02))   # a stop that arms after five bars
        AllOf(TimeExit(5,), StopLoss(0.02, None))
    """

    _kind = RULE_ALL_OF


class RegimeDependent(PositionRule):
    """A different rule per value of a regime column (read at the last close).

    ``rules`` maps regime values (numbers, as they appear in the column) to rules; ``default``
    applies to any other value or NaN (no rule when it is None).

    Example:
        >>> RegimeDependent("regime", {0: StopLoss(0.08), 1: StopLoss(0.03)})
        RegimeDependent('regime', ((0.0, StopLoss(0.08, None)), (1.0, StopLoss(0.03, None))), None)
    """

    def __init__(
        self,
        column: str,
        rules: Mapping[float, PositionRule],
        default: PositionRule | None = None,
    ) -> None:
        if not isinstance(column, str):
            raise ConfigError(f"RegimeDependent column must be a name, got {column!r}")
        if not isinstance(rules, Mapping) or not rules:
            raise ConfigError("RegimeDependent rules must be a non-empty mapping {value: rule}")
        pairs = []
        for value, rule in rules.items():
            if not _finite(value):
                raise ConfigError(
                    f"RegimeDependent regime value {value!r} must be a finite number (the "
                    f"values of column {column!r})"
                )
            _check_rule(rule, f"RegimeDependent rule for regime {value!r}")
            pairs.append((float(value), rule))
        if default is not None:
            _check_rule(default, "RegimeDependent default")
        self.column = column
        self.rules = tuple(pairs)
        self.default = default

    def _settings(self) -> tuple[Any, ...]:
        return (self.column, self.rules, self.default)

    def _children(self) -> tuple[tuple[float, PositionRule], ...]:
        default = () if self.default is None else ((math.nan, self.default),)
        return self.rules + default

    def _node(self, slot_of: Callable[[str], int]) -> list[float]:
        return _row(RULE_REGIME, -1, slot=float(slot_of(self.column)))


def _check_rule(rule: object, what: str) -> None:
    if not isinstance(rule, PositionRule):
        raise ConfigError(
            f"{what} must be a position rule (StopLoss, TakeProfit, TrailingStop, "
            f"VolatilityScaledStop, TimeExit, SignalExit, RegimeDependent, RuleChain, AnyOf, "
            f"AllOf), got {type(rule).__name__}"
        )


ATR_PREFIX = "__atr_"


class RuleTables:
    """Every rule set of a run compiled into the flat arrays ``kernels.rules`` evaluates.

    ``columns`` gives the [bars, assets] array of a feed column by name (and the ATR by
    ``ATR_PREFIX + window``); it is asked once per column the rules read.
    """

    def __init__(
        self, columns: Callable[[str], NDArray[np.float64]] | None, n_bars: int, n_assets: int
    ) -> None:
        self._source = columns
        self.nodes = np.zeros((0, RULE_NODE_WIDTH), dtype=np.float64)
        self.children = np.zeros(0, dtype=np.int64)
        self.child_keys = np.zeros(0, dtype=np.float64)
        self.set_start = np.zeros(0, dtype=np.int64)
        self.set_root = np.zeros(0, dtype=np.int64)
        self.columns = np.zeros((0, n_bars, n_assets), dtype=np.float64)
        self._slots: dict[str, int] = {}
        self._sets: dict[PositionRule, int] = {}

    def set_id(self, rule: PositionRule) -> int:
        """The id of ``rule``'s compiled set, compiling it the first time it is seen."""
        _check_rule(rule, "position_rules")
        if rule in self._sets:
            return self._sets[rule]
        rows: list[list[float]] = []
        children: list[int] = list(self.children)
        keys: list[float] = list(self.child_keys)
        base = len(self.nodes)
        new_columns: list[NDArray[np.float64]] = []

        def slot_of(name: str) -> int:
            if name not in self._slots:
                new_columns.append(self._column(name))
                self._slots[name] = len(self._slots)
            return self._slots[name]

        def emit(node: PositionRule) -> int:
            ids = [(key, emit(child)) for key, child in node._children()]
            row = node._node(slot_of)
            if ids:
                row[RN_CHILD_START] = len(children)
                row[RN_CHILD_COUNT] = len(ids)
                for key, child_id in ids:
                    keys.append(key)
                    children.append(child_id)
            rows.append(row)
            return base + len(rows) - 1

        root = emit(rule)
        self.nodes = np.vstack([self.nodes, np.asarray(rows, dtype=np.float64)])
        self.children = np.asarray(children, dtype=np.int64)
        self.child_keys = np.asarray(keys, dtype=np.float64)
        self.set_start = np.append(self.set_start, base)
        self.set_root = np.append(self.set_root, root)
        if new_columns:
            self.columns = np.concatenate([self.columns, np.stack(new_columns)])
        self._sets[rule] = len(self.set_start) - 1
        return self._sets[rule]

    def _column(self, name: str) -> NDArray[np.float64]:
        if self._source is None:
            raise ConfigError(
                f"position rules read column {name!r}, but this broker has no data to read it "
                "from; run it through Engine"
            )
        array = self._source(name)
        expected = self.columns.shape[1:]
        if array.shape != expected:
            raise ConfigError(f"column {name!r} has shape {array.shape}, expected {expected}")
        return np.ascontiguousarray(array, dtype=np.float64)
