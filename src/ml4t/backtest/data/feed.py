"""DataFeed: long-format prices (and model outputs) -> aligned dense ``[T, N]`` arrays per field.

Rows are placed into their (timestamp, asset) cell by index arithmetic, never through a wide
pivot, so building the feed costs one pass per field and memory close to the arrays themselves.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import sys
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from ..errors import DataError, DataWarning
from .loading import (
    ASSET,
    KEY_COLUMNS,
    PRICE_COLUMNS,
    TIMESTAMP,
    Source,
    load_prices,
    load_signals,
    timestamp_series,
)
from .validation import Grid, check_bar_values, check_unique_cells, format_timestamp

# How many assets the missing-bar warning names.
_WORST_SHOWN = 5


class DataFeed:
    """Prices and model outputs for a universe, aligned on one time axis as ``[T, N]`` arrays.

    Input is one of:

    - long format (one row per timestamp and asset) as a polars or pandas frame;
    - a dict ``{asset: frame}`` of per-asset frames;
    - a dict ``{field: wide frame}``: one timestamps x assets frame per field (open, high, low,
      close, volume, any extra), pandas with a ``DatetimeIndex`` or polars with a timestamp column;
    - a yfinance frame as ``yf.download`` returns it: MultiIndex columns ``(field, ticker)``, or
      ``(ticker, field)`` with ``group_by="ticker"``, a ``Date``/``Datetime`` index (tz-aware
      or not). Fields spelled the yfinance way become ours: ``Open`` -> ``open``, ...,
      ``Adj Close`` -> ``adj_close``;
    - Parquet or CSV path(s) of a long table (CSV read by ``pl.read_csv(try_parse_dates=True)``;
      Parquet read one column at a time).

    ``signals`` joins a second long frame on (timestamp, asset). Every column besides the keys
    becomes a float64 field. A NaN price is a missing bar: the asset does not trade then. Bad
    input raises ``DataError`` naming the asset, timestamp and column at fault.

    Adjusted prices: by default open, high, low and close are kept as given and an ``Adj Close``
    (``adj_close``) column is one more field. ``adjust=True`` scales open, high, low and close
    by ``adj_close / close`` on each bar (as yfinance's ``auto_adjust`` does; volume is left as
    it is) and drops ``adj_close``, so that returns include dividends and splits.

    Example:
        >>> from ml4t.backtest.datasets import synthetic_universe
        >>> feed = DataFeed(synthetic_universe(n_assets=3, n_bars=5, seed=1))
        >>> feed.n_bars, feed.n_assets, feed.fields[:6]
        (5, 3, ('open', 'high', 'low', 'close', 'volume', 'score'))
        >>> closes = feed.array("close")  # [T, N], columns in feed.assets order
        >>> bool(closes[-1, feed.asset_index("A0002")] > 0)
        True
    """

    def __init__(
        self,
        prices: Source,
        *,
        signals: Source | None = None,
        asset_column: str | None = None,
        timestamp_column: str | None = None,
        adjust: bool = False,
    ) -> None:
        table = load_prices(prices, timestamp_column=timestamp_column, asset_column=asset_column)
        cells = _Cells.of(table.take)
        timezone = cells.timezone
        grid = Grid(cells.timestamps, cells.assets, timezone)
        if not cells.ordered:
            check_unique_cells(cells.counts(), grid, label="prices")

        names = [*PRICE_COLUMNS, *(c for c in table.columns if c not in PRICE_COLUMNS)]
        arrays = {}
        for name in names:
            # One column at a time (a Parquet column is read only now): peak memory is the
            # arrays plus one column, not a whole frame plus all the arrays. Each array is
            # frozen at once (unless adjust rescales it), so the scratch array its copy frees is
            # the one the next column is scattered into, not one hole in the heap per field.
            values = cells.scatter(table.take(name))
            arrays[name] = values if adjust else _read_only(values)
            del values
        del table
        if adjust:
            _adjust(arrays, grid)
        check_bar_values(arrays, grid)

        if signals is not None:
            signal_frame = load_signals(
                signals,
                timestamp_column=timestamp_column,
                asset_column=asset_column,
                time_zone=timezone,
                price_columns=names,
            )
            arrays |= _signal_arrays(signal_frame, cells, grid)

        self._setup(cells.timestamps, cells.assets, timezone, arrays)
        del cells, arrays
        _return_freed_heap()
        self._warn_missing_bars(stacklevel=3)

    @classmethod
    def from_arrays(
        cls,
        timestamps: ArrayLike | Sequence[datetime],
        assets: Sequence[str] | NDArray[np.str_],
        fields: Mapping[str, ArrayLike],
        *,
        timezone: str | None = None,
    ) -> DataFeed:
        """Build a feed from ``[T, N]`` arrays, checked by the same rules as a frame.

        ``fields`` needs open, high, low, close and volume; more fields follow in dict order.
        ``timestamps`` may be datetime64 values, datetimes or a polars/pandas series. With
        ``timezone``, naive datetime64 values are read as UTC instants (as ``feed.timestamps``
        stores them). Rows and columns are sorted by timestamp and asset; NaN prices are
        missing bars.

        Example:
            >>> feed = DataFeed.from_arrays(times, ["A", "B"], {"open": o, "high": h, "low": lo,
            ...     "close": c, "volume": v})  # doctest: +SKIP
        """
        series = timestamp_series(timestamps, timezone)
        zone = _series_zone(series)
        times = series.to_physical().to_numpy().astype(np.int64)
        names = _asset_list(assets)
        t_order = np.argsort(times, kind="stable")
        a_order = np.argsort(np.asarray(names, dtype=np.str_), kind="stable")
        times = times[t_order]
        names = [names[i] for i in a_order]
        _check_strictly_increasing(times, zone)
        _check_unique_assets(names)

        shape = (len(times), len(names))
        arrays = {
            name: _grid_field(name, values, shape, t_order, a_order)
            for name, values in _ordered_fields(fields).items()
        }
        check_bar_values(arrays, Grid(times, names, zone))
        feed = cls.__new__(cls)
        feed._setup(times, names, zone, arrays)
        feed._warn_missing_bars(stacklevel=3)
        return feed

    def _setup(
        self,
        timestamps: NDArray[np.int64],
        assets: list[str],
        timezone: str | None,
        arrays: dict[str, NDArray[np.float64]],
    ) -> None:
        _check_asset_names(assets)
        for name in list(arrays):
            # One array at a time, so the copy costs one array of extra memory at most.
            arrays[name] = _read_only(arrays[name])
        self._arrays = arrays
        self._fields = tuple(arrays)
        self._timestamps = _read_only(timestamps.astype("datetime64[us]"))
        self._assets = _read_only(np.asarray(assets, dtype=np.str_))
        self._index = {name: i for i, name in enumerate(assets)}
        self._timezone = timezone
        self._has_bar = _read_only(~np.isnan(arrays["close"]))
        self._missing_bars = _interior_gaps(self._has_bar, assets)
        self._datetimes: list[datetime] | None = None

    # --- public surface --------------------------------------------------------------------------

    @property
    def timestamps(self) -> NDArray[np.datetime64]:
        """Bar times, ``datetime64[us]``, ascending; UTC instants when the feed is tz-aware."""
        return self._timestamps

    @property
    def datetimes(self) -> list[datetime]:
        """Bar times as python datetimes, tz-aware in ``timezone`` if the feed is.

        Computed once and cached; the same list is returned on every call, so do not modify it.
        """
        if self._datetimes is None:
            series = pl.Series(TIMESTAMP, self._timestamps)
            if self._timezone is not None:
                series = series.dt.replace_time_zone("UTC").dt.convert_time_zone(self._timezone)
            self._datetimes = series.to_list()
        return self._datetimes

    @property
    def assets(self) -> NDArray[np.str_]:
        """Asset names, sorted; every array's columns are in this order (read-only)."""
        return self._assets

    @property
    def fields(self) -> tuple[str, ...]:
        """Field names: open, high, low, close, volume, extra price columns, signal columns."""
        return self._fields

    @property
    def n_bars(self) -> int:
        """Number of timestamps T."""
        return len(self._timestamps)

    @property
    def n_assets(self) -> int:
        """Number of assets N."""
        return len(self._assets)

    @property
    def timezone(self) -> str | None:
        """Time zone of the input timestamps, or None when they were naive."""
        return self._timezone

    @property
    def has_bar(self) -> NDArray[np.bool_]:
        """``[T, N]``, True where the asset has a bar (its close is not NaN); read-only."""
        return self._has_bar

    @property
    def missing_bars(self) -> dict[str, int]:
        """Missing bars per asset between its first and last bar; only assets with gaps."""
        return dict(self._missing_bars)

    @property
    def n_missing(self) -> int:
        """Total missing bars inside the assets' histories (the sum of ``missing_bars``)."""
        return sum(self._missing_bars.values())

    def array(self, field: str) -> NDArray[np.float64]:
        """The ``[T, N]`` float64 array of ``field`` (NaN where there is no value).

        Read-only for good: its memory is an immutable ``bytes`` object, so numpy refuses
        ``flags.writeable = True`` on it and on every view of it. Copy it to change it.
        """
        try:
            return self._arrays[field]
        except KeyError:
            raise DataError(
                f"unknown field {field!r}; valid fields: {', '.join(self._fields)}"
            ) from None

    def slice(self, start: int, stop: int) -> DataFeed:
        """The bars ``start <= t < stop`` as a feed of their own.

        Its arrays are copies, so nothing outside the window is reachable from it (not even
        through a view's ``.base``), which is what walk-forward training relies on. Every asset
        stays, with NaN where it has no bar in the window.

        Example:
            >>> train = feed.slice(0, 500)   # doctest: +SKIP
        """
        if not (0 <= start < stop <= self.n_bars):
            raise DataError(
                f"slice [{start}, {stop}) is not a non-empty range of bars in [0, {self.n_bars})"
            )
        part = DataFeed.__new__(DataFeed)
        part._setup(
            self._timestamps[start:stop].astype(np.int64),
            [str(a) for a in self._assets],
            self._timezone,
            # _setup copies each window into bytes of its own: no second copy needed here.
            {name: array[start:stop] for name, array in self._arrays.items()},
        )
        return part

    def asset_index(self, asset: str) -> int:
        """Column of ``asset`` in every array."""
        try:
            return self._index[asset]
        except KeyError:
            shown = ", ".join(map(repr, self._assets[:5].tolist()))
            more = ", ..." if self.n_assets > 5 else ""
            raise DataError(
                f"unknown asset {asset!r}; the feed has {self.n_assets} assets: {shown}{more}"
            ) from None

    def __len__(self) -> int:
        return self.n_bars

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled arrays (a sweep's worker process) own writeable memory: freeze them again.
        self.__dict__.update(state)
        self._arrays = {name: _read_only(array) for name, array in self._arrays.items()}
        self._timestamps = _read_only(self._timestamps)
        self._assets = _read_only(self._assets)
        self._has_bar = _read_only(self._has_bar)

    def __repr__(self) -> str:
        start = format_timestamp(int(self._timestamps[0].astype(np.int64)), self._timezone)
        end = format_timestamp(int(self._timestamps[-1].astype(np.int64)), self._timezone)
        zone = f" {self._timezone}" if self._timezone else ""
        return (
            f"DataFeed({self.n_bars} bars x {self.n_assets} assets, {start} to {end}{zone}, "
            f"fields: {', '.join(self._fields)}, missing bars: {self.n_missing})"
        )

    def _warn_missing_bars(self, *, stacklevel: int) -> None:
        if not self._missing_bars:
            return
        worst = sorted(self._missing_bars.items(), key=lambda item: (-item[1], item[0]))
        shown = ", ".join(f"{asset} ({n})" for asset, n in worst[:_WORST_SHOWN])
        more = f" and {len(worst) - _WORST_SHOWN} more" if len(worst) > _WORST_SHOWN else ""
        warnings.warn(
            f"{self.n_missing} missing bars inside the histories of {len(worst)} assets "
            f"(no price between an asset's first and last bar): {shown}{more}. On those bars "
            "the asset does not trade: its orders wait and its position keeps its last price. "
            "See feed.missing_bars for every asset.",
            DataWarning,
            stacklevel=stacklevel,
        )


# --- placing rows into cells ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Cells:
    """Where each input row goes in the ``[T, N]`` grid: ``flat = t * N + n``."""

    timestamps: NDArray[np.int64]  # sorted unique epoch microseconds
    assets: list[str]  # sorted unique names
    flat: NDArray[np.int64]  # per input row; empty when the rows are complete (not needed)
    ordered: bool  # rows already strictly increasing in (timestamp, asset): no duplicates
    n_rows: int
    timezone: str | None

    @classmethod
    def of(cls, take: Callable[[str], Iterable[pl.Series]]) -> _Cells:
        """Cells of the rows whose keys ``take`` hands out, one key column at a time.

        Each key column is gone through twice a block of rows at a time (its unique values,
        then each row's position), so neither a whole key column nor a temporary as long as
        it is held; a Parquet key is read from the file for each pass.
        """
        names = take(ASSET)
        n_rows, uniques = 0, []
        for part in names:
            n_rows += len(part)
            uniques.append(part.unique())
        assets = pl.concat(uniques).unique().sort()
        # An Enum with sorted categories maps names to their sorted position in one hash pass.
        enum = pl.Enum(assets)
        flat = np.empty(n_rows, dtype=np.int64)
        for start, part in _starts(names):
            flat[start : start + len(part)] = part.cast(enum).to_physical().to_numpy()
        del names
        stamps = take(TIMESTAMP)
        unique_times = pl.concat([part.unique() for part in stamps]).unique().sort()
        timezone = _series_zone(unique_times)
        n_assets = len(assets)
        for start, part in _starts(stamps):
            rows = unique_times.search_sorted(part).to_numpy().astype(np.int64)
            rows *= n_assets
            flat[start : start + len(part)] += rows
        del stamps
        ordered = bool(np.all(flat[1:] > flat[:-1]))
        times = unique_times.to_physical().to_numpy().astype(np.int64)
        if ordered and n_rows == len(times) * n_assets:
            flat = np.zeros(0, dtype=np.int64)
        return cls(times, assets.to_list(), flat, ordered, n_rows, timezone)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.timestamps), len(self.assets)

    @property
    def complete(self) -> bool:
        """Every cell has exactly one row, in grid order: values are the array as they stand."""
        return self.ordered and self.n_rows == self.shape[0] * self.shape[1]

    def counts(self) -> NDArray[np.int64]:
        """Rows per cell, flat."""
        return np.bincount(self.flat, minlength=self.shape[0] * self.shape[1])

    def present(self) -> NDArray[np.bool_]:
        """True for cells that have a row (a missing bar's all-NaN row counts), flat."""
        if self.complete:
            return np.ones(self.shape[0] * self.shape[1], dtype=np.bool_)
        out = np.zeros(self.shape[0] * self.shape[1], dtype=np.bool_)
        out[self.flat] = True
        return out

    def scatter(self, column: Iterable[pl.Series]) -> NDArray[np.float64]:
        """One column -> ``[T, N]`` float64, NaN in cells without a row (nulls become NaN).

        Copied a block of rows at a time straight into the array: converting the whole column
        first would hold a second column-sized copy (polars joins a multi-chunk column into a
        new buffer for ``to_numpy``) next to the array.
        """
        size = self.shape[0] * self.shape[1]
        out = np.empty(size) if self.complete else np.full(size, np.nan)
        for start, part in _starts(column):
            values = part.cast(pl.Float64).to_numpy()
            if self.complete:
                out[start : start + len(values)] = values
            else:
                out[self.flat[start : start + len(values)]] = values
        return out.reshape(self.shape)


