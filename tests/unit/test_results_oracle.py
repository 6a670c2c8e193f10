"""Trades, excursions and metrics against the implementation they replaced, on random runs.

The oracle below is the code ``results/`` used before trades, excursions and metrics were
vectorized (issue 18), written out as plain Python: FIFO matching of fills into round trips,
each trade's MAE and MFE from a loop over its bars, and every metric of ``result.metrics``.
The new code must give the same values to 1e-12 relative (the same trades in the same order,
the same strings, the same integers), on random fill records built by hand (long and short,
adds, partial closes, reversals, fractional quantities with float residues, NaN bars, trades
still open at the end, several assets) and on runs of both drivers.
"""

from __future__ import annotations

import math
import warnings
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, BacktestResult, DataFeed, Engine, Strategy, run_orders
from ml4t.backtest.errors import DataWarning
from ml4t.backtest.kernels.records import FILL_DTYPE, ORDER_DTYPE, ORIGIN_NAMES
from ml4t.backtest.risk import StopLoss

RTOL = 1e-12
QUANTITY_RTOL = 1e-9  # the broker's tolerance, as the old matcher used it

# ---------------------------------------------------------------------------------------------
# The oracle: the old implementation, plain Python.
# ---------------------------------------------------------------------------------------------


def oracle_match(fills: np.ndarray, last_price: np.ndarray) -> list[dict[str, Any]]:
    """FIFO round trips per asset (assets in order, fills in execution order within one), then
    the asset's lots still open, marked at ``last_price``. Closing the position (within the
    tolerance) closes every lot whole; a lot or fill left within the tolerance is done."""
    out: list[dict[str, Any]] = []
    order = np.argsort(fills["asset"], kind="stable")
    k, n = 0, len(order)
    while k < n:
        a = int(fills["asset"][order[k]])
        lots: list[dict[str, Any]] = []  # qty (signed, remaining), size, price, bar, cpu, origin
        pos = 0.0
        while k < n and int(fills["asset"][order[k]]) == a:
            f = fills[order[k]]
            q = float(f["quantity"])
            size = abs(q)
            p = float(f["price"])
            cpu = float(f["commission"]) / size
            before = pos
            pos = before + q
            flat = abs(pos) <= QUANTITY_RTOL * max(abs(before), size)
            while q != 0.0 and lots and (lots[0]["qty"] > 0.0) != (q > 0.0):
                lot = lots[0]
                lq = lot["qty"]
                closed = abs(lq) if flat else min(abs(lq), abs(q))
                direction = 1 if lq > 0.0 else -1
                comm = closed * (lot["cpu"] + cpu)
                gross = direction * closed * (p - lot["price"])
                out.append(
                    {
                        "asset": a,
                        "direction": direction,
                        "is_open": False,
                        "entry_bar": lot["bar"],
                        "exit_bar": int(f["bar"]),
                        "entry_price": lot["price"],
                        "exit_price": p,
                        "quantity": closed,
                        "commission": comm,
                        "pnl": gross - comm,
                        "return": (gross - comm) / (closed * lot["price"]),
                        "entry_origin": lot["origin"],
                        "exit_origin": int(f["origin"]),
                    }
                )
                lot_left = abs(lq) - closed
                if lot_left <= QUANTITY_RTOL * lot["size"]:
                    lots.pop(0)
                else:
                    lot["qty"] = lot_left if lq > 0.0 else -lot_left
                if flat:
                    continue
                q_left = abs(q) - closed
                if q_left <= QUANTITY_RTOL * size:
                    q_left = 0.0
                q = q_left if q > 0.0 else -q_left
            if q != 0.0 and not flat:
                lots.append(
                    {
                        "qty": q,
                        "size": abs(q),
                        "price": p,
                        "bar": int(f["bar"]),
                        "cpu": cpu,
                        "origin": int(f["origin"]),
                    }
                )
            k += 1
        for lot in lots:
            lq = lot["qty"]
            direction = 1 if lq > 0.0 else -1
            closed = abs(lq)
            mark = float(last_price[a])
            comm = closed * lot["cpu"]
            gross = direction * closed * (mark - lot["price"])
            out.append(
                {
                    "asset": a,
                    "direction": direction,
                    "is_open": True,
                    "entry_bar": lot["bar"],
                    "exit_bar": -1,
                    "entry_price": lot["price"],
                    "exit_price": mark,
                    "quantity": closed,
                    "commission": comm,
                    "pnl": gross - comm,
                    "return": (gross - comm) / (closed * lot["price"]),
                    "entry_origin": lot["origin"],
                    "exit_origin": -1,
                }
            )
    return out


