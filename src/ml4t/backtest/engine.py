"""The event driver: a loop over bars in Python around the compiled broker step.

One bar ``t`` runs in this order (DESIGN.md, "The clock"):

1. fill orders decided on earlier bars at ``open[t]``, reductions before entries;
2. position rules check the bar's open, high and low and exit what they trigger;
3. mark positions at ``close[t]`` and record cash and equity; check margin and portfolio halts;
4. call ``strategy.on_data`` with a view of bars ``<= t``;
5. with ``fill_timing="same_close"`` only: fill the new orders at ``close[t]`` and record again.

With ``fill_timing="next_close"`` (Zipline's daily mode) market orders from earlier bars fill at
``close[t]`` between steps 2 and 3 instead.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from tqdm import tqdm

from .broker import Broker
from .config import BacktestConfig
from .data.feed import DataFeed
from .data.view import BarView
from .errors import ConfigError, DataError, DataWarning, StrategyError
from .execution.slippage import SlippageModel, check_slippage_fields, slippage_table
from .kernels.jit import COMPILING_NOTICE, needs_compile
from .kernels.records import O_FOLD_END, ORIGIN_NAMES
from .kernels.step import fill_orders, mark_to_market
from .orders import Fill
from .results.result import BacktestResult, describe_strategy
from .risk.portfolio import PortfolioRule
from .risk.position import PositionRule
from .strategy import Strategy


class Engine:
    """Runs one strategy over one feed under one config.

    Example:
        >>> feed = DataFeed(prices)                                            # doctest: +SKIP
        >>> config = BacktestConfig(commission=0.001)
        >>> result = Engine(feed, MyStrategy(), config).run()  # doctest: +SKIP
        >>> result.final_value                                                 # doctest: +SKIP
    """

    def __init__(
        self,
        feed: DataFeed,
        strategy: Strategy,
        config: BacktestConfig | None = None,
        *,
        position_rules: PositionRule | None = None,
        portfolio_rules: Iterable[PortfolioRule] = (),
        benchmark: str | ArrayLike | None = None,
    ) -> None:
        if not isinstance(feed, DataFeed):
            raise ConfigError(f"feed must be a DataFeed, got {type(feed).__name__}")
        if not isinstance(strategy, Strategy):
            raise ConfigError(
                "strategy must be an instance of a Strategy subclass, "
                f"got {type(strategy).__name__}"
            )
        self.feed = feed
        self.strategy = strategy
        self.config = config if config is not None else BacktestConfig()
        self.position_rules = position_rules
        self.portfolio_rules = tuple(portfolio_rules)
        self.benchmark = benchmark_prices(feed, benchmark)
        _, models = slippage_table(
            self.config.slippage, [str(a) for a in feed.assets], self.config.slippage_overrides
        )
        check_slippage(feed, models)
        self._slippage_models = models

    def run(self, *, progress: bool = False, close_at_end: bool = False) -> BacktestResult:
        """Run the backtest from the first bar to the last and return its result.

        ``progress=True`` shows a progress bar once the run has taken more than a second; on a
        first run, while the kernels compile, it says so instead of estimating a time.
        ``close_at_end=True`` ends flat, as walk-forward folds do: after the last bar's
        strategy call, working orders are cancelled and every position is closed by a market
        order filled at the last close, costs paid, with reason ``fold_end``.

        An exception in ``on_start``, ``on_data`` or ``on_fill`` propagates as itself with a
        note (shown under its traceback, in ``exc.__notes__``) naming the callback, the bar and
        its timestamp. One in ``on_end`` comes after every bar has run: it is raised as a
        ``StrategyError`` whose ``result`` is the finished run and whose cause is the original.
        """
        feed, strategy, config = self.feed, self.strategy, self.config
        n_bars = feed.n_bars
        closes = feed.array("close")
        times = feed.datetimes
        broker = Broker(feed.assets, config, columns=feed.array, n_bars=n_bars)
        if self.position_rules is not None:
            broker.set_position_rules(self.position_rules)
        broker.set_portfolio_rules(self.portfolio_rules)
        view = BarView(feed)
        cash = np.empty(n_bars)
        positions_value = np.empty(n_bars)
        gross = np.empty(n_bars)
        same_close = config.fill_timing == "same_close"
        clock = Calendar(feed)
        new_month, new_day, years = clock.new_month, clock.new_day, clock.years
        borrow = np.zeros(n_bars)
        interest = np.zeros(n_bars)
        margin_account = config.account == "margin"
        wants_fills = type(strategy).on_fill is not Strategy.on_fill

        next_close = config.fill_timing == "next_close"
        # What the broker step reads each bar, by its argument name. Quote fields that cost
        # models may read (bid, ask, spread, volatility) are NaN rows when the feed lacks them.
        rows = _BarRows(
            dict(zip(_STEP_FIELDS, step_arrays(feed, self._slippage_models), strict=True)),
            np.full(feed.n_assets, np.nan),
        )
        bar_progress = tqdm(
            total=n_bars, delay=1.0, disable=not progress, unit="bar", desc="backtest", leave=False
        )
        compiling = progress and needs_compile(fill_orders, mark_to_market)
        if compiling:
            tqdm.write(f"backtest: {COMPILING_NOTICE}", file=sys.stderr)
        try:
            strategy.on_start(broker)
        except Exception as exc:
            exc.add_note(f"raised by {_name(strategy)}.on_start, before bar 0 ({times[0]})")
            raise
        for t in range(n_bars):
            timestamp = times[t]
            broker.start_bar(t, new_month=bool(new_month[t]), new_day=bool(new_day[t]))
            if t:
                borrow[t], interest[t] = broker.accrue(float(years[t]))
            # Limits and stops work the whole bar; market orders fill here only at next_open.
            bar_rows = rows.at(t)
            self._fill(broker, t, False, bar_rows, times, wants_fills)
            first, last = broker.apply_position_rules(t, **bar_rows)
            if wants_fills and last > first:
                self._dispatch_fills(broker, first, last, times)
            if next_close:
                self._fill(broker, t, True, bar_rows, times, wants_fills)
            broker.mark(t, closes[t], cash, positions_value, gross)
            if margin_account:
                broker.check_margin(float(gross[t]))
            broker.check_portfolio()
            view._advance(t, timestamp)
            if not broker.stopped:
                try:
                    strategy.on_data(timestamp, view, broker)
                except Exception as exc:
                    exc.add_note(f"raised by {_name(strategy)}.on_data at bar {t} ({timestamp})")
                    raise
            if same_close and self._fill(broker, t, True, bar_rows, times, wants_fills):
                # Close fills change cash and holdings of this bar: record the bar again.
                broker.mark(t, closes[t], cash, positions_value, gross)
            bar_progress.update(1)
            if compiling and t == 0:
                # The rate starts after the compile: the first bar paid for it.
                bar_progress.reset()
                bar_progress.update(1)
        if close_at_end and n_bars:
            t = n_bars - 1
            broker.close_all(origin=O_FOLD_END)
            self._fill(broker, t, True, rows.at(t), times, wants_fills)
            broker.mark(t, closes[t], cash, positions_value, gross)
        bar_progress.close()
        try:
            strategy.on_end(broker)
        except Exception as exc:
            # Every bar has run: keep the result rather than lose it to the last callback.
            result = build_result(
                feed, broker, clock, cash, positions_value, gross, borrow, interest,
                benchmark=self.benchmark,
            )  # fmt: skip
            raise StrategyError(
                f"{_name(strategy)}.on_end raised {type(exc).__name__}: {exc} (after the last "
                f"bar, {times[-1]}); the run had finished: its result is this error's .result",
                result=result,
            ) from exc

        result = build_result(
            feed, broker, clock, cash, positions_value, gross, borrow, interest,
            benchmark=self.benchmark,
        )  # fmt: skip
        result.strategy = describe_strategy(strategy)
        return result

    def _fill(
        self,
        broker: Broker,
        t: int,
        at_close: bool,
        rows: dict[str, NDArray[np.float64]],
        times: list[datetime],
        wants_fills: bool,
    ) -> bool:
        """One fill phase of bar ``t``; returns whether anything filled."""
        first, last = broker.fill_orders(t, at_close=at_close, **rows)
        if wants_fills and last > first:
            self._dispatch_fills(broker, first, last, times)
        return last > first

    def _dispatch_fills(self, broker: Broker, first: int, last: int, times: list[datetime]) -> None:
        assets = self.feed.assets
        for rec in broker.fills.records[first:last]:
            qty = float(rec["quantity"])
            fill = Fill(
                timestamp=times[int(rec["bar"])],
                asset=str(assets[rec["asset"]]),
                side="buy" if qty > 0 else "sell",
                quantity=abs(qty),
                price=float(rec["price"]),
                commission=float(rec["commission"]),
                slippage=float(rec["slippage"]),
                order_id=int(rec["order_id"]),
                reason=ORIGIN_NAMES[rec["origin"]],
            )
            try:
                self.strategy.on_fill(fill, broker)
            except Exception as exc:
                exc.add_note(
                    f"raised by {_name(self.strategy)}.on_fill at bar {int(rec['bar'])} "
                    f"({fill.timestamp}), for the {fill.side} of {fill.quantity:g} "
                    f"{fill.asset} (order {fill.order_id})"
                )
                raise


def _name(strategy: Strategy) -> str:
    return type(strategy).__name__


def run_backtest(
    prices: object,
    strategy: Strategy,
    config: BacktestConfig | None = None,
    *,
    signals: object | None = None,
    position_rules: PositionRule | None = None,
    portfolio_rules: Iterable[PortfolioRule] = (),
    benchmark: str | ArrayLike | None = None,
    progress: bool = False,
) -> BacktestResult:
    """Build a feed from ``prices`` (and ``signals``), run ``strategy`` on it, return the result.

    Example:
        >>> result = run_backtest(prices_df, MyStrategy(), BacktestConfig())  # doctest: +SKIP
    """
    feed = prices if isinstance(prices, DataFeed) else DataFeed(prices, signals=signals)  # type: ignore[arg-type]
    engine = Engine(
        feed, strategy, config, position_rules=position_rules,
        portfolio_rules=portfolio_rules, benchmark=benchmark,
    )  # fmt: skip
    return engine.run(progress=progress)


def step_arrays(
    feed: DataFeed, models: Sequence[SlippageModel]
) -> list[NDArray[np.float64] | None]:
    """The ``[T, N]`` arrays the broker step reads, in ``_STEP_FIELDS`` order (None: absent).

    A quote field comes from the column each asset's slippage model names for it
    (``VolumeShareSlippage(volatility="vol_20d")``), else from the column of its own name.
    Only when assets name different columns for one field is a new array assembled.
    """
    named = {id(m): m.quote_columns() for m in models}
    arrays: list[NDArray[np.float64] | None] = []
    for field in _STEP_FIELDS.values():
        columns = [named[id(m)].get(field, field) for m in models]
        distinct = set(columns)
        if len(distinct) == 1:
            name = columns[0]
            arrays.append(feed.array(name) if name in feed.fields else None)
            continue
        mixed = np.full((feed.n_bars, feed.n_assets), np.nan)
        for name in distinct:
            if name in feed.fields:
                cols = [a for a, c in enumerate(columns) if c == name]
                mixed[:, cols] = feed.array(name)[:, cols]
        arrays.append(mixed)
    return arrays


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
    the asset trades is a ``DataError`` naming column, asset and timestamp. A column it needs
    that is NaN on bars where the asset has a price is a ``DataWarning``: the model cannot
    price a fill there, so orders on those bars wait for one it can price, which the user
    should know before reading the results.
    """
    assets_of: dict[int, list[int]] = {}
    for a, model in enumerate(models):
        assets_of.setdefault(id(model), []).append(a)
    has_bar: NDArray[np.bool_] | None = None  # read only if a model needs columns
    for ids in assets_of.values():
        model = models[ids[0]]
        check_slippage_fields(model, feed.fields, asset=str(feed.assets[ids[0]]))
        groups = [g for g in model.required_fields() if set(g) <= set(feed.fields)]
        if not groups:
            continue
        if has_bar is None:
            has_bar = ~np.isnan(feed.array("close"))
        cols = np.asarray(ids)
        _check_quote_ranges(feed, model, groups, cols, has_bar[:, cols])
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