def _starts(blocks: Iterable[pl.Series]) -> Iterator[tuple[int, pl.Series]]:
    """``(first row, block)`` over consecutive blocks of rows."""
    start = 0
    for part in blocks:
        yield start, part
        start += len(part)


def _scatter(
    values: NDArray[np.float64], flat: NDArray[np.int64], shape: tuple[int, int]
) -> NDArray[np.float64]:
    out = np.full(shape[0] * shape[1], np.nan)
    out[flat] = values
    return out.reshape(shape)


def _adjust(arrays: dict[str, NDArray[np.float64]], grid: Grid) -> None:
    """Scale open, high, low and close by ``adj_close / close``; drop ``adj_close``."""
    if "adj_close" not in arrays:
        raise DataError(
            "adjust=True needs an adjusted close column ('adj_close', or yfinance's 'Adj Close'); "
            f"fields present: {', '.join(arrays)}. Without one, prices are used as given"
        )
    adj = arrays.pop("adj_close")
    close = arrays["close"]
    lost = np.isnan(adj) & ~np.isnan(close)
    if lost.any():
        raise DataError(
            f"adj_close is missing for {grid.describe(int(np.argmax(lost)))} where close is "
            f"{close.flat[int(np.argmax(lost))]} ({int(lost.sum())} bars); adjusting needs both"
        )
    ratio = adj / close
    for name in ("open", "high", "low", "close"):
        arrays[name] = arrays[name] * ratio