def oracle_excursions(
    trades: list[dict[str, Any]], highs: np.ndarray | None, lows: np.ndarray | None, last_bar: int
) -> tuple[list[float], list[float]]:
    """MAE and MFE of each trade as returns on its entry price, over its bars (entry and exit
    bars whole; to the last bar while open); NaN without highs and lows."""
    if highs is None or lows is None:
        return [math.nan] * len(trades), [math.nan] * len(trades)
    mae, mfe = [], []
    for t in trades:
        end = last_bar if t["is_open"] else t["exit_bar"]
        window_high = [h for h in highs[t["entry_bar"] : end + 1, t["asset"]] if h == h]
        window_low = [x for x in lows[t["entry_bar"] : end + 1, t["asset"]] if x == x]
        high = max(window_high) if window_high else math.nan
        low = min(window_low) if window_low else math.nan
        entry = t["entry_price"]
        if t["direction"] > 0:
            mae.append(low / entry - 1.0)
            mfe.append(high / entry - 1.0)
        else:
            mae.append(1.0 - high / entry)
            mfe.append(1.0 - low / entry)
    return mae, mfe


def oracle_trades(result: BacktestResult) -> dict[str, list[Any]]:
    """The trades frame's columns, as lists."""
    rec = result.records
    trades = oracle_match(rec.fills, rec.last_price)
    last_bar = len(rec.timestamps) - 1
    mae, mfe = oracle_excursions(trades, rec.highs, rec.lows, last_bar)
    ts = rec.timestamps.to_list()
    return {
        "asset": [str(rec.assets[t["asset"]]) for t in trades],
        "direction": ["long" if t["direction"] > 0 else "short" for t in trades],
        "status": ["open" if t["is_open"] else "closed" for t in trades],
        "entry_time": [ts[t["entry_bar"]] for t in trades],
        "exit_time": [None if t["exit_bar"] < 0 else ts[t["exit_bar"]] for t in trades],
        "entry_price": [t["entry_price"] for t in trades],
        "exit_price": [t["exit_price"] for t in trades],
        "quantity": [t["quantity"] for t in trades],
        "pnl": [t["pnl"] for t in trades],
        "return": [t["return"] for t in trades],
        "commission": [t["commission"] for t in trades],
        "bars_held": [
            (last_bar if t["is_open"] else t["exit_bar"]) - t["entry_bar"] for t in trades
        ],
        "mae": mae,
        "mfe": mfe,
        "entry_reason": [ORIGIN_NAMES[t["entry_origin"]] for t in trades],
        "exit_reason": [
            "open" if t["is_open"] else ORIGIN_NAMES[max(t["exit_origin"], 0)] for t in trades
        ],
    }


def oracle_drawdown_bars(wealth: list[float]) -> int:
    longest = current = 0
    peak = -math.inf
    for value in wealth:
        if value >= peak:
            peak = value
            current = 0
        else:
            current += 1
            longest = max(longest, current)
    return longest


def oracle_growth(growth: float, years: float) -> float:
    if not (years > 0.0) or not (growth >= 0.0):
        return math.nan
    if growth == 0.0:
        return -1.0
    try:
        return float(growth ** (1.0 / years) - 1.0)
    except OverflowError:
        return math.inf