_STEP_FIELDS = {
    "opens": "open",
    "highs": "high",
    "lows": "low",
    "closes": "close",
    "volumes": "volume",
    "bids": "bid",
    "asks": "ask",
    "spreads": "spread",
    "volatilities": "volatility",
}


class _BarRows:
    """The per-asset rows of one bar that the broker step reads, NaN for absent quote fields."""

    def __init__(
        self,
        fields: dict[str, NDArray[np.float64] | None],
        missing: NDArray[np.float64],
    ) -> None:
        self._fields = fields
        self._missing = missing

    def at(self, t: int) -> dict[str, NDArray[np.float64]]:
        return {
            name: (self._missing if arr is None else arr[t]) for name, arr in self._fields.items()
        }


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
        self.new_month = np.concatenate(([False], months[1:] != months[:-1]))
        self.new_day = np.concatenate(([False], days[1:] != days[:-1]))
        self.years = np.concatenate(([0.0], np.diff(stamps) / np.timedelta64(1, "D") / 365.0))


def build_result(
    feed: DataFeed,
    broker: Broker,
    clock: Calendar,
    cash: NDArray[np.float64],
    positions_value: NDArray[np.float64],
    gross: NDArray[np.float64],
    borrow: NDArray[np.float64],
    interest: NDArray[np.float64],
    *,
    benchmark: NDArray[np.float64] | None = None,
) -> BacktestResult:
    """The result of a run from the per-bar records and the broker's books (both drivers)."""
    config = broker.config
    return BacktestResult(
        timestamps=clock.timestamps,
        assets=feed.assets,
        cash=cash,
        positions_value=positions_value,
        gross_exposure=gross,
        borrow_fees=borrow,
        interest=interest,
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