def _series_zone(series: pl.Series) -> str | None:
    dtype = series.dtype
    assert isinstance(dtype, pl.Datetime)
    return dtype.time_zone


# --- signals -------------------------------------------------------------------------------------


def _signal_arrays(
    frame: pl.DataFrame, cells: _Cells, grid: Grid
) -> dict[str, NDArray[np.float64]]:
    """Place signal rows into the price grid; every signal row must hit a price row."""
    keys = frame.select(TIMESTAMP, ASSET)
    duplicated = keys.is_duplicated()
    if duplicated.any():
        first = _first_row(keys.filter(duplicated))
        raise DataError(
            f"signals has more than one row for {_describe_row(first)} "
            f"({int(duplicated.sum())} rows share a (timestamp, asset) pair); each pair must "
            "appear once"
        )

    times = frame[TIMESTAMP].to_physical().to_numpy()
    t = np.minimum(np.searchsorted(cells.timestamps, times), len(cells.timestamps) - 1)
    codes = (
        frame[ASSET]
        .replace_strict(cells.assets, range(len(cells.assets)), default=-1, return_dtype=pl.Int64)
        .to_numpy()
    )
    flat = t * len(cells.assets) + np.maximum(codes, 0)
    matched = (cells.timestamps[t] == times) & (codes >= 0)
    if not cells.complete:
        matched &= cells.present()[flat]
    if not matched.all():
        unmatched = keys.filter(pl.Series(~matched))
        raise DataError(
            f"signals has a row for {_describe_row(_first_row(unmatched))} but "
            f"prices have no row there ({_rows(unmatched.height)} of signals have no price row). "
            "Signals must sit on the prices' (timestamp, asset) pairs; a shifted key is the "
            "usual cause (a different time zone or time of day, e.g. 00:00 vs 16:00). Fix the "
            "keys, or keep only rows that have prices: "
            "signals.join(prices.select('timestamp', 'asset'), on=['timestamp', 'asset'], "
            "how='semi')"
        )

    shape = cells.shape
    columns = [c for c in frame.columns if c not in KEY_COLUMNS]
    return {c: _scatter(frame[c].cast(pl.Float64).to_numpy(), flat, shape) for c in columns}


