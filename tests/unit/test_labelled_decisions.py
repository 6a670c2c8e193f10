"""Decisions given as frames labelled by timestamp and asset: aligned by label, never position.

Feeds are tiny hand-made tables (conftest): bars are (open, close), day t is 2024-01-01 + t,
orders decided at a close fill at the next open. Cash 10,000.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from ml4t.backtest import (
    BacktestConfig,
    DataError,
    DataFeed,
    run_orders,
    run_signals,
    run_weights,
)

CFG = BacktestConfig(initial_cash=10_000.0)


def day(t: int) -> datetime:
    return datetime(2024, 1, 1) + timedelta(days=t)


def fills_of(result):  # type: ignore[no-untyped-def]
    return result.fills.select("timestamp", "asset", "side", "quantity", "price").rows()


def two_assets(make_feed) -> DataFeed:  # type: ignore[no-untyped-def]
    """A at 100 then 110, B at 50 then 40: which asset is bought shows in the fill price."""
    return make_feed(
        {
            "A": [(100.0, 100.0), (110.0, 110.0), (110.0, 110.0)],
            "B": [(50.0, 50.0), (40.0, 40.0), (40.0, 40.0)],
        }
    )


def days(n: int) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([day(t) for t in range(n)])


# ---- alignment by label --------------------------------------------------------------------------


def test_reordered_pandas_columns_give_the_fills_of_the_ordered_array(make_feed):
    feed = two_assets(make_feed)
    # Buy B only (column 1 of feed.assets = ["A", "B"]) at bar 0's close.
    entries = np.array([[False, True], [False, False], [False, False]])
    frame = pd.DataFrame({"B": [True, False, False], "A": [False, False, False]}, index=days(3))

    by_array = run_signals(feed, entries, size=0.5, config=CFG)
    by_frame = run_signals(feed, frame, size=0.5, config=CFG)

    # 0.5 x 10,000 / 50 (B's close at bar 0) = 100 B at bar 1's open, 40.
    assert fills_of(by_array) == [(day(1), "B", "buy", 100.0, 40.0)]
    assert fills_of(by_frame) == fills_of(by_array)


def test_polars_wide_frame_with_a_timestamp_column_is_aligned_by_label(make_feed):
    feed = two_assets(make_feed)
    frame = pl.DataFrame({"timestamp": [day(0)], "B": [True], "A": [False]})
    result = run_signals(feed, frame, size=0.5, config=CFG)
    assert fills_of(result) == [(day(1), "B", "buy", 100.0, 40.0)]


def test_polars_date_column_named_date_matches_midnight_bars(make_feed):
    feed = two_assets(make_feed)
    frame = pl.DataFrame({"Date": [day(0).date()], "A": [True]})
    result = run_signals(feed, frame, size=0.5, config=CFG)
    # 0.5 x 10,000 / 100 = 50 A at bar 1's open, 110.
    assert fills_of(result) == [(day(1), "A", "buy", 50.0, 110.0)]


def test_an_asset_the_frame_leaves_out_gets_no_signal(make_feed):
    feed = two_assets(make_feed)
    frame = pd.DataFrame({"A": [True, False, False]}, index=days(3))
    result = run_signals(feed, frame, size=0.5, config=CFG)
    assert fills_of(result) == [(day(1), "A", "buy", 50.0, 110.0)]


def test_a_bar_the_frame_leaves_out_gets_no_signal(make_feed):
    feed = two_assets(make_feed)
    # Only bar 1 has a row: bar 0 (where an array of True would enter) has no signal.
    frame = pd.DataFrame({"A": [True], "B": [False]}, index=pd.DatetimeIndex([day(1)]))
    result = run_signals(feed, frame, size=0.5, config=CFG)
    # Decided at bar 1's close (110): 0.5 x 10,000 / 110 = 45.45 -> 45 A at bar 2's open.
    assert fills_of(result) == [(day(2), "A", "buy", 45.0, 110.0)]


def test_unknown_asset_label_is_a_data_error_naming_it(make_feed):
    feed = two_assets(make_feed)
    frame = pd.DataFrame({"A": [True], "MSFT": [False]}, index=pd.DatetimeIndex([day(0)]))
    with pytest.raises(DataError, match=r"entries has 1 column\(s\) naming no asset.*'MSFT'"):
        run_signals(feed, frame, config=CFG)


def test_unknown_timestamp_label_is_a_data_error_naming_it(make_feed):
    feed = two_assets(make_feed)
    frame = pd.DataFrame({"A": [True]}, index=pd.DatetimeIndex([day(0) + timedelta(hours=16)]))
    with pytest.raises(DataError, match=r"timestamp 2024-01-01 16:00:00, which is not a bar"):
        run_signals(feed, frame, config=CFG)


def test_non_bool_signal_frame_is_a_data_error_naming_the_column(make_feed):
    feed = two_assets(make_feed)
    frame = pd.DataFrame({"A": [1.0]}, index=pd.DatetimeIndex([day(0)]))
    with pytest.raises(DataError, match=r"entries column 'A' has type Float64.*booleans"):
        run_signals(feed, frame, config=CFG)


def test_frame_without_timestamp_labels_is_a_data_error(make_feed):
    feed = two_assets(make_feed)
    frame = pd.DataFrame({"A": [True, False, False], "B": [False, False, False]})
    with pytest.raises(DataError, match="RangeIndex index and no timestamp column"):
        run_signals(feed, frame, config=CFG)


# ---- time zones ----------------------------------------------------------------------------------


def aware_feed() -> DataFeed:
    """The two-asset table with its bars at midnight in New York."""
    frame = pl.DataFrame(
        {
            "timestamp": [day(t) for t in range(3)] * 2,
            "asset": ["A"] * 3 + ["B"] * 3,
            "open": [100.0, 110.0, 110.0, 50.0, 40.0, 40.0],
            "volume": [1e6] * 6,
        }
    ).with_columns(
        pl.col("timestamp").dt.replace_time_zone("America/New_York"),
        high=pl.col("open"),
        low=pl.col("open"),
        close=pl.col("open"),
    )
    return DataFeed(frame)


def test_tz_aware_labels_in_another_zone_match_the_same_instant():
    feed = aware_feed()
    # Midnight in New York on 2024-01-01 is 05:00 UTC.
    index = pd.DatetimeIndex([pd.Timestamp("2024-01-01 05:00", tz="UTC")])
    frame = pd.DataFrame({"A": [True]}, index=index)
    result = run_signals(feed, frame, size=0.5, config=CFG)
    assert result.fills["asset"].to_list() == ["A"]
    assert result.fills["price"].to_list() == [110.0]


def test_naive_labels_on_a_tz_aware_feed_are_a_data_error():
    feed = aware_feed()
    frame = pd.DataFrame({"A": [True]}, index=pd.DatetimeIndex([day(0)]))
    with pytest.raises(DataError, match=r"naive timestamps but the feed's are tz-aware"):
        run_signals(feed, frame, config=CFG)


def test_tz_aware_labels_on_a_naive_feed_are_a_data_error(make_feed):
    feed = two_assets(make_feed)
    frame = pd.DataFrame({"A": [True]}, index=pd.DatetimeIndex([day(0)]).tz_localize("UTC"))
    with pytest.raises(DataError, match=r"tz-aware \(UTC\) timestamps but the feed's are naive"):
        run_signals(feed, frame, config=CFG)


# ---- weights and orders --------------------------------------------------------------------------


def test_weights_frame_asset_left_out_is_weight_zero_on_its_rebalance_rows(make_feed):
    feed = two_assets(make_feed)
    frame = pd.DataFrame({"A": [0.5]}, index=pd.DatetimeIndex([day(0)]))
    result = run_weights(feed, frame, config=CFG)
    # B has no column: NaN on bar 0, which rebalances (A is finite), so B's target is 0.
    # A: 0.5 x 10,000 / 100 = 50 at bar 1's open, 110; the same as the array with B NaN.
    assert fills_of(result) == [(day(1), "A", "buy", 50.0, 110.0)]
    array = np.array([[0.5, np.nan], [np.nan, np.nan], [np.nan, np.nan]])
    assert fills_of(run_weights(feed, array, config=CFG)) == fills_of(result)


def test_weights_frame_bar_left_out_is_no_rebalance(make_feed):
    feed = two_assets(make_feed)
    frame = pl.DataFrame({"timestamp": [day(0)], "B": [0.5], "A": [0.5]})
    result = run_weights(feed, frame, config=CFG)
    # Only bar 0 rebalances: 50 A and 100 B bought at bar 1's open, nothing after.
    assert sorted(fills_of(result)) == [
        (day(1), "A", "buy", 50.0, 110.0),
        (day(1), "B", "buy", 100.0, 40.0),
    ]


def test_weights_frame_matches_the_same_array(make_feed):
    feed = two_assets(make_feed)
    array = np.array([[0.2, 0.6], [np.nan, np.nan], [0.0, 0.3]])
    frame = pd.DataFrame({"B": array[:, 1], "A": array[:, 0]}, index=days(3))
    assert fills_of(run_weights(feed, frame, config=CFG)) == fills_of(
        run_weights(feed, array, config=CFG)
    )


def test_orders_frame_places_quantities_by_label(make_feed):
    feed = two_assets(make_feed)
    frame = pl.DataFrame({"timestamp": [day(0)], "B": [7.0]})
    result = run_orders(feed, frame, config=CFG)
    assert fills_of(result) == [(day(1), "B", "buy", 7.0, 40.0)]
