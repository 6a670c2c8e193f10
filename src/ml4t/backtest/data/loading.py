"""Input normalisation: whatever the user hands ``DataFeed`` becomes one long table.

The table that comes out has a ``timestamp`` key (``Datetime("us")``, one time zone or none), an
``asset`` key (String) and numeric value columns, in the user's column order. Nothing is dropped
or guessed: a column that cannot be used is an error that says what to do with it.

Accepted shapes: a long frame; a dict ``{asset: frame}``; a dict ``{field: wide frame}``; a
yfinance frame (``yf.download``: MultiIndex columns ``(field, ticker)`` or ``(ticker, field)``);
Parquet or CSV paths. Parquet keys are read first and each value column after them, one at a
time, so loading never holds the whole file and the dense arrays at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..errors import DataError

if TYPE_CHECKING:
    import pandas as pd

FrameLike: TypeAlias = "pl.DataFrame | pl.LazyFrame | pd.DataFrame"
PathLike: TypeAlias = "str | os.PathLike[str]"
Source: TypeAlias = "FrameLike | PathLike | Sequence[PathLike] | Mapping[str, FrameLike]"

TIMESTAMP = "timestamp"
ASSET = "asset"
TIMESTAMP_ALIASES = ("timestamp", "date", "datetime")
ASSET_ALIASES = ("asset", "symbol", "ticker")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
KEY_COLUMNS = (TIMESTAMP, ASSET)

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)
_STRING_TYPES = (pl.String, pl.Categorical, pl.Enum)
# yfinance's field names (yf.download, Ticker.history) -> ours. "Adj Close" is kept as a column
# of its own; DataFeed(adjust=True) scales OHLC by it.
YFINANCE_FIELDS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
    "Dividends": "dividends",
    "Stock Splits": "stock_splits",
    "Capital Gains": "capital_gains",
}
_KNOWN_FIELDS = frozenset(YFINANCE_FIELDS) | frozenset(YFINANCE_FIELDS.values())
# How many column names an error lists before it says how many more there are.
_SHOWN = 5

# Rows per block when a column is turned into positions or values: about 1 MB of float64, so
# that temporaries stay small next to the [T, N] arrays.
BLOCK_ROWS = 1 << 17

ACCEPTED_SHAPES = (
    "accepted shapes: a long frame (timestamp, asset, open, high, low, close, volume, ...); "
    "a dict {asset: frame}; a dict {field: wide frame} (timestamps x assets per field); a "
    "yfinance frame (yf.download: columns (field, ticker) or (ticker, field)); Parquet or CSV "
    "paths of a long table"
)


class Table:
    """Prices loaded: each column (keys included) handed out once, when asked for.

    ``take(name)`` gives a column's values in the rows' order, as blocks of rows that can be
    iterated more than once, and lets the table forget it, so a caller turning columns into
    arrays one by one never holds them all twice. A Parquet column is read only while it is
    iterated, a slice of rows at a time. Key columns
    (``timestamp``, ``asset``) come out normalised: ``Datetime("us")`` in one zone, String.
    """

    def __init__(
        self, schema: Mapping[str, pl.DataType], take: Callable[[str], Iterable[pl.Series]]
    ):
        self.schema = dict(schema)
        self.columns = [c for c in schema if c not in KEY_COLUMNS]
        self._take = take

    def take(self, name: str) -> Iterable[pl.Series]:
        """The column's values as consecutive blocks of rows, which can be iterated again."""
        return self._take(name)


def _frame_table(frame: pl.DataFrame) -> Table:
    schema = frame.schema
    held = [frame]

    def take(name: str) -> list[pl.Series]:
        column = held[0][name]
        # The frame is ours (converted or read here): let the column go once it is handed out.
        held[0] = held[0].drop(name)
        # One (empty) block for an empty column, so its dtype still reaches the caller.
        starts = range(0, max(len(column), 1), BLOCK_ROWS)
        return [column.slice(start, BLOCK_ROWS) for start in starts]

    return Table(schema, take)


def load_prices(source: Source, *, timestamp_column: str | None, asset_column: str | None) -> Table:
    """Prices in any accepted form -> one long table with keys, OHLCV and numeric extras."""
    names = _KeyNames(timestamp_column, asset_column)
    paths = None if isinstance(source, Mapping) else _paths(source, "prices")
    if paths is not None and all(p.suffix in PARQUET_SUFFIXES for p in paths):
        table = _parquet_table(paths, names)
    else:
        table = _frame_table(
            _load(
                source, role="prices", timestamp_column=timestamp_column, asset_column=asset_column
            )
        )
    _require_columns(table.schema, PRICE_COLUMNS, label="prices")
    _require_numeric(table.schema, label="prices")
    return table