def _rows(n: int) -> str:
    return "1 row" if n == 1 else f"{n} rows"


def _first_row(keys: pl.DataFrame) -> dict[str, Any]:
    """First row in (timestamp, asset) order, the order every other error reports in."""
    return keys.sort(TIMESTAMP, ASSET).row(0, named=True)


def _describe_row(row: dict[str, Any]) -> str:
    return f"asset {row[ASSET]!r} at timestamp {row[TIMESTAMP]}"


# --- gaps ----------------------------------------------------------------------------------------


def _interior_gaps(has_bar: NDArray[np.bool_], assets: list[str]) -> dict[str, int]:
    """Missing bars strictly between each asset's first and last bar.

    Absence before the first bar (not listed yet) or after the last (delisted) is not a gap.
    """
    n_bars = has_bar.shape[0]
    first = np.argmax(has_bar, axis=0)
    last = n_bars - 1 - np.argmax(has_bar[::-1], axis=0)
    span = last - first + 1
    gaps = np.where(has_bar.any(axis=0), span - has_bar.sum(axis=0), 0)
    return {assets[i]: int(gaps[i]) for i in np.flatnonzero(gaps)}


# --- from_arrays ---------------------------------------------------------------------------------


def _asset_list(assets: Sequence[str] | NDArray[np.str_]) -> list[str]:
    names = list(assets)
    bad = [a for a in names if not isinstance(a, str) or not a]
    if bad:
        raise DataError(f"asset names must be non-empty strings, got {bad[0]!r}")
    if not names:
        raise DataError("assets is empty; a feed needs at least one asset")
    return [str(a) for a in names]


