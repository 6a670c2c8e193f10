"""The exception hierarchy: every error the package raises on bad input is one of these.

Messages say what was wrong, where (asset, timestamp, column, key) and what would be valid.
"""

from __future__ import annotations


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


class DataWarning(UserWarning):
    """Something in the data the engine works around and reports, e.g. missing bars."""
