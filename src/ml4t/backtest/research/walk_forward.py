"""Walk-forward validation: fit on a training window, trade the window after it, move on.

For each fold, ``fit`` gets a feed of the training bars only (copies of the data: nothing after
the training window is reachable from it) and returns the strategy to trade, after training a
model or picking parameters on that window. The strategy then runs on the test bars alone, with
the equity the previous fold ended with. The test windows' results are stitched into one
``BacktestResult`` on the test bars' timeline, so metrics and reports cover the out-of-sample
period only.

Fold ``k`` trains on ``[k * step, k * step + train_bars)`` (``anchored=True``: from bar 0, growing)
and tests on the ``test_bars`` bars that start ``purge_bars`` after the training window ends
(purging bars whose labels would overlap the test window).

Every fold ends flat. After the strategy's call on a fold's last bar, its working orders are
cancelled and each position is closed by a market order filled at that bar's close, with the
config's commission and slippage, recorded as a fill with reason ``fold_end``. The next fold
starts with that cash. So the stitched fills, trades and equity tell one story: each round trip
opens and closes inside one fold, the summed trade PnL is the equity's change (less financing),
and the stitched run ends flat too. A position the fold's last bar cannot close (the asset has
no price on it, or a volume cap leaves part of the order) is a ``DataError``.

Annualised metrics use ``config.periods_per_year``, or else the bar frequency of the whole
feed: the stitched timeline has gaps when ``step > test_bars`` and would understate it.

Example:
    >>> def fit(train):                                              # doctest: +SKIP
    ...     best = pick_threshold(train)          # any use of the training bars
    ...     return SignalStrategy("score", entry_threshold=best, exit_threshold=0.0)
    >>> wf = walk_forward(feed, fit, train_bars=504, test_bars=126)  # doctest: +SKIP
    >>> wf.folds, wf.result.metrics["sharpe"]                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import polars as pl

from ..config import BacktestConfig
from ..core import Calendar
from ..data.feed import DataFeed
from ..engine import Engine
from ..errors import ConfigError, DataError
from ..results.metrics import infer_periods_per_year
from ..results.result import BacktestResult, wall_clock
from ..risk.portfolio import PortfolioRule
from ..risk.position import PositionRule
from ..strategy import Strategy
from .store import RunStore, data_fingerprint

FitResult = Strategy | tuple[Strategy, PositionRule | None]


@dataclasses.dataclass(frozen=True)
class Fold:
    """One fold's bars: training ``[train_start, train_end)``, test ``[test_start, test_end)``."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int


@dataclasses.dataclass
class WalkForwardResult:
    """The stitched out-of-sample ``result``, each fold's own result, and the fold table."""

    result: BacktestResult
    fold_results: list[BacktestResult]
    folds: list[Fold]
    timestamps: pl.Series

    @property
    def table(self) -> pl.DataFrame:
        """One row per fold: its windows as timestamps and its test metrics."""
        ts = self.timestamps
        rows = []
        for fold, result in zip(self.folds, self.fold_results, strict=True):
            metrics = result.metrics
            rows.append(
                {
                    "fold": fold.index,
                    "train_start": ts[fold.train_start],
                    "train_end": ts[fold.train_end - 1],
                    "test_start": ts[fold.test_start],
                    "test_end": ts[fold.test_end - 1],
                    "total_return": metrics.get("total_return"),
                    "sharpe": metrics.get("sharpe"),
                    "max_drawdown": metrics.get("max_drawdown"),
                    "final_value": result.final_value,
                }
            )
        return pl.DataFrame(rows)

    @property
    def boundaries(self) -> list[object]:
        """The first timestamp of each fold's test window (where the report draws a line)."""
        return [self.timestamps[f.test_start] for f in self.folds]


