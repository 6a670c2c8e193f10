"""What both drivers set up the same way: the calendar, the market record, slippage data checks
and the result.

``Engine.run`` (event driver) and ``compiled._run`` (compiled driver) build the ``Market`` record
the phases read with ``market_arrays``, check the slippage models' columns with
``check_slippage``, and turn the per-bar records and the broker's books into a
``BacktestResult`` with ``build_result``; so a run's inputs and outputs cannot differ between
them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from weakref import WeakKeyDictionary

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from .broker import Broker
from .data.feed import DataFeed
from .errors import ConfigError, DataError, DataWarning
from .execution.slippage import SlippageModel, check_slippage_fields
from .kernels.state import (
    REC_BORROW,
    REC_CASH,
    REC_GROSS,
    REC_INTEREST,
    REC_POSITIONS_VALUE,
    Market,
    read_only,
)
from .results.result import BacktestResult


def market_arrays(feed: DataFeed, models: Sequence[SlippageModel], clock: Calendar) -> Market:
    """The ``Market`` record of a run: the feed's fields the phases read, read-only, with a
    field the feed lacks as one row of NaN (``kernels.clock.bar_rows`` reads it on every bar),
    and the calendar flags.

    Example:
        >>> market = market_arrays(feed, models, Calendar(feed))  # doctest: +SKIP
        >>> market.close.shape == (feed.n_bars, feed.n_assets)    # doctest: +SKIP
        True
    """
    missing = read_only(np.full((1, feed.n_assets), np.nan))
    rows = [missing if a is None else read_only(a) for a in step_arrays(feed, models)]
    o, h, lo, c, v, bid, ask, spread, vol = rows
    calendar = (clock.new_month, clock.new_day, clock.years)
    return Market(o, h, lo, c, v, bid, ask, spread, vol, *calendar)


def step_arrays(
    feed: DataFeed, models: Sequence[SlippageModel]
) -> list[NDArray[np.float64] | None]:
    """The ``[T, N]`` arrays the fill step reads, in ``Market`` order (None: absent).

    A quote field comes from the column each asset's slippage model names for it
    (``VolumeShareSlippage(volatility="vol_20d")``), else from the column of its own name.
    Only when assets name different columns for one field is a new array assembled.
    """
    owners, of_asset = distinct_models(models)
    named = [m.quote_columns() for m in owners]
    arrays: list[NDArray[np.float64] | None] = []
    for field in _STEP_FIELDS:
        columns = [cols.get(field, field) for cols in named]  # per distinct model
        if len(set(columns)) == 1:
            name = columns[0]
            arrays.append(feed.array(name) if name in feed.fields else None)
            continue
        mixed = np.full((feed.n_bars, feed.n_assets), np.nan)
        for name in set(columns):
            if name in feed.fields:
                owned = [k for k, c in enumerate(columns) if c == name]
                cols = np.flatnonzero(np.isin(of_asset, owned))
                mixed[:, cols] = feed.array(name)[:, cols]
        arrays.append(mixed)
    return arrays


def distinct_models(
    models: Sequence[SlippageModel],
) -> tuple[list[SlippageModel], NDArray[np.intp]]:
    """The distinct model objects of ``models`` (one per asset), in order of first use, and
    for each asset the position of its model among them: most runs give every asset one
    model, and what is read per model is then read once, not once per asset."""
    if models and len(set(map(id, models))) == 1:
        return [models[0]], np.zeros(len(models), dtype=np.intp)  # one model for all: the usual
    position: dict[int, int] = {}
    owners: list[SlippageModel] = []
    of_asset = np.empty(len(models), dtype=np.intp)
    for a, model in enumerate(models):
        k = position.get(id(model))
        if k is None:
            k = position[id(model)] = len(owners)
            owners.append(model)
        of_asset[a] = k
    return owners, of_asset


# What a quote column read as each field may hold: (low, high, what the unit is). Outside it
# the column is almost surely another quantity (a z-score, a volatility in percent).
_QUOTE_RANGES = {
    "spread": (0.0, math.inf, "a bid-ask spread in price units, >= 0"),
    "volatility": (
        0.0,
        5.0,
        "per-bar volatility as a fraction in [0, 5] (0.02 is 2%; divide a column in percent "
        "by 100)",
    ),
}


def check_slippage(feed: DataFeed, models: Sequence[SlippageModel]) -> None:
    """Check each asset's slippage model (``models``, over ``feed.assets``) against the feed.

    A model needing a column the feed lacks is a ``ConfigError``. A spread or volatility
    column a model reads with a value outside its unit's range (``_QUOTE_RANGES``) on a bar
    the asset trades is a ``DataError`` naming column, asset and timestamp; crossed quotes (bid
    above ask) are a ``DataWarning``, as fills there pay no spread. A column it needs
    that is NaN on bars where the asset has a price is a ``DataWarning``: the model cannot
    price a fill there, so orders on those bars wait for one it can price, which the user
    should know before reading the results.
    """
    owners, of_asset = distinct_models(models)
    has_bar: NDArray[np.bool_] | None = None  # read only if a model needs columns
    for owner, model in enumerate(owners):
        ids = np.flatnonzero(of_asset == owner)
        check_slippage_fields(model, feed.fields, asset=str(feed.assets[ids[0]]))
        groups = [g for g in model.required_fields() if set(g) <= set(feed.fields)]
        if not groups:
            continue
        if has_bar is None:
            has_bar = ~np.isnan(feed.array("close"))
        cols = np.asarray(ids)
        _check_quote_ranges(feed, model, groups, cols, has_bar[:, cols])
        _warn_crossed_quotes(feed, model, groups, cols, has_bar[:, cols])
        priced = np.zeros((feed.n_bars, len(ids)), dtype=bool)
        for group in groups:
            present = np.ones_like(priced)
            for name in group:
                present &= ~np.isnan(feed.array(name)[:, cols])
            priced |= present
        blind = has_bar[:, cols] & ~priced
        if blind.any():
            t, k = np.argwhere(blind)[0]
            needs = " or ".join("(" + ", ".join(g) + ")" for g in groups)
            warnings.warn(
                f"{model!r} cannot price {int(blind.sum())} bars of "
                f"{int(blind.any(axis=0).sum())} assets that have a price: its columns {needs} "
                f"are missing there (first: asset {feed.assets[cols[k]]!s} at "
                f"{feed.datetimes[t]}). Orders on those bars wait for a bar it can price; fill "
                "the column, or give the model a constant instead",
                DataWarning,
                stacklevel=3,
            )


def _check_quote_ranges(
    feed: DataFeed,
    model: SlippageModel,
    groups: list[tuple[str, ...]],
    cols: NDArray[np.intp],
    has_bar: NDArray[np.bool_],
) -> None:
    """A ``DataError`` for the first value of a column ``model`` reads outside its range."""
    read = {column for group in groups for column in group}
    named = model.quote_columns()
    for field, (low, high, valid) in _QUOTE_RANGES.items():
        column = named.get(field, field)
        if column not in read:
            continue
        values = feed.array(column)[:, cols]
        with np.errstate(invalid="ignore"):
            bad = has_bar & ((values < low) | (values > high))
        if bad.any():
            t, k = np.argwhere(bad)[0]
            raise DataError(
                f"column {column!r}, read by {model!r} as the {field}, is {float(values[t, k])!r} "
                f"for asset {feed.assets[cols[k]]!s} at {feed.datetimes[t]} "
                f"({int(bad.sum())} values out of range); it must be {valid}. If the column "
                "is something else, name the model's source explicitly (a constant, or "
                "another column)"
            )


def _warn_crossed_quotes(
    feed: DataFeed,
    model: SlippageModel,
    groups: list[tuple[str, ...]],
    cols: NDArray[np.intp],
    has_bar: NDArray[np.bool_],
) -> None:
    """A ``DataWarning`` when the bid and ask ``model`` reads cross (bid above ask) on bars the
    asset trades: the spread there is negative, and half of it is charged as 0, so fills on those
    bars pay no spread at all."""
    read = {column for group in groups for column in group}
    named = model.quote_columns()
    bid_column, ask_column = named.get("bid", "bid"), named.get("ask", "ask")
    if bid_column not in read or ask_column not in read:
        return
    bid, ask = feed.array(bid_column)[:, cols], feed.array(ask_column)[:, cols]
    with np.errstate(invalid="ignore"):
        crossed = has_bar & (bid > ask)
    if crossed.any():
        t, k = np.argwhere(crossed)[0]
        warnings.warn(
            f"{model!r} reads crossed quotes on {int(crossed.sum())} bars ({bid_column!r} above "
            f"{ask_column!r}; first: asset {feed.assets[cols[k]]!s} at {feed.datetimes[t]}, bid "
            f"{float(bid[t, k])!r}, ask {float(ask[t, k])!r}): fills on those bars pay no "
            "spread. Check the columns (swapped, or stale quotes), or give the model a "
            "constant spread",
            DataWarning,
            stacklevel=4,
        )


# The feed columns of ``Market``'s price and quote fields, in its order.
_STEP_FIELDS = ("open", "high", "low", "close", "volume", "bid", "ask", "spread", "volatility")


class Calendar:
    """What the clock needs to know of the feed's timestamps, computed once per run.

    ``new_month`` and ``new_day`` flag bars that start a calendar month (volume-tiered
    commissions reset) or day (daily loss limits reset), in the feed's time zone; ``years`` is
    the time since the previous bar, for financing, which accrues on calendar time (a weekend
    costs three days of borrow) over a 365-day year.
    """

    def __init__(self, feed: DataFeed) -> None:
        self.timestamps = _timestamp_series(feed)
        stamps = feed.timestamps
        if feed.timezone is None:
            # Naive timestamps are their own calendar: numpy truncates them directly.
            months = stamps.astype("datetime64[M]")
            days = stamps.astype("datetime64[D]")
        else:
            months = self.timestamps.dt.truncate("1mo").to_numpy()
            days = self.timestamps.dt.truncate("1d").to_numpy()
        # Read-only: one calendar serves every run on the feed (``of``).
        self.new_month = read_only(np.concatenate(([False], months[1:] != months[:-1])))
        self.new_day = read_only(np.concatenate(([False], days[1:] != days[:-1])))
        self.years = read_only(
            np.concatenate(([0.0], np.diff(stamps) / np.timedelta64(1, "D") / 365.0))
        )

    @classmethod
    def of(cls, feed: DataFeed) -> Calendar:
        """The calendar of ``feed``, made on its first run and kept with it: a feed's
        timestamps never change, and a sweep runs the same feed many times.

        Example:
            >>> Calendar.of(feed) is Calendar.of(feed)  # doctest: +SKIP
            True
        """
        calendar = _CALENDARS.get(feed)
        if calendar is None:
            calendar = _CALENDARS[feed] = cls(feed)
        return calendar


# Each feed's calendar, for as long as the feed lives.
_CALENDARS: WeakKeyDictionary[DataFeed, Calendar] = WeakKeyDictionary()


def build_result(
    feed: DataFeed,
    broker: Broker,
    clock: Calendar,
    records: NDArray[np.float64],
    *,
    benchmark: NDArray[np.float64] | None = None,
) -> BacktestResult:
    """The result of a run from the per-bar records (``REC_*`` rows) and the broker's books
    (both drivers)."""
    config = broker.config
    return BacktestResult(
        timestamps=clock.timestamps,
        assets=feed.assets,
        cash=records[REC_CASH],
        positions_value=records[REC_POSITIONS_VALUE],
        gross_exposure=records[REC_GROSS],
        borrow_fees=records[REC_BORROW],
        interest=records[REC_INTEREST],
        # Views, not copies: the broker ends with the run, so nothing else writes to them.
        fills=broker.fills.view(),
        orders=broker.orders.records[: broker.orders.n],
        last_price=broker.last_prices,
        config=config.to_dict(),
        initial_cash=config.initial_cash,
        periods_per_year=config.periods_per_year,
        risk_free_rate=config.risk_free_rate,
        highs=feed.array("high"),
        lows=feed.array("low"),
        benchmark=benchmark,
    )


def benchmark_prices(
    feed: DataFeed, benchmark: str | ArrayLike | None
) -> NDArray[np.float64] | None:
    """Benchmark prices per bar: an asset of the feed (its closes) or prices given per bar."""
    if benchmark is None:
        return None
    if isinstance(benchmark, str):
        if benchmark not in {str(a) for a in feed.assets}:
            raise ConfigError(
                f"benchmark {benchmark!r} is not an asset of the feed; give an asset name or "
                "one price per bar"
            )
        return np.asarray(feed.array("close")[:, feed.asset_index(benchmark)], dtype=np.float64)
    prices = np.asarray(benchmark, dtype=np.float64)
    if prices.shape != (feed.n_bars,):
        raise ConfigError(
            f"benchmark prices must have one value per bar, shape ({feed.n_bars},), got "
            f"{prices.shape}"
        )
    return prices


def _timestamp_series(feed: DataFeed) -> pl.Series:
    ts = pl.Series("timestamp", feed.timestamps)
    if feed.timezone is not None:
        ts = ts.dt.replace_time_zone("UTC").dt.convert_time_zone(feed.timezone)
    return ts
