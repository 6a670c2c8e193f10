"""Decisions labelled by timestamp and asset (pandas or polars frames) -> ``[bars, assets]`` arrays.

Used by the compiled driver (``run_signals``, ``run_weights``, ``run_orders``) and the
ready-made strategies, so that every place that takes a labelled frame aligns it the same way:
by label, never by position, with an unknown label an error that names it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..errors import DataError
from .loading import read_wide

if TYPE_CHECKING:
    from .feed import DataFeed


def is_frame(given: object) -> bool:
    if isinstance(given, pl.DataFrame | pl.LazyFrame):
        return True
    # pandas is optional: only an imported pandas can have made a pandas frame.
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(given, pandas.DataFrame)


def align_frame(feed: DataFeed, name: str, frame: object, *, boolean: bool) -> NDArray[Any]:
    """A frame labelled by timestamp (rows) and asset (columns) -> a ``[bars, assets]`` array.

    Rows and columns are placed by label, never by position. A bar the frame has no row for,
    and an asset it has no column for, get no decision: False, or NaN. A label the feed does
    not have is a ``DataError`` naming it.
    """
    wide = read_wide(frame, label=name, boolean=boolean)
    rows = bar_rows(feed, name, wide.timestamps)
    columns = _asset_columns(feed, name, wide.assets)
    shape = (feed.n_bars, feed.n_assets)
    out = np.zeros(shape, dtype=np.bool_) if boolean else np.full(shape, np.nan)
    out[np.ix_(rows, np.asarray(columns, dtype=np.intp))] = wide.values
    return out


def bar_rows(feed: DataFeed, name: str, timestamps: pl.Series) -> NDArray[np.intp]:
    """The feed's bar index of each timestamp; one that is not a bar is a ``DataError``.

    Instants are matched: tz-aware labels in any zone match a tz-aware feed at the same
    instant; naive labels match a naive feed's wall times. A date means midnight.
    """
    dtype = timestamps.dtype
    assert isinstance(dtype, pl.Datetime)
    zone = dtype.time_zone
    if (zone is None) != (feed.timezone is None):
        raise DataError(
            f"{name} has {'naive' if zone is None else f'tz-aware ({zone})'} timestamps but the "
            f"feed's are {'naive' if feed.timezone is None else f'tz-aware ({feed.timezone})'}; "
            "make both tz-aware (tz_localize / .dt.replace_time_zone) or both naive"
        )
    utc = timestamps.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if zone else timestamps
    wanted = utc.to_physical().to_numpy().astype(np.int64)
    bars = feed.timestamps.astype(np.int64)
    rows = np.minimum(np.searchsorted(bars, wanted), len(bars) - 1)
    unknown = np.flatnonzero(bars[rows] != wanted)
    if len(unknown):
        first = timestamps[int(unknown[0])]
        raise DataError(
            f"{name} has a row for timestamp {first}, which is not a bar of the feed "
            f"({len(unknown)} such rows; the feed's bars run from {feed.datetimes[0]} to "
            f"{feed.datetimes[-1]}). Rows are matched to bars exactly: check the time of day "
            "and the time zone, or keep only the feed's bars"
        )
    return rows


def _asset_columns(feed: DataFeed, name: str, assets: list[str]) -> list[int]:
    index = {str(a): i for i, a in enumerate(feed.assets)}
    unknown = [a for a in assets if a not in index]
    if unknown:
        shown = ", ".join(map(repr, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        valid = ", ".join(map(repr, feed.assets[:5].tolist()))
        raise DataError(
            f"{name} has {len(unknown)} column(s) naming no asset of the feed: {shown}; the "
            f"feed's assets are {valid}{', ...' if feed.n_assets > 5 else ''}"
        )
    return [index[a] for a in assets]
