"""BacktestResult: what a run produced, as polars frames, metrics and a readable summary."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..kernels.records import (
    OPEN,
    ORDER_TYPE_NAMES,
    ORIGIN_NAMES,
    PARTIALLY_FILLED,
    R_END_OF_DATA,
    REASON_NAMES,
    STATUS_NAMES,
    TIF_NAMES,
)
from .metrics import (
    alpha_beta,
    compute_metrics,
    infer_periods_per_year,
    returns_from_equity,
    worst_drawdowns,
)
from .trades import match_trades, trade_excursions

if TYPE_CHECKING:
    from plotly.graph_objects import Figure


class RunRecords(NamedTuple):
    """The arrays a ``BacktestResult`` is built from, as the drivers recorded them: per-bar
    account records, the fill and order records (``kernels.records.FILL_DTYPE``,
    ``ORDER_DTYPE``), the last marks, and the feed's highs, lows and benchmark (None when
    absent). ``BacktestResult(**records._asdict(), ...)`` rebuilds a result from them; they
    are the result's own arrays, not copies: copy before changing one.

    Example:
        >>> records = result.records                       # doctest: +SKIP
        >>> len(records.fills) == result.fills.height      # doctest: +SKIP
        True
    """

    timestamps: pl.Series
    assets: NDArray[np.str_]
    cash: NDArray[np.float64]
    positions_value: NDArray[np.float64]
    gross_exposure: NDArray[np.float64]
    borrow_fees: NDArray[np.float64]
    interest: NDArray[np.float64]
    fills: NDArray[np.void]
    orders: NDArray[np.void]
    last_price: NDArray[np.float64]
    highs: NDArray[np.float64] | None
    lows: NDArray[np.float64] | None
    benchmark: NDArray[np.float64] | None


class _RoundTrips(NamedTuple):
    """A run's trades as ``trades.TRADE_DTYPE`` records, with their MAE and MFE."""

    records: NDArray[np.void]
    mae: NDArray[np.float64]
    mfe: NDArray[np.float64]