def _check_strictly_increasing(times: NDArray[np.int64], timezone: str | None) -> None:
    if len(times) == 0:
        raise DataError("timestamps is empty; a feed needs at least one bar")
    repeated = np.flatnonzero(times[1:] == times[:-1])
    if len(repeated):
        when = format_timestamp(int(times[repeated[0]]), timezone)
        raise DataError(
            f"timestamp {when} appears more than once ({len(repeated)} repeats); "
            "each row of the arrays must be a distinct time"
        )


def _check_unique_assets(names: list[str]) -> None:
    repeated = [a for a, b in itertools.pairwise(names) if a == b]
    if repeated:
        raise DataError(
            f"asset {repeated[0]!r} appears more than once in assets; names must be unique"
        )


def _ordered_fields(fields: Mapping[str, ArrayLike]) -> dict[str, ArrayLike]:
    """OHLCV first, then the other fields in the caller's order."""
    bad = [k for k in fields if not isinstance(k, str) or not k or k in KEY_COLUMNS]
    if bad:
        raise DataError(
            f"field name {bad[0]!r} is not allowed; names are non-empty strings other than "
            f"{' and '.join(KEY_COLUMNS)}"
        )
    missing = [name for name in PRICE_COLUMNS if name not in fields]
    if missing:
        raise DataError(
            f"fields has no {missing[0]!r} array; fields present: "
            f"{', '.join(map(repr, fields))}; required: {', '.join(PRICE_COLUMNS)}"
        )
    names = [*PRICE_COLUMNS, *(k for k in fields if k not in PRICE_COLUMNS)]
    return {name: fields[name] for name in names}


