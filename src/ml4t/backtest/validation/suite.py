"""The scenarios, the peers' side of each, and the table ``ml4t-backtest validate`` prints."""

from __future__ import annotations

import difflib
import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..compiled import run_signals, run_weights
from ..config import BacktestConfig
from ..data.feed import DataFeed
from ..engine import Engine
from ..errors import ConfigError, MissingDependencyError
from ..execution.commission import PercentCommission, PerShareCommission
from ..execution.slippage import FixedBpsSlippage, PerShareSlippage, VolumeShareSlippage
from ..results.result import BacktestResult
from ..risk.position import AnyOf, PositionRule, StopLoss, TakeProfit, TrailingStop
from .compare import Comparison, compare_fills
from .plans import (
    Plan,
    PlanStrategy,
    bracket_plan,
    limit_entry_plan,
    long_short_plan,
    protective_plan,
    scheduled_plan,
    signal_plan,
    split_entry_plan,
    target_percent_plan,
)

INITIAL_CASH = 10_000.0


@dataclass(frozen=True)
class Market:
    """Seeded OHLCV for ``n_assets`` x ``n_bars`` daily bars (a random walk with gaps)."""

    n_assets: int
    n_bars: int
    seed: int
    # Zipline's markets: New York sessions, prices to three decimals (what its bundle stores).
    zipline: bool = False
    # Volumes are drawn from 1e5 to 1e6 shares a bar, times this (a thin market below 1).
    volume_scale: float = 1.0

    def arrays(self) -> dict[str, NDArray[np.float64]]:
        rng = np.random.default_rng(self.seed)
        shape = (self.n_bars, self.n_assets)
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, shape), axis=0))
        prev = np.concatenate([close[:1], close[:-1]])
        open_ = prev * np.exp(rng.normal(0.0, 0.006, shape))
        high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.012, shape))
        low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.012, shape))
        volume = rng.uniform(1e5, 1e6, shape) * self.volume_scale
        if self.zipline:
            open_, high, low, close = (np.round(x, 3) for x in (open_, high, low, close))
            volume = np.round(volume)
        return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}

    def timestamps(self) -> NDArray[np.datetime64]:
        if self.zipline:
            from .zipline_runs import xnys_sessions

            return xnys_sessions(self.n_bars)
        return np.datetime64("2020-01-01") + np.arange(self.n_bars).astype("timedelta64[D]")

    def assets(self) -> list[str]:
        return [f"A{i:03d}" for i in range(self.n_assets)]

    def feed(self) -> DataFeed:
        return DataFeed.from_arrays(self.timestamps(), self.assets(), self.arrays())


def ma_cross(close: NDArray[np.float64], fast: int = 10, slow: int = 30) -> tuple[Any, Any]:
    """Entries where the fast mean crosses above the slow one, exits where it crosses below."""
    kernel_fast = np.ones(fast) / fast
    kernel_slow = np.ones(slow) / slow
    fast_ma = np.full(close.shape, np.nan)
    slow_ma = np.full(close.shape, np.nan)
    for a in range(close.shape[1]):
        fast_ma[fast - 1 :, a] = np.convolve(close[:, a], kernel_fast, mode="valid")
        slow_ma[slow - 1 :, a] = np.convolve(close[:, a], kernel_slow, mode="valid")
    above = fast_ma > slow_ma
    before = np.vstack([np.zeros((1, close.shape[1]), dtype=bool), above[:-1]])
    valid = ~np.isnan(slow_ma)
    return above & ~before & valid, ~above & before & valid


@dataclass(frozen=True)
class Scenario:
    """One comparison: a name, a peer, and how to run both sides (or why the peer cannot)."""

    name: str
    framework: str
    run: Callable[[], tuple[NDArray[np.float64], NDArray[np.float64], float, float]] | None
    gap: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    # A scenario that runs but differs in a way docs/presets.md lists as a gap: that gap, and
    # the difference measured on this scenario (fills that differ, final value's relative
    # difference), which the suite checks is still what it measures.
    known_gap: str = ""
    gap_effect: tuple[int, float] | None = None


