"""synthetic_universe: deterministic, well-formed, point-in-time, with the advertised IC."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray
from polars.testing import assert_frame_equal

from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.errors import ConfigError

N_ASSETS, N_BARS = 30, 300
FLOAT_COLUMNS = ["open", "high", "low", "close", "volume", "score", "momentum_20", "volatility_20"]


@pytest.fixture(scope="module")
def universe() -> pl.DataFrame:
    return synthetic_universe(n_assets=N_ASSETS, n_bars=N_BARS, seed=3)


def wide(df: pl.DataFrame, column: str, n_assets: int) -> NDArray[np.float64]:
    """(bars, assets) array of a gap-free frame, relying on its (timestamp, asset) order."""
    return df[column].to_numpy().reshape(-1, n_assets)


def row_ranks(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.argsort(np.argsort(x, axis=1), axis=1).astype(np.float64)


def mean_rank_ic(score: NDArray[np.float64], forward: NDArray[np.float64]) -> float:
    """Average over bars of the cross-sectional Spearman correlation."""
    a = row_ranks(score)
    b = row_ranks(forward)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    ic = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return float(ic.mean())


def score_ic_against_forward_open_to_open(df: pl.DataFrame, n_assets: int) -> float:
    # Score known at the close of t; a trade enters at open t+1 and exits at open t+6.
    opens = wide(df, "open", n_assets)
    forward = opens[6:] / opens[1:-5] - 1.0
    score = wide(df, "score", n_assets)[: forward.shape[0]]
    return mean_rank_ic(score, forward)


def test_same_seed_gives_bit_identical_frame() -> None:
    a = synthetic_universe(n_assets=12, n_bars=80, seed=11, missing_fraction=0.1)
    b = synthetic_universe(n_assets=12, n_bars=80, seed=11, missing_fraction=0.1)
    assert_frame_equal(a, b, check_exact=True)
    for column in FLOAT_COLUMNS:
        assert a[column].to_numpy().tobytes() == b[column].to_numpy().tobytes(), column


def test_different_seed_gives_different_prices() -> None:
    a = synthetic_universe(n_assets=12, n_bars=80, seed=11)
    b = synthetic_universe(n_assets=12, n_bars=80, seed=12)
    assert not np.array_equal(a["close"].to_numpy(), b["close"].to_numpy())


def test_columns_and_dtypes_are_exact(universe: pl.DataFrame) -> None:
    assert universe.schema == pl.Schema(
        {
            "timestamp": pl.Datetime("us"),
            "asset": pl.String,
            **{column: pl.Float64 for column in FLOAT_COLUMNS},
        }
    )


def test_has_one_row_per_asset_and_bar_sorted_by_timestamp_then_asset(
    universe: pl.DataFrame,
) -> None:
    assert universe.height == N_ASSETS * N_BARS
    assert universe["timestamp"].n_unique() == N_BARS
    assert universe["asset"].n_unique() == N_ASSETS
    assert universe.equals(universe.sort("timestamp", "asset"))
    assert universe.select("timestamp", "asset").is_unique().all()


def test_asset_names_are_zero_padded_to_four_digits(universe: pl.DataFrame) -> None:
    names = universe["asset"].unique().sort().to_list()
    assert names == [f"A{i:04d}" for i in range(N_ASSETS)]


def test_asset_names_widen_past_ten_thousand_assets_and_still_sort_numerically() -> None:
    df = synthetic_universe(n_assets=10_001, n_bars=2, seed=0)
    first_bar = df.filter(pl.col("timestamp") == pl.col("timestamp").min())["asset"]
    assert first_bar[0] == "A00000"
    assert first_bar[-1] == "A10000"
    assert first_bar.is_sorted()


def test_high_and_low_bracket_open_and_close(universe: pl.DataFrame) -> None:
    ok = universe.select(
        (pl.col("low") <= pl.min_horizontal("open", "close"))
        & (pl.max_horizontal("open", "close") <= pl.col("high"))
    ).to_series()
    assert ok.all()


def test_prices_are_positive_and_intrabar_ranges_nonzero(universe: pl.DataFrame) -> None:
    prices = universe.select("open", "high", "low", "close").to_numpy()
    assert (prices > 0).all()
    assert (universe["high"] > universe["low"]).all()


def test_prices_volume_and_score_have_no_missing_values(universe: pl.DataFrame) -> None:
    values = universe.select("open", "high", "low", "close", "volume", "score")
    assert values.null_count().sum_horizontal().item() == 0
    assert np.isfinite(values.to_numpy()).all()


def test_volume_is_positive_whole_shares(universe: pl.DataFrame) -> None:
    volume = universe["volume"].to_numpy()
    assert (volume >= 1).all()
    np.testing.assert_array_equal(volume, np.round(volume))


def test_timestamps_are_consecutive_business_days_from_start(universe: pl.DataFrame) -> None:
    days = universe["timestamp"].unique().sort().to_numpy().astype("datetime64[D]")
    assert days[0] == np.datetime64("2015-01-02")
    assert np.is_busday(days).all()
    # Exactly one business day between neighbours: no weekday is skipped.
    assert (np.busday_count(days[:-1], days[1:]) == 1).all()
    times = universe["timestamp"].dt.time().unique().to_list()
    assert times == [dt.time(0, 0)]


def test_weekend_start_rolls_forward_to_monday() -> None:
    df = synthetic_universe(n_assets=2, n_bars=3, start=dt.date(2024, 6, 1))  # a Saturday
    assert df["timestamp"].min() == dt.datetime(2024, 6, 3)


def test_start_as_date_or_string_gives_the_same_frame() -> None:
    a = synthetic_universe(n_assets=3, n_bars=30, start="2020-03-02")
    b = synthetic_universe(n_assets=3, n_bars=30, start=dt.date(2020, 3, 2))
    assert_frame_equal(a, b, check_exact=True)


def test_score_is_standardised_per_timestamp(universe: pl.DataFrame) -> None:
    stats = universe.group_by("timestamp").agg(
        mean=pl.col("score").mean(), std=pl.col("score").std(ddof=1)
    )
    np.testing.assert_allclose(stats["mean"].to_numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(stats["std"].to_numpy(), 1.0, rtol=1e-12)


def test_score_rank_ic_with_forward_open_to_open_return_is_near_target() -> None:
    n_assets = 200
    df = synthetic_universe(n_assets=n_assets, n_bars=500, seed=5, score_ic=0.05)
    assert 0.02 < score_ic_against_forward_open_to_open(df, n_assets) < 0.1


def test_zero_score_ic_gives_a_score_with_no_predictive_power() -> None:
    n_assets = 200
    df = synthetic_universe(n_assets=n_assets, n_bars=500, seed=5, score_ic=0.0)
    assert abs(score_ic_against_forward_open_to_open(df, n_assets)) < 0.02


def test_negative_score_ic_gives_a_contrarian_score() -> None:
    n_assets = 200
    df = synthetic_universe(n_assets=n_assets, n_bars=500, seed=5, score_ic=-0.05)
    assert -0.1 < score_ic_against_forward_open_to_open(df, n_assets) < -0.02


def test_momentum_20_is_the_trailing_20_bar_close_return(universe: pl.DataFrame) -> None:
    one = universe.filter(pl.col("asset") == "A0007").sort("timestamp")
    close = one["close"].to_numpy()
    momentum = one["momentum_20"].to_numpy()
    assert np.isnan(momentum[:20]).all()
    for t in (20, 21, 150, N_BARS - 1):
        assert momentum[t] == pytest.approx(close[t] / close[t - 20] - 1.0, rel=1e-12)


def test_volatility_20_is_the_annualised_std_of_20_daily_log_returns(
    universe: pl.DataFrame,
) -> None:
    one = universe.filter(pl.col("asset") == "A0007").sort("timestamp")
    close = one["close"].to_numpy()
    volatility = one["volatility_20"].to_numpy()
    assert np.isnan(volatility[:20]).all()
    for t in (20, 21, 150, N_BARS - 1):
        window = np.log(close[t - 19 : t + 1] / close[t - 20 : t])
        expected = np.std(window, ddof=1) * math.sqrt(252)
        assert volatility[t] == pytest.approx(expected, rel=1e-9)


def test_features_depend_only_on_closes_up_to_their_bar(universe: pl.DataFrame) -> None:
    # Each bar's features must be reproducible from the history truncated at that bar, with
    # every later close replaced by garbage: changing the future cannot change the past.
    close = wide(universe, "close", N_ASSETS)
    momentum = wide(universe, "momentum_20", N_ASSETS)
    volatility = wide(universe, "volatility_20", N_ASSETS)
    garbage = np.random.default_rng(0).uniform(1.0, 1000.0, close.shape)
    for k in range(20, N_BARS, 7):
        history = np.where(np.arange(N_BARS)[:, None] <= k, close, garbage)
        np.testing.assert_allclose(momentum[k], history[k] / history[k - 20] - 1.0, rtol=1e-12)
        log_returns = np.log(history[k - 19 : k + 1] / history[k - 20 : k])
        np.testing.assert_allclose(
            volatility[k], log_returns.std(axis=0, ddof=1) * math.sqrt(252), rtol=1e-9
        )


def test_missing_fraction_drops_about_that_fraction_of_rows() -> None:
    df = synthetic_universe(n_assets=100, n_bars=400, seed=2, missing_fraction=0.1)
    dropped = 1.0 - df.height / (100 * 400)
    assert 0.08 < dropped < 0.12


def test_missing_fraction_never_drops_an_assets_first_or_last_bar() -> None:
    df = synthetic_universe(n_assets=50, n_bars=40, seed=2, missing_fraction=0.5)
    first, last = df["timestamp"].min(), df["timestamp"].max()
    spans = df.group_by("asset").agg(
        first=pl.col("timestamp").min(), last=pl.col("timestamp").max()
    )
    assert spans.height == 50
    assert (spans["first"] == first).all()
    assert (spans["last"] == last).all()


def test_missing_bars_leave_the_kept_rows_prices_and_features_unchanged() -> None:
    full = synthetic_universe(n_assets=20, n_bars=100, seed=4)
    gappy = synthetic_universe(n_assets=20, n_bars=100, seed=4, missing_fraction=0.2)
    unchanged = ["open", "high", "low", "close", "volume", "momentum_20", "volatility_20"]
    expected = gappy.select("timestamp", "asset").join(
        full, on=["timestamp", "asset"], how="left", maintain_order="left"
    )
    assert_frame_equal(
        gappy.select("timestamp", "asset", *unchanged),
        expected.select("timestamp", "asset", *unchanged),
        check_exact=True,
    )


def test_missing_bars_score_is_standardised_over_the_assets_present() -> None:
    df = synthetic_universe(n_assets=20, n_bars=100, seed=4, missing_fraction=0.2)
    stats = df.group_by("timestamp").agg(mean=pl.col("score").mean(), std=pl.col("score").std())
    np.testing.assert_allclose(stats["mean"].to_numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(stats["std"].to_numpy(), 1.0, rtol=1e-12)


def test_single_asset_universe_has_a_zero_score() -> None:
    # One asset has no cross-section to standardise against.
    df = synthetic_universe(n_assets=1, n_bars=30, seed=1)
    assert df.height == 30
    assert (df["score"] == 0.0).all()


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n_assets": 0}, "n_assets"),
        ({"n_assets": 2.5}, "n_assets"),
        ({"n_bars": 1}, "n_bars"),
        ({"seed": -1}, "seed"),
        ({"missing_fraction": -0.1}, "missing_fraction"),
        ({"missing_fraction": 1.0}, "missing_fraction"),
        ({"missing_fraction": math.nan}, "missing_fraction"),
        ({"score_ic": 1.5}, "score_ic"),
        ({"start": "not-a-date"}, "start"),
    ],
)
def test_invalid_argument_raises_config_error_naming_it(
    kwargs: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ConfigError, match=argument):
        synthetic_universe(**kwargs)