def _grid_field(
    name: str,
    values: ArrayLike,
    shape: tuple[int, int],
    t_order: NDArray[np.intp],
    a_order: NDArray[np.intp],
) -> NDArray[np.float64]:
    array = np.asarray(values)
    if array.shape != shape:
        raise DataError(
            f"field {name!r} has shape {array.shape}; it must be [T, N] = {shape} "
            "(timestamps x assets)"
        )
    if not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
        or array.dtype == np.bool_
    ):
        raise DataError(
            f"field {name!r} has dtype {array.dtype}; fields must be numeric (int, float or bool)"
        )
    # np.ix_ indexing copies, so the caller's arrays stay theirs to modify.
    return np.ascontiguousarray(array[np.ix_(t_order, a_order)], dtype=np.float64)


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    """``array``'s values in memory that nothing can write: a view of an immutable ``bytes``.

    A plain ``flags.writeable = False`` can be undone by anyone holding the array (or a view
    of it); numpy refuses to make an array over a ``bytes`` object writeable, so no strategy,
    run or caller can change a feed's data through what the feed hands out.
    """
    if _is_frozen(array):
        return array
    frozen = np.frombuffer(np.ascontiguousarray(array).tobytes(), dtype=array.dtype)
    return frozen.reshape(array.shape)


def _is_frozen(array: NDArray[Any]) -> bool:
    """True for what ``_read_only`` returns: a C-contiguous view whose memory is ``bytes``."""
    owner: object = array
    while isinstance(owner, np.ndarray):
        owner = owner.base
    return isinstance(owner, bytes) and bool(array.flags.c_contiguous)


def _return_freed_heap() -> None:
    """Give the heap's free pages back to the operating system (glibc's ``malloc_trim``).

    Building a feed frees a column-sized scratch array and the key positions. glibc keeps
    such blocks in its heap once its dynamic mmap threshold has grown past their size (any
    earlier large free does that), so the process would stay ~20 MB above the arrays it holds
    into the run. ``malloc_trim`` only releases pages nothing uses; where it does not exist
    (macOS, Windows, musl) there is nothing to do.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def _check_asset_names(assets: Sequence[str]) -> None:
    """Names with control characters (NUL, newline, ...) print like other names: ``"A"`` and
    ``"A\\x00"`` would show as the same asset in every table and message."""
    for name in assets:
        if any(unicodedata.category(ch) == "Cc" for ch in name):
            raise DataError(
                f"asset name {name!r} contains a control character; asset names must be "
                "printable text (no NUL, tab, newline or other control characters)"
            )