def load_signals(
    source: Source,
    *,
    timestamp_column: str | None,
    asset_column: str | None,
    time_zone: str | None,
    price_columns: Sequence[str],
) -> pl.DataFrame:
    """Signals -> a long frame with keys and numeric columns, in the prices' time zone."""
    frame = _load(
        source, role="signals", timestamp_column=timestamp_column, asset_column=asset_column
    )
    frame = _align_time_zone(frame, time_zone, label="signals", reference="prices")
    values = [c for c in frame.columns if c not in KEY_COLUMNS]
    if not values:
        raise DataError(
            "signals has no columns besides timestamp and asset; "
            "add the numeric columns to join (scores, predictions, weights, ...)"
        )
    clashes = [c for c in values if c in price_columns]
    if clashes:
        raise DataError(
            f"signals column {clashes[0]!r} clashes with a price column of the same name "
            f"(all clashes: {', '.join(map(repr, clashes))}); rename it in signals, "
            f"e.g. signals.rename({{{clashes[0]!r}: 'signal_{clashes[0]}'}})"
        )
    _require_numeric(frame.schema, label="signals")
    return frame


# --- sources -------------------------------------------------------------------------------------


def _load(
    source: Source, *, role: str, timestamp_column: str | None, asset_column: str | None
) -> pl.DataFrame:
    """Dispatch on the kind of source, normalise each piece, then stack the pieces."""
    names = _KeyNames(timestamp_column, asset_column)
    pieces: list[tuple[str, pl.DataFrame]] = []
    if isinstance(source, Mapping) and _is_field_dict(source):
        pieces.append((role, _normalise_piece(_fields_to_long(source, role), names, role)))
    elif isinstance(source, Mapping):
        for key, frame in _asset_frames(source, role):
            label = f"asset {key!r}"
            pieces.append(
                (label, _normalise_piece(_to_polars(frame, names, label), names, label, key))
            )
    elif (paths := _paths(source, role)) is not None:
        for path in paths:
            label = f"file {str(path)!r}"
            pieces.append((label, _normalise_piece(_read_file(path), names, label)))
    else:
        pieces.append((role, _normalise_piece(_to_polars(source, names, role), names, role)))
    frame = _stack(pieces, role=role)
    if frame.height == 0:
        raise DataError(f"{role} has no rows")
    _require_keys_present(frame, label=role)
    return frame


def _field_key(key: object) -> str:
    return YFINANCE_FIELDS.get(key, key) if isinstance(key, str) else str(key)


def _is_field_dict(source: Mapping[Any, Any]) -> bool:
    """A dict naming every price field is ``{field: wide frame}``; any other is by asset."""
    return set(PRICE_COLUMNS) <= {_field_key(k) for k in source}


def _fields_to_long(source: Mapping[Any, Any], role: str) -> pl.DataFrame:
    """``{field: wide frame}`` (every frame timestamps x assets) -> one long frame.

    Every frame must have the same timestamps and assets: a cell in one field and not in
    another would be a bar with a price missing, which is refused below anyway.
    """
    first_field: str | None = None
    first: Wide | None = None
    columns: dict[str, pl.Series] = {}
    for key, frame in source.items():
        field = _field_key(key)
        wide = read_wide(frame, label=f"{role} field {field!r}")
        order = sorted(range(len(wide.assets)), key=wide.assets.__getitem__)
        wide = Wide(wide.timestamps, [wide.assets[i] for i in order], wide.values[:, order])
        if first is None or first_field is None:
            first_field, first = field, wide
        else:
            _require_same_grid(first, wide, f"{role} field {first_field!r}", f"field {field!r}")
        columns[field] = pl.Series(field, wide.values.ravel())
    assert first is not None
    n_assets = len(first.assets)
    return pl.DataFrame(
        [
            first.timestamps.gather(np.repeat(np.arange(len(first.timestamps)), n_assets)),
            pl.Series(ASSET, first.assets * len(first.timestamps), pl.String),
            *columns.values(),
        ]
    )


def _require_same_grid(first: Wide, other: Wide, first_label: str, label: str) -> None:
    if first.assets != other.assets:
        extra = sorted(set(other.assets) - set(first.assets))
        missing = sorted(set(first.assets) - set(other.assets))
        raise DataError(
            f"{label} has other assets than {first_label} (extra: {extra[:5] or 'none'}, "
            f"missing: {missing[:5] or 'none'}); every field's frame needs the same columns"
        )
    if not first.timestamps.equals(other.timestamps):
        raise DataError(
            f"{label} has other timestamps than {first_label} ({len(other.timestamps)} rows "
            f"against {len(first.timestamps)}, or the same count at other times); every "
            "field's frame needs the same index"
        )