def make_folds(
    n_bars: int,
    train_bars: int,
    test_bars: int,
    step: int | None = None,
    *,
    anchored: bool = False,
    purge_bars: int = 0,
) -> list[Fold]:
    """The folds a walk-forward over ``n_bars`` bars makes (the last test window may be short).

    Example:
        >>> [(f.train_start, f.train_end, f.test_start, f.test_end) for f in make_folds(10, 4, 3)]
        [(0, 4, 4, 7), (3, 7, 7, 10)]
    """
    for name, value, low in (
        ("train_bars", train_bars, 1),
        ("test_bars", test_bars, 1),
        ("purge_bars", purge_bars, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}")
    step = test_bars if step is None else step
    if not isinstance(step, int) or isinstance(step, bool) or step < test_bars:
        raise ConfigError(
            f"step must be a whole number >= test_bars ({test_bars}) so that test windows do "
            f"not overlap, got {step!r}"
        )
    folds = []
    k = 0
    while True:
        start = 0 if anchored else k * step
        end = train_bars + k * step
        test_start = end + purge_bars
        if test_start >= n_bars:
            break
        folds.append(Fold(k, start, end, test_start, min(test_start + test_bars, n_bars)))
        k += 1
    if not folds:
        raise ConfigError(
            f"no fold fits: {n_bars} bars leave no test bar after train_bars={train_bars} and "
            f"purge_bars={purge_bars}"
        )
    return folds


def walk_forward(
    feed: DataFeed,
    fit: Callable[[DataFeed], FitResult],
    train_bars: int,
    test_bars: int,
    step: int | None = None,
    anchored: bool = False,
    purge_bars: int = 0,
    config: BacktestConfig | None = None,
    *,
    position_rules: PositionRule | None = None,
    portfolio_rules: Iterable[PortfolioRule] = (),
    store: RunStore | str | Path | None = None,
    name: str | None = None,
) -> WalkForwardResult:
    """Fit on each training window, backtest on the test window after it, stitch the tests.

    ``fit(train_feed)`` returns a ``Strategy``, or ``(strategy, position_rules)``. ``store``
    records each fold and the stitched run (see the module doc for the windows). Each fold ends
    flat: its positions are sold (or bought back) at its last close, costs paid, with fills of
    reason ``fold_end``, and the next fold starts from that cash.

    Example:
        >>> wf = walk_forward(feed, fit, train_bars=504, test_bars=126)  # doctest: +SKIP
        >>> wf.result.fills.filter(pl.col("reason") == "fold_end")       # doctest: +SKIP
    """
    config = config if config is not None else BacktestConfig()
    folds = make_folds(
        feed.n_bars, train_bars, test_bars, step, anchored=anchored, purge_bars=purge_bars
    )
    if config.periods_per_year is None:
        # The test windows alone are gapped (step > test_bars) or short: use the feed's bars.
        config = dataclasses.replace(
            config,
            periods_per_year=infer_periods_per_year(wall_clock(Calendar.of(feed).timestamps)),
        )
    equity = config.initial_cash
    results: list[BacktestResult] = []
    for fold in folds:
        fitted = fit(feed.slice(fold.train_start, fold.train_end))
        strategy, rules = fitted if isinstance(fitted, tuple) else (fitted, position_rules)
        if not isinstance(strategy, Strategy):
            raise ConfigError(
                f"fit must return a Strategy (or a (strategy, position_rules) pair), got "
                f"{type(strategy).__name__} for fold {fold.index}"
            )
        test = feed.slice(fold.test_start, fold.test_end)
        fold_config = dataclasses.replace(config, initial_cash=equity)
        result = Engine(
            test, strategy, fold_config, position_rules=rules, portfolio_rules=portfolio_rules
        ).run(close_at_end=True)
        _check_flat(result, fold, test)
        results.append(result)
        equity = result.final_value
    stitched = _stitch(results, folds, config)
    timestamps = pl.Series("timestamp", feed.datetimes)
    out = WalkForwardResult(stitched, results, folds, timestamps)
    if store is not None:
        _record(store, name, out, feed, config)
    return out


def _check_flat(result: BacktestResult, fold: Fold, test: DataFeed) -> None:
    """A fold must end flat, or the next fold's cash would hold positions no fill sold."""
    records = result.records
    if records.gross_exposure.size == 0 or records.gross_exposure[-1] == 0.0:
        return
    fills = records.fills
    held = np.bincount(fills["asset"], weights=fills["quantity"], minlength=len(test.assets))
    asset = int(np.argmax(np.abs(held)))
    raise DataError(
        f"walk-forward fold {fold.index} cannot end flat: asset {test.assets[asset]!s} still "
        f"holds {held[asset]:g} after the fold-end close at {test.datetimes[-1]} (no close "
        "price on that bar, or a volume cap left part of the order); give the asset a close "
        "on each fold's last bar, or lift max_participation"
    )


def _stitch(
    results: list[BacktestResult], folds: list[Fold], config: BacktestConfig
) -> BacktestResult:
    """One result on the test bars' timeline: bars, order ids and fill bars offset per fold."""
    fills, orders = [], []
    bar_offset = 0
    order_offset = 0
    parts = [result.records for result in results]
    for part in parts:
        # The stitched record arrays are the folds' own, shifted onto the joint timeline.
        f = part.fills.copy()
        f["bar"] += bar_offset
        f["order_id"] += order_offset
        o = part.orders.copy()
        for field in ("submit_bar", "active_bar"):
            # An order from on_start carries bar -1 (before the fold's first bar): on the joint
            # timeline it belongs to that fold's first bar, not the last bar of the fold before.
            o[field] = np.maximum(o[field], 0) + bar_offset
        o["end_bar"] = np.where(o["end_bar"] >= 0, o["end_bar"] + bar_offset, -1)
        for field in ("parent", "oco"):
            o[field] = np.where(o[field] >= 0, o[field] + order_offset, -1)
        fills.append(f)
        orders.append(o)
        bar_offset += len(part.cash)
        order_offset += len(o)
    last = parts[-1]
    return BacktestResult(
        timestamps=pl.concat([r.timestamps for r in parts]),
        assets=last.assets,
        cash=np.concatenate([r.cash for r in parts]),
        positions_value=np.concatenate([r.positions_value for r in parts]),
        gross_exposure=np.concatenate([r.gross_exposure for r in parts]),
        borrow_fees=np.concatenate([r.borrow_fees for r in parts]),
        interest=np.concatenate([r.interest for r in parts]),
        fills=np.concatenate(fills),
        orders=np.concatenate(orders),
        last_price=last.last_price,
        config=config.to_dict() | {"walk_forward_folds": [dataclasses.asdict(f) for f in folds]},
        initial_cash=config.initial_cash,
        periods_per_year=config.periods_per_year,
        risk_free_rate=config.risk_free_rate,
        highs=_joined([r.highs for r in parts]),
        lows=_joined([r.lows for r in parts]),
    )


def _joined(parts: list[np.ndarray | None]) -> np.ndarray | None:
    return None if any(p is None for p in parts) else np.concatenate(parts)  # type: ignore[arg-type]


def _record(
    store: RunStore | str | Path,
    name: str | None,
    out: WalkForwardResult,
    feed: DataFeed,
    config: BacktestConfig,
) -> None:
    runs = store if isinstance(store, RunStore) else RunStore(store)
    folds = [dataclasses.asdict(f) for f in out.folds]
    group = runs.new_group("walk_forward", name, {"folds": folds}, config=config.to_dict())
    runs.record_many(
        [{"result": r, "params": {"fold": f}} for r, f in zip(out.fold_results, folds, strict=True)]
        + [{"result": out.result, "params": {"stitched": True}}],
        kind="walk_forward",
        name=name,
        data_fingerprint=data_fingerprint(feed),
        group_id=group,
    )