def oracle_metrics(
    result: BacktestResult, *, initial_cash: float, risk_free_rate: float
) -> dict[str, float]:
    """``result.metrics`` as the old code computed it (empyrical's conventions)."""
    rec = result.records
    ppy = result.periods_per_year
    equity = rec.cash + rec.positions_value
    n = len(equity)
    r = equity / np.concatenate(([initial_cash], equity[:-1])) - 1.0
    rf = (1.0 + risk_free_rate) ** (1.0 / ppy) - 1.0
    excess = r - rf
    final = float(equity[-1]) if n else initial_cash
    cagr = oracle_growth(final / initial_cash, n / ppy)
    std = float(np.std(r, ddof=1)) if n > 1 else math.nan
    ex_std = float(np.std(excess, ddof=1)) if n > 1 else math.nan
    sharpe = float(np.mean(excess)) / ex_std * math.sqrt(ppy) if n > 1 and ex_std > 0 else math.nan
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2))) if n else math.nan
    sortino = float(np.mean(excess)) / downside * math.sqrt(ppy) if n and downside > 0 else math.nan
    wealth = np.concatenate(([initial_cash], equity))
    max_drawdown = float(np.min(wealth / np.maximum.accumulate(wealth) - 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_bar = np.where(equity > 0, rec.gross_exposure / equity, np.nan)
    trades = oracle_trades(result)
    closed = [i for i, s in enumerate(trades["status"]) if s == "closed"]
    pnl = np.array([trades["pnl"][i] for i in closed], dtype=np.float64)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_loss = float(-losses.sum())
    m: dict[str, float] = {
        "total_return": final / initial_cash - 1.0,
        "cagr": cagr,
        "volatility": std * math.sqrt(ppy),
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": cagr / -max_drawdown if max_drawdown < 0 else math.nan,
        "max_drawdown": max_drawdown,
        "max_drawdown_bars": oracle_drawdown_bars([float(w) for w in wealth]),
        "n_trades": len(pnl),
        "win_rate": float(np.mean(pnl > 0)) if len(pnl) else math.nan,
        "profit_factor": float(wins.sum()) / gross_loss if gross_loss > 0 else math.nan,
        "avg_win": float(wins.mean()) if len(wins) else math.nan,
        "avg_loss": float(losses.mean()) if len(losses) else math.nan,
        "expectancy": float(pnl.mean()) if len(pnl) else math.nan,
        "exposure": float(np.nanmean(per_bar)) if n else math.nan,
    }
    final_value = initial_cash if n == 0 else float(rec.cash[-1] + rec.positions_value[-1])
    m["final_value"] = final_value
    m["n_fills"] = len(rec.fills)
    m["total_commission"] = float(rec.fills["commission"].sum())
    m["total_slippage"] = float(rec.fills["slippage"].sum())
    m["total_borrow_fee"] = float(rec.borrow_fees.sum())
    m["total_interest"] = float(rec.interest.sum())
    m["alpha"], m["beta"] = math.nan, math.nan
    if rec.benchmark is not None and n >= 3:
        ret = r[1:]
        bench = np.asarray(rec.benchmark, dtype=np.float64)
        b = bench[1:] / bench[:-1] - 1.0
        ok = np.isfinite(ret) & np.isfinite(b)
        ret, b = ret[ok], b[ok]
        if len(ret) >= 2 and np.var(b) != 0:
            beta = float(np.cov(ret, b, ddof=1)[0, 1] / np.var(b, ddof=1))
            alpha = oracle_growth(1.0 + float(np.mean(ret - beta * b)), 1.0 / ppy)
            m["alpha"], m["beta"] = alpha, beta
    mae = pl.Series([trades["mae"][i] for i in closed], dtype=pl.Float64)
    mfe = pl.Series([trades["mfe"][i] for i in closed], dtype=pl.Float64)
    m["avg_mae"] = float(mae.mean()) if closed else math.nan  # type: ignore[arg-type]
    m["avg_mfe"] = float(mfe.mean()) if closed else math.nan  # type: ignore[arg-type]
    traded = float(np.sum(np.abs(rec.fills["quantity"] * rec.fills["price"])))
    years = n / ppy
    mean_equity = float(np.mean(equity)) if n else math.nan
    m["turnover"] = traded / 2.0 / mean_equity / years if years > 0 else math.nan
    costs = m["total_commission"] + m["total_slippage"] + m["total_borrow_fee"]
    m["total_costs"] = costs
    gross = final_value - initial_cash + costs
    m["gross_pnl"] = gross
    m["costs_share_of_gross_pnl"] = costs / gross if gross > 0 else math.nan
    return m


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------


def same_number(ours: float, theirs: float) -> bool:
    if math.isnan(theirs):
        return math.isnan(ours)
    if math.isinf(theirs):
        return ours == theirs
    return abs(ours - theirs) <= RTOL * abs(theirs)


def assert_matches_oracle(result: BacktestResult, *, initial_cash: float, rf: float) -> None:
    expected = oracle_trades(result)
    trades = result.trades
    assert trades.columns == list(expected)
    # The old frame's types: strings forced to String even when empty, numbers from numpy.
    time = result.records.timestamps.dtype
    texts = {"asset", "direction", "status", "entry_reason", "exit_reason"}
    kinds = {name: pl.String for name in texts} | {"entry_time": time, "exit_time": time}
    kinds["bars_held"] = pl.Int64
    assert dict(trades.schema) == {name: kinds.get(name, pl.Float64) for name in expected}
    assert trades.height == len(expected["asset"])
    for name, values in expected.items():
        got = trades[name].to_list()
        if trades[name].dtype == pl.Float64:
            pairs = enumerate(zip(got, values, strict=True))
            bad = [i for i, (x, y) in pairs if not same_number(x, y)]
            assert not bad, f"trades[{name!r}] differs at rows {bad[:5]}"
        else:
            assert got == values, f"trades[{name!r}] differs"
    metrics = oracle_metrics(result, initial_cash=initial_cash, risk_free_rate=rf)
    got_metrics = result.metrics
    assert list(got_metrics) == list(metrics)
    for key, value in metrics.items():
        assert type(got_metrics[key]) is type(value), key
        assert same_number(float(got_metrics[key]), float(value)), (
            f"metrics[{key!r}]: {got_metrics[key]!r} != {value!r}"
        )


# ---------------------------------------------------------------------------------------------
# Random fill records, built by hand
# ---------------------------------------------------------------------------------------------


def random_fills(
    rng: np.random.Generator, n_bars: int, n_assets: int, fractional: bool
) -> np.ndarray:
    """Fills in execution order: opens, adds, partial and whole closes, reversals, closes of
    the exact float position (residues like 0.7 + 0.1), on random bars and assets."""
    rows: list[tuple[int, int, int, float, float, float, float, int]] = []
    pos = np.zeros(n_assets)
    for bar in range(n_bars):
        for _ in range(rng.integers(0, 4)):
            a = int(rng.integers(0, n_assets))
            held = pos[a]
            unit = float(rng.choice([0.7, 0.1, 0.3, 1.5])) if fractional else 1.0
            size = unit * float(rng.integers(1, 20))
            action = rng.integers(0, 5)
            if held == 0.0 or action == 0:
                q = size if rng.random() < 0.5 else -size  # open, or add to / cut against held
            elif action == 1:
                q = -held  # close exactly what is held
            elif action == 2:
                q = -held * float(rng.choice([0.25, 0.5, 1 / 3]))  # partial close
            elif action == 3:
                q = -held - (size if held > 0 else -size)  # reversal
            else:
                q = size if held > 0 else -size  # add
            if q == 0.0:
                continue
            pos[a] += q
            price = float(np.round(rng.uniform(50.0, 150.0), 2))
            commission = 0.0 if rng.random() < 0.3 else abs(q) * price * 0.001
            slippage = 0.0 if rng.random() < 0.5 else abs(q) * 0.01
            origin = int(rng.integers(0, len(ORIGIN_NAMES)))
            rows.append((bar, a, len(rows), q, price, commission, slippage, origin))
    out = np.zeros(len(rows), dtype=FILL_DTYPE)
    for i, (bar, a, oid, q, price, commission, slippage, origin) in enumerate(rows):
        out[i] = (bar, a, oid, q, price, commission, slippage, origin)
    return out


def random_result(seed: int) -> tuple[BacktestResult, float, float]:
    rng = np.random.default_rng(seed)
    n_bars = int(rng.integers(1, 60))
    n_assets = int(rng.integers(1, 5))
    fills = random_fills(rng, n_bars, n_assets, fractional=bool(rng.random() < 0.6))
    mid = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (n_bars, n_assets)), axis=0))
    highs = mid * (1.0 + rng.uniform(0.0, 0.05, mid.shape))
    lows = mid * (1.0 - rng.uniform(0.0, 0.05, mid.shape))
    missing = rng.random(mid.shape) < 0.15  # bars an asset did not trade
    highs[missing] = np.nan
    lows[missing] = np.nan
    initial = 100_000.0
    equity = initial * np.exp(np.cumsum(rng.normal(0.0, 0.02, n_bars)))
    if rng.random() < 0.1:
        equity[rng.integers(0, n_bars)] = -1_000.0  # a bar under water: exposure skips it
    positions_value = rng.uniform(0.0, 0.5, n_bars) * equity
    cash = equity - positions_value
    last_price = mid[-1].copy()
    last_price[rng.random(n_assets) < 0.2] = np.nan
    with_bars = rng.random() < 0.85
    rf = float(rng.choice([0.0, 0.03]))
    start = datetime(2020, 1, 1)
    result = BacktestResult(
        timestamps=pl.Series("timestamp", [start + timedelta(days=i) for i in range(n_bars)]),
        assets=np.array([f"X{i}" for i in range(n_assets)], dtype=np.str_),
        cash=cash,
        positions_value=positions_value,
        gross_exposure=np.abs(positions_value) * rng.uniform(1.0, 1.5, n_bars),
        fills=fills,
        borrow_fees=rng.uniform(0.0, 1.0, n_bars),
        interest=rng.normal(0.0, 1.0, n_bars),
        orders=np.zeros(0, dtype=ORDER_DTYPE),
        last_price=last_price,
        config={},
        initial_cash=initial,
        risk_free_rate=rf,
        highs=highs if with_bars else None,
        lows=lows if with_bars else None,
        benchmark=mid[:, 0].copy() if rng.random() < 0.5 else None,
    )
    return result, initial, rf