def _asset_frames(source: Mapping[Any, Any], role: str) -> list[tuple[str, Any]]:
    if not source:
        raise DataError(f"{role} is an empty dict; pass {{asset: frame}} with at least one asset")
    bad = [k for k in source if not isinstance(k, str) or not k]
    if bad:
        raise DataError(f"{role} dict keys must be asset names (non-empty strings), got {bad[0]!r}")
    return list(source.items())


def _paths(source: object, role: str) -> list[Path] | None:
    """The Parquet files a path or list of paths names, or None when ``source`` is not paths."""
    if isinstance(source, str | os.PathLike):
        items: list[str | os.PathLike[str]] = [source]
    elif isinstance(source, list | tuple) and all(isinstance(i, str | os.PathLike) for i in source):
        items = list(source)
        if not items:
            raise DataError(f"{role} is an empty list of paths; pass at least one Parquet file")
    else:
        return None
    return [path for item in items for path in _parquet_paths(Path(item))]


def _parquet_paths(path: Path) -> list[Path]:
    """A file is itself; a directory is its ``*.parquet`` files in name order."""
    # (CSV files are read whole with polars' CSV reader; only Parquet is read column by column.)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in PARQUET_SUFFIXES)
        if not files:
            raise DataError(f"directory {str(path)!r} contains no .parquet files")
        return files
    if not path.exists():
        raise DataError(f"file {str(path)!r} does not exist")
    if path.suffix.lower() not in (*PARQUET_SUFFIXES, *CSV_SUFFIXES):
        raise DataError(
            f"file {str(path)!r} is neither Parquet nor CSV; paths must end in .parquet or .csv. "
            "For another format, read it yourself and pass the frame"
        )
    return [path]


def _read_file(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """A Parquet file (only ``columns``, when given), or a CSV file read whole."""
    try:
        if path.suffix.lower() in CSV_SUFFIXES:
            # try_parse_dates turns ISO dates and datetimes into Date/Datetime columns.
            return pl.read_csv(path, try_parse_dates=True)
        return pl.read_parquet(path, columns=columns)
    except (OSError, pl.exceptions.PolarsError) as exc:
        kind = "CSV" if path.suffix.lower() in CSV_SUFFIXES else "Parquet"
        raise DataError(f"cannot read {kind} file {str(path)!r}: {exc}") from exc


def _read_schema(path: Path) -> pl.Schema:
    try:
        return pl.read_parquet_schema(path)  # type: ignore[return-value]
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"cannot read Parquet file {str(path)!r}: {exc}") from exc


