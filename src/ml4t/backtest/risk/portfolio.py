"""Portfolio rules: limits on the whole book, checked where they bind.

Limits on what the book may hold (``MaxPositions``, ``MaxPositionWeight``,
``MaxGrossExposure``, ``MaxNetExposure``) are checked on every fill that would grow a position,
at its fill price: an order that would break one is rejected, with the rule's name as its
reason (``max_positions``, ...). Orders that shrink positions always pass.

Halts (``DailyLossLimit``, ``MaxDrawdownHalt``) are checked at each bar's close. On a breach
they block new entries (orders that would grow a position are rejected, and working ones are
cancelled, with the rule's name as reason) or, with ``action="liquidate"``, also close every
position at the next fill (reason ``daily_loss_limit`` / ``max_drawdown_halt``). A daily block
lasts until the calendar day changes; a drawdown halt lasts to the end, and with
``action="liquidate"`` the strategy is not called again.

Example:
    >>> from ml4t.backtest.risk import MaxDrawdownHalt, MaxPositions, MaxPositionWeight
    >>> rules = [MaxPositions(20), MaxPositionWeight(0.10), MaxDrawdownHalt(0.25)]
"""

from __future__ import annotations

import math
from typing import Any, Literal

from ..errors import ConfigError

HaltAction = Literal["block_entries", "liquidate"]
_ACTIONS = ("block_entries", "liquidate")


class PortfolioRule:
    """Base of every portfolio rule; rules are immutable values compared by their settings."""

    def _settings(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._settings()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._settings()!r}"


def _positive(rule: str, name: str, value: object) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{rule} {name} must be a finite number > 0, got {value!r}")
    return float(value)


class MaxPositions(PortfolioRule):
    """At most ``n`` positions open at once; an order opening one more is rejected.

    Example:
        >>> MaxPositions(10)
        MaxPositions(10,)
    """

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"MaxPositions n must be a whole number >= 1, got {n!r}")
        self.n = n

    def _settings(self) -> tuple[Any, ...]:
        return (self.n,)


class MaxPositionWeight(PortfolioRule):
    """No position may be worth more than ``weight`` x equity after a fill that grows it.

    Example:
        >>> MaxPositionWeight(0.1)
        MaxPositionWeight(0.1,)
    """

    def __init__(self, weight: float) -> None:
        self.weight = _positive("MaxPositionWeight", "weight", weight)

    def _settings(self) -> tuple[Any, ...]:
        return (self.weight,)


class MaxGrossExposure(PortfolioRule):
    """Sum of |position values| at most ``multiple`` x equity (1.0: no leverage).

    Example:
        >>> MaxGrossExposure(1.5)
        MaxGrossExposure(1.5,)
    """

    def __init__(self, multiple: float) -> None:
        self.multiple = _positive("MaxGrossExposure", "multiple", multiple)

    def _settings(self) -> tuple[Any, ...]:
        return (self.multiple,)


class MaxNetExposure(PortfolioRule):
    """|Longs minus shorts| at most ``multiple`` x equity; fills that bring it closer to zero
    always pass.

    Example:
        >>> MaxNetExposure(0.2)
        MaxNetExposure(0.2,)
    """

    def __init__(self, multiple: float) -> None:
        self.multiple = _positive("MaxNetExposure", "multiple", multiple)

    def _settings(self) -> tuple[Any, ...]:
        return (self.multiple,)


class _Halt(PortfolioRule):
    def __init__(self, limit: float, *, action: HaltAction = "block_entries") -> None:
        name = type(self).__name__
        value = _positive(name, "limit", limit)
        if value >= 1.0:
            raise ConfigError(f"{name} limit must be a fraction in (0, 1), got {limit!r}")
        if action not in _ACTIONS:
            raise ConfigError(f"{name} action must be one of {_ACTIONS}, got {action!r}")
        self.limit = value
        self.action: HaltAction = action

    def _settings(self) -> tuple[Any, ...]:
        return (self.limit, self.action)


class DailyLossLimit(_Halt):
    """Halt entries for the rest of the calendar day once equity is down ``limit`` (a fraction)
    from the previous day's last close (the initial cash on the first day).

    Checked at each bar's close. With daily bars the day is over at the check, so orders the
    strategy decides on that close are the ones blocked.

    Example:
        >>> DailyLossLimit(0.03, action="liquidate")
        DailyLossLimit(0.03, 'liquidate')
    """


class MaxDrawdownHalt(_Halt):
    """Stop trading for good once equity is ``limit`` below its peak (at closes).

    ``action="block_entries"`` keeps the strategy running but rejects orders that grow a
    position; ``"liquidate"`` closes everything at the next fill and stops calling the strategy.

    Example:
        >>> MaxDrawdownHalt(0.2)
        MaxDrawdownHalt(0.2, 'block_entries')
    """