@pytest.mark.parametrize("seed", range(60))
def test_random_fill_records_give_the_old_trades_and_metrics(seed):
    result, initial, rf = random_result(seed)
    assert_matches_oracle(result, initial_cash=initial, rf=rf)


def test_a_run_without_fills_gives_the_old_metrics():
    result, initial, rf = random_result(0)
    rec = result.records
    empty = BacktestResult(
        **{**rec._asdict(), "fills": rec.fills[:0]},
        config={},
        initial_cash=initial,
        risk_free_rate=rf,
    )
    assert empty.trades.height == 0
    assert_matches_oracle(empty, initial_cash=initial, rf=rf)


# ---------------------------------------------------------------------------------------------
# Both drivers
# ---------------------------------------------------------------------------------------------


def random_feed(rng: np.random.Generator, n_bars: int, n_assets: int) -> DataFeed:
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_bars, n_assets)), axis=0))
    open_ = np.concatenate([close[:1], close[:-1]]) * np.exp(rng.normal(0.0, 0.005, close.shape))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.01, close.shape))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.01, close.shape))
    fields = {"open": open_, "high": high, "low": low, "close": close}
    missing = rng.random(close.shape) < 0.05
    missing[0] = False
    for values in fields.values():
        values[missing] = np.nan
    fields["volume"] = np.full(close.shape, 1e6)
    times = np.datetime64("2015-01-01") + np.arange(n_bars).astype("timedelta64[D]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the missing bars are wanted here
        return DataFeed.from_arrays(times, [f"A{i}" for i in range(n_assets)], fields)


class Replay(Strategy):
    """Submits ``quantities[bar]`` (0: nothing) for each asset: the event driver's twin of
    ``run_orders``."""

    def __init__(self, quantities: np.ndarray, assets: list[str]) -> None:
        self.quantities = quantities
        self.assets = assets

    def on_data(self, timestamp, data, broker):
        for a, q in enumerate(self.quantities[data.index]):
            if q != 0.0:
                broker.submit_order(self.assets[a], float(q))


@pytest.mark.parametrize("driver", ["compiled", "event"])
@pytest.mark.parametrize("seed", range(4))
def test_runs_of_both_drivers_give_the_old_trades_and_metrics(driver, seed):
    rng = np.random.default_rng(100 + seed)
    n_bars, n_assets = 120, 4
    feed = random_feed(rng, n_bars, n_assets)
    fractional = seed % 2 == 1
    unit = 0.37 if fractional else 1.0
    q = np.round(rng.normal(0.0, 20.0, (n_bars, n_assets))) * unit
    q[rng.random(q.shape) < 0.7] = 0.0  # orders on about 30% of the asset-bars
    rf = 0.02
    config = BacktestConfig(
        initial_cash=100_000.0,
        account="margin",  # shorts and reversals
        fractional_shares=fractional,
        commission=0.001,
        slippage=0.0005,
        risk_free_rate=rf,
    )
    rules = StopLoss(0.04) if seed % 2 == 0 else None
    if driver == "compiled":
        result = run_orders(feed, q, config=config, position_rules=rules)
    else:
        strategy = Replay(q, list(feed.assets))
        result = Engine(feed, strategy, config, position_rules=rules).run()
    assert result.trades.height > 20
    assert (result.trades["direction"] == "short").any()
    assert_matches_oracle(result, initial_cash=100_000.0, rf=rf)


@pytest.mark.parametrize("seed", range(20))
def test_drawdown_bars_gives_the_old_loop_on_curves_with_nan_and_inf(seed):
    from ml4t.backtest.results.metrics import drawdown_bars

    rng = np.random.default_rng(seed)
    wealth = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.05, int(rng.integers(0, 80)))))
    odd = rng.random(len(wealth))
    wealth[odd < 0.1] = np.nan
    wealth[odd > 0.97] = rng.choice([np.inf, -np.inf])
    assert drawdown_bars(wealth) == oracle_drawdown_bars([float(w) for w in wealth])
