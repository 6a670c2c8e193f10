"""The event driver: a loop over bars in Python around the compiled phases of a bar.

One bar ``t`` is two compiled calls with the strategy between them (``kernels.clock``, the same
phases the compiled driver runs):

1. ``broker.open_phase(t)``: fills at the open, position rules, next-close fills (Zipline's
   daily mode), the mark at ``close[t]``, margin calls and portfolio halts;
2. ``strategy.on_data`` with a view of bars ``<= t``;
3. ``broker.close_phase(t)``: with ``fill_timing="same_close"``, the new orders fill at
   ``close[t]`` and the bar is recorded again.

A strategy with an ``on_fill`` gets each step's fills right after the step: the steps of the
open phase then run as separate compiled calls.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import datetime

import numpy as np
from numpy.typing import ArrayLike
from tqdm import tqdm

from .broker import Broker
from .config import BacktestConfig
from .core import Calendar, benchmark_prices, build_result, check_slippage, market_arrays
from .data.feed import DataFeed
from .data.view import BarView
from .errors import ConfigError, StrategyError
from .execution.slippage import slippage_table
from .kernels.jit import COMPILING_NOTICE, needs_compile
from .kernels.records import O_END_OF_RUN, O_FOLD_END, ORIGIN_NAMES
from .kernels.state import REC_WIDTH
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
            self.config.slippage, feed.assets.tolist(), self.config.slippage_overrides
        )
        check_slippage(feed, models)
        self._slippage_models = models

    def run(self, *, progress: bool = False, close_at_end: bool = False) -> BacktestResult:
        """Run the backtest from the first bar to the last and return its result.

        ``progress=True`` shows a progress bar once the run has taken more than a second; on a
        first run, while the kernels compile, it says so instead of estimating a time.
        ``close_at_end=True`` ends flat, as walk-forward folds do: after the last bar's
        strategy call, working orders are cancelled and every position is closed by a market
        order filled at the last close, costs paid, with reason ``fold_end``. The config's
        ``close_at_end`` does the same for every run, with reason ``end_of_run``.

        An exception in ``on_start``, ``on_data`` or ``on_fill`` propagates as itself with a
        note (shown under its traceback, in ``exc.__notes__``) naming the callback, the bar and
        its timestamp. One in ``on_end`` comes after every bar has run: it is raised as a
        ``StrategyError`` whose ``result`` is the finished run and whose cause is the original.
        """
        feed, strategy, config = self.feed, self.strategy, self.config
        n_bars = feed.n_bars
        times = feed.datetimes
        broker = Broker(feed.assets, config, columns=feed.array, n_bars=n_bars)
        if self.position_rules is not None:
            broker.set_position_rules(self.position_rules)
        broker.set_portfolio_rules(self.portfolio_rules)
        view = BarView(feed)
        clock = Calendar.of(feed)
        records = np.zeros((REC_WIDTH, n_bars))
        broker.attach(market_arrays(feed, self._slippage_models, clock), records)
        on_fills = None
        if type(strategy).on_fill is not Strategy.on_fill:

            def on_fills(first: int, last: int) -> None:
                self._dispatch_fills(broker, first, last, times)

        bar_progress = tqdm(
            total=n_bars, delay=1.0, disable=not progress, unit="bar", desc="backtest", leave=False
        )
        compiling = progress and needs_compile(
            *broker.phase_kernels(one_by_one=on_fills is not None)
        )
        if compiling:
            tqdm.write(f"backtest: {COMPILING_NOTICE}", file=sys.stderr)
        try:
            strategy.on_start(broker)
        except Exception as exc:
            exc.add_note(f"raised by {_name(strategy)}.on_start, before bar 0 ({times[0]})")
            raise
        # Bound once: a bar costs the strategy call and a few calls more, no lookups.
        open_phase, close_phase, advance = broker.open_phase, broker.close_phase, view._advance
        on_data = strategy.on_data
        for t, timestamp in enumerate(times):
            open_phase(t, on_fills)
            advance(t, timestamp)
            if not broker.stopped:
                try:
                    on_data(timestamp, view, broker)
                except Exception as exc:
                    exc.add_note(f"raised by {_name(strategy)}.on_data at bar {t} ({timestamp})")
                    raise
            close_phase(t, on_fills)
            if progress:
                bar_progress.update(1)
                if compiling and t == 0:
                    # The rate starts after the compile: the first bar paid for it.
                    bar_progress.reset()
                    bar_progress.update(1)
        if (close_at_end or config.close_at_end) and n_bars:
            broker.close_all(origin=O_FOLD_END if close_at_end else O_END_OF_RUN)
            broker.close_phase(n_bars - 1, on_fills, final=True)
        bar_progress.close()
        try:
            strategy.on_end(broker)
        except Exception as exc:
            # Every bar has run: keep the result rather than lose it to the last callback.
            result = build_result(feed, broker, clock, records, benchmark=self.benchmark)
            raise StrategyError(
                f"{_name(strategy)}.on_end raised {type(exc).__name__}: {exc} (after the last "
                f"bar, {times[-1]}); the run had finished: its result is this error's .result",
                result=result,
            ) from exc

        result = build_result(feed, broker, clock, records, benchmark=self.benchmark)
        result.strategy = describe_strategy(strategy)
        return result

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
