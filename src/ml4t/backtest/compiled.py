"""The compiled driver: whole backtests from precomputed decisions, in one compiled loop.

``run_signals``, ``run_weights`` and ``run_orders`` run the phases of a bar that ``Engine`` runs
(``kernels.clock.open_phase`` and ``close_phase``, over the same state records), but the loop
over bars and the decisions are compiled too (``kernels.driver.loop_for``): no Python runs
between bars. The run is set up as ``Engine`` sets it up: a ``Broker`` holds the state records
(``Broker.kernel_state``), ``core`` builds the market and the result. For the same decisions
the fills, trades and equity are identical to the event driver's (a property test checks it),
so a signal researched at full speed here can move to a ``Strategy`` without a surprise.

What cannot run without Python is refused, naming the setting: commission or slippage models
written in Python (use a built-in model, or ``Engine``).

Example:
    >>> import numpy as np
    >>> from ml4t.backtest import BacktestConfig, DataFeed, run_signals
    >>> from ml4t.backtest.datasets import synthetic_universe
    >>> feed = DataFeed(synthetic_universe(n_assets=10, n_bars=200, seed=1))
    >>> score = feed.array("score")
    >>> result = run_signals(feed, score > 1.0, score < 0.0, size=0.1)
    >>> result.fills.height > 0
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .broker import Broker, OppositeEntry, SizeType, signal_sizing
from .config import BacktestConfig
from .core import Calendar, build_result, check_slippage, market_arrays
from .data.feed import DataFeed
from .data.labels import align_frame, is_frame
from .errors import ConfigError, OrderWarning
from .execution.commission import COMMISSION_PYTHON
from .execution.slippage import SLIPPAGE_PYTHON
from .kernels import driver
from .kernels.records import O_END_OF_RUN
from .kernels.rules import reads_extremes
from .kernels.state import REC_CASH, REC_POSITIONS_VALUE, REC_WIDTH, S_KEEP_EXTREMES
from .results.result import BacktestResult
from .risk.portfolio import PortfolioRule
from .risk.position import PositionRule


def _run_bars(loop: Any, *args: Any) -> int:
    """Call the compiled ``loop`` (one place to time it from, in the benchmarks)."""
    return int(loop(*args))


if TYPE_CHECKING:
    import pandas as pd

Decisions: TypeAlias = (
    "NDArray[np.float64] | NDArray[np.bool_] | str | pl.DataFrame | pl.LazyFrame | pd.DataFrame"
)


def run_signals(
    feed: DataFeed,
    entries: Decisions,
    exits: Decisions | None = None,
    *,
    short_entries: Decisions | None = None,
    short_exits: Decisions | None = None,
    size: float = 1.0,
    size_type: SizeType = "percent",
    upon_opposite_entry: OppositeEntry = "reverse",
    config: BacktestConfig | None = None,
    position_rules: PositionRule | None = None,
    portfolio_rules: Iterable[PortfolioRule] = (),
) -> BacktestResult:
    """Trade entry and exit signals ([bars, assets] booleans, labelled frames, or feed columns).

    Each signal is a ``[bars, assets]`` bool array in ``feed.assets`` order, the name of a feed
    column (non-zero is True), or a frame labelled by timestamp and asset: pandas with a
    ``DatetimeIndex`` and one bool column per asset, or polars with a timestamp column and one
    bool column per asset. A frame is aligned by label, so its column order does not matter;
    a bar or asset it leaves out has no signal; a label the feed lacks is a ``DataError``.

    At each bar's close, per asset with a bar: an exit signal closes a long position (a short
    exit a short one) as ``broker.close_position`` would; an entry signal on an asset with no
    position and no order waiting opens one of ``size``: a fraction of equity
    (``size_type="percent"``, at the close, as ``order_target_percent``), an amount of cash
    (``"value"``) or a number of shares (``"shares"``); ``size=np.inf`` (value or shares) is
    all-in, VectorBT's ``size=np.inf``: the order takes its size at its fill, the most the cash
    pays for at the fill price, costs included (``broker.order_target_value(asset, inf)``).
    An entry and an exit of the same side
    on the same bar cancel out, as do a long and a short entry. An entry signal against the
    position held (a short entry while long, a long entry while short) reverses it with
    ``upon_opposite_entry="reverse"`` (the default, VectorBT's): one order from the position to
    ``size`` on the other side, even when the bar also has an exit signal; ``"close"`` only
    closes the position, and ``"ignore"`` does nothing (an exit signal still closes). Orders
    fill as the config says (next open by default); position rules (stops, ...) close
    positions without a signal, and replace the entry signals that would have filled on their
    bar, as VectorBT's stops do: with ``fill_timing="same_close"`` an asset a rule closed on a
    bar is not entered (or reversed) on that bar's signal; with fills on a later bar a signal
    decided at the close of the rule's bar fills there as usual.

    A strategy trades the same rule a bar at a time with ``broker.order_signals`` (the same
    compiled function), and gets the same fills from the same rows.

    Example:
        >>> result = run_signals(feed, "entry", "exit", size=0.01)  # doctest: +SKIP
        >>> fast = feed.array("close") > feed.array("ma_50")      # doctest: +SKIP
        >>> result = run_signals(feed, fast, ~fast, size=0.1)     # doctest: +SKIP
        >>> entries = close_df > close_df.rolling(50).mean()      # doctest: +SKIP
        >>> result = run_signals(feed, entries, ~entries)         # doctest: +SKIP
    """
    config = config if config is not None else BacktestConfig()
    if not isinstance(config, BacktestConfig):
        raise ConfigError(f"config must be a BacktestConfig, got {type(config).__name__}")
    size, size_code, opposite_code = signal_sizing(
        size, size_type, upon_opposite_entry, fractional=config.fractional_shares
    )
    n = (feed.n_bars, feed.n_assets)
    long_in = _signals(feed, "entries", entries)
    long_out = _signals(feed, "exits", exits) if exits is not None else np.zeros(n, np.bool_)
    if (short_entries is None) != (short_exits is None):
        raise ConfigError("short_entries and short_exits go together: give both or neither")
    shorts = short_entries is not None and short_exits is not None
    empty = np.zeros((0, 0), dtype=np.bool_)
    short_in = _signals(feed, "short_entries", short_entries) if shorts else empty  # type: ignore[arg-type]
    short_out = _signals(feed, "short_exits", short_exits) if shorts else empty  # type: ignore[arg-type]
    if shorts and config.account == "cash":
        raise ConfigError(
            "short_entries need BacktestConfig(account='margin'): a cash account cannot short"
        )
    percent_bars: Callable[[], NDArray[np.bool_]] | None = None
    if size_type == "percent":
        entering = [long_in, short_in] if shorts else [long_in]

        def percent_bars() -> NDArray[np.bool_]:
            return np.any([s.any(axis=1) for s in entering], axis=0)  # type: ignore[no-any-return]

    return _run(
        feed, config, position_rules, portfolio_rules, driver.MODE_SIGNALS,
        signals=(long_in, long_out, short_in, short_out),
        size=size, size_type=size_code, percent_bars=percent_bars,
        upon_opposite_entry=opposite_code,
    )  # fmt: skip


def run_weights(
    feed: DataFeed,
    weights: Decisions,
    *,
    config: BacktestConfig | None = None,
    position_rules: PositionRule | None = None,
    portfolio_rules: Iterable[PortfolioRule] = (),
) -> BacktestResult:
    """Rebalance to target weights ([bars, assets] fractions of equity, a frame, or a column).

    On each bar whose row has a finite weight, the portfolio is rebalanced to the row as
    ``broker.rebalance`` would (NaN counts as 0 there, so unnamed assets are closed); a row of
    NaN leaves the portfolio alone. Negative weights need a margin account.

    ``weights`` may be a frame labelled by timestamp and asset (pandas: ``DatetimeIndex`` x
    asset columns; polars: a timestamp column plus one column per asset), aligned by label.
    A bar the frame has no row for is no rebalance (a NaN row); an asset it has no column for
    is NaN on every row, so on a rebalance bar its weight is 0 and a holding is closed, exactly
    as a NaN cell. A label the feed lacks is a ``DataError`` naming it.

    Example:
        >>> w = np.full((feed.n_bars, feed.n_assets), np.nan)  # doctest: +SKIP
        >>> w[::21] = 1.0 / feed.n_assets                      # doctest: +SKIP
        >>> result = run_weights(feed, w)                      # doctest: +SKIP
    """
    config = config if config is not None else BacktestConfig()
    w = _numbers(feed, "weights", weights)
    # Before NaN becomes 0: nan_to_num would also turn inf into 1.8e308, a weight no check
    # below catches, and the asset would keep its old weight unnoticed.
    if np.isinf(w).any():
        t, a = np.argwhere(np.isinf(w))[0]
        raise ConfigError(
            f"weights: {_at(feed, t, a)} is {w[t, a]}; weights must be finite (NaN: no "
            "rebalance on a row of NaN, else 0). A zero volatility in inverse-volatility "
            "weighting is the usual cause"
        )
    rebalance_bar: NDArray[np.bool_] = np.asarray(np.isfinite(w).any(axis=1), dtype=np.bool_)
    w = np.where(rebalance_bar[:, None], np.nan_to_num(w, nan=0.0), 0.0)
    if config.account == "cash" and (w < 0).any():
        t, a = np.argwhere(w < 0)[0]
        raise ConfigError(
            f"weights: {_at(feed, t, a)} is negative, but a cash account cannot short; use "
            "BacktestConfig(account='margin')"
        )
    priced = np.maximum.accumulate(~np.isnan(feed.array("close")), axis=0)
    unpriced = (w != 0.0) & ~priced
    if unpriced.any():
        t, a = np.argwhere(unpriced)[0]
        raise ConfigError(
            f"weights: {_at(feed, t, a)} is {w[t, a]}, but the asset has no price yet (no bar "
            "so far); give it weight 0 until it trades"
        )
    return _run(
        feed, config, position_rules, portfolio_rules, driver.MODE_WEIGHTS,
        weights=(np.ascontiguousarray(w), rebalance_bar), percent_bars=lambda: rebalance_bar,
    )  # fmt: skip


def run_orders(
    feed: DataFeed,
    quantities: Decisions,
    *,
    limit_prices: Decisions | None = None,
    stop_prices: Decisions | None = None,
    config: BacktestConfig | None = None,
    position_rules: PositionRule | None = None,
    portfolio_rules: Iterable[PortfolioRule] = (),
) -> BacktestResult:
    """Submit orders from arrays: signed quantities per [bar, asset] (NaN or 0: none).

    ``np.inf`` is an all-in buy (``-np.inf`` an all-in short, margin accounts), VectorBT's
    ``size=np.inf``: the order takes its size at its fill, the most the cash (or margin) pays
    for at the fill price, costs included (``broker.submit_order(asset, math.inf)``).

    Quantities and levels may also be frames labelled by timestamp and asset, aligned by label
    (a bar or asset the frame leaves out is NaN: no order, no level). Each order is decided at
    its bar's close, like ``broker.submit_order``: a market order, or a limit, stop or
    stop-limit where ``limit_prices`` / ``stop_prices`` hold a level.

    Example:
        >>> q = np.zeros((feed.n_bars, feed.n_assets)); q[0, 0] = 100  # doctest: +SKIP
        >>> result = run_orders(feed, q)                                # doctest: +SKIP
    """
    config = config if config is not None else BacktestConfig()
    q = _numbers(feed, "quantities", quantities)
    q = np.where(np.isnan(q), 0.0, q)
    if config.account == "cash" and (q == -np.inf).any():
        t, a = np.argwhere(q == -np.inf)[0]
        raise ConfigError(
            f"quantities: {_at(feed, t, a)} is -inf, an all-in short, which a cash account "
            "cannot sell; use BacktestConfig(account='margin')"
        )
    fractional = np.isfinite(q) & (q != np.trunc(q))
    if not config.fractional_shares and fractional.any():
        t, a = np.argwhere(fractional)[0]
        raise ConfigError(
            f"quantities: {_at(feed, t, a)} is {q[t, a]}, fractional, but fractional_shares "
            "is off; pass whole numbers or set BacktestConfig(fractional_shares=True)"
        )
    empty = np.zeros((0, 0))
    levels = []
    for name, given in (("limit_prices", limit_prices), ("stop_prices", stop_prices)):
        if given is None:
            levels.append(empty)
            continue
        level = _numbers(feed, name, given)
        bad = (q != 0.0) & ~np.isnan(level) & ~(level > 0.0)
        if bad.any() or np.isinf(level).any():
            t, a = np.argwhere(bad | np.isinf(level))[0]
            raise ConfigError(f"{name}: {_at(feed, t, a)} is {level[t, a]}; levels are > 0")
        levels.append(np.ascontiguousarray(level))
    return _run(
        feed, config, position_rules, portfolio_rules, driver.MODE_ORDERS,
        orders=(np.ascontiguousarray(q), levels[0], levels[1]),
    )  # fmt: skip


def _run(
    feed: DataFeed,
    config: BacktestConfig,
    position_rules: PositionRule | None,
    portfolio_rules: Iterable[PortfolioRule],
    mode: int,
    *,
    signals: tuple[NDArray[np.bool_], ...] | None = None,
    size: float = 0.0,
    size_type: int = 0,
    weights: tuple[NDArray[np.float64], NDArray[np.bool_]] | None = None,
    orders: tuple[NDArray[np.float64], ...] | None = None,
    # The bars whose decisions are sized in percent of equity, asked for only if equity
    # fell to 0 or below on some bar (a scan of every signal otherwise spent for nothing).
    percent_bars: Callable[[], NDArray[np.bool_]] | None = None,
    upon_opposite_entry: int = 0,
) -> BacktestResult:
    if not isinstance(feed, DataFeed):
        raise ConfigError(f"feed must be a DataFeed, got {type(feed).__name__}")
    if not isinstance(config, BacktestConfig):
        raise ConfigError(f"config must be a BacktestConfig, got {type(config).__name__}")
    broker = Broker(feed.assets, config, columns=feed.array, n_bars=feed.n_bars)
    models = broker.slippage_models
    check_slippage(feed, models)
    acc = broker.kernel_state.account
    if (acc.commission[:, 0] == COMMISSION_PYTHON).any() or (
        acc.slippage[:, 0] == SLIPPAGE_PYTHON
    ).any():
        raise ConfigError(
            "the compiled driver cannot call commission or slippage models written in Python "
            "(a function or a SlippageModel/CommissionModel subclass of your own); use a "
            "built-in model, or run a Strategy with Engine"
        )
    if position_rules is not None:
        broker.set_position_rules(position_rules)
    broker.set_portfolio_rules(portfolio_rules)
    # Rules cannot change during a compiled run: best prices are kept only if one reads them.
    state = broker.kernel_state
    state.account.scalars[S_KEEP_EXTREMES] = 1.0 if reads_extremes(state.rules) else 0.0

    n_bars = feed.n_bars
    clock = Calendar.of(feed)
    market = market_arrays(feed, models, clock)
    no_bool = np.zeros((0, 0), dtype=np.bool_)
    no_float = np.zeros((0, 0))
    entries, exits, short_entries, short_exits = signals or (no_bool,) * 4
    w, rebalance_bar = weights or (no_float, np.zeros(0, dtype=np.bool_))
    quantities, limit_prices, stop_prices = orders or (no_float,) * 3
    decisions = driver.Decisions(
        mode, entries, exits, short_entries, short_exits, size, size_type, w, rebalance_bar,
        quantities, limit_prices, stop_prices, upon_opposite_entry, 0,
        driver.signal_words(signals, feed.n_bars, feed.n_assets),
    )  # fmt: skip
    records = np.zeros((REC_WIDTH, n_bars))
    book, log = broker.orders, broker.fills
    # Room for the orders the decisions can make (and as many closes or rule exits), so the
    # loop rarely has to come back for more; it returns when it does. No more: a reserve past
    # malloc's mmap threshold (32 MB) is fresh pages each run, which the kernel zeroes as the
    # books fill (a tenth of a fill-heavy run).
    expected = _expected_orders(mode, signals, w, rebalance_bar, quantities)
    book.reserve(2 * expected + 8 * feed.n_assets + 64)
    log.reserve(2 * expected + 8 * feed.n_assets + 64)
    loop = driver.loop_for(mode, broker.kernel_state.settings, broker.kernel_state.account)
    if (mode == driver.MODE_SIGNALS and math.isinf(size)) or bool(np.isinf(quantities).any()):
        # The decisions make all-in orders: the kernels write them, the book is told here.
        book.needs_full_fills = True
    full = broker.fill_step()
    t = 0
    while t < n_bars:
        orders_needed, fills_needed = driver.room_for_bar(book.n_open, feed.n_assets)
        book.reserve(max(orders_needed, book.n))  # at least doubles when it grows
        log.reserve(max(fills_needed, log.n))
        state = broker.kernel_state
        t = _run_bars(
            loop, t, state.settings, market, decisions, state.book, state.account, state.rules,
            records, full,
        )  # fmt: skip
    if config.close_at_end and n_bars:
        # What Engine.run does after its last bar: the same broker calls, over the same state.
        broker.attach(market, records)
        broker.close_all(origin=O_END_OF_RUN, bar=n_bars - 1)
        broker.close_phase(n_bars - 1, final=True)
    if percent_bars is not None:
        equity = records[REC_CASH] + records[REC_POSITIONS_VALUE]
        broke = ~(equity > 0.0)
        if broke.any():
            _warn_no_equity(feed, percent_bars() & broke, equity)
    return build_result(feed, broker, clock, records)


def _warn_no_equity(
    feed: DataFeed, skipped: NDArray[np.bool_], equity: NDArray[np.float64]
) -> None:
    """The compiled driver's side of ``Broker._no_equity``: the loop placed no percent-sized
    order while equity was <= 0; say so once, as the event driver does."""
    if not skipped.any():
        return
    t = int(np.argmax(skipped))
    warnings.warn(
        f"equity was <= 0 on {int(skipped.sum())} bars with percent-of-equity decisions (first "
        f"{feed.datetimes[t]}, equity {equity[t]:,.2f}); a percent of it would turn a buy into a "
        "sell, so no percent-sized orders were placed on them (as Broker.rebalance and "
        "order_target_percent do); signal exits (close_position) still trade",
        OrderWarning,
        stacklevel=4,
    )


def _expected_orders(
    mode: int,
    signals: tuple[NDArray[np.bool_], ...] | None,
    weights: NDArray[np.float64],
    rebalance_bar: NDArray[np.bool_],
    quantities: NDArray[np.float64],
) -> int:
    """An estimate of the orders the decisions make, each signal, weight or quantity at most one.
    Signals: the entry signals only, as each position an entry opens is closed by one more order
    (an exit, a rule, a reversal), which the caller's room for twice the estimate covers; a
    count of every signal reserved several times the orders a fill-heavy run makes."""
    if mode == driver.MODE_SIGNALS and signals is not None:
        return int(np.count_nonzero(signals[0]) + np.count_nonzero(signals[2]))
    if mode == driver.MODE_WEIGHTS:
        return int(rebalance_bar.sum()) * weights.shape[1] if weights.size else 0
    return int(np.count_nonzero(quantities))


def _signals(feed: DataFeed, name: str, given: Decisions) -> NDArray[np.bool_]:
    if isinstance(given, str):
        values = feed.array(given)
        return np.ascontiguousarray(~np.isnan(values) & (values != 0.0))
    if is_frame(given):
        return align_frame(feed, name, given, boolean=True)
    array = np.asarray(given)
    _check_shape(feed, name, array)
    if array.dtype != np.bool_:
        raise ConfigError(
            f"{name} must be booleans (True where the signal fires), got dtype {array.dtype}"
        )
    return np.ascontiguousarray(array)


def _numbers(feed: DataFeed, name: str, given: Decisions) -> NDArray[np.float64]:
    if isinstance(given, str):
        return np.array(feed.array(given), dtype=np.float64)
    if is_frame(given):
        return align_frame(feed, name, given, boolean=False)
    array = np.asarray(given)
    _check_shape(feed, name, array)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ConfigError(f"{name} must be numbers, got dtype {array.dtype}")
    return np.array(array, dtype=np.float64)


def _check_shape(feed: DataFeed, name: str, array: NDArray[np.generic]) -> None:
    expected = (feed.n_bars, feed.n_assets)
    if array.shape != expected:
        raise ConfigError(
            f"{name} must be an array of shape (bars, assets) = {expected} aligned to "
            f"feed.assets, a frame labelled by timestamp and asset, or the name of a feed "
            f"column; got shape {array.shape}"
        )


def _at(feed: DataFeed, t: int, a: int) -> str:
    return f"the value for asset {feed.assets[a]!s} at {feed.datetimes[t]}"
