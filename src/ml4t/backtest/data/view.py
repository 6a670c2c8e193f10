"""The point-in-time view a strategy receives: bars up to ``t`` and nothing later.

Current-bar rows are copies, so nothing handed out points into the feed's full arrays. Trailing
windows come from a per-field buffer that holds only the rows revealed so far: rows after ``t``
are never copied into it, so no slice of it (nor its ``.base``) can show the future.

That is a guarantee about what the view returns. The view does hold the feed's arrays (it reads
bar ``t`` from them), and Python cannot hide a private attribute from code that goes looking for
it. What it can stop is writing: the feed's arrays are views of immutable ``bytes`` (see
``DataFeed``), which numpy refuses to make writeable, so no strategy can change a price a fill
or a later run reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError

if TYPE_CHECKING:
    from .feed import DataFeed


class Bar:
    """One asset's bar at the current time, with every field as an attribute.

    Example:
        >>> bar = data.bar("AAPL")  # doctest: +SKIP
        >>> bar.close, bar.score    # doctest: +SKIP
        (187.3, 0.42)
    """

    __slots__ = ("_values", "asset", "timestamp")

    def __init__(self, asset: str, timestamp: datetime, values: dict[str, float]) -> None:
        self.asset = asset
        self.timestamp = timestamp
        self._values = values

    def __getattr__(self, name: str) -> float:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"bar of {self.asset} has no field {name!r}; fields: {', '.join(self._values)}"
            ) from None

    def __getitem__(self, name: str) -> float:
        return self.__getattr__(name)

    @property
    def is_missing(self) -> bool:
        """True when the asset has no bar at this time (its prices are NaN)."""
        return bool(np.isnan(self._values["close"]))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v:.6g}" for k, v in self._values.items())
        return f"Bar({self.asset}, {self.timestamp}, {fields})"


class BarView:
    """What ``Strategy.on_data`` sees at bar ``t``: arrays over ``assets`` for that bar.

    Example:
        >>> def on_data(self, timestamp, data, broker):  # doctest: +SKIP
        ...     closes = data.close                  # np.ndarray over data.assets
        ...     score = data["score"]                # any extra column, same shape
        ...     window = data.history("close", 20)   # [20, N], last row is this bar
        ...     aapl = data.bar("AAPL").close
    """

    def __init__(self, feed: DataFeed) -> None:
        self._feed = _FeedArrays(feed)
        self._t = -1
        self._timestamp: datetime | None = None
        self._revealed: dict[str, NDArray[np.float64]] = {}
        self._revealed_upto: dict[str, int] = {}

    def _advance(self, t: int, timestamp: datetime) -> None:
        """Engine: move the view to bar ``t``. Never called by strategies."""
        self._t = t
        self._timestamp = timestamp

    @property
    def index(self) -> int:
        """Position of the current bar (0 for the first bar)."""
        return self._t

    @property
    def timestamp(self) -> datetime:
        """Time of the current bar."""
        assert self._timestamp is not None
        return self._timestamp

    @property
    def assets(self) -> NDArray[np.str_]:
        """Asset names; every array over assets is in this order."""
        return self._feed.assets

    @property
    def fields(self) -> tuple[str, ...]:
        """Names of the fields available through ``data[name]``."""
        return self._feed.fields

    @property
    def open(self) -> NDArray[np.float64]:
        """Opens of the current bar over assets (NaN where an asset has no bar)."""
        return self._row("open")

    @property
    def high(self) -> NDArray[np.float64]:
        """Highs of the current bar over assets."""
        return self._row("high")

    @property
    def low(self) -> NDArray[np.float64]:
        """Lows of the current bar over assets."""
        return self._row("low")

    @property
    def close(self) -> NDArray[np.float64]:
        """Closes of the current bar over assets."""
        return self._row("close")

    @property
    def volume(self) -> NDArray[np.float64]:
        """Volumes of the current bar over assets."""
        return self._row("volume")

    @property
    def has_bar(self) -> NDArray[np.bool_]:
        """True for assets that have a bar at this time."""
        closes: NDArray[np.float64] = self._feed.arrays["close"][self._t]
        return ~np.isnan(closes)

    def __getitem__(self, key: str) -> NDArray[np.float64]:
        """A field over assets for the current bar: ``data["score"]``."""
        return self._row(key)

    def __contains__(self, key: str) -> bool:
        return key in self._feed.arrays

    def bar(self, asset: str) -> Bar:
        """One asset's current bar as an object with every field as an attribute."""
        i = self._feed.asset_index(asset)
        values = {name: float(arr[self._t, i]) for name, arr in self._feed.arrays.items()}
        return Bar(asset, self.timestamp, values)

    def history(self, field: str, n: int) -> NDArray[np.float64]:
        """The last ``n`` bars of ``field``, shape ``[n, N]``, ending with the current bar.

        Rows before the first bar of the data are NaN. The result is read-only.
        """
        if not isinstance(n, int | np.integer) or n < 1:
            raise DataError(f"history length for field {field!r} must be a positive int, got {n}")
        buf = self._reveal(field)
        t = self._t
        start = t - n + 1
        if start >= 0:
            out = buf[start : t + 1]
        else:
            out = np.full((n, buf.shape[1]), np.nan)
            out[-start:] = buf[: t + 1]
        out.flags.writeable = False
        return out

    def _row(self, field: str) -> NDArray[np.float64]:
        arr = self._feed.arrays.get(field)
        if arr is None:
            raise _unknown_field(field, self._feed.fields)
        row: NDArray[np.float64] = arr[self._t]
        return row.copy()

    def _reveal(self, field: str) -> NDArray[np.float64]:
        arr = self._feed.arrays.get(field)
        if arr is None:
            raise _unknown_field(field, self._feed.fields)
        buf = self._revealed.get(field)
        if buf is None:
            buf = np.full(arr.shape, np.nan)
            self._revealed[field] = buf
            self._revealed_upto[field] = -1
        upto = self._revealed_upto[field]
        if upto < self._t:
            buf[upto + 1 : self._t + 1] = arr[upto + 1 : self._t + 1]
            self._revealed_upto[field] = self._t
        return buf

    def __repr__(self) -> str:
        return f"BarView(t={self._t}, timestamp={self._timestamp}, assets={len(self.assets)})"


class _FeedArrays:
    """The parts of a feed the view reads, kept private so a strategy cannot walk to the feed."""

    __slots__ = ("_index", "arrays", "assets", "fields")

    def __init__(self, feed: DataFeed) -> None:
        self.assets = feed.assets
        self.fields = feed.fields
        self.arrays = {name: feed.array(name) for name in feed.fields}
        self._index = {str(a): i for i, a in enumerate(feed.assets)}

    def asset_index(self, asset: str) -> int:
        try:
            return self._index[asset]
        except KeyError:
            raise DataError(
                f"unknown asset {asset!r}; the feed has {len(self.assets)} assets, "
                f"e.g. {', '.join(map(str, self.assets[:5]))}"
            ) from None


def _unknown_field(field: str, fields: tuple[str, ...]) -> DataError:
    return DataError(f"unknown field {field!r}; available fields: {', '.join(fields)}")