def _parquet_table(paths: list[Path], names: _KeyNames) -> Table:
    """Parquet files as a table whose columns are read one at a time, when taken.

    Key names and column types are checked first, on the files' schemas alone; a key column is
    read, normalised and checked for nulls when taken.
    """
    empty_pieces: list[tuple[str, pl.DataFrame]] = []
    sources: list[tuple[str, Path, dict[str, str]]] = []
    for path in paths:
        label = f"file {str(path)!r}"
        schema = _read_schema(path)
        # An empty frame with the file's schema runs every key and column check for free.
        empty_pieces.append((label, _normalise_piece(pl.DataFrame(schema=schema), names, label)))
        columns = list(schema)
        ts_name = _find_key(
            columns, names.timestamp_candidates(), TIMESTAMP, "timestamp_column", label
        )
        asset_name = _find_key(columns, names.asset_candidates(), ASSET, "asset_column", label)
        assert ts_name is not None and asset_name is not None
        sources.append((label, path, {TIMESTAMP: ts_name, ASSET: asset_name}))
    empty = _stack(empty_pieces, role="prices")
    zone = _zone(empty)

    def normalised(
        part: pl.Series, name: str, label: str, path: Path, keys: dict[str, str]
    ) -> pl.Series:
        if part.null_count() and name in KEY_COLUMNS:
            # Read both keys of this file, only to say which row it is.
            whole = _normalise_piece(_read_file(path, list(keys.values())), names, label)
            _require_keys_present(whole, label="prices")
        if name == TIMESTAMP:
            part = _timestamps(part, f"column {keys[name]!r} of {label}")
            if zone is not None and part.dtype != pl.Datetime("us", zone):
                part = part.dt.convert_time_zone(zone)
        elif name == ASSET:
            part = _asset_names(part, keys[name], label)
        else:
            part = part.cast(pl.Float64)
        return part.alias(name)

    def blocks(name: str) -> Iterator[pl.Series]:
        for (label, path, keys), n_rows in zip(sources, lengths, strict=True):
            # Read a slice of rows at a time: polars then decodes only the row groups it
            # covers, and its allocator (jemalloc, which keeps freed pages for a while) never
            # holds a whole column. At most 16 slices a file, as a file written as one row
            # group is decoded up to the slice's end for each.
            step = max(BLOCK_ROWS, -(-n_rows // 16))
            column = pl.scan_parquet(path).select(keys.get(name, name))
            for start in range(0, n_rows, step):
                part = _collect(column.slice(start, step), path).to_series()
                yield normalised(part, name, label, path, keys)

    lengths = [_collect(pl.scan_parquet(p).select(pl.len()), p).item() for _, p, _ in sources]
    if sum(lengths) == 0:
        raise DataError("prices has no rows")
    return Table(empty.schema, lambda name: _Reread(lambda: blocks(name)))


class _Reread:
    """A column of Parquet files: each iteration reads it from the files again."""

    def __init__(self, read: Callable[[], Iterator[pl.Series]]) -> None:
        self._read = read

    def __iter__(self) -> Iterator[pl.Series]:
        return self._read()


def _collect(frame: pl.LazyFrame, path: Path) -> pl.DataFrame:
    try:
        return frame.collect()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"cannot read Parquet file {str(path)!r}: {exc}") from exc


def _to_polars(frame: object, names: _KeyNames, label: str) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    # pandas is optional: only a frame created by an imported pandas can be a pandas frame.
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(frame, pandas.DataFrame):
        if isinstance(frame.columns, pandas.MultiIndex):
            return _from_yfinance(frame, names, label)
        return _from_pandas(frame, names, label)
    raise DataError(f"cannot read {label} from a {type(frame).__name__}; {ACCEPTED_SHAPES}")


# --- pandas --------------------------------------------------------------------------------------


def _from_pandas(frame: pd.DataFrame, names: _KeyNames, label: str) -> pl.DataFrame:
    frame = _yfinance_names(frame, names)
    frame = _index_to_columns(frame, names)
    for column in frame.columns:
        if frame[column].dtype == object:
            _reject_mixed_awareness(frame[column], f"column {str(column)!r} of {label}")
    return pl.from_pandas(frame)


def _index_to_columns(frame: pd.DataFrame, names: _KeyNames) -> pd.DataFrame:
    """Move timestamp/asset index levels into columns, the way most pandas users store them."""
    import pandas as pd

    wanted = {n.lower() for n in names.all_candidates()}
    levels = [
        n
        for n in frame.index.names
        if n is not None and str(n).lower() in wanted and n not in frame.columns
    ]
    if levels:
        return frame.reset_index(level=levels)
    has_timestamp = any(str(c).lower() in names.timestamp_candidates_lower() for c in frame.columns)
    if isinstance(frame.index, pd.DatetimeIndex) and frame.index.name is None and not has_timestamp:
        # An unnamed DatetimeIndex on a per-asset frame is the timestamp by every convention.
        return frame.reset_index(names=TIMESTAMP)
    return frame


def _yfinance_names(frame: pd.DataFrame, names: _KeyNames) -> pd.DataFrame:
    """A frame spelled the yfinance way (``Date`` index, ``Open`` ... ``Volume``) -> our names.

    Only a frame with all five of Open, High, Low, Close and Volume and none of our lower-case
    names is renamed, so a lone ``Close`` still gets the "differs only in case" error.
    """
    columns = [str(c) for c in frame.columns]
    yf_prices = {k for k, v in YFINANCE_FIELDS.items() if v in PRICE_COLUMNS}
    if not yf_prices <= set(columns) or set(PRICE_COLUMNS) & set(columns):
        return frame
    frame = frame.rename(columns=YFINANCE_FIELDS)
    if names.timestamp is None and frame.index.name in ("Date", "Datetime"):
        frame = frame.rename_axis(index=TIMESTAMP)
    return frame


def _from_yfinance(frame: pd.DataFrame, names: _KeyNames, label: str) -> pl.DataFrame:
    """``yf.download`` output (MultiIndex columns, fields x tickers in either order) -> long.

    The field level is the one named ``Price`` (yfinance names its levels Price and Ticker),
    else the one whose every value is a field name yfinance or this package uses.
    """
    columns = frame.columns
    if columns.nlevels != 2:
        raise DataError(
            f"{label} has {columns.nlevels} column levels; a MultiIndex is read as yfinance's "
            f"(field, ticker) or (ticker, field). DataFeed {ACCEPTED_SHAPES}"
        )
    level_names = [str(n) if n is not None else None for n in columns.names]
    known = [all(str(v) in _KNOWN_FIELDS for v in columns.get_level_values(i)) for i in range(2)]
    if "Price" in level_names:
        field_level = level_names.index("Price")
    elif known.count(True) == 1:
        field_level = known.index(True)
    else:
        example = ", ".join(map(repr, columns[:2].tolist()))
        raise DataError(
            f"{label} has MultiIndex columns (e.g. {example}) in which neither level is the "
            f"field (Open, High, Low, Close, Adj Close, Volume, or open, ..., volume). "
            f"DataFeed {ACCEPTED_SHAPES}"
        )
    asset_level = 1 - field_level
    tickers = list(dict.fromkeys(columns.get_level_values(asset_level)))
    ts_name = names.timestamp if names.timestamp is not None else TIMESTAMP
    asset_name = names.asset if names.asset is not None else ASSET
    pieces = []
    for ticker in tickers:
        if not isinstance(ticker, str) or not ticker:
            raise DataError(f"{label}: ticker {ticker!r} is not a non-empty string")
        part = frame.xs(ticker, axis=1, level=asset_level)
        assert isinstance(part, type(frame))  # a column level selected: a frame, not a Series
        part.columns = [YFINANCE_FIELDS.get(str(c), str(c)) for c in part.columns]
        part = part.rename_axis(index=ts_name).reset_index()
        piece = pl.from_pandas(part)
        pieces.append(piece.with_columns(pl.lit(ticker, pl.String).alias(asset_name)))
    return pl.concat(pieces, how="diagonal_relaxed")


def _reject_mixed_awareness(column: pd.Series[Any], where: str) -> None:
    """Reject an object column mixing tz-aware and naive datetimes (polars would call all UTC)."""
    import pandas as pd

    if pd.api.types.infer_dtype(column, skipna=True) not in ("datetime", "datetime64"):
        return
    values = column.dropna()
    aware = [getattr(v, "tzinfo", None) is not None for v in values]
    if any(aware) and not all(aware):
        naive_at = values.index[aware.index(False)]
        aware_at = values.index[aware.index(True)]
        raise DataError(
            f"{where} mixes tz-aware and naive timestamps (naive at index {naive_at!r}, "
            f"tz-aware at index {aware_at!r}); make them all tz-aware (tz_localize) or all naive"
        )


# --- one piece -----------------------------------------------------------------------------------


class _KeyNames:
    """The user's explicit key column names, or the accepted aliases when none is given."""

    def __init__(self, timestamp: str | None, asset: str | None) -> None:
        self.timestamp = timestamp
        self.asset = asset

    def timestamp_candidates(self) -> tuple[str, ...]:
        return (self.timestamp,) if self.timestamp is not None else TIMESTAMP_ALIASES

    def asset_candidates(self) -> tuple[str, ...]:
        return (self.asset,) if self.asset is not None else ASSET_ALIASES

    def timestamp_candidates_lower(self) -> set[str]:
        return {c.lower() for c in self.timestamp_candidates()}

    def all_candidates(self) -> tuple[str, ...]:
        return self.timestamp_candidates() + self.asset_candidates()


def _normalise_piece(
    frame: pl.DataFrame, names: _KeyNames, label: str, asset: str | None = None
) -> pl.DataFrame:
    """Rename the key columns, fix their types, and (for a dict entry) add the asset column."""
    ts_name = _find_key(frame, names.timestamp_candidates(), TIMESTAMP, "timestamp_column", label)
    assert ts_name is not None
    frame = _rename(frame, ts_name, TIMESTAMP, label)
    frame = frame.with_columns(_timestamps(frame[TIMESTAMP], f"column {ts_name!r} of {label}"))

    asset_name = _find_key(
        frame, names.asset_candidates(), ASSET, "asset_column", label, required=asset is None
    )
    if asset is None:
        assert asset_name is not None
        frame = _rename(frame, asset_name, ASSET, label)
        return frame.with_columns(_asset_names(frame[ASSET], asset_name, label))
    if asset_name is not None:
        frame = _rename(frame, asset_name, ASSET, label)
        _check_asset_matches_key(frame, asset, asset_name)
        frame = frame.drop(ASSET)
    # Keys first, then the user's columns in their order.
    return frame.select(
        pl.col(TIMESTAMP), pl.lit(asset, pl.String).alias(ASSET), pl.exclude(TIMESTAMP)
    )


def _find_key(
    frame: pl.DataFrame | Sequence[str],
    candidates: tuple[str, ...],
    role: str,
    keyword: str,
    label: str,
    *,
    required: bool = True,
) -> str | None:
    columns = list(frame.columns if isinstance(frame, pl.DataFrame) else frame)
    present = [c for c in candidates if c in columns]
    if len(present) > 1:
        raise DataError(
            f"{label} has several {role} columns ({', '.join(map(repr, present))}); "
            f"pass {keyword}= to say which one to use"
        )
    if present:
        return present[0]
    if not required:
        return None
    lower = {c.lower() for c in candidates}
    near = [c for c in columns if c.lower() in lower]
    hint = (
        f"; found {near[0]!r}, which differs only in case: rename it or pass {keyword}={near[0]!r}"
        if near
        else f"; name it {candidates[0]!r} or pass {keyword}="
    )
    wanted = " or ".join(map(repr, candidates))
    # A frame with hundreds of columns is usually wide (one column per asset): say which
    # shapes are accepted rather than list them all.
    shapes = f". DataFeed {ACCEPTED_SHAPES}" if len(columns) > _SHOWN else ""
    raise DataError(
        f"{label} has no {role} column ({wanted}); columns present: {_names(columns)}{hint}{shapes}"
    )


def _names(columns: Sequence[str]) -> str:
    """The first few column names, and how many there are in all when that is more."""
    shown = ", ".join(map(repr, columns[:_SHOWN]))
    return shown if len(columns) <= _SHOWN else f"{shown}, ... ({len(columns)} in all)"


def _rename(frame: pl.DataFrame, old: str, new: str, label: str) -> pl.DataFrame:
    if old == new:
        return frame
    if new in frame.columns:
        raise DataError(
            f"{label} has both {old!r} (used as the {new}) and a column named {new!r}; "
            f"rename or drop {new!r}"
        )
    return frame.rename({old: new})


def _timestamps(column: pl.Series, where: str) -> pl.Series:
    """Date or Datetime of any unit -> Datetime("us") with the same time zone."""
    dtype = column.dtype
    if dtype == pl.Date:
        return column.cast(pl.Datetime("us"))
    if not isinstance(dtype, pl.Datetime):
        raise DataError(
            f"{where} has type {dtype}; timestamps must be polars Date or "
            "Datetime (parse strings with pl.col(...).str.to_datetime(), epoch numbers with "
            "pl.from_epoch(...), or pandas.to_datetime)"
        )
    if dtype.time_unit == "ns":
        # Microseconds are the engine's resolution; refuse to truncate finer stamps silently.
        lost = (column.to_physical() % 1000 != 0).sum()
        if lost:
            raise DataError(
                f"{where} has {lost} timestamps with sub-microsecond parts; "
                "the engine stores microseconds: round them first (.dt.truncate('1us'))"
            )
    if dtype.time_unit != "us":
        return column.cast(pl.Datetime("us", dtype.time_zone))
    return column


def _asset_names(column: pl.Series, name: str, label: str) -> pl.Series:
    if not isinstance(column.dtype, _STRING_TYPES):
        raise DataError(
            f"asset column {name!r} of {label} has type {column.dtype}; asset names must be "
            f"strings: cast it, e.g. pl.col({name!r}).cast(pl.String)"
        )
    return column.cast(pl.String)


def _check_asset_matches_key(frame: pl.DataFrame, key: str, name: str) -> None:
    column = _asset_names(frame[ASSET], name, f"asset {key!r}")
    wrong = frame.filter(column.ne_missing(key))
    if wrong.height:
        row = wrong.row(0, named=True)
        raise DataError(
            f"the frame for asset {key!r} has {name!r} = {row[ASSET]!r} at timestamp "
            f"{row[TIMESTAMP]} ({wrong.height} rows differ from the dict key); a per-asset "
            f"frame's {name!r} column must equal its key, or drop the column"
        )


# --- stacking pieces -----------------------------------------------------------------------------


def _stack(pieces: list[tuple[str, pl.DataFrame]], *, role: str) -> pl.DataFrame:
    """Stack per-asset/per-file pieces: one time zone, one set of columns."""
    if len(pieces) == 1:
        return pieces[0][1]
    zone = _reference_zone(pieces, role)
    first_label, first = pieces[0]
    aligned = []
    for label, piece in pieces:
        if set(piece.columns) != set(first.columns):
            missing = [c for c in first.columns if c not in piece.columns]
            extra = [c for c in piece.columns if c not in first.columns]
            raise DataError(
                f"{role}: {label} has different columns from {first_label} "
                f"(missing: {missing or 'none'}, extra: {extra or 'none'}); every piece needs "
                "the same columns"
            )
        piece = _align_time_zone(piece, zone, label=label, reference=first_label)
        aligned.append(piece.select(first.columns))
    try:
        return pl.concat(aligned, how="vertical_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{role}: cannot stack the pieces: {exc}") from exc


def _reference_zone(pieces: list[tuple[str, pl.DataFrame]], role: str) -> str | None:
    """The first piece's zone; naive and tz-aware pieces cannot be mixed."""
    aware = [(label, _zone(p)) for label, p in pieces if _zone(p) is not None]
    naive = [label for label, p in pieces if _zone(p) is None]
    if aware and naive:
        raise DataError(
            f"{role} mixes tz-aware and naive timestamps: {aware[0][0]} is in {aware[0][1]}, "
            f"{naive[0]} is naive; make them all tz-aware "
            "(.dt.replace_time_zone(...)) or all naive"
        )
    return aware[0][1] if aware else None


def _zone(frame: pl.DataFrame) -> str | None:
    dtype = frame.schema[TIMESTAMP]
    assert isinstance(dtype, pl.Datetime)
    return dtype.time_zone


def _align_time_zone(
    frame: pl.DataFrame, zone: str | None, *, label: str, reference: str
) -> pl.DataFrame:
    """Convert ``frame`` to ``zone``: the same instants, shown in the reference's zone."""
    own = _zone(frame)
    if (own is None) != (zone is None):
        raise DataError(
            f"{label} has {'naive' if own is None else f'tz-aware ({own})'} timestamps but "
            f"{reference} {'are naive' if zone is None else f'are tz-aware ({zone})'}; "
            "make both tz-aware (.dt.replace_time_zone(...)) or both naive"
        )
    if own == zone or zone is None:
        return frame
    return frame.with_columns(pl.col(TIMESTAMP).dt.convert_time_zone(zone))


# --- column checks -------------------------------------------------------------------------------


def _require_keys_present(frame: pl.DataFrame, *, label: str) -> None:
    null_ts = frame.filter(pl.col(TIMESTAMP).is_null())
    if null_ts.height:
        raise DataError(
            f"{label} has {null_ts.height} rows with a null timestamp, the first for asset "
            f"{null_ts[ASSET][0]!r}; every row needs a timestamp"
        )
    null_asset = frame.filter(pl.col(ASSET).is_null())
    if null_asset.height:
        raise DataError(
            f"{label} has {null_asset.height} rows with a null asset, the first at timestamp "
            f"{null_asset[TIMESTAMP][0]}; every row needs an asset name"
        )


def _require_columns(
    schema: Mapping[str, pl.DataType], required: Sequence[str], *, label: str
) -> None:
    for name in required:
        if name in schema:
            continue
        near = [c for c in schema if c.lower() == name.lower()]
        hint = (
            f"; found {near[0]!r}, which differs only in case: rename it to {name!r}"
            if near
            else ""
        )
        raise DataError(
            f"{label} has no {name!r} column; columns present: {_names(list(schema))}{hint}"
        )


def _require_numeric(schema: Mapping[str, pl.DataType], *, label: str) -> None:
    bad = [
        (name, dtype)
        for name, dtype in schema.items()
        if name not in KEY_COLUMNS
        and not (dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null)
    ]
    if bad:
        name, dtype = bad[0]
        others = f" (non-numeric columns: {_names([n for n, _ in bad])})" if len(bad) > 1 else ""
        raise DataError(
            f"column {name!r} of {label} has type {dtype}{others}; every column besides "
            "timestamp and asset becomes a float field, so it must be numeric (int, float or "
            f"bool): encode it as numbers (e.g. pl.col({name!r}).cast(pl.Categorical)"
            ".to_physical()) or drop it"
        )


# --- wide frames (one column per asset) -----------------------------------------------------------


@dataclass(frozen=True)
class Wide:
    """A wide frame read: timestamps (``Datetime("us")``, sorted), asset names, values."""

    timestamps: pl.Series
    assets: list[str]
    values: NDArray[Any]  # [rows, assets]: float64 (NaN for null), or bool when asked


def read_wide(
    frame: object,
    *,
    label: str,
    boolean: bool = False,
    timestamp_column: str | None = None,
) -> Wide:
    """A frame labelled by timestamp (rows) and asset (columns) -> ``Wide``, rows sorted.

    pandas: a ``DatetimeIndex`` (any name), or a timestamp column; every other column is an
    asset. polars: a timestamp column (``timestamp``, ``date`` or ``datetime`` in any case, or
    ``timestamp_column``) and one column per asset. ``boolean`` asks for bool values (nulls
    become False) and refuses non-bool columns.

    Example:
        >>> wide = read_wide(pl.DataFrame({"date": [date(2024, 1, 2)], "AAPL": [0.5]}),
        ...     label="weights")  # doctest: +SKIP
    """
    frame = _wide_to_polars(frame, label, timestamp_column)
    ts_name = _wide_time_column(frame, label, timestamp_column)
    times = _timestamps(frame[ts_name].alias(TIMESTAMP), f"column {ts_name!r} of {label}")
    if times.null_count():
        raise DataError(f"{label} has {times.null_count()} rows with a null timestamp")
    duplicated = times.is_duplicated()
    if duplicated.any():
        raise DataError(
            f"{label} has more than one row for timestamp {times.filter(duplicated)[0]}; "
            "give one row per timestamp"
        )
    assets = [c for c in frame.columns if c != ts_name]
    if not assets:
        raise DataError(f"{label} has no asset columns besides {ts_name!r}; add one per asset")
    for name in assets:
        dtype = frame.schema[name]
        ok = dtype == pl.Boolean if boolean else (dtype.is_numeric() or dtype == pl.Boolean)
        if not ok and dtype != pl.Null:
            want = "booleans (True where the signal fires)" if boolean else "numbers"
            raise DataError(f"{label} column {name!r} has type {dtype}; it must hold {want}")
    order = times.arg_sort()
    body = frame.select(assets)[order]
    if boolean:
        values = body.select(pl.all().cast(pl.Boolean).fill_null(False)).to_numpy()
        values = np.asarray(values, dtype=np.bool_)
    else:
        values = body.select(pl.all().cast(pl.Float64).fill_null(np.nan)).to_numpy()
        values = np.asarray(values, dtype=np.float64)
    return Wide(times.gather(order), assets, values)


def _wide_to_polars(frame: object, label: str, timestamp_column: str | None) -> pl.DataFrame:
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    if isinstance(frame, pl.DataFrame):
        return frame
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(frame, pandas.DataFrame):
        raise DataError(
            f"{label} must be a polars or pandas DataFrame labelled by timestamp and asset, or a "
            f"[bars, assets] array, got {type(frame).__name__}"
        )
    if isinstance(frame.columns, pandas.MultiIndex):
        raise DataError(
            f"{label} has MultiIndex columns; give one column per asset (select one field "
            "first, e.g. frame['Close'])"
        )
    bad = [c for c in frame.columns if not isinstance(c, str) or not c]
    if bad:
        raise DataError(
            f"{label} column label {bad[0]!r} is not an asset name (a non-empty string); "
            "columns must be the feed's asset names"
        )
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):
        raise DataError(f"{label} has more than one column for asset {repeated[0]!r}")
    index = frame.index
    ts_given = timestamp_column is not None and timestamp_column in frame.columns
    in_columns = any(str(c).lower() in TIMESTAMP_ALIASES for c in frame.columns)
    if not ts_given and not in_columns:
        if not isinstance(index, pandas.DatetimeIndex) and pandas.api.types.infer_dtype(
            index, skipna=True
        ) not in ("date", "datetime", "datetime64"):
            raise DataError(
                f"{label} has a {type(index).__name__} index and no timestamp column; its "
                "rows must be labelled by timestamp: set the index to the bar times "
                "(frame.index = feed.timestamps for rows in bar order), or pass frame.to_numpy()"
            )
        name = index.name if isinstance(index.name, str) and index.name else TIMESTAMP
        if name in frame.columns:
            name = TIMESTAMP
        frame = frame.rename_axis(index=name).reset_index()
    return pl.from_pandas(cast("pd.DataFrame", frame))