def our_rows(result: BacktestResult, feed: DataFeed) -> NDArray[np.float64]:
    """``(bar, asset, signed quantity, price, commission)`` per fill of our run."""
    f = result.fills
    if f.height == 0:
        return np.zeros((0, 5))
    bars = np.searchsorted(feed.timestamps, f["timestamp"].to_numpy().astype("datetime64[us]"))
    index = {str(a): i for i, a in enumerate(feed.assets)}
    assets = np.array([index[a] for a in f["asset"].to_list()], dtype=np.float64)
    sign = np.where(f["side"].to_numpy() == "buy", 1.0, -1.0)
    return np.column_stack(
        [bars, assets, sign * f["quantity"].to_numpy(), f["price"], f["commission"]]
    )


# ---- VectorBT ----------------------------------------------------------------------------------


def _vbt_signals(
    market: Market,
    *,
    fees: float = 0.0,
    slippage: float = 0.0,
    rules: PositionRule | None = None,
    **stops: Any,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    import pandas as pd
    import vectorbt as vbt

    data = market.arrays()
    entries, exits = ma_cross(data["close"])
    index = pd.DatetimeIndex(market.timestamps())

    def frame(x: NDArray[np.float64]) -> Any:
        return pd.DataFrame(x, index=index, columns=market.assets())

    pf = vbt.Portfolio.from_signals(
        frame(data["close"]), frame(entries), frame(exits), open=frame(data["open"]),
        high=frame(data["high"]), low=frame(data["low"]), init_cash=INITIAL_CASH, fees=fees,
        slippage=slippage, freq="1D", **stops,
    )  # fmt: skip
    theirs = vbt_rows(pf)
    feed = market.feed()
    config = BacktestConfig.preset(
        "vectorbt", initial_cash=INITIAL_CASH, commission=fees, slippage=slippage
    )
    # size=1.0 of equity at the fill price: all the cash, as VectorBT's default size=inf buys.
    ours = run_signals(feed, entries, exits, size=1.0, config=config, position_rules=rules)
    return our_rows(ours, feed), theirs, ours.final_value, vbt_final_value(pf)


def _rotation_weights(market: Market, every: int, n_top: int, weight: float) -> NDArray[np.float64]:
    """Top ``n_top`` by 20-bar momentum at ``weight`` each, every ``every`` bars (NaN between)."""
    close = market.arrays()["close"]
    momentum = np.full(close.shape, np.nan)
    momentum[20:] = close[20:] / close[:-20] - 1.0
    weights = np.full(close.shape, np.nan)
    for t in range(20, market.n_bars, every):
        weights[t] = 0.0
        weights[t, np.argsort(-momentum[t], kind="stable")[:n_top]] = weight
    return weights


def _monthly_weights(market: Market, gross: float) -> NDArray[np.float64]:
    """Random long-only weights summing to ``gross``, reset every 21 bars (NaN between)."""
    rng = np.random.default_rng(market.seed + 1)
    weights = np.full((market.n_bars, market.n_assets), np.nan)
    for t in range(0, market.n_bars, 21):
        raw = rng.uniform(0.0, 1.0, market.n_assets)
        weights[t] = gross * raw / raw.sum()
    return weights


def _vbt_weights(
    market: Market, weights: NDArray[np.float64], cost: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    import pandas as pd
    import vectorbt as vbt

    close = market.arrays()["close"]
    index = pd.DatetimeIndex(market.timestamps())
    pf = vbt.Portfolio.from_orders(
        pd.DataFrame(close, index=index, columns=market.assets()),
        size=pd.DataFrame(weights, index=index, columns=market.assets()),
        size_type="targetpercent", fees=cost, slippage=cost, init_cash=INITIAL_CASH,
        group_by=True, cash_sharing=True, call_seq="auto", freq="1D",
    )  # fmt: skip
    theirs = vbt_rows(pf)
    feed = market.feed()
    config = BacktestConfig.preset(
        "vectorbt", initial_cash=INITIAL_CASH, commission=cost, slippage=cost,
        execution_order="exits_first_smallest_entries_first",
    )  # fmt: skip
    ours = run_weights(feed, weights, config=config)
    return our_rows(ours, feed), theirs, ours.final_value, vbt_final_value(pf)


def vbt_rows(pf: Any) -> NDArray[np.float64]:
    """``(bar, asset, signed quantity, price, commission)`` per VectorBT order record."""
    rec = pf.orders.records
    sign = np.where(rec["side"] == 0, 1.0, -1.0)
    return np.column_stack([rec["idx"], rec["col"], sign * rec["size"], rec["price"], rec["fees"]])


def vbt_final_value(pf: Any) -> float:
    """The last value of a portfolio: one column, or one cash-sharing group."""
    return float(
        np.asarray(pf.value(), dtype=np.float64).reshape(len(pf.wrapper.index), -1)[-1].sum()
    )


# ---- Backtrader --------------------------------------------------------------------------------


def _bt_run(
    market: Market,
    plan: Plan,
    *,
    commission: float | PerShareCommission = 0.0,
    slippage: float | PerShareSlippage = 0.0,
    long_only: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    from .backtrader_runs import run_backtrader

    feed = market.feed()
    theirs, final_theirs = run_backtrader(
        market, plan, cash=INITIAL_CASH, commission=commission, slippage=slippage
    )
    config = BacktestConfig.preset(
        "backtrader", initial_cash=INITIAL_CASH, commission=commission, slippage=slippage
    )
    ours = Engine(feed, PlanStrategy(plan), config).run()
    return our_rows(ours, feed), theirs, ours.final_value, final_theirs


def _zl_run(
    market: Market,
    plan: Plan,
    *,
    commission: PerShareCommission | PercentCommission | None = None,
    slippage: FixedBpsSlippage | PerShareSlippage | VolumeShareSlippage | None = None,
    **overrides: Any,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    from .zipline_runs import run_zipline

    # Zipline's defaults: 0.001 a share, 5 bps.
    commission = commission if commission is not None else PerShareCommission(0.001)
    slippage = slippage if slippage is not None else FixedBpsSlippage(5)
    feed = market.feed()
    config = BacktestConfig.preset(
        "zipline", initial_cash=INITIAL_CASH, commission=commission, slippage=slippage,
        **overrides,
    )  # fmt: skip
    theirs, final_theirs = run_zipline(
        market, plan, cash=INITIAL_CASH, commission=commission, slippage=slippage,
        volume_limit=config.max_participation or 0.1,
    )  # fmt: skip
    ours = Engine(feed, PlanStrategy(plan), config).run()
    return our_rows(ours, feed), theirs, ours.final_value, final_theirs


def _scenarios() -> list[Scenario]:
    from .next_open import next_open_scenarios

    return (
        _vectorbt_scenarios()
        + _backtrader_scenarios()
        + _zipline_scenarios()
        + next_open_scenarios()
    )


def _signal_market(
    n_assets: int, n_bars: int, seed: int, *, zipline: bool = False
) -> tuple[Market, Any, Any]:
    """A market and its moving-average crossover entries and exits."""
    market = Market(n_assets, n_bars, seed, zipline=zipline)
    entries, exits = ma_cross(market.arrays()["close"])
    return market, entries, exits


def _vectorbt_scenarios() -> list[Scenario]:
    one = Market(1, 500, 1)
    stress = Market(1, 2500, 7)
    wide = Market(25, 300, 3)
    hundred = Market(100, 252, 5)
    # Two assets sharing all the cash: at bar 462 asset 1's stop frees it as asset 0 enters.
    pair = Market(2, 500, 3)
    sl, tp = StopLoss(0.03), TakeProfit(0.05)
    vbt = "vectorbt"
    return [
        Scenario("ma_crossover", vbt, lambda: _vbt_signals(one)),
        Scenario("percent_commission", vbt, lambda: _vbt_signals(one, fees=0.001)),
        Scenario("percent_slippage", vbt, lambda: _vbt_signals(one, slippage=0.001)),
        Scenario("stop_loss", vbt, lambda: _vbt_signals(one, sl_stop=0.03, rules=sl)),
        Scenario("take_profit", vbt, lambda: _vbt_signals(one, tp_stop=0.05, rules=tp)),
        Scenario(
            "trailing_stop",
            vbt,
            lambda: _vbt_signals(one, sl_stop=0.04, sl_trail=True, rules=TrailingStop(0.04)),
        ),
        Scenario(
            "stop_loss_take_profit_same_bar",
            vbt,
            lambda: _vbt_signals(
                one, sl_stop=0.008, tp_stop=0.008, rules=AnyOf(StopLoss(0.008), TakeProfit(0.008))
            ),
        ),
        Scenario(
            "stress_2500_bars",
            vbt,
            lambda: _vbt_signals(stress, fees=0.001, sl_stop=0.05, rules=StopLoss(0.05)),
        ),
        Scenario(
            "rotation_top5_of_25",
            vbt,
            lambda: _vbt_weights(wide, _rotation_weights(wide, 20, 5, 0.2), 0.001),
        ),
        Scenario(
            "target_weights_100_monthly",
            vbt,
            lambda: _vbt_weights(hundred, _monthly_weights(hundred, 0.95), 0.0005),
        ),
        Scenario(
            "stop_frees_cash_later_column",
            vbt,
            lambda: _vbt_signals(
                pair, sl_stop=0.03, rules=StopLoss(0.03), group_by=True, cash_sharing=True
            ),
            known_gap="A stop frees no cash for an earlier column (VectorBT)",
            gap_effect=(2, 1.94e-1),
        ),
        Scenario(
            "per_share_commission_min",
            vbt,
            None,
            "from_signals charges fees as a fraction of value plus a fixed fee per order; it has "
            "no per-share rate or minimum",
        ),
        Scenario(
            "fixed_slippage",
            vbt,
            None,
            "slippage is a fraction of price only (buy_nb/sell_nb apply price * (1 +- slippage))",
        ),
        Scenario("limit_entries", vbt, None, "the open-source from_signals has no limit orders"),
        Scenario("bracket_orders", vbt, None, "no bracket orders (stops are sl_stop/tp_stop)"),
    ]


def _affordable_at_the_open_only(market: Market) -> dict[int, float]:
    """50 shares from bar 10 to 30, then the first buy after bar 40 of what the cash left buys
    at the next open, which costs more than that cash at the decision close (held ten bars)."""
    data = market.arrays()
    open_, close = data["open"][:, 0], data["close"][:, 0]
    # No costs: the cash after the first round trip, bought at open 11 and sold at open 31.
    cash = INITIAL_CASH + 50.0 * (open_[31] - open_[11])
    for t in range(40, market.n_bars - 11):
        qty = float(np.floor(cash / open_[t + 1]))
        if qty * close[t] > cash:
            return {10: 50.0, 30: 0.0, t: qty, t + 10: 0.0}
    raise AssertionError("no bar whose next open is affordable but its close is not")


def _backtrader_scenarios() -> list[Scenario]:
    one, e1, x1 = _signal_market(1, 500, 1)
    stress, e2, x2 = _signal_market(1, 2500, 7)
    ib = PerShareCommission(0.01, minimum=1.0)
    btr = "backtrader"
    return [
        Scenario("ma_crossover", btr, lambda: _bt_run(one, signal_plan(e1, x1, 50))),
        Scenario(
            "percent_commission",
            btr,
            lambda: _bt_run(one, signal_plan(e1, x1, 50), commission=0.001),
        ),
        Scenario(
            "per_share_commission_min",
            btr,
            lambda: _bt_run(one, signal_plan(e1, x1, 50, alternate=150), commission=ib),
        ),
        Scenario(
            "percent_slippage",
            btr,
            lambda: _bt_run(one, signal_plan(e1, x1, 50), slippage=0.001),
        ),
        Scenario(
            "fixed_slippage",
            btr,
            lambda: _bt_run(one, signal_plan(e1, x1, 50), slippage=PerShareSlippage(0.05)),
        ),
        Scenario("long_short", btr, lambda: _bt_run(one, long_short_plan(e1, x1, 40))),
        Scenario("stop_loss", btr, lambda: _bt_run(one, protective_plan(e1, x1, 50, "stop", 0.97))),
        Scenario(
            "take_profit", btr, lambda: _bt_run(one, protective_plan(e1, x1, 50, "limit", 1.05))
        ),
        Scenario(
            "trailing_stop",
            btr,
            lambda: _bt_run(one, protective_plan(e1, x1, 50, "trail", 0.03)),
        ),
        Scenario("bracket_orders", btr, lambda: _bt_run(one, bracket_plan(e1, 50, 0.97, 1.05))),
        Scenario("limit_entries", btr, lambda: _bt_run(one, limit_entry_plan(e1, x1, 50, 0.99))),
        Scenario(
            "target_percent_trims",
            btr,
            lambda: _bt_run(one, target_percent_plan(0.5, 5), commission=0.001),
        ),
        Scenario(
            "submission_cash_check",
            btr,
            lambda: _bt_run(one, scheduled_plan(_affordable_at_the_open_only(one))),
            known_gap="Backtrader's submission-time cash check",
            gap_effect=(2, 5.85e-3),
        ),
        Scenario(
            "stress_2500_bars",
            btr,
            lambda: _bt_run(stress, signal_plan(e2, x2, 50), commission=0.001),
        ),
    ]


def near_whole_percent(market: Market, shares: int) -> float:
    """The percent of the initial cash that buys ``shares`` less 5e-5 at the first close: an
    amount within Zipline's 1e-4 of a whole number, just below it."""
    return (shares - 5e-5) * float(market.arrays()["close"][0, 0]) / INITIAL_CASH


def _limit_within_slippage(market: Market) -> tuple[dict[int, float], dict[int, float]]:
    """A 50-share buy limit placed at bar ``t`` (from 10) at the next close rounded up to a
    cent, where that close plus 5 bps of slippage is above the limit; closed 30 bars on."""
    close = market.arrays()["close"][:, 0]
    for t in range(10, market.n_bars - 31):
        limit = math.ceil(close[t + 1] * 100.0) / 100.0
        if close[t + 1] * 1.0005 > limit:
            return {t: 50.0, t + 30: 0.0}, {t: limit}
    raise AssertionError("no close within 5 bps under a whole cent")


def _zipline_scenarios() -> list[Scenario]:
    zone, ze, zx = _signal_market(1, 500, 1, zipline=True)
    zstress, ze2, zx2 = _signal_market(1, 2500, 7, zipline=True)
    # Volumes of 100 to 1,000 shares a bar: orders of tens of shares meet the volume cap.
    thin = Market(1, 500, 1, zipline=True, volume_scale=1e-3)
    te, tx = ma_cross(thin.arrays()["close"])
    ib = PerShareCommission(0.01, minimum=1.0)
    zl = "zipline"
    return [
        Scenario("ma_crossover", zl, lambda: _zl_run(zone, signal_plan(ze, zx, 50))),
        Scenario(
            "percent_commission",
            zl,
            lambda: _zl_run(zone, signal_plan(ze, zx, 50), commission=PercentCommission(0.001)),
        ),
        Scenario(
            "per_share_commission_min",
            zl,
            lambda: _zl_run(zone, signal_plan(ze, zx, 50, alternate=150), commission=ib),
        ),
        Scenario(
            "percent_slippage",
            zl,
            lambda: _zl_run(zone, signal_plan(ze, zx, 50), slippage=FixedBpsSlippage(10)),
        ),
        Scenario(
            "fixed_slippage",
            zl,
            lambda: _zl_run(zone, signal_plan(ze, zx, 50), slippage=PerShareSlippage(0.05)),
        ),
        Scenario("long_short", zl, lambda: _zl_run(zone, long_short_plan(ze, zx, 40))),
        # 150 shares cost more than the 10,000 of cash: Zipline fills them, cash goes negative.
        Scenario("unchecked_cash", zl, lambda: _zl_run(zone, signal_plan(ze, zx, 150))),
        Scenario("stress_2500_bars", zl, lambda: _zl_run(zstress, signal_plan(ze2, zx2, 50))),
        Scenario("target_percent_trims", zl, lambda: _zl_run(zone, target_percent_plan(0.5, 5))),
        # One target on the first bar worth 39.99995 shares: round_order snaps it to 40
        # (snap_near_whole); truncation alone would buy 39.
        Scenario(
            "near_whole_target",
            zl,
            lambda: _zl_run(zone, target_percent_plan(near_whole_percent(zone, 40), zone.n_bars)),
        ),
        # 3,000 shares on 10,000 of cash: a 3% fall takes equity below zero, where Zipline
        # holds on (margin_calls=False).
        Scenario("negative_equity", zl, lambda: _zl_run(zone, signal_plan(ze, zx, 3000))),
        Scenario(
            "target_while_order_waits",
            zl,
            lambda: _zl_run(thin, target_percent_plan(0.9, 1)),
            known_gap="Order targets ignore open orders (Zipline, Backtrader)",
            gap_effect=(15, 7.25e-3),
        ),
        # Zipline's VolumeShareSlippage: each entry is two orders on one bar, the second priced
        # by both (cumulative=True).
        Scenario(
            "volume_share_two_orders",
            zl,
            lambda: _zl_run(
                thin,
                split_entry_plan(te, tx, 10, 2),
                slippage=VolumeShareSlippage(
                    impact=0.1, exponent=2, volatility=1.0, cumulative=True
                ),
                max_participation=0.25,
            ),
        ),
        # Stops at whole cents, as Zipline rounds them; checked against the close only.
        Scenario(
            "stop_loss",
            zl,
            lambda: _zl_run(zone, protective_plan(ze, zx, 50, "stop", 0.97, tick=0.01)),
        ),
        Scenario(
            "take_profit",
            zl,
            lambda: _zl_run(zone, protective_plan(ze, zx, 50, "limit", 1.05, tick=0.01)),
        ),
        Scenario("trailing_stop", zl, None, "Zipline has no trailing stop order"),
        Scenario(
            "limit_entries",
            zl,
            lambda: _zl_run(zone, limit_entry_plan(ze, zx, 50, 0.99, tick=0.01)),
        ),
        # The limit is reached by the close, and the fill after slippage is above it: Zipline's
        # default FixedBasisPointsSlippage fills it there all the same, as ours does.
        Scenario(
            "limit_within_slippage",
            zl,
            lambda: _zl_run(zone, scheduled_plan(*_limit_within_slippage(zone))),
        ),
        Scenario("bracket_orders", zl, None, "Zipline has no bracket (OCO) orders"),
    ]


SCENARIOS: list[Scenario] = _scenarios()


# What each peer's runs import (the "validation" extra installs them all).
PEER_MODULES: dict[str, tuple[str, ...]] = {
    "vectorbt": ("vectorbt", "pandas"),
    "backtrader": ("backtrader", "pandas"),
    "zipline": ("zipline", "exchange_calendars", "pandas"),
    "backtesting": ("backtesting", "pandas"),
}


def run_validation(
    frameworks: list[str] | None = None, scenarios: list[str] | None = None
) -> pl.DataFrame:
    """Run the suite (or the named frameworks / scenarios); one row per scenario and peer.

    An unknown framework or scenario name is a ``ConfigError`` listing the known ones; a peer
    that is not installed is a ``MissingDependencyError`` naming the extra, before anything runs.

    Example:
        >>> run_validation(scenarios=["ma_crosover"])
        Traceback (most recent call last):
        ...
        ml4t.backtest.errors.ConfigError: unknown scenario 'ma_crosover'; did you mean ...
    """
    _check_names("framework", frameworks, sorted({s.framework for s in SCENARIOS}))
    _check_names("scenario", scenarios, sorted({s.name for s in SCENARIOS}))
    chosen = [
        scenario
        for scenario in SCENARIOS
        if (frameworks is None or scenario.framework in frameworks)
        and (scenarios is None or scenario.name in scenarios)
    ]
    _check_peers_installed(sorted({s.framework for s in chosen if s.run is not None}))
    rows = []
    for scenario in chosen:
        row: dict[str, Any] = {"scenario": scenario.name, "framework": scenario.framework}
        if scenario.run is None:
            rows.append(row | {"status": "gap", "note": scenario.gap})
            continue
        start = time.perf_counter()
        ours, theirs, final_ours, final_theirs = scenario.run()
        result = compare_fills(ours, theirs, final_ours, final_theirs)
        measured = _row(result)
        if not result.ok and scenario.known_gap:
            measured |= {"status": "known gap", "note": scenario.known_gap}
        rows.append(row | measured | {"seconds": time.perf_counter() - start})
    return pl.DataFrame(rows, infer_schema_length=None)


def _check_names(kind: str, given: list[str] | None, known: list[str]) -> None:
    for name in given or []:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else "."
            raise ConfigError(f"unknown {kind} {name!r}{hint} Known {kind}s: {', '.join(known)}")


def _check_peers_installed(frameworks: list[str]) -> None:
    missing: dict[str, str] = {}
    for framework in frameworks:
        for module in PEER_MODULES[framework]:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                missing[framework] = f"{module}: {exc}"
                break
    if missing:
        have = [f for f in frameworks if f not in missing]
        only = f"; or compare with {', '.join(have)} only (--framework)" if have else ""
        raise MissingDependencyError(
            f"the parity suite needs {', '.join(missing)}, which cannot be imported "
            f"({'; '.join(missing.values())}). Install the 'validation' extra: "
            f'pip install -e ".[validation]" in a checkout of this repository{only}'
        )


def _row(c: Comparison) -> dict[str, Any]:
    return {
        "status": "match" if c.ok else "MISMATCH",
        "ours_final": c.final_ours,
        "theirs_final": c.final_theirs,
        "final_rel_diff": c.final_rel_diff,
        "fills": f"{c.fills_matched}/{c.fills_theirs}"
        + ("" if c.fills_ours == c.fills_theirs else f" (ours {c.fills_ours})"),
        "max_fill_rel_diff": c.max_rel_diff,
        "note": "",
    }
