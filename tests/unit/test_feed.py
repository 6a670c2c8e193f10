"""DataFeed: long frames, dicts and Parquet in; dense [T, N] arrays and precise errors out."""

from __future__ import annotations

import pickle
import re
import warnings
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import polars as pl
import pytest

from ml4t.backtest.data.feed import DataFeed
from ml4t.backtest.errors import DataError, DataWarning

DAY0 = datetime(2024, 1, 1)
OHLCV = ("open", "high", "low", "close", "volume")


def day(i: int) -> datetime:
    return DAY0 + timedelta(days=i)


def bars(*rows: tuple[Any, ...], **extra: list[Any]) -> pl.DataFrame:
    """Long frame from ``(day, asset, open, high, low, close, volume)`` rows; ``extra`` columns."""
    frame = pl.DataFrame(
        [(day(d), a, o, h, lo, c, v) for d, a, o, h, lo, c, v in rows],
        schema={
            "timestamp": pl.Datetime("us"),
            "asset": pl.String,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
        orient="row",
    )
    return frame.with_columns(pl.Series(name, values) for name, values in extra.items())


def flat(asset: str, d: int, price: float, volume: float = 100.0) -> tuple[Any, ...]:
    """A bar whose open, high, low and close all equal ``price``."""
    return (d, asset, price, price, price, price, volume)


def two_by_three() -> pl.DataFrame:
    """Assets A and B over three days; B's closes are 10x A's."""
    return bars(
        (0, "A", 1.0, 1.5, 0.5, 1.2, 10.0),
        (0, "B", 10.0, 15.0, 5.0, 12.0, 20.0),
        (1, "A", 2.0, 2.5, 1.5, 2.2, 11.0),
        (1, "B", 20.0, 25.0, 15.0, 22.0, 21.0),
        (2, "A", 3.0, 3.5, 2.5, 3.2, 12.0),
        (2, "B", 30.0, 35.0, 25.0, 32.0, 22.0),
    )


def quiet_feed(*args: Any, **kwargs: Any) -> DataFeed:
    """Build a feed, ignoring the missing-bar warning (tested on its own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return DataFeed(*args, **kwargs)


def assert_same_feed(a: DataFeed, b: DataFeed) -> None:
    assert a.fields == b.fields
    assert a.assets.tolist() == b.assets.tolist()
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    for field in a.fields:
        np.testing.assert_array_equal(a.array(field), b.array(field))


# --- shape of the output --------------------------------------------------------------------------


def test_long_frame_becomes_time_by_asset_arrays() -> None:
    feed = DataFeed(two_by_three())

    assert feed.n_bars == 3 and feed.n_assets == 2 and len(feed) == 3
    assert feed.assets.tolist() == ["A", "B"]
    np.testing.assert_array_equal(
        feed.array("close"), np.array([[1.2, 12.0], [2.2, 22.0], [3.2, 32.0]])
    )
    np.testing.assert_array_equal(feed.array("volume")[:, 1], [20.0, 21.0, 22.0])
    assert feed.array("open").dtype == np.float64


def test_timestamps_are_sorted_unique_datetime64_us() -> None:
    feed = DataFeed(two_by_three())

    assert feed.timestamps.dtype == np.dtype("datetime64[us]")
    assert feed.timestamps.tolist() == [day(0), day(1), day(2)]
    assert feed.datetimes == [day(0), day(1), day(2)]
    assert feed.timezone is None


def test_datetimes_are_computed_once() -> None:
    feed = DataFeed(two_by_three())

    assert feed.datetimes is feed.datetimes


def test_unsorted_rows_give_the_same_arrays_as_sorted_rows() -> None:
    frame = two_by_three()
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    assert shuffled["asset"].to_list() != frame["asset"].to_list()

    assert_same_feed(DataFeed(shuffled), DataFeed(frame))


def test_assets_are_sorted_lexicographically() -> None:
    frame = bars(flat("MSFT", 0, 3.0), flat("AAPL", 0, 1.0), flat("IBM", 0, 2.0))

    feed = DataFeed(frame)

    assert feed.assets.tolist() == ["AAPL", "IBM", "MSFT"]
    np.testing.assert_array_equal(feed.array("close")[0], [1.0, 2.0, 3.0])
    assert feed.asset_index("MSFT") == 2


def test_fields_are_ohlcv_then_extras_in_input_order() -> None:
    frame = two_by_three().with_columns(zeta=pl.lit(1.0), alpha=pl.lit(2.0))
    frame = frame.select(
        "zeta", "close", "timestamp", "alpha", "asset", "open", "low", "high", "volume"
    )

    assert DataFeed(frame).fields == ("open", "high", "low", "close", "volume", "zeta", "alpha")


def test_bool_and_int_extra_columns_become_float64() -> None:
    frame = two_by_three().with_columns(
        flag=pl.Series([True, False, None, True, False, True]),
        rank=pl.Series([1, 2, 3, None, 5, 6], dtype=pl.Int32),
    )

    feed = DataFeed(frame)

    np.testing.assert_array_equal(feed.array("flag"), [[1.0, 0.0], [np.nan, 1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(feed.array("rank"), [[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]])
    assert feed.array("flag").dtype == np.float64


def test_integer_prices_and_volume_become_float64() -> None:
    frame = two_by_three().with_columns(pl.col("volume").cast(pl.Int64))

    assert DataFeed(frame).array("volume").dtype == np.float64


def test_same_input_gives_identical_arrays() -> None:
    frame = two_by_three()

    assert_same_feed(DataFeed(frame), DataFeed(frame.clone()))


# --- read-only surface ---------------------------------------------------------------------------


def test_array_is_read_only() -> None:
    feed = DataFeed(two_by_three())

    with pytest.raises(ValueError, match="read-only"):
        feed.array("close")[0, 0] = 99.0


def test_has_bar_assets_and_timestamps_are_read_only() -> None:
    feed = DataFeed(two_by_three())

    for array in (feed.has_bar, feed.assets, feed.timestamps):
        assert not array.flags.writeable


@pytest.mark.parametrize(
    "handed_out",
    [
        lambda f: f.array("close"),
        lambda f: f.array("close")[1:, ::-1],
        lambda f: f.array("close").base,
        lambda f: f.has_bar,
        lambda f: f.assets,
        lambda f: f.timestamps,
    ],
)
def test_feed_arrays_and_their_views_cannot_be_made_writeable_again(handed_out: Any) -> None:
    feed = DataFeed(two_by_three())

    with pytest.raises(ValueError, match="WRITEABLE"):
        handed_out(feed).flags.writeable = True


def test_an_unpickled_feed_is_as_read_only_as_the_original() -> None:
    original = DataFeed(two_by_three())

    feed = pickle.loads(pickle.dumps(original, protocol=4))

    assert_same_feed(feed, original)
    for array in (feed.array("close"), feed.has_bar, feed.assets, feed.timestamps):
        with pytest.raises(ValueError, match="WRITEABLE"):
            array.flags.writeable = True


@pytest.mark.parametrize("name", ["A\x00", "A\n", "\tA", "A\x1b"])
def test_asset_names_with_control_characters_are_data_errors(name: str) -> None:
    # "A" and "A\x00" would both print as A in every table and message.
    frame = bars(flat("A", 0, 1.0), flat(name, 0, 2.0))

    with pytest.raises(DataError, match=re.escape(f"asset name {name!r} contains a control")):
        DataFeed(frame)


def test_from_arrays_rejects_asset_names_with_control_characters() -> None:
    ones = np.ones((1, 2))
    fields = {name: ones for name in OHLCV}

    with pytest.raises(DataError, match=re.escape("asset name 'B\\x00'")):
        DataFeed.from_arrays([DAY0], ["A", "B\x00"], fields)


def test_has_bar_is_true_where_close_is_present() -> None:
    frame = bars(flat("A", 0, 1.0), flat("B", 0, 2.0), flat("A", 1, 1.0))

    feed = DataFeed(frame)

    np.testing.assert_array_equal(feed.has_bar, [[True, True], [True, False]])


def test_unknown_field_error_lists_valid_fields() -> None:
    feed = DataFeed(two_by_three())

    with pytest.raises(DataError, match=r"unknown field 'score'.*open, high, low, close, volume"):
        feed.array("score")


def test_unknown_asset_error_names_it() -> None:
    feed = DataFeed(two_by_three())

    with pytest.raises(DataError, match=r"unknown asset 'TSLA'.*'A', 'B'"):
        feed.asset_index("TSLA")


def test_repr_shows_size_range_and_fields() -> None:
    text = repr(DataFeed(two_by_three()))

    assert "3 bars x 2 assets" in text
    assert "2024-01-01 00:00:00 to 2024-01-03 00:00:00" in text
    assert "open, high, low, close, volume" in text


# --- input forms ---------------------------------------------------------------------------------


def test_pandas_frame_gives_identical_arrays_to_polars() -> None:
    frame = two_by_three().with_columns(score=pl.Series([0.1, None, 0.3, 0.4, 0.5, 0.6]))

    assert_same_feed(DataFeed(frame.to_pandas()), DataFeed(frame))


def test_pandas_multiindex_supplies_timestamp_and_asset() -> None:
    frame = two_by_three()
    indexed = frame.to_pandas().set_index(["timestamp", "asset"])

    assert_same_feed(DataFeed(indexed), DataFeed(frame))


def test_pandas_named_index_alias_is_used() -> None:
    frame = two_by_three()
    indexed = frame.rename({"timestamp": "date"}).to_pandas().set_index("date")

    assert_same_feed(DataFeed(indexed), DataFeed(frame))


def test_polars_lazy_frame_is_accepted() -> None:
    frame = two_by_three()

    assert_same_feed(DataFeed(frame.lazy()), DataFeed(frame))


def test_dict_of_frames_without_asset_column_matches_long_frame() -> None:
    frame = two_by_three()
    per_asset = {a: frame.filter(pl.col("asset") == a).drop("asset") for a in ("B", "A")}

    assert_same_feed(DataFeed(per_asset), DataFeed(frame))


def test_dict_of_pandas_frames_with_unnamed_datetime_index() -> None:
    frame = two_by_three()
    per_asset = {
        a: frame.filter(pl.col("asset") == a).drop("asset").to_pandas().set_index("timestamp")
        for a in ("A", "B")
    }
    for df in per_asset.values():
        df.index.name = None

    assert_same_feed(DataFeed(per_asset), DataFeed(frame))


def test_dict_frame_asset_column_equal_to_key_is_accepted() -> None:
    frame = two_by_three()
    per_asset = {a: frame.filter(pl.col("asset") == a) for a in ("A", "B")}

    assert_same_feed(DataFeed(per_asset), DataFeed(frame))


def test_dict_frame_asset_column_different_from_key_raises() -> None:
    frame = two_by_three()
    per_asset = {
        "A": frame.filter(pl.col("asset") == "A"),
        "C": frame.filter(pl.col("asset") == "B"),
    }

    with pytest.raises(DataError, match=r"asset 'C' has 'asset' = 'B' at timestamp 2024-01-01"):
        DataFeed(per_asset)


def test_dict_frames_with_different_columns_raise_naming_the_asset() -> None:
    frame = two_by_three()
    per_asset = {
        "A": frame.filter(pl.col("asset") == "A").drop("asset"),
        "B": frame.filter(pl.col("asset") == "B").drop("asset").with_columns(score=pl.lit(1.0)),
    }

    with pytest.raises(DataError, match=r"asset 'B' has different columns.*extra: \['score'\]"):
        DataFeed(per_asset)


def test_single_parquet_path_as_str_and_path(tmp_path: Path) -> None:
    frame = two_by_three()
    path = tmp_path / "prices.parquet"
    frame.write_parquet(path)

    assert_same_feed(DataFeed(str(path)), DataFeed(frame))
    assert_same_feed(DataFeed(path), DataFeed(frame))


def test_list_of_parquet_paths_is_stacked(tmp_path: Path) -> None:
    frame = two_by_three()
    paths = []
    for asset in ("A", "B"):
        path = tmp_path / f"{asset}.parquet"
        frame.filter(pl.col("asset") == asset).write_parquet(path)
        paths.append(path)

    assert_same_feed(DataFeed(paths), DataFeed(frame))
    assert_same_feed(DataFeed([str(p) for p in paths]), DataFeed(frame))


def test_directory_reads_its_parquet_files(tmp_path: Path) -> None:
    frame = two_by_three()
    for asset in ("A", "B"):
        frame.filter(pl.col("asset") == asset).write_parquet(tmp_path / f"{asset}.parquet")

    assert_same_feed(DataFeed(tmp_path), DataFeed(frame))


def test_missing_parquet_file_raises_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.parquet' does not exist"):
        DataFeed(tmp_path / "nope.parquet")


def test_csv_path_is_read_with_dates_parsed(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    two_by_three().write_csv(path)

    assert_same_feed(DataFeed(path), DataFeed(two_by_three()))


def test_path_neither_parquet_nor_csv_raises_suggesting_to_read_it_first(tmp_path: Path) -> None:
    path = tmp_path / "prices.txt"
    two_by_three().write_csv(path)

    with pytest.raises(DataError, match=r"prices\.txt' is neither Parquet nor CSV"):
        DataFeed(path)


def test_unsupported_input_type_raises() -> None:
    with pytest.raises(DataError, match="cannot read prices from a int"):
        DataFeed(42)  # type: ignore[arg-type]


def test_empty_frame_raises() -> None:
    with pytest.raises(DataError, match="prices has no rows"):
        DataFeed(two_by_three().clear())


# --- column names --------------------------------------------------------------------------------


def test_date_and_symbol_aliases_are_accepted() -> None:
    frame = two_by_three()

    renamed = frame.rename({"timestamp": "date", "asset": "symbol"})

    assert_same_feed(DataFeed(renamed), DataFeed(frame))


def test_datetime_and_ticker_aliases_are_accepted() -> None:
    frame = two_by_three()

    renamed = frame.rename({"timestamp": "datetime", "asset": "ticker"})

    assert_same_feed(DataFeed(renamed), DataFeed(frame))


def test_explicit_key_column_names_are_used() -> None:
    frame = two_by_three()

    renamed = frame.rename({"timestamp": "bar_end", "asset": "permno_str"})

    assert_same_feed(
        DataFeed(renamed, timestamp_column="bar_end", asset_column="permno_str"), DataFeed(frame)
    )


def test_two_timestamp_aliases_raise_asking_for_timestamp_column() -> None:
    frame = two_by_three().with_columns(date=pl.col("timestamp"))

    with pytest.raises(
        DataError,
        match=r"several timestamp columns \('timestamp', 'date'\).*"
        r"timestamp_column=",
    ):
        DataFeed(frame)


def test_missing_required_column_is_named_with_columns_present() -> None:
    frame = two_by_three().drop("volume")

    with pytest.raises(
        DataError,
        match=r"prices has no 'volume' column; columns present: 'timestamp', 'asset', 'open'",
    ):
        DataFeed(frame)


def test_missing_column_with_case_insensitive_match_says_so() -> None:
    frame = two_by_three().rename({"close": "Close"})

    with pytest.raises(
        DataError, match=r"no 'close' column.*found 'Close', which differs only in case"
    ):
        DataFeed(frame)


def test_missing_timestamp_column_with_case_insensitive_match_says_so() -> None:
    frame = two_by_three().rename({"timestamp": "Date"})

    with pytest.raises(
        DataError, match=r"no timestamp column.*found 'Date'.*timestamp_column='Date'"
    ):
        DataFeed(frame)


def test_missing_asset_column_raises_naming_the_aliases() -> None:
    frame = two_by_three().drop("asset")

    with pytest.raises(DataError, match=r"no asset column \('asset' or 'symbol' or 'ticker'\)"):
        DataFeed(frame)


def test_string_extra_column_raises_naming_it_and_suggesting_encoding() -> None:
    frame = two_by_three().with_columns(sector=pl.lit("tech"))

    with pytest.raises(
        DataError,
        match=r"column 'sector' of prices has type String.*encode it as "
        r"numbers.*or drop it",
    ):
        DataFeed(frame)


def test_non_string_asset_column_raises() -> None:
    frame = two_by_three().with_columns(
        pl.col("asset").replace({"A": "1", "B": "2"}).cast(pl.Int64)
    )

    with pytest.raises(DataError, match=r"asset column 'asset' of prices has type Int64.*strings"):
        DataFeed(frame)


def test_null_asset_raises_naming_the_timestamp() -> None:
    frame = two_by_three().with_columns(
        asset=pl.when(pl.col("close") == 22.0).then(None).otherwise(pl.col("asset"))
    )

    with pytest.raises(
        DataError, match=r"1 rows with a null asset, the first at timestamp 2024-01-02"
    ):
        DataFeed(frame)


def test_null_timestamp_raises_naming_the_asset() -> None:
    frame = two_by_three().with_columns(
        timestamp=pl.when(pl.col("close") == 22.0).then(None).otherwise(pl.col("timestamp"))
    )

    with pytest.raises(DataError, match=r"1 rows with a null timestamp, the first for asset 'B'"):
        DataFeed(frame)


# --- timestamp types and time zones ---------------------------------------------------------------


def test_date_timestamps_become_midnight_datetimes() -> None:
    frame = two_by_three().with_columns(pl.col("timestamp").dt.date())

    feed = DataFeed(frame)

    assert frame.schema["timestamp"] == pl.Date
    assert feed.timestamps.tolist() == [day(0), day(1), day(2)]


def test_nanosecond_and_millisecond_datetimes_become_microseconds() -> None:
    frame = two_by_three()

    for unit in ("ns", "ms"):
        cast = frame.with_columns(pl.col("timestamp").cast(pl.Datetime(unit)))  # type: ignore[arg-type]
        assert_same_feed(DataFeed(cast), DataFeed(frame))


def test_sub_microsecond_timestamps_raise_instead_of_truncating() -> None:
    frame = two_by_three().with_columns(
        pl.col("timestamp").cast(pl.Datetime("ns")) + pl.duration(nanoseconds=1)
    )

    with pytest.raises(
        DataError, match="column 'timestamp' of prices has 6 timestamps with sub-microsecond"
    ):
        DataFeed(frame)


def test_string_timestamps_raise_naming_the_column_and_the_type_needed() -> None:
    frame = (
        two_by_three()
        .with_columns(pl.col("timestamp").dt.to_string())
        .rename({"timestamp": "date"})
    )

    with pytest.raises(
        DataError,
        match=r"column 'date' of prices has type String; timestamps must "
        r"be polars Date or Datetime",
    ):
        DataFeed(frame)


def test_integer_timestamps_raise_naming_the_column() -> None:
    frame = two_by_three().with_columns(pl.col("timestamp").dt.epoch("s"))

    with pytest.raises(DataError, match=r"column 'timestamp' of prices has type Int64.*from_epoch"):
        DataFeed(frame)


def test_tz_aware_timestamps_are_kept_as_utc_instants_with_their_zone() -> None:
    frame = two_by_three().with_columns(
        pl.col("timestamp").dt.replace_time_zone("America/New_York")
    )

    feed = DataFeed(frame)

    # Midnight in New York in January (EST, UTC-5) is 05:00 UTC.
    assert feed.timezone == "America/New_York"
    assert feed.timestamps[0] == np.datetime64("2024-01-01T05:00:00", "us")
    assert feed.datetimes[0] == datetime(2024, 1, 1, tzinfo=ZoneInfo("America/New_York"))
    assert feed.datetimes[0].tzinfo is not None
    assert str(feed.datetimes[0]) == "2024-01-01 00:00:00-05:00"


def test_dict_frames_mixing_aware_and_naive_raise_naming_the_assets() -> None:
    frame = two_by_three()
    per_asset = {
        "A": frame.filter(pl.col("asset") == "A")
        .drop("asset")
        .with_columns(pl.col("timestamp").dt.replace_time_zone("UTC")),
        "B": frame.filter(pl.col("asset") == "B").drop("asset"),
    }

    with pytest.raises(
        DataError,
        match=r"mixes tz-aware and naive.*asset 'A' is in UTC.*asset 'B' "
        r"is naive",
    ):
        DataFeed(per_asset)


def test_dict_frames_in_two_zones_are_converted_to_the_first_frames_zone() -> None:
    frame = two_by_three().with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    per_asset = {
        "A": frame.filter(pl.col("asset") == "A").drop("asset"),
        "B": frame.filter(pl.col("asset") == "B")
        .drop("asset")
        .with_columns(pl.col("timestamp").dt.convert_time_zone("Asia/Tokyo")),
    }

    feed = DataFeed(per_asset)

    assert feed.timezone == "UTC"
    assert_same_feed(feed, DataFeed(frame))


def test_pandas_object_column_mixing_aware_and_naive_raises() -> None:
    df = two_by_three().to_pandas()
    stamps = list(df["timestamp"])
    stamps[0] = stamps[0].tz_localize("UTC")
    df["timestamp"] = pd.Series(stamps, dtype=object)

    with pytest.raises(
        DataError, match=r"column 'timestamp' of prices mixes tz-aware and naive timestamps"
    ):
        DataFeed(df)


def test_pandas_tz_aware_frame_keeps_its_zone() -> None:
    frame = two_by_three().with_columns(pl.col("timestamp").dt.replace_time_zone("Europe/Paris"))

    feed = DataFeed(frame.to_pandas())

    assert feed.timezone == "Europe/Paris"
    assert_same_feed(feed, DataFeed(frame))


# --- value checks --------------------------------------------------------------------------------


def test_duplicate_rows_raise_naming_asset_timestamp_and_count() -> None:
    frame = pl.concat([two_by_three(), two_by_three().filter(pl.col("asset") == "B")])

    with pytest.raises(
        DataError,
        match=r"prices has 2 rows for asset 'B' at timestamp 2024-01-01 00:00:00; 3 \(timestamp, "
        r"asset\) pairs appear more than once \(6 rows in total\)",
    ):
        DataFeed(frame)


def test_non_positive_price_raises_with_column_value_and_count() -> None:
    frame = bars(flat("A", 0, 1.0), flat("B", 0, 2.0), flat("A", 1, 1.0), flat("B", 1, 2.0))
    frame = frame.with_columns(
        low=pl.when(pl.col("asset") == "B").then(0.0).otherwise(pl.col("low"))
    )

    with pytest.raises(
        DataError,
        match=r"prices must be > 0, but column 'low' = 0\.0, for asset 'B' at timestamp "
        r"2024-01-01 00:00:00; 2 rows fail this check \(first shown\)",
    ):
        DataFeed(frame)


def test_negative_close_raises() -> None:
    frame = bars(flat("A", 0, 1.0), (1, "A", 1.0, 1.0, 1.0, -1.0, 5.0))

    with pytest.raises(
        DataError, match=r"column 'close' = -1\.0, for asset 'A' at timestamp 2024-01-02"
    ):
        DataFeed(frame)


def test_high_below_low_raises_naming_both_values() -> None:
    frame = bars(flat("A", 0, 1.0), (1, "A", 1.0, 0.9, 1.1, 1.0, 5.0))

    with pytest.raises(
        DataError,
        match=r"high must be >= low, but column 'high' = 0\.9 \(low=1\.1\), for asset 'A' at "
        r"timestamp 2024-01-02 00:00:00; 1 row fails",
    ):
        DataFeed(frame)


def test_open_above_high_raises() -> None:
    frame = bars((0, "A", 2.5, 2.0, 1.0, 1.5, 5.0))

    with pytest.raises(
        DataError,
        match=r"open and close must lie within \[low, high\], but column 'open' = 2\.5 "
        r"\(low=1\.0, high=2\.0\), for asset 'A' at timestamp 2024-01-01",
    ):
        DataFeed(frame)


def test_close_below_low_raises() -> None:
    frame = bars((0, "A", 1.5, 2.0, 1.0, 0.5, 5.0))

    with pytest.raises(
        DataError, match=r"column 'close' = 0\.5 \(low=1\.0, high=2\.0\), for asset 'A'"
    ):
        DataFeed(frame)


def test_negative_volume_raises() -> None:
    frame = bars(flat("A", 0, 1.0, volume=-3.0))

    with pytest.raises(
        DataError,
        match=r"volume must be >= 0, but column 'volume' = -3\.0, for asset 'A' at timestamp",
    ):
        DataFeed(frame)


def test_zero_volume_is_allowed() -> None:
    feed = DataFeed(bars(flat("A", 0, 1.0, volume=0.0)))

    assert feed.array("volume")[0, 0] == 0.0


def test_infinite_price_raises() -> None:
    frame = bars(flat("A", 0, 1.0), (1, "A", 1.0, np.inf, 1.0, 1.0, 5.0))

    with pytest.raises(
        DataError,
        match=r"values must be finite.*column 'high' = inf, for asset 'A' at timestamp 2024-01-02",
    ):
        DataFeed(frame)


def test_infinite_extra_value_raises() -> None:
    frame = two_by_three().with_columns(score=pl.Series([0.0, 0.0, 0.0, -np.inf, 0.0, 0.0]))

    with pytest.raises(
        DataError, match=r"column 'score' = -inf, for asset 'B' at timestamp 2024-01-02"
    ):
        DataFeed(frame)


def test_nan_in_extra_column_is_allowed() -> None:
    frame = two_by_three().with_columns(score=pl.Series([np.nan, 1.0, 2.0, 3.0, 4.0, 5.0]))

    assert np.isnan(DataFeed(frame).array("score")[0, 0])


def test_partly_missing_prices_raise_naming_the_missing_column() -> None:
    frame = bars(flat("A", 0, 1.0), (1, "A", 1.0, None, 1.0, 1.0, 5.0))

    with pytest.raises(
        DataError,
        match=r"all present or all missing \(a missing bar\), but column 'high' is NaN/null "
        r"\(open=1\.0, high=nan, low=1\.0, close=1\.0\), for asset 'A' at timestamp 2024-01-02",
    ):
        DataFeed(frame)


def test_nan_close_with_other_prices_present_raises() -> None:
    frame = bars(flat("A", 0, 1.0), (1, "B", 1.0, 1.0, 1.0, np.nan, 5.0))

    with pytest.raises(
        DataError, match=r"column 'close' is NaN/null.*asset 'B' at timestamp 2024-01-02"
    ):
        DataFeed(frame)


def test_prices_without_volume_raise() -> None:
    frame = bars(flat("A", 0, 1.0), (1, "A", 1.0, 1.0, 1.0, 1.0, None))

    with pytest.raises(
        DataError,
        match=r"needs a volume, but column 'volume' is NaN/null, for asset 'A' at timestamp "
        r"2024-01-02",
    ):
        DataFeed(frame)


def test_row_with_all_prices_null_is_a_missing_bar() -> None:
    frame = bars(flat("A", 0, 1.0), (1, "A", None, None, None, None, None), flat("A", 2, 1.0))

    feed = quiet_feed(frame)

    assert feed.has_bar[:, 0].tolist() == [True, False, True]
    assert feed.missing_bars == {"A": 1}


def test_first_offending_row_in_time_then_asset_order_is_reported() -> None:
    # Rows arrive out of order: the later bad row (day 2, A) comes first in the input.
    frame = bars(
        flat("A", 2, -1.0),
        flat("B", 1, -2.0),
        flat("A", 1, 1.0),
        flat("A", 0, 1.0),
        flat("B", 0, 1.0),
        flat("B", 2, 1.0),
    )

    with pytest.raises(DataError, match=r"asset 'B' at timestamp 2024-01-02 00:00:00; 2 rows fail"):
        DataFeed(frame)


# --- missing bars ---------------------------------------------------------------------------------


def gappy_frame() -> pl.DataFrame:
    """A: gap on day 2; B: listed from day 1, gaps on days 2 and 3, delisted after day 4;
    C: complete over days 0-5."""
    rows = [flat("A", d, 1.0) for d in (0, 1, 3, 4, 5)]
    rows += [flat("B", d, 2.0) for d in (1, 4)]
    rows += [flat("C", d, 3.0) for d in range(6)]
    return bars(*rows)


def test_missing_bars_count_only_interior_gaps() -> None:
    feed = quiet_feed(gappy_frame())

    # B's absence on day 0 (not listed yet) and day 5 (delisted) is not a gap.
    assert feed.missing_bars == {"A": 1, "B": 2}
    assert feed.n_missing == 3
    assert feed.has_bar.sum() == 5 + 2 + 6


def test_missing_bars_are_nan_in_every_field() -> None:
    feed = quiet_feed(gappy_frame())

    b = feed.asset_index("B")
    for field in OHLCV:
        assert np.isnan(feed.array(field)[[0, 2, 3, 5], b]).all()


def test_missing_bars_warning_gives_total_and_worst_assets() -> None:
    with pytest.warns(
        DataWarning,
        match=r"^3 missing bars inside the histories of 2 assets .*: "
        r"B \(2\), A \(1\)\.",
    ):
        DataFeed(gappy_frame())


def test_missing_bars_warning_points_at_the_callers_line() -> None:
    with pytest.warns(DataWarning) as record:
        DataFeed(gappy_frame())

    assert record[0].filename == __file__


def test_no_warning_when_nothing_is_missing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feed = DataFeed(two_by_three())

    assert feed.missing_bars == {} and feed.n_missing == 0


# --- signals -------------------------------------------------------------------------------------


def test_signals_become_fields_aligned_on_timestamp_and_asset() -> None:
    signals = pl.DataFrame(
        {"date": [day(2), day(0)], "symbol": ["B", "A"], "score": [0.7, 0.1], "rank": [1, 2]}
    )

    feed = DataFeed(two_by_three(), signals=signals)

    assert feed.fields == (*OHLCV, "score", "rank")
    # Price rows without a signal row get NaN.
    np.testing.assert_array_equal(
        feed.array("score"), [[0.1, np.nan], [np.nan, np.nan], [np.nan, 0.7]]
    )
    np.testing.assert_array_equal(feed.array("rank")[2], [np.nan, 1.0])


def test_signals_may_come_from_pandas() -> None:
    signals = pl.DataFrame({"timestamp": [day(1)], "asset": ["A"], "score": [0.5]})

    feed = DataFeed(two_by_three().to_pandas(), signals=signals.to_pandas())

    assert feed.array("score")[1, 0] == 0.5


def test_signal_on_a_missing_bar_row_is_kept() -> None:
    prices = bars(flat("A", 0, 1.0), (1, "A", None, None, None, None, None), flat("A", 2, 1.0))
    signals = pl.DataFrame({"timestamp": [day(1)], "asset": ["A"], "score": [0.5]})

    feed = quiet_feed(prices, signals=signals)

    assert feed.array("score")[1, 0] == 0.5


def test_duplicate_signal_keys_raise_naming_the_first() -> None:
    signals = pl.DataFrame(
        {"timestamp": [day(1), day(1), day(0)], "asset": ["B", "B", "A"], "score": [1.0, 2.0, 3.0]}
    )

    with pytest.raises(
        DataError,
        match=r"signals has more than one row for asset 'B' at timestamp "
        r"2024-01-02 00:00:00 \(2 rows",
    ):
        DataFeed(two_by_three(), signals=signals)


def test_signal_column_clashing_with_price_column_raises() -> None:
    signals = pl.DataFrame({"timestamp": [day(0)], "asset": ["A"], "close": [1.0]})

    with pytest.raises(DataError, match=r"signals column 'close' clashes with a price column"):
        DataFeed(two_by_three(), signals=signals)


def test_signal_row_without_price_row_raises_naming_the_first_and_count() -> None:
    # Stamped at 16:00 while prices are stamped at midnight: a shifted key, not a new bar.
    signals = pl.DataFrame(
        {
            "timestamp": [day(1) + timedelta(hours=16), day(0) + timedelta(hours=16), day(0)],
            "asset": ["A", "B", "A"],
            "score": [1.0, 2.0, 3.0],
        }
    )

    with pytest.raises(
        DataError,
        match=r"signals has a row for asset 'B' at timestamp 2024-01-01 16:00:00 but prices have "
        r"no row there \(2 rows of signals have no price row\).*time zone or time of day.*semi",
    ):
        DataFeed(two_by_three(), signals=signals)


def test_signal_row_for_unknown_asset_raises() -> None:
    signals = pl.DataFrame({"timestamp": [day(0)], "asset": ["ZZZ"], "score": [1.0]})

    with pytest.raises(DataError, match=r"asset 'ZZZ' at timestamp 2024-01-01 00:00:00 but prices"):
        DataFeed(two_by_three(), signals=signals)


def test_signal_row_in_a_gap_of_the_price_grid_raises() -> None:
    prices = bars(flat("A", 0, 1.0), flat("B", 0, 1.0), flat("A", 1, 1.0))
    signals = pl.DataFrame({"timestamp": [day(1)], "asset": ["B"], "score": [1.0]})

    with pytest.raises(DataError, match=r"asset 'B' at timestamp 2024-01-02 00:00:00 but prices"):
        DataFeed(prices, signals=signals)


def test_naive_signals_with_tz_aware_prices_raise_naming_signals() -> None:
    prices = two_by_three().with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    signals = pl.DataFrame({"timestamp": [day(0)], "asset": ["A"], "score": [1.0]})

    with pytest.raises(
        DataError, match=r"signals has naive timestamps but prices are tz-aware \(UTC\)"
    ):
        DataFeed(prices, signals=signals)


def test_signals_in_another_zone_are_converted_to_the_prices_zone() -> None:
    prices = two_by_three().with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    # 09:00 in Tokyo (UTC+9) is midnight UTC: the same instant as the day-1 price row.
    tokyo = datetime(2024, 1, 2, 9)
    signals = pl.DataFrame({"timestamp": [tokyo], "asset": ["A"], "score": [1.0]}).with_columns(
        pl.col("timestamp").dt.replace_time_zone("Asia/Tokyo")
    )

    feed = DataFeed(prices, signals=signals)

    assert feed.array("score")[1, 0] == 1.0


def test_non_numeric_signal_column_raises_naming_it() -> None:
    signals = pl.DataFrame({"timestamp": [day(0)], "asset": ["A"], "label": ["buy"]})

    with pytest.raises(DataError, match=r"column 'label' of signals has type String"):
        DataFeed(two_by_three(), signals=signals)


# --- from_arrays ---------------------------------------------------------------------------------


def arrays_of(feed: DataFeed) -> dict[str, np.ndarray]:
    return {name: np.array(feed.array(name)) for name in feed.fields}


def test_from_arrays_matches_the_frame_feed() -> None:
    frame = two_by_three().with_columns(score=pl.Series([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    feed = DataFeed(frame)

    rebuilt = DataFeed.from_arrays(feed.timestamps, feed.assets, arrays_of(feed))

    assert_same_feed(rebuilt, feed)


def test_from_arrays_round_trips_a_tz_aware_feed() -> None:
    frame = two_by_three().with_columns(pl.col("timestamp").dt.replace_time_zone("Europe/Paris"))
    feed = DataFeed(frame)

    rebuilt = DataFeed.from_arrays(
        feed.timestamps, feed.assets, arrays_of(feed), timezone=feed.timezone
    )

    assert rebuilt.timezone == "Europe/Paris"
    assert rebuilt.datetimes == feed.datetimes
    assert_same_feed(rebuilt, feed)


def test_from_arrays_sorts_rows_and_columns() -> None:
    times = np.array(["2024-01-02", "2024-01-01"], dtype="datetime64[D]")
    close = np.array([[20.0, 2.0], [10.0, 1.0]])  # columns: B, A
    fields = {name: close for name in ("open", "high", "low", "close")} | {"volume": close}

    feed = DataFeed.from_arrays(times, ["B", "A"], fields)

    assert feed.assets.tolist() == ["A", "B"]
    np.testing.assert_array_equal(feed.array("close"), [[1.0, 10.0], [2.0, 20.0]])


def test_from_arrays_copies_the_input() -> None:
    feed = DataFeed(two_by_three())
    fields = arrays_of(feed)

    rebuilt = DataFeed.from_arrays(feed.timestamps, feed.assets, fields)
    fields["close"][0, 0] = 999.0

    assert rebuilt.array("close")[0, 0] == 1.2


def test_from_arrays_applies_the_value_checks() -> None:
    feed = DataFeed(two_by_three())
    fields = arrays_of(feed)
    fields["high"][1, 1] = 1.0  # below B's low of 15 on day 1

    with pytest.raises(
        DataError, match=r"high must be >= low.*asset 'B' at timestamp 2024-01-02 00:00:00"
    ):
        DataFeed.from_arrays(feed.timestamps, feed.assets, fields)


def test_from_arrays_nan_cells_are_missing_bars() -> None:
    feed = DataFeed(two_by_three())
    fields = arrays_of(feed)
    for name in OHLCV:
        fields[name][1, 0] = np.nan

    with pytest.warns(DataWarning, match=r"A \(1\)"):
        rebuilt = DataFeed.from_arrays(feed.timestamps, feed.assets, fields)

    assert rebuilt.missing_bars == {"A": 1}


def test_from_arrays_wrong_shape_raises_naming_the_field() -> None:
    feed = DataFeed(two_by_three())
    fields = arrays_of(feed)
    fields["volume"] = fields["volume"][:2]

    with pytest.raises(
        DataError, match=re.escape("field 'volume' has shape (2, 2); it must be [T, N] = (3, 2)")
    ):
        DataFeed.from_arrays(feed.timestamps, feed.assets, fields)


def test_from_arrays_missing_field_raises() -> None:
    feed = DataFeed(two_by_three())
    fields = arrays_of(feed)
    del fields["low"]

    with pytest.raises(DataError, match=r"fields has no 'low' array"):
        DataFeed.from_arrays(feed.timestamps, feed.assets, fields)


def test_from_arrays_repeated_timestamp_raises() -> None:
    times = [day(0), day(0)]
    ones = np.ones((2, 1))

    with pytest.raises(DataError, match=r"timestamp 2024-01-01 00:00:00 appears more than once"):
        DataFeed.from_arrays(times, ["A"], dict.fromkeys(OHLCV, ones))


def test_from_arrays_repeated_asset_raises() -> None:
    ones = np.ones((1, 2))

    with pytest.raises(DataError, match=r"asset 'A' appears more than once"):
        DataFeed.from_arrays([day(0)], ["A", "A"], dict.fromkeys(OHLCV, ones))


def test_from_arrays_accepts_dates() -> None:
    ones = np.ones((1, 1))

    feed = DataFeed.from_arrays([date(2024, 1, 1)], ["A"], dict.fromkeys(OHLCV, ones))

    assert feed.timestamps.tolist() == [day(0)]


# --- yfinance, wide dicts, adjusted prices -------------------------------------------------------

YF_FIELDS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}


def yfinance_frame(*, by_ticker: bool = False, adj: dict[str, list[float]] | None = None) -> Any:
    """two_by_three() as yf.download returns it: a Date index and (Price, Ticker) columns."""
    long = two_by_three().to_pandas()
    columns: dict[tuple[str, str], Any] = {}
    fields = {"Adj Close": None, **YF_FIELDS} if adj is not None else YF_FIELDS
    for yf_name, ours in fields.items():
        for ticker in ("A", "B"):
            rows = long[long["asset"] == ticker]
            values = adj[ticker] if ours is None and adj else rows[ours].to_numpy()
            key = (ticker, yf_name) if by_ticker else (yf_name, ticker)
            columns[key] = values
    index = pd.DatetimeIndex([day(i) for i in range(3)], name="Date")
    frame = pd.DataFrame(columns, index=index)
    frame.columns.names = ["Ticker", "Price"] if by_ticker else ["Price", "Ticker"]
    return frame


def test_yfinance_download_frame_gives_the_long_frames_arrays() -> None:
    assert_same_feed(DataFeed(yfinance_frame()), DataFeed(two_by_three()))


def test_yfinance_group_by_ticker_frame_gives_the_same_arrays() -> None:
    assert_same_feed(DataFeed(yfinance_frame(by_ticker=True)), DataFeed(two_by_three()))


def test_yfinance_frame_without_level_names_is_read_by_its_field_names() -> None:
    frame = yfinance_frame(by_ticker=True)
    frame.columns.names = [None, None]
    assert_same_feed(DataFeed(frame), DataFeed(two_by_three()))


def test_yfinance_adj_close_is_kept_as_a_field_by_default() -> None:
    adj = {"A": [0.6, 1.1, 1.6], "B": [6.0, 11.0, 16.0]}
    feed = DataFeed(yfinance_frame(adj=adj))
    assert feed.fields == ("open", "high", "low", "close", "volume", "adj_close")
    np.testing.assert_array_equal(feed.array("adj_close")[:, 0], [0.6, 1.1, 1.6])
    np.testing.assert_array_equal(feed.array("close")[:, 0], [1.2, 2.2, 3.2])


def test_adjust_scales_ohlc_by_adj_close_over_close_and_keeps_volume() -> None:
    # A's adj_close is half its close on every day, B's a tenth more on day 0 only.
    adj = {"A": [0.6, 1.1, 1.6], "B": [13.2, 22.0, 32.0]}
    feed = DataFeed(yfinance_frame(adj=adj), adjust=True)
    assert "adj_close" not in feed.fields
    a, b = feed.asset_index("A"), feed.asset_index("B")
    # Day 0 of A: open 1.0, high 1.5, low 0.5, close 1.2, ratio 0.6 / 1.2 = 0.5.
    assert feed.array("open")[0, a] == pytest.approx(0.5)
    assert feed.array("high")[0, a] == pytest.approx(0.75)
    assert feed.array("low")[0, a] == pytest.approx(0.25)
    assert feed.array("close")[0, a] == pytest.approx(0.6)
    # Day 0 of B: ratio 13.2 / 12 = 1.1 -> open 11, close 13.2; day 1 ratio 1: unchanged.
    assert feed.array("open")[0, b] == pytest.approx(11.0)
    assert feed.array("close")[0, b] == pytest.approx(13.2)
    assert feed.array("open")[1, b] == pytest.approx(20.0)
    assert feed.array("volume")[0, a] == 10.0


def test_adjust_without_an_adjusted_close_raises() -> None:
    with pytest.raises(DataError, match="adjust=True needs an adjusted close column"):
        DataFeed(two_by_three(), adjust=True)


def test_yfinance_tz_aware_index_keeps_its_zone() -> None:
    frame = yfinance_frame()
    frame.index = frame.index.tz_localize("America/New_York").rename("Datetime")
    feed = DataFeed(frame)
    assert feed.timezone == "America/New_York"
    # Midnight in New York on 2024-01-01 is 05:00 UTC.
    assert feed.timestamps[0] == np.datetime64("2024-01-01T05:00:00", "us")


def test_unrecognised_multiindex_error_is_short_and_lists_accepted_shapes() -> None:
    columns = pd.MultiIndex.from_product([["x", "y"], [f"T{i}" for i in range(300)]])
    frame = pd.DataFrame(np.ones((2, 600)), columns=columns, index=[day(0), day(1)])
    with pytest.raises(DataError) as info:
        DataFeed(frame)
    message = str(info.value)
    assert len(message) < 600
    assert "neither level is the field" in message
    assert "accepted shapes: a long frame" in message and "yfinance" in message


def test_wide_close_frame_error_is_short_and_lists_accepted_shapes() -> None:
    closes = pd.DataFrame(
        np.ones((2, 500)),
        columns=[f"T{i}" for i in range(500)],
        index=pd.DatetimeIndex([day(0), day(1)], name="Date"),
    )
    with pytest.raises(DataError) as info:
        DataFeed(closes)
    message = str(info.value)
    assert len(message) < 600
    assert "no timestamp column" in message and "(501 in all)" in message
    assert "{field: wide frame}" in message


def test_dict_of_wide_frames_by_field_gives_the_long_frames_arrays() -> None:
    long = two_by_three()
    wide = {
        field: long.pivot(on="asset", index="timestamp", values=field).select("timestamp", "B", "A")
        for field in OHLCV
    }
    assert_same_feed(DataFeed(wide), DataFeed(long))


def test_dict_of_pandas_wide_frames_with_yfinance_field_names() -> None:
    long = two_by_three().to_pandas()
    wide = {
        yf_name: long.pivot(index="timestamp", columns="asset", values=ours)
        for yf_name, ours in YF_FIELDS.items()
    }
    assert_same_feed(DataFeed(wide), DataFeed(two_by_three()))


def test_dict_of_wide_frames_with_different_assets_raises_naming_the_field() -> None:
    long = two_by_three()
    wide = {field: long.pivot(on="asset", index="timestamp", values=field) for field in OHLCV}
    wide["volume"] = wide["volume"].drop("B")
    with pytest.raises(DataError, match=r"field 'volume' has other assets.*missing: \['B'\]"):
        DataFeed(wide)


def test_dict_of_yfinance_ticker_history_frames() -> None:
    long = two_by_three().to_pandas()
    frames = {}
    for ticker in ("A", "B"):
        rows = long[long["asset"] == ticker]
        frame = pd.DataFrame(
            {yf: rows[ours].to_numpy() for yf, ours in YF_FIELDS.items()},
            index=pd.DatetimeIndex(rows["timestamp"], name="Date"),
        )
        frames[ticker] = frame
    assert_same_feed(DataFeed(frames), DataFeed(two_by_three()))


def test_parquet_is_read_one_column_at_a_time(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "prices.parquet"
    two_by_three().write_parquet(path)
    reads: list[list[str]] = []
    real = pl.LazyFrame.collect

    def spy(frame: pl.LazyFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
        out = real(frame, *args, **kwargs)
        reads.append(out.columns)
        return out

    monkeypatch.setattr(pl.LazyFrame, "collect", spy)
    feed = DataFeed(path)
    assert_same_feed(feed, DataFeed(two_by_three()))
    # The row count, then each key twice (its unique values, then each row's cell), then
    # each field once: never two columns in one read.
    keys = [["asset"], ["asset"], ["timestamp"], ["timestamp"]]
    assert reads == [["len"], *keys, *([c] for c in OHLCV)]


def test_rows_read_in_blocks_land_in_their_cells(monkeypatch: Any) -> None:
    import ml4t.backtest.data.loading as loading_module

    # Blocks of 2 rows: 5 rows in shuffled order (B's day-1 row dropped) span 3 blocks.
    monkeypatch.setattr(loading_module, "BLOCK_ROWS", 2)
    rows = two_by_three().filter(~((pl.col("asset") == "B") & (pl.col("timestamp") == day(1))))
    feed = quiet_feed(rows.reverse())
    close = feed.array("close")
    np.testing.assert_array_equal(close[:, 0], [1.2, 2.2, 3.2])
    np.testing.assert_array_equal(close[[0, 2], 1], [12.0, 32.0])
    assert np.isnan(close[1, 1])


def test_parquet_rows_read_in_slices_land_in_their_cells(tmp_path: Path, monkeypatch: Any) -> None:
    import ml4t.backtest.data.loading as loading_module

    # Slices of 2 rows over row groups of 2: the 5 shuffled rows (B's day-1 row dropped) are
    # read as 3 slices per pass, and each slice's rows go to their own cells.
    monkeypatch.setattr(loading_module, "BLOCK_ROWS", 2)
    rows = two_by_three().filter(~((pl.col("asset") == "B") & (pl.col("timestamp") == day(1))))
    path = tmp_path / "prices.parquet"
    rows.reverse().write_parquet(path, row_group_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        feed = DataFeed(path)
    close = feed.array("close")
    np.testing.assert_array_equal(close[:, 0], [1.2, 2.2, 3.2])
    np.testing.assert_array_equal(close[[0, 2], 1], [12.0, 32.0])
    assert np.isnan(close[1, 1])
    assert list(feed.assets) == ["A", "B"]


def test_read_only_of_a_frozen_array_is_the_array_itself() -> None:
    from ml4t.backtest.data.feed import _read_only

    frozen = _read_only(np.arange(6.0).reshape(2, 3))
    # A second freeze would copy a [T, N] array for nothing (it is frozen as it is built).
    assert _read_only(frozen) is frozen
    assert not frozen.flags.writeable


def test_bad_bar_in_a_later_validation_block_is_reported(monkeypatch: Any) -> None:
    import ml4t.backtest.data.validation as validation_module

    # Blocks of 2 cells are one bar of both assets: the bad bar sits in the third block.
    monkeypatch.setattr(validation_module, "_BLOCK_CELLS", 2)
    rows = two_by_three().with_columns(
        pl.when((pl.col("asset") == "B") & (pl.col("timestamp") == day(2)))
        .then(24.0)
        .otherwise(pl.col("high"))
        .alias("high")
    )
    with pytest.raises(DataError, match=r"high must be >= low.*'B' at timestamp 2024-01-03"):
        DataFeed(rows)