def _wide_time_column(frame: pl.DataFrame, label: str, timestamp_column: str | None) -> str:
    if timestamp_column is not None and timestamp_column in frame.columns:
        return timestamp_column
    found = [c for c in frame.columns if c.lower() in TIMESTAMP_ALIASES]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(f"{label} has several timestamp columns: {_names(found)}; keep one")
    temporal = [c for c, t in frame.schema.items() if t == pl.Date or isinstance(t, pl.Datetime)]
    if len(temporal) == 1:
        return temporal[0]
    raise DataError(
        f"{label} has no timestamp column (timestamp, date or datetime, in any case); columns "
        f"present: {_names(frame.columns)}. A wide frame is a timestamp column (or a pandas "
        "DatetimeIndex) plus one column per asset"
    )


# --- bare timestamps (DataFeed.from_arrays) ------------------------------------------------------


def timestamp_series(values: object, timezone: str | None) -> pl.Series:
    """Timestamps given as an array or list -> ``Datetime("us")`` in ``timezone``.

    Naive values with a ``timezone`` are read as UTC instants, the way ``DataFeed.timestamps``
    stores them, so ``from_arrays(feed.timestamps, ..., timezone=feed.timezone)`` round-trips.
    """
    pandas = sys.modules.get("pandas")
    try:
        if pandas is not None and isinstance(values, pandas.Index | pandas.Series):
            series = pl.from_pandas(values)
        else:
            series = pl.Series(TIMESTAMP, values)  # type: ignore[arg-type]
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"cannot read timestamps from a {type(values).__name__}: {exc}") from exc
    series = _timestamps(series.alias(TIMESTAMP), "timestamps")
    if series.null_count():
        raise DataError(f"timestamps contain {series.null_count()} nulls; every bar needs a time")
    dtype = series.dtype
    assert isinstance(dtype, pl.Datetime)
    if timezone is None:
        return series
    if dtype.time_zone is None:
        series = series.dt.replace_time_zone("UTC")
    try:
        return series.dt.convert_time_zone(timezone)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"timezone {timezone!r} is not a known IANA time zone: {exc}") from exc
