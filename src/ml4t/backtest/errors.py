"""The exception hierarchy: every error the package raises on bad input is one of these.

Messages say what was wrong, where (asset, timestamp, column, key) and what would be valid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results.result import BacktestResult


class BacktestError(Exception):
    """Base class of every error ml4t.backtest raises on purpose."""


class DataError(BacktestError, ValueError):
    """Input data is malformed: a missing column, a duplicate row, an impossible price, ..."""


class ConfigError(BacktestError, ValueError):
    """A configuration value or key is invalid."""


class ConfigKeywordError(ConfigError, TypeError):
    """An unknown keyword argument to a config class; a TypeError too, as Python raises one."""


class MissingDependencyError(BacktestError, ImportError):
    """An optional dependency a feature needs is not installed; the message names the extra."""


class OrderError(BacktestError, ValueError):
    """An order request cannot be accepted as written (unknown asset, bad quantity, ...)."""


class StrategyError(BacktestError, RuntimeError):
    """A strategy's ``on_end`` raised after the run itself had finished.

    The strategy's exception is the cause (``__cause__``, shown in the traceback) and the
    finished run is kept as ``result``, so a bug in the last callback does not cost the run.
    (An exception in ``on_start``, ``on_data`` or ``on_fill`` propagates as itself, with a note
    naming the callback, bar and timestamp.)

    Example:
        >>> try:                                             # doctest: +SKIP
        ...     result = engine.run()
        ... except StrategyError as exc:
        ...     result = exc.result
    """

    def __init__(self, message: str, *, result: BacktestResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class DataWarning(UserWarning):
    """Something in the data the engine works around and reports, e.g. missing bars."""


class OrderWarning(UserWarning):
    """An order call the broker did not carry out, and why (e.g. percent sizing at equity <= 0)."""
