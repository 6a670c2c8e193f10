"""Input normalisation: whatever the user hands ``DataFeed`` becomes one long polars frame.

The frame that comes out has a ``timestamp`` column (``Datetime("us")``, one time zone or none),
an ``asset`` column (String) and numeric value columns, in the user's column order. Nothing is
dropped or guessed: a column that cannot be used is an error that says what to do with it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import polars as pl

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
_STRING_TYPES = (pl.String, pl.Categorical, pl.Enum)


def load_prices(
    source: Source, *, timestamp_column: str | None, asset_column: str | None
) -> pl.DataFrame:
    """Prices in any accepted form -> one long frame with keys, OHLCV and numeric extras."""
    frame = _load(
        source, role="prices", timestamp_column=timestamp_column, asset_column=asset_column
    )
    _require_columns(frame, PRICE_COLUMNS, label="prices")
    _require_numeric(frame, label="prices")
    return frame


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
    _require_numeric(frame, label="signals")
    return frame


# --- sources -------------------------------------------------------------------------------------


def _load(
    source: Source, *, role: str, timestamp_column: str | None, asset_column: str | None
) -> pl.DataFrame:
    """Dispatch on the kind of source, normalise each piece, then stack the pieces."""
    names = _KeyNames(timestamp_column, asset_column)
    pieces: list[tuple[str, pl.DataFrame]] = []
    if isinstance(source, Mapping):
        for key, frame in _asset_frames(source, role):
            label = f"asset {key!r}"
            pieces.append(
                (label, _normalise_piece(_to_polars(frame, names, label), names, label, key))
            )
    elif (paths := _paths(source, role)) is not None:
        for path in paths:
            label = f"file {str(path)!r}"
            pieces.append((label, _normalise_piece(_read_parquet(path), names, label)))
    else:
        pieces.append((role, _normalise_piece(_to_polars(source, names, role), names, role)))
    frame = _stack(pieces, role=role)
    if frame.height == 0:
        raise DataError(f"{role} has no rows")
    _require_keys_present(frame, label=role)
    return frame


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
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in PARQUET_SUFFIXES)
        if not files:
            raise DataError(f"directory {str(path)!r} contains no .parquet files")
        return files
    if not path.exists():
        raise DataError(f"file {str(path)!r} does not exist")
    if path.suffix not in PARQUET_SUFFIXES:
        raise DataError(
            f"file {str(path)!r} is not Parquet; paths must end in .parquet. For CSV, read it "
            "yourself (pl.read_csv(path, try_parse_dates=True)) and pass the frame"
        )
    return [path]


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
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
        return _from_pandas(frame, names, label)
    raise DataError(
        f"cannot read {label} from a {type(frame).__name__}; pass a polars or pandas DataFrame, "
        "a Parquet path or list of paths, or a dict {asset: frame}"
    )


# --- pandas --------------------------------------------------------------------------------------


def _from_pandas(frame: pd.DataFrame, names: _KeyNames, label: str) -> pl.DataFrame:
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
    frame: pl.DataFrame,
    candidates: tuple[str, ...],
    role: str,
    keyword: str,
    label: str,
    *,
    required: bool = True,
) -> str | None:
    present = [c for c in candidates if c in frame.columns]
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
    near = [c for c in frame.columns if c.lower() in lower]
    hint = (
        f"; found {near[0]!r}, which differs only in case: rename it or pass {keyword}={near[0]!r}"
        if near
        else f"; name it {candidates[0]!r} or pass {keyword}="
    )
    wanted = " or ".join(map(repr, candidates))
    raise DataError(
        f"{label} has no {role} column ({wanted}); columns present: "
        f"{', '.join(map(repr, frame.columns))}{hint}"
    )


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


def _require_columns(frame: pl.DataFrame, required: Sequence[str], *, label: str) -> None:
    for name in required:
        if name in frame.columns:
            continue
        near = [c for c in frame.columns if c.lower() == name.lower()]
        hint = (
            f"; found {near[0]!r}, which differs only in case: rename it to {name!r}"
            if near
            else ""
        )
        raise DataError(
            f"{label} has no {name!r} column; columns present: "
            f"{', '.join(map(repr, frame.columns))}{hint}"
        )


def _require_numeric(frame: pl.DataFrame, *, label: str) -> None:
    bad = [
        (name, dtype)
        for name, dtype in frame.schema.items()
        if name not in KEY_COLUMNS
        and not (dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null)
    ]
    if bad:
        name, dtype = bad[0]
        others = (
            f" (non-numeric columns: {', '.join(repr(n) for n, _ in bad)})" if len(bad) > 1 else ""
        )
        raise DataError(
            f"column {name!r} of {label} has type {dtype}{others}; every column besides "
            "timestamp and asset becomes a float field, so it must be numeric (int, float or "
            f"bool): encode it as numbers (e.g. pl.col({name!r}).cast(pl.Categorical)"
            ".to_physical()) or drop it"
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