class BacktestResult:
    """Everything one backtest produced.

    Frames (polars): ``equity`` (one row per bar), ``fills``, ``trades`` (FIFO round trips,
    open ones last marked at the final close), ``orders`` (every order and its final status).
    ``metrics`` is a dict of floats; ``final_value`` the equity after the last bar;
    ``strategy`` a short description of the strategy that ran ("" when unknown).

    Example:
        >>> result = Engine(feed, MyStrategy(), BacktestConfig()).run()  # doctest: +SKIP
        >>> print(result.summary())                                      # doctest: +SKIP
        >>> result.fills.filter(pl.col("asset") == "AAPL")               # doctest: +SKIP
        >>> result.save("results/run1")                                  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        timestamps: pl.Series,
        assets: NDArray[np.str_],
        cash: NDArray[np.float64],
        positions_value: NDArray[np.float64],
        gross_exposure: NDArray[np.float64],
        fills: NDArray[np.void],
        borrow_fees: NDArray[np.float64] | None = None,
        interest: NDArray[np.float64] | None = None,
        orders: NDArray[np.void],
        last_price: NDArray[np.float64],
        config: dict[str, Any],
        initial_cash: float,
        periods_per_year: float | None = None,
        risk_free_rate: float = 0.0,
        highs: NDArray[np.float64] | None = None,
        lows: NDArray[np.float64] | None = None,
        benchmark: NDArray[np.float64] | None = None,
        strategy: str = "",
    ) -> None:
        self._timestamps = timestamps
        self._assets = assets
        self._cash = cash
        self._positions_value = positions_value
        self._gross = gross_exposure
        zeros = np.zeros(len(cash))
        self._borrow = zeros if borrow_fees is None else borrow_fees
        self._interest = zeros if interest is None else interest
        self._fills = fills
        self._orders = orders
        self._last_price = last_price
        self.config = config
        self.initial_cash = initial_cash
        # Inferred from the timestamps when first read (metrics ask for it; a run need not).
        self._periods_per_year = periods_per_year
        self._risk_free_rate = risk_free_rate
        # The feed's [bars, assets] highs and lows (for trade MAE/MFE) and benchmark prices.
        self._highs = highs
        self._lows = lows
        self._benchmark = benchmark
        self.strategy = strategy

    @property
    def periods_per_year(self) -> float:
        """Bars a year, for annualising: the config's ``periods_per_year``, else inferred from
        the timestamps in the feed's own time zone (``metrics.infer_periods_per_year``).

        Example:
            >>> result.periods_per_year  # daily bars on weekdays  # doctest: +SKIP
            252.0
        """
        if self._periods_per_year is None:
            self._periods_per_year = infer_periods_per_year(wall_clock(self._timestamps))
        return self._periods_per_year

    @periods_per_year.setter
    def periods_per_year(self, value: float) -> None:
        self._periods_per_year = value

    @property
    def records(self) -> RunRecords:
        """The arrays this result was built from (see ``RunRecords``), e.g. to stitch runs."""
        return RunRecords(
            timestamps=self._timestamps,
            assets=self._assets,
            cash=self._cash,
            positions_value=self._positions_value,
            gross_exposure=self._gross,
            borrow_fees=self._borrow,
            interest=self._interest,
            fills=self._fills,
            orders=self._orders,
            last_price=self._last_price,
            highs=self._highs,
            lows=self._lows,
            benchmark=self._benchmark,
        )

    @property
    def final_value(self) -> float:
        """Equity (cash plus positions at the last close) after the last bar."""
        if len(self._cash) == 0:
            return self.initial_cash
        return float(self._cash[-1] + self._positions_value[-1])

    @cached_property
    def equity(self) -> pl.DataFrame:
        """One row per bar: timestamp, cash, positions_value, equity, gross_exposure, drawdown,
        and the bar's financing cash flows: borrow_fee (paid on shorts) and interest (net)."""
        equity = self._cash + self._positions_value
        peaks = np.maximum.accumulate(np.concatenate(([self.initial_cash], equity)))[1:]
        return pl.DataFrame(
            {
                "timestamp": self._timestamps,
                "cash": self._cash,
                "positions_value": self._positions_value,
                "equity": equity,
                "gross_exposure": self._gross,
                "drawdown": equity / peaks - 1.0,
                "borrow_fee": self._borrow,
                "interest": self._interest,
            }
        )

    @cached_property
    def returns(self) -> pl.DataFrame:
        """One row per bar: timestamp and ``return``, the simple return of equity over the bar.

        The first bar's return is measured from the initial cash (``equity[0] / initial_cash -
        1``, nonzero only when the first bar traded and paid costs), so the returns compound to
        the total return and are the ones the metrics use.

        Example:
            >>> result.returns["return"].std()  # doctest: +SKIP
        """
        equity = self._cash + self._positions_value
        return pl.DataFrame(
            {
                "timestamp": self._timestamps,
                "return": returns_from_equity(equity, self.initial_cash),
            }
        )

    def drawdown_table(self, top: int = 5) -> pl.DataFrame:
        """The ``top`` deepest drawdowns, deepest first, as pyfolio lists them.

        Columns: ``start`` (the first bar below the running peak), ``trough`` (the lowest bar),
        ``recovery`` (the first bar back at or above the peak; null while under water at the
        end), ``depth`` (trough equity over the peak, minus one: negative) and ``bars`` (bars
        spent below the peak: from ``start`` up to ``recovery``, or to the end). The initial
        cash is the peak before the first bar, as in ``equity["drawdown"]``.

        Example:
            >>> result.drawdown_table(top=3)  # doctest: +SKIP
        """
        equity = self._cash + self._positions_value
        found = worst_drawdowns(equity, initial=self.initial_cash, top=top)
        n = len(equity)
        starts = np.array([d[0] for d in found], dtype=np.int64)
        troughs = np.array([d[1] for d in found], dtype=np.int64)
        recoveries = np.array([d[2] for d in found], dtype=np.int64)
        return pl.DataFrame(
            {
                "start": self._timestamps.gather(starts),
                "trough": self._timestamps.gather(troughs),
                "recovery": _times_at(self._timestamps, recoveries),
                "depth": np.array([d[3] for d in found], dtype=np.float64),
                "bars": np.where(recoveries >= 0, recoveries, n) - starts,
            }
        )

    def exit_reason_table(self) -> pl.DataFrame:
        """Closed trades grouped by why they closed (``signal``, ``stop_loss``, ``take_profit``,
        ``trailing_stop``, ``rebalance``, ...), most trades first.

        Columns: ``exit_reason``, ``trades``, ``pnl`` (net, summed), ``avg_pnl``, ``win_rate``
        (share of trades with pnl > 0), ``avg_return`` and ``avg_bars_held``.

        Example:
            >>> result.exit_reason_table()  # doctest: +SKIP
        """
        closed = self.trades.filter(pl.col("status") == "closed")
        return (
            closed.group_by("exit_reason")
            .agg(
                pl.len().alias("trades"),
                pl.col("pnl").sum().alias("pnl"),
                pl.col("pnl").mean().alias("avg_pnl"),
                (pl.col("pnl") > 0).mean().alias("win_rate"),
                pl.col("return").mean().alias("avg_return"),
                pl.col("bars_held").mean().alias("avg_bars_held"),
            )
            .with_columns(pl.col("trades").cast(pl.Int64))
            .sort(["trades", "exit_reason"], descending=[True, False])
        )

    @cached_property
    def fills(self) -> pl.DataFrame:
        """One row per fill, in execution order. ``quantity`` > 0; ``side`` gives direction."""
        f = self._fills
        qty = f["quantity"]
        return pl.DataFrame(
            {
                "timestamp": self._timestamps.gather(f["bar"]),
                "asset": _labels(self._assets, f["asset"]),
                "side": _labels(("sell", "buy"), qty > 0),
                "quantity": np.abs(qty),
                "price": f["price"],
                "commission": f["commission"],
                "slippage": f["slippage"],
                "order_id": f["order_id"],
                "reason": _labels(ORIGIN_NAMES, f["origin"]),
            }
        )

    @cached_property
    def _round_trips(self) -> _RoundTrips:
        """The trade records and their excursions, computed once for both ``trades`` and
        ``metrics`` (the metrics need no frame)."""
        t = match_trades(self._fills, self._last_price)
        mae, mfe = trade_excursions(t, self._highs, self._lows, last_bar=len(self._timestamps) - 1)
        return _RoundTrips(t, mae, mfe)

    @cached_property
    def trades(self) -> pl.DataFrame:
        """FIFO round trips: entry/exit time and price, quantity, pnl (net), return, bars held,
        and the reasons of the fills that opened and closed them (``exit_reason``: ``stop_loss``,
        ``take_profit``, ``trailing_stop``, ``time_exit``, ``rebalance``, ``fold_end``, ...;
        ``open`` while open)."""
        t, mae, mfe = self._round_trips
        ts = self._timestamps
        is_open = t["is_open"]
        last_bar = len(ts) - 1
        bars_held = np.where(is_open, last_bar, t["exit_bar"]) - t["entry_bar"]
        # An open trade's exit reason is the name after the last origin: "open".
        exit_code = np.where(is_open, len(ORIGIN_NAMES), np.maximum(t["exit_origin"], 0))
        return pl.DataFrame(
            {
                "asset": _labels(self._assets, t["asset"]),
                "direction": _labels(("short", "long"), t["direction"] > 0),
                "status": _labels(("closed", "open"), is_open),
                "entry_time": ts.gather(t["entry_bar"]),
                "exit_time": _times_at(ts, t["exit_bar"]),
                "entry_price": t["entry_price"],
                "exit_price": t["exit_price"],
                "quantity": t["quantity"],
                "pnl": t["pnl"],
                "return": t["return"],
                "commission": t["commission"],
                "bars_held": bars_held,
                "mae": mae,
                "mfe": mfe,
                "entry_reason": _labels(ORIGIN_NAMES, t["entry_origin"]),
                "exit_reason": _labels((*ORIGIN_NAMES, "open"), exit_code),
            }
        )

    @cached_property
    def orders(self) -> pl.DataFrame:
        """Every order submitted, with its final status and the reason for it."""
        o = self._orders
        ts = self._timestamps
        status = o["status"].copy()
        reason = o["reason"].copy()
        still_open = (status == OPEN) | (status == PARTIALLY_FILLED)
        reason[still_open & (reason == 0)] = R_END_OF_DATA
        qty = o["quantity"]
        return pl.DataFrame(
            {
                "order_id": np.arange(len(o), dtype=np.int64),
                # Orders from on_start carry bar -1 (they act on the first bar, as orders from
                # Backtrader's start() do); they were submitted by the first bar's time.
                "submitted": ts.gather(np.maximum(o["submit_bar"], 0)),
                "asset": self._assets[o["asset"]].astype(str),
                "side": np.where(qty > 0, "buy", "sell"),
                "order_type": np.asarray(ORDER_TYPE_NAMES)[o["order_type"]],
                "limit_price": o["limit_price"],
                "stop_price": o["stop_price"],
                "tif": np.asarray(TIF_NAMES)[o["tif"]],
                "parent_id": o["parent"],
                "quantity": np.abs(qty),
                "filled_quantity": np.abs(o["filled"]),
                "avg_fill_price": o["avg_price"],
                "commission": o["commission"],
                "status": np.asarray(STATUS_NAMES)[status],
                "reason": np.asarray(REASON_NAMES)[reason],
                "origin": np.asarray(ORIGIN_NAMES)[o["origin"]],
                "ended": _times_at(ts, o["end_bar"]),
            },
            schema_overrides={
                "asset": pl.String,
                "side": pl.String,
                "order_type": pl.String,
                "tif": pl.String,
                "status": pl.String,
                "reason": pl.String,
                "origin": pl.String,
            },
        )

    @cached_property
    def order_events(self) -> pl.DataFrame:
        """Every order's lifecycle, one row per transition: ``submitted``, each fill
        (``partially_filled`` or the final ``filled``), and ``cancelled``/``rejected``/``expired``,
        with the quantity it moved and the reason."""
        orders = self.orders
        submitted = orders.select(
            "order_id",
            pl.col("submitted").alias("timestamp"),
            pl.lit("submitted").alias("event"),
            "quantity",
            pl.lit("").alias("reason"),
            pl.lit(0).alias("seq"),
        )
        fills = self.fills.with_row_index("seq").with_columns(pl.col("seq").cast(pl.Int32) + 1)
        fills = fills.join(orders.select("order_id", "status", "reason"), on="order_id", how="left")
        last_fill = pl.col("seq") == pl.col("seq").max().over("order_id")
        fill_events = fills.select(
            "order_id",
            "timestamp",
            pl.when(last_fill & (pl.col("status") == "filled"))
            .then(pl.lit("filled"))
            .otherwise(pl.lit("partially_filled"))
            .alias("event"),
            "quantity",
            pl.when(last_fill & (pl.col("status") == "filled"))
            .then(pl.col("reason_right"))
            .otherwise(pl.lit(""))
            .alias("reason"),
            "seq",
        )
        ended = orders.filter(pl.col("status").is_in(["cancelled", "rejected", "expired"])).select(
            "order_id",
            pl.col("ended").alias("timestamp"),
            pl.col("status").alias("event"),
            (pl.col("quantity") - pl.col("filled_quantity")).alias("quantity"),
            "reason",
            pl.lit(2**31 - 1).alias("seq"),
        )
        frames = [submitted, fill_events, ended]
        frames = [f.with_columns(pl.col("seq").cast(pl.Int64)) for f in frames]
        return pl.concat(frames).sort("timestamp", "order_id", "seq").drop("seq")

    @cached_property
    def metrics(self) -> dict[str, float]:
        """Performance, trade and cost figures of the run.

        Returns: total_return, cagr, volatility, sharpe, sortino, calmar, max_drawdown (a
        negative fraction), max_drawdown_bars (longest stretch below a peak), n_trades,
        win_rate, profit_factor, avg_win, avg_loss, expectancy (mean net PnL of closed trades),
        exposure (mean gross exposure over equity), turnover (annual, one-way), final_value,
        n_fills, total_commission, total_slippage, total_borrow_fee, total_interest,
        total_costs, gross_pnl (before costs) and costs_share_of_gross_pnl.
        """
        t, mae, mfe = self._round_trips
        closed = ~t["is_open"]
        equity = self._cash + self._positions_value
        m = compute_metrics(
            equity,
            initial_cash=self.initial_cash,
            periods_per_year=self.periods_per_year,
            gross_exposure=self._gross,
            trade_pnl=t["pnl"][closed],
            risk_free_rate=self._risk_free_rate,
        )
        m["final_value"] = self.final_value
        m["n_fills"] = len(self._fills)
        m["total_commission"] = float(self._fills["commission"].sum())
        m["total_slippage"] = float(self._fills["slippage"].sum())
        m["total_borrow_fee"] = float(self._borrow.sum())
        m["total_interest"] = float(self._interest.sum())
        m["alpha"], m["beta"] = self._alpha_beta(equity)
        m["avg_mae"] = _mean(mae[closed])
        m["avg_mfe"] = _mean(mfe[closed])
        # Annual one-way turnover: half of what was traded, over the average equity, per year.
        traded = float(np.sum(np.abs(self._fills["quantity"] * self._fills["price"])))
        years = len(equity) / self.periods_per_year
        mean_equity = float(np.mean(equity)) if len(equity) else math.nan
        m["turnover"] = traded / 2.0 / mean_equity / years if years > 0 else math.nan
        costs = m["total_commission"] + m["total_slippage"] + m["total_borrow_fee"]
        m["total_costs"] = costs
        # What the strategy made before costs, and the share of it the costs took.
        gross = m["final_value"] - self.initial_cash + costs
        m["gross_pnl"] = gross
        m["costs_share_of_gross_pnl"] = costs / gross if gross > 0 else math.nan
        return m

    def _alpha_beta(self, equity: NDArray[np.float64]) -> tuple[float, float]:
        """Annualised alpha and beta of the per-bar returns against the benchmark's, as
        empyrical computes them (bars where either return is NaN are left out)."""
        if self._benchmark is None or len(equity) < 3:
            return math.nan, math.nan
        returns = returns_from_equity(equity, self.initial_cash)[1:]
        bench = np.asarray(self._benchmark, dtype=np.float64)
        bench_returns = bench[1:] / bench[:-1] - 1.0
        return alpha_beta(returns, bench_returns, periods_per_year=self.periods_per_year)

    def summary(self) -> str:
        """A readable table of the run's headline figures.

        Costs are commission, slippage and borrow fees; "Costs / gross PnL" is their sum over
        the PnL before them (final value - initial cash + costs), n/a when that is not positive.
        Alpha (annualised) and beta show when the run has a benchmark.
        """
        m = self.metrics
        ts = self._timestamps
        period = f"{_when(ts[0])} -> {_when(ts[-1])}" if len(ts) else "(no bars)"
        rows = [
            ("Period", period),
            ("Bars x assets", f"{len(ts)} x {len(self._assets)}"),
            ("Initial cash", _money(self.initial_cash)),
            ("Final value", _money(m["final_value"])),
            ("Total return", _pct(m["total_return"])),
            ("CAGR", _pct(m["cagr"])),
            ("Volatility (ann.)", _pct(m["volatility"])),
            ("Sharpe", _num(m["sharpe"])),
            ("Sortino", _num(m["sortino"])),
            ("Calmar", _num(m["calmar"])),
            ("Max drawdown", _pct(m["max_drawdown"])),
            ("Max drawdown length", f"{int(m['max_drawdown_bars'])} bars"),
            ("Trades (closed)", f"{int(m['n_trades'])}"),
            ("Win rate", _pct(m["win_rate"])),
            ("Profit factor", _num(m["profit_factor"])),
            ("Turnover (ann.)", _num(m["turnover"])),
            ("Avg exposure", _pct(m["exposure"])),
            ("Fills", f"{int(m['n_fills'])}"),
            ("Commission paid", _money(m["total_commission"])),
            ("Slippage paid", _money(m["total_slippage"])),
            ("Borrow fees paid", _money(m["total_borrow_fee"])),
            ("Interest (net)", _money(m["total_interest"])),
            ("Total costs", _money(m["total_costs"])),
            ("Costs / gross PnL", _pct(m["costs_share_of_gross_pnl"])),
        ]
        if self._benchmark is not None:
            rows += [("Alpha (ann.)", _pct(m["alpha"])), ("Beta", _num(m["beta"]))]
        width = max(len(k) for k, _ in rows)
        header = f"Backtest summary: {self.strategy}" if self.strategy else "Backtest summary"
        lines = [header, "-" * (width + 24)]
        lines += [f"{k:<{width}}  {v:>20}" for k, v in rows]
        return "\n".join(lines)

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write equity, fills, trades and orders as Parquet, metrics as JSON and the config
        as YAML into ``directory``; returns the directory.

        The folder is written whole or not at all: everything goes to a temporary folder beside
        it, which then takes its place. An earlier result saved there is replaced whole (with
        any ``report.html`` beside it), so no file of it outlives the new one. A folder that
        holds other files is refused (``ConfigError``) unless ``overwrite=True``: then each of
        the save's own entries (the Parquet files, ``metrics.json``, ``config.yaml`` and the
        ``records`` folder) replaces the one of that name, and the other files stay. A config
        value YAML cannot
        record, such as a Python callable as commission (the error names the key); nothing is
        written then. In ``metrics.json`` a NaN metric is ``null`` and an infinite one the
        string ``"inf"`` (or ``"-inf"``), keeping the file strict JSON.

        Example:
            >>> result.save("results/run1")  # doctest: +SKIP
        """
        import shutil
        import uuid

        from ..errors import ConfigError

        out = Path(directory)
        config_text = _config_yaml(self.config)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"cannot save into {out}: it is a file, not a folder")
        foreign = (
            out.is_dir() and any(out.iterdir()) and not (out / "records" / "meta.json").is_file()
        )
        if foreign and not overwrite:
            raise ConfigError(
                f"cannot save into {out}: it holds files but no saved result (no "
                "records/meta.json), and a save replaces the whole folder; give an empty or new "
                "folder, or one an earlier save wrote"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:8]
        staging = out.parent / f".{out.name}.saving-{tag}"
        staging.mkdir()
        try:
            self._write(staging, config_text)
            if foreign:
                _replace_entries(staging, out, tag)
                shutil.rmtree(staging, ignore_errors=True)
            elif out.exists():
                old = out.parent / f".{out.name}.replaced-{tag}"
                out.rename(old)
                try:
                    staging.rename(out)
                except BaseException:
                    old.rename(out)  # the earlier result stays as it was
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                staging.rename(out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return out

    def _write(self, out: Path, config_text: str) -> None:
        """Every file of a save, into the (new, empty) folder ``out``."""
        self.equity.write_parquet(out / "equity.parquet")
        self.fills.write_parquet(out / "fills.parquet")
        self.trades.write_parquet(out / "trades.parquet")
        self.orders.write_parquet(out / "orders.parquet")
        metrics = {k: _json_number(v) for k, v in self.metrics.items()}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False))
        (out / "config.yaml").write_text(config_text)
        # The raw records and what the frames do not carry, so ``load`` rebuilds this result.
        records = out / "records"
        records.mkdir()
        np.save(records / "fills.npy", self._fills, allow_pickle=False)
        np.save(records / "orders.npy", self._orders, allow_pickle=False)
        for name, array in (
            ("highs", self._highs), ("lows", self._lows), ("benchmark", self._benchmark)
        ):  # fmt: skip
            if array is not None:
                np.save(records / f"{name}.npy", array, allow_pickle=False)
        meta = {
            "assets": [str(a) for a in self._assets],
            "last_price": [None if math.isnan(p) else float(p) for p in self._last_price],
            "initial_cash": self.initial_cash,
            "periods_per_year": self.periods_per_year,
            "risk_free_rate": self._risk_free_rate,
            "strategy": self.strategy,
        }
        (records / "meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: str | Path) -> BacktestResult:
        """Read back a result written by ``save`` (for example to rebuild its report).

        Example:
            >>> result = BacktestResult.load("results/run1")  # doctest: +SKIP
        """
        from ..config import load_yaml
        from ..errors import ConfigError

        src = Path(directory)
        records = src / "records"
        if not (records / "meta.json").is_file():
            raise ConfigError(
                f"{src} does not hold saved results (no records/meta.json); write them with "
                "result.save(directory) or ml4t-backtest run"
            )
        meta = json.loads((records / "meta.json").read_text())
        equity = pl.read_parquet(src / "equity.parquet")
        return cls(
            timestamps=equity["timestamp"],
            assets=np.asarray(meta["assets"], dtype=np.str_),
            cash=equity["cash"].to_numpy(),
            positions_value=equity["positions_value"].to_numpy(),
            gross_exposure=equity["gross_exposure"].to_numpy(),
            borrow_fees=equity["borrow_fee"].to_numpy(),
            interest=equity["interest"].to_numpy(),
            fills=np.load(records / "fills.npy", allow_pickle=False),
            orders=np.load(records / "orders.npy", allow_pickle=False),
            last_price=np.array(
                [math.nan if p is None else p for p in meta["last_price"]], dtype=np.float64
            ),
            config=load_yaml((src / "config.yaml").read_text(), source=str(src / "config.yaml")),
            initial_cash=meta["initial_cash"],
            periods_per_year=meta["periods_per_year"],
            risk_free_rate=meta["risk_free_rate"],
            highs=_optional(records / "highs.npy"),
            lows=_optional(records / "lows.npy"),
            benchmark=_optional(records / "benchmark.npy"),
            strategy=str(meta.get("strategy", "")),
        )

    def plot(
        self,
        panel: str = "equity",
        *,
        benchmark: Sequence[float] | NDArray[np.float64] | None = None,
        rolling_window: int = 126,
    ) -> Figure:
        """A plotly ``Figure`` of one panel of the run (shows inline in a notebook, offline).

        Panels: ``equity`` (equity, and the benchmark rebased to the initial cash, over the
        drawdown), ``drawdowns`` (underwater, the five worst shaded), ``rolling`` (volatility,
        Sharpe and, with a benchmark, beta over the last ``rolling_window`` bars: 126, about six
        months of daily bars, or a quarter of a shorter run), ``monthly``, ``yearly``,
        ``returns`` (per-bar return histogram), ``exposure`` (long, short, net, gross as % of
        equity), ``positions`` (open positions), ``turnover`` (monthly, one-way), ``trades``
        (each trade's PnL at its exit, by exit reason), ``mae_mfe``, ``exit_reasons`` and
        ``assets``. An unknown name raises ``ConfigError``. ``benchmark`` prices (one per bar)
        default to the run's own.

        Example:
            >>> result.plot()                # doctest: +SKIP
            >>> result.plot("exposure")      # doctest: +SKIP
        """
        from .plot import figure

        return figure(self, panel, benchmark=benchmark, rolling_window=rolling_window)

    def report(
        self,
        path: str | Path,
        *,
        title: str | None = None,
        benchmark: Sequence[float] | None = None,
        boundaries: Sequence[object] = (),
        rolling_window: int = 126,
    ) -> Path:
        """Write a self-contained HTML tearsheet (works offline) and return its path.

        ``title`` defaults to "Backtest report" and the strategy's description; ``benchmark``:
        prices aligned with the bars, drawn against the equity and used for alpha, beta and the
        rolling beta (default: the run's own); ``boundaries``: timestamps marked on the time
        charts (walk-forward folds); ``rolling_window``: bars of the rolling statistics.

        Example:
            >>> result.report("results/run1/report.html")  # doctest: +SKIP
        """
        from .report import write_report

        return write_report(
            self,
            path,
            title=title,
            benchmark=benchmark,
            boundaries=boundaries,
            rolling_window=rolling_window,
        )

    def __repr__(self) -> str:
        return (
            f"BacktestResult(bars={len(self._timestamps)}, assets={len(self._assets)}, "
            f"fills={len(self._fills)}, final_value={self.final_value:,.2f})"
        )


def wall_clock(timestamps: pl.Series) -> NDArray[np.datetime64]:
    """Bar times as local wall-clock times, naive (a tz-aware series read in its own zone):
    what tells on which day of the week each bar falls (``infer_periods_per_year``).

    Example:
        >>> from datetime import datetime
        >>> utc = pl.Series([datetime(2024, 1, 1, 15)]).dt.replace_time_zone("UTC")
        >>> str(wall_clock(utc.dt.convert_time_zone("Asia/Tokyo"))[0])
        '2024-01-02T00:00:00.000000'
    """
    dtype = timestamps.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        timestamps = timestamps.dt.replace_time_zone(None)
    return timestamps.to_numpy()


def describe_strategy(strategy: object) -> str:
    """A short description of a strategy: its class and its simple public settings.

    Example:
        >>> class Momentum:
        ...     def __init__(self) -> None:
        ...         self.lookback, self.n, self._state = 20, 5, []
        >>> describe_strategy(Momentum())
        'Momentum(lookback=20, n=5)'
    """
    settings = [
        f"{name}={value!r}"
        for name, value in vars(strategy).items()
        if not name.startswith("_") and isinstance(value, str | int | float | bool | None)
    ]
    text = f"{type(strategy).__name__}({', '.join(settings[:8])})"
    return text if len(text) <= 160 else text[:157] + "..."


def _json_number(value: float) -> float | str | None:
    """A metric as strict JSON has it: NaN as null, infinities as "inf" and "-inf"."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _config_yaml(config: dict[str, Any]) -> str:
    """The config as YAML, or a ``ConfigError`` naming the first key YAML cannot record."""
    import yaml

    from ..errors import ConfigError

    try:
        return str(yaml.safe_dump(config, sort_keys=False))
    except yaml.YAMLError:
        key, value = _unrecordable(config, "") or ("?", None)
        raise ConfigError(
            f"cannot save: config key '{key}' holds {value!r} ({type(value).__name__}), which "
            "config.yaml cannot record, so the saved run could not be reproduced from it; give "
            "it as a number or a built-in model (e.g. commission=PerShareCommission(0.005)) to "
            "save the run"
        ) from None


def _unrecordable(value: object, key: str) -> tuple[str, object] | None:
    """The key and value of the first leaf in ``value`` that is not a plain YAML scalar."""
    if type(value) is dict:
        for k, v in value.items():
            found = _unrecordable(v, f"{key}.{k}" if key else str(k))
            if found is not None:
                return found
        return None
    if type(value) is list:
        for i, v in enumerate(value):
            found = _unrecordable(v, f"{key}[{i}]")
            if found is not None:
                return found
        return None
    if value is None or type(value) in (str, bool, int, float):
        return None
    return key, value


def _replace_entries(staging: Path, out: Path, tag: str) -> None:
    """Move each entry of ``staging`` into ``out``, replacing the entry of the same name (a
    save into a folder that also holds other files, which stay)."""
    import shutil

    for entry in sorted(staging.iterdir()):
        target = out / entry.name
        if target.exists():
            old = out / f".{entry.name}.replaced-{tag}"
            target.rename(old)
            entry.rename(target)
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
        else:
            entry.rename(target)


def _optional(path: Path) -> NDArray[np.float64] | None:
    return np.load(path, allow_pickle=False) if path.is_file() else None


def _labels(names: Sequence[str] | NDArray[np.str_], codes: NDArray[Any]) -> pl.Series:
    """The name of each code (an index into ``names``) as a string column: polars gathers
    from the few names, where numpy would build one Python string per row."""
    return pl.Series(values=np.asarray(names, dtype=str), dtype=pl.String).gather(
        np.asarray(codes, dtype=np.int64)
    )


def _mean(values: NDArray[np.float64]) -> float:
    """Mean as the trades frame's column gives it (polars; NaN propagates), NaN when empty."""
    if len(values) == 0:
        return math.nan
    return float(pl.Series(values=values, dtype=pl.Float64).mean())  # type: ignore[arg-type]


def _times_at(timestamps: pl.Series, bars: NDArray[np.int64]) -> pl.Series:
    """Timestamps of ``bars``; a negative bar (not happened) gives null."""
    idx = pl.Series("i", bars, dtype=pl.Int64)
    idx = idx.to_frame().select(pl.when(pl.col("i") >= 0).then(pl.col("i")))["i"]
    return timestamps.gather(idx)


def _when(timestamp: datetime) -> str:
    """A date alone for daily bars stamped at midnight, else the full timestamp."""
    if timestamp.time() == time(0) and timestamp.tzinfo is None:
        return timestamp.date().isoformat()
    return str(timestamp)


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.2f}%"


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3f}"
