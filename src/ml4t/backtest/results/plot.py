"""Plotly figures of a result: the panels ``result.plot(name)`` draws and the report lays out.

Every panel is a function of the result (and optional benchmark prices) returning a plotly
``Figure``; nothing here fetches anything, so the figures work offline in a notebook and inline
in the HTML report. Panels that run over time mark walk-forward fold ``boundaries``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..errors import ConfigError
from .metrics import (
    period_returns,
    returns_from_equity,
    rolling_beta,
    rolling_sharpe,
    rolling_volatility,
    worst_drawdowns,
)

if TYPE_CHECKING:
    from .result import BacktestResult

# About six months of daily bars: long enough for a stable volatility and beta, short enough
# to show regimes (pyfolio draws its rolling beta over six months too).
ROLLING_BARS = 126
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_MAX_ASSETS_SHOWN = 40
_GREEN, _RED, _BLUE, _GREY = "#2ca02c", "#d62728", "#1f77b4", "#7f7f7f"


@dataclass(frozen=True)
class PlotInputs:
    """What the panels read, computed once per result (a report draws a dozen panels)."""

    result: BacktestResult
    timestamps: list[datetime]
    equity: NDArray[np.float64]
    returns: NDArray[np.float64]
    benchmark: NDArray[np.float64] | None
    benchmark_returns: NDArray[np.float64] | None
    window: int
    boundaries: tuple[object, ...]


def plot_inputs(
    result: BacktestResult,
    *,
    benchmark: Sequence[float] | NDArray[np.float64] | None = None,
    rolling_window: int = ROLLING_BARS,
    boundaries: Sequence[object] = (),
) -> PlotInputs:
    """Collect what the panels of ``result`` need; ``benchmark`` prices (one per bar) default
    to the run's own benchmark. The rolling window shrinks to a quarter of a shorter run."""
    eq = result.equity
    equity = eq["equity"].to_numpy()
    n = len(equity)
    if (
        isinstance(rolling_window, bool)
        or not isinstance(rolling_window, int)
        or rolling_window < 2
    ):
        raise ConfigError(
            f"rolling_window must be an integer number of bars >= 2, got {rolling_window!r}"
        )
    prices = benchmark if benchmark is not None else result.records.benchmark
    bench = bench_returns = None
    if prices is not None:
        bench = np.asarray(prices, dtype=np.float64)
        if bench.shape != (n,):
            raise ConfigError(
                f"benchmark prices must have one value per bar, shape ({n},), got {bench.shape}"
            )
        bench_returns = np.concatenate(([np.nan], bench[1:] / bench[:-1] - 1.0))
    return PlotInputs(
        result=result,
        timestamps=eq["timestamp"].to_list(),
        equity=equity,
        returns=returns_from_equity(equity, result.initial_cash),
        benchmark=bench,
        benchmark_returns=bench_returns,
        window=min(rolling_window, max(2, n // 4)),
        boundaries=tuple(boundaries),
    )


def equity_figure(p: PlotInputs) -> Any:
    """Equity (and the benchmark rebased to the initial cash) over the drawdown, sharing x."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04
    )
    fig.add_scatter(x=p.timestamps, y=p.equity, name="strategy", line={"width": 1.6}, row=1, col=1)
    if p.benchmark is not None:
        finite = p.benchmark[np.isfinite(p.benchmark)]
        first = finite[0] if len(finite) else math.nan
        fig.add_scatter(
            x=p.timestamps,
            y=p.benchmark / first * p.result.initial_cash,
            name="benchmark",
            line={"width": 1.2, "color": _GREY},
            row=1,
            col=1,
        )
    fig.add_scatter(
        x=p.timestamps,
        y=p.result.equity["drawdown"].to_numpy() * 100,
        fill="tozeroy",
        name="drawdown",
        line={"width": 1, "color": _RED},
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown (%)", row=2, col=1)
    return _finish(fig, p, height=520, time=True)


def drawdowns_figure(p: PlotInputs, *, top: int = 5) -> Any:
    """The underwater curve with the ``top`` worst drawdowns shaded and numbered."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Scatter(
            x=p.timestamps,
            y=p.result.equity["drawdown"].to_numpy() * 100,
            fill="tozeroy",
            name="drawdown",
            line={"width": 1, "color": _RED},
        )
    )
    last = len(p.timestamps) - 1
    for rank, (start, _, recovery, depth) in enumerate(
        worst_drawdowns(p.equity, initial=p.result.initial_cash, top=top), start=1
    ):
        fig.add_vrect(
            x0=p.timestamps[start],
            x1=p.timestamps[recovery if recovery >= 0 else last],
            fillcolor="orange",
            opacity=0.15,
            line_width=0,
            annotation_text=f"{rank}: {100 * depth:.1f}%",
            annotation_position="bottom left",
        )
    fig.update_yaxes(title_text="drawdown (%)")
    return _finish(fig, p, height=340, time=True)


def rolling_figure(p: PlotInputs) -> Any:
    """Rolling annualised volatility and Sharpe, and rolling beta when there is a benchmark,
    each over the last ``p.window`` bars."""
    from plotly.subplots import make_subplots

    ppy = p.result.periods_per_year
    rows = 3 if p.benchmark_returns is not None else 2
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.05)
    vol = rolling_volatility(p.returns, p.window, periods_per_year=ppy) * 100
    fig.add_scatter(x=p.timestamps, y=vol, name="volatility (%)", row=1, col=1)
    sharpe = rolling_sharpe(p.returns, p.window, periods_per_year=ppy)
    fig.add_scatter(x=p.timestamps, y=sharpe, name="Sharpe", row=2, col=1)
    fig.update_yaxes(title_text="volatility (%)", row=1, col=1)
    fig.update_yaxes(title_text="Sharpe", row=2, col=1)
    if p.benchmark_returns is not None:
        beta = rolling_beta(p.returns, p.benchmark_returns, p.window)
        fig.add_scatter(x=p.timestamps, y=beta, name="beta", row=3, col=1)
        fig.update_yaxes(title_text="beta", row=3, col=1)
    return _finish(fig, p, height=200 + 140 * rows, time=True)


def monthly_figure(p: PlotInputs) -> Any:
    """Each calendar month's return (%) as a year-by-month heatmap."""
    import plotly.graph_objects as go

    ts = p.result.equity["timestamp"]
    labels = (ts.dt.year() * 100 + ts.dt.month()).cast(pl.Int64).to_numpy()
    months, values = period_returns(labels, p.equity, initial=p.result.initial_cash)
    years = sorted({int(m) // 100 for m in months})
    grid = np.full((len(years), 12), np.nan)
    for label, value in zip(months, values, strict=True):
        grid[years.index(int(label) // 100), int(label) % 100 - 1] = value * 100
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=_MONTHS,
            y=[str(y) for y in years],
            colorscale="RdYlGn",
            zmid=0,
            text=np.where(np.isnan(grid), "", np.char.mod("%.1f", np.nan_to_num(grid))),
            texttemplate="%{text}",
            colorbar={"title": "%"},
            hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
        )
    )
    fig.update_yaxes(type="category", autorange="reversed")
    return _finish(fig, p, height=max(340, 120 + 28 * len(years)))


def yearly_figure(p: PlotInputs) -> Any:
    """Each calendar year's compounded return (%), the first from the initial cash."""
    import plotly.graph_objects as go

    years = p.result.equity["timestamp"].dt.year().cast(pl.Int64).to_numpy()
    labels, values = period_returns(years, p.equity, initial=p.result.initial_cash)
    fig = go.Figure(
        go.Bar(
            x=[str(y) for y in labels],
            y=values * 100,
            marker_color=[_GREEN if v >= 0 else _RED for v in values],
            text=[f"{100 * v:.1f}%" for v in values],
            textposition="outside",
            cliponaxis=False,
            name="yearly return",
        )
    )
    # Room above and below the bars for their outside labels.
    low = min(0.0, float(values.min())) * 100 if len(values) else 0.0
    high = max(0.0, float(values.max())) * 100 if len(values) else 1.0
    pad = 0.15 * max(high - low, 1.0)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title_text="return (%)", range=[low - (pad if low < 0 else 0), high + pad])
    return _finish(fig, p, height=340)


def returns_figure(p: PlotInputs) -> Any:
    """The distribution of per-bar returns (%), with their mean marked."""
    import plotly.graph_objects as go

    r = p.returns[np.isfinite(p.returns)] * 100
    fig = go.Figure(go.Histogram(x=r, nbinsx=60, name="bar returns", marker_color=_BLUE))
    if len(r):
        fig.add_vline(x=float(r.mean()), line_color=_RED, annotation_text="mean")
    fig.update_xaxes(title_text="return per bar (%)")
    fig.update_yaxes(title_text="bars")
    return _finish(fig, p, height=340)


def exposure_figure(p: PlotInputs) -> Any:
    """Long, short, net and gross exposure over time, as a percent of equity."""
    import plotly.graph_objects as go

    eq = p.result.equity
    net = eq["positions_value"].to_numpy()
    gross = eq["gross_exposure"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(p.equity > 0, 100.0 / p.equity, np.nan)
    # Net = long - |short| and gross = long + |short|, so each side is their half-sum.
    series = {
        "long": ((gross + net) / 2 * scale, _GREEN),
        "short": (-(gross - net) / 2 * scale, _RED),
        "net": (net * scale, _BLUE),
        "gross": (gross * scale, _GREY),
    }
    fig = go.Figure()
    for name, (values, color) in series.items():
        fig.add_scatter(x=p.timestamps, y=values, name=name, line={"width": 1.3, "color": color})
    fig.update_yaxes(title_text="% of equity")
    return _finish(fig, p, height=340, time=True)


def positions_figure(p: PlotInputs) -> Any:
    """The number of open positions at each bar's close, on whole-number ticks."""
    import plotly.graph_objects as go

    counts = open_positions(p.result)
    fig = go.Figure(
        go.Scatter(x=p.timestamps, y=counts, name="positions", line={"shape": "hv", "width": 1.3})
    )
    top = int(counts.max()) if len(counts) else 0
    fig.update_yaxes(
        title_text="positions",
        rangemode="tozero",
        range=[0, top + max(1, math.ceil(top * 0.1))],
        dtick=max(1, math.ceil(top / 6)),
        tickformat="d",
    )
    return _finish(fig, p, height=300, time=True)


def turnover_figure(p: PlotInputs) -> Any:
    """Each month's one-way turnover: half the traded notional over the month's mean equity."""
    import plotly.graph_objects as go

    table = monthly_turnover(p.result)
    fig = go.Figure(
        go.Bar(
            x=table["month"].to_list(),
            y=(table["turnover"] * 100).to_list(),
            name="turnover",
            marker_color=_BLUE,
        )
    )
    fig.update_yaxes(title_text="% of equity")
    return _finish(fig, p, height=300)


def trades_figure(p: PlotInputs) -> Any:
    """Each trade's net PnL at its exit (open trades at the last bar), by exit reason."""
    import plotly.graph_objects as go

    trades = p.result.trades
    last = p.timestamps[-1] if p.timestamps else None
    trades = trades.with_columns(
        pl.col("exit_time").fill_null(pl.lit(last)).alias("at"),
        pl.when(pl.col("status") == "open")
        .then(pl.lit("open"))
        .otherwise(pl.col("exit_reason"))
        .alias("why"),
    )
    fig = go.Figure()
    for reason in sorted(set(trades["why"].to_list())):
        part = trades.filter(pl.col("why") == reason)
        fig.add_trace(
            go.Scatter(
                x=part["at"].to_list(),
                y=part["pnl"].to_list(),
                mode="markers",
                name=reason,
                marker={
                    "size": 6,
                    "symbol": [
                        "triangle-up" if d == "long" else "triangle-down"
                        for d in part["direction"].to_list()
                    ],
                },
                customdata=np.column_stack(
                    [part["asset"].to_numpy(), part["direction"].to_numpy()]
                ),
                hovertemplate="%{customdata[0]} %{customdata[1]}<br>pnl %{y:,.2f}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_color=_GREY, line_width=1)
    fig.update_yaxes(title_text="trade PnL (net)")
    return _finish(fig, p, height=340)


def mae_mfe_figure(p: PlotInputs) -> Any:
    """Closed trades' return against their worst (MAE) and best (MFE) excursion, in percent:
    how far trades went against and for them before they closed."""
    from plotly.subplots import make_subplots

    closed = p.result.trades.filter(pl.col("status") == "closed")
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
    )
    ret = closed["return"].to_numpy() * 100
    colors = np.where(ret > 0, _GREEN, _RED)
    for col, name in ((1, "mae"), (2, "mfe")):
        fig.add_scatter(
            x=closed[name].to_numpy() * 100,
            y=ret,
            mode="markers",
            marker={"size": 5, "color": colors, "opacity": 0.7},
            name=name.upper(),
            customdata=closed["asset"].to_numpy(),
            hovertemplate="%{customdata}<br>"
            + name.upper()
            + " %{x:.2f}%<br>return %{y:.2f}%<extra></extra>",
            showlegend=False,
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=f"{name.upper()} (%)", row=1, col=col)
    fig.update_yaxes(title_text="trade return (%)", row=1, col=1)
    return _finish(fig, p, height=380)


def exit_reasons_figure(p: PlotInputs) -> Any:
    """Net PnL of closed trades by exit reason, with the number of trades on each bar."""
    import plotly.graph_objects as go

    table = p.result.exit_reason_table()
    fig = go.Figure(
        go.Bar(
            x=table["exit_reason"].to_list(),
            y=table["pnl"].to_list(),
            marker_color=[_GREEN if v >= 0 else _RED for v in table["pnl"].to_list()],
            text=[f"{n} trades" for n in table["trades"].to_list()],
            textposition="auto",
        )
    )
    fig.update_yaxes(title_text="net PnL")
    return _finish(fig, p, height=320)


def assets_figure(p: PlotInputs) -> Any:
    """Each asset's trade PnL (the 40 largest by size when there are more)."""
    import plotly.graph_objects as go

    trades = p.result.trades
    by_asset = (
        trades.group_by("asset").agg(pl.col("pnl").sum())
        if trades.height
        else pl.DataFrame({"asset": [], "pnl": []}, schema={"asset": pl.String, "pnl": pl.Float64})
    )
    shown = by_asset.sort(pl.col("pnl").abs(), descending=True).head(_MAX_ASSETS_SHOWN)
    shown = shown.sort("pnl", descending=True)
    fig = go.Figure(
        go.Bar(
            x=shown["asset"].to_list(),
            y=shown["pnl"].to_list(),
            marker_color=[_GREEN if v >= 0 else _RED for v in shown["pnl"].to_list()],
        )
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(title_text="trade PnL")
    return _finish(fig, p, height=320)


PANELS: dict[str, Callable[[PlotInputs], Any]] = {
    "equity": equity_figure,
    "drawdowns": drawdowns_figure,
    "rolling": rolling_figure,
    "monthly": monthly_figure,
    "yearly": yearly_figure,
    "returns": returns_figure,
    "exposure": exposure_figure,
    "positions": positions_figure,
    "turnover": turnover_figure,
    "trades": trades_figure,
    "mae_mfe": mae_mfe_figure,
    "exit_reasons": exit_reasons_figure,
    "assets": assets_figure,
}


def figure(
    result: BacktestResult,
    panel: str = "equity",
    *,
    benchmark: Sequence[float] | NDArray[np.float64] | None = None,
    rolling_window: int = ROLLING_BARS,
    boundaries: Sequence[object] = (),
) -> Any:
    """The plotly ``Figure`` of one named panel of ``result`` (see ``PANELS``).

    Example:
        >>> fig = figure(result, "exposure")  # doctest: +SKIP
    """
    if panel not in PANELS:
        raise ConfigError(f"unknown plot panel {panel!r}; valid panels: {', '.join(PANELS)}")
    inputs = plot_inputs(
        result, benchmark=benchmark, rolling_window=rolling_window, boundaries=boundaries
    )
    return PANELS[panel](inputs)


def open_positions(result: BacktestResult) -> NDArray[np.float64]:
    """Open positions at each bar's close, rebuilt from the fills."""
    records = result.records
    fills = records.fills
    n_bars = len(records.cash)
    if len(fills) == 0:
        return np.zeros(n_bars)
    assets = np.unique(fills["asset"])
    column = np.searchsorted(assets, fills["asset"])
    held = np.zeros((n_bars, len(assets)))
    np.add.at(held, (fills["bar"], column), fills["quantity"])
    held = np.cumsum(held, axis=0)
    counts: NDArray[np.float64] = (np.abs(held) > 1e-9).sum(axis=1).astype(np.float64)
    return counts


def monthly_turnover(result: BacktestResult) -> pl.DataFrame:
    """One row per calendar month: ``month`` (its first day), ``traded`` (notional bought and
    sold) and ``turnover`` = traded / 2 / the mean equity of the month's bars (one-way)."""
    eq = result.equity
    fills = result.records.fills
    traded = np.bincount(
        fills["bar"], weights=np.abs(fills["quantity"] * fills["price"]), minlength=eq.height
    )
    return (
        eq.select(pl.col("timestamp").dt.truncate("1mo").alias("month"), "equity")
        .with_columns(pl.Series("traded", traded[: eq.height]))
        .group_by("month", maintain_order=True)
        .agg(pl.col("traded").sum(), pl.col("equity").mean())
        .select("month", "traded", (pl.col("traded") / 2 / pl.col("equity")).alias("turnover"))
    )


def _finish(fig: Any, p: PlotInputs, *, height: int, time: bool = False) -> Any:
    """The look all panels share; time panels get the fold boundaries and a unified hover."""
    fig.update_layout(
        height=height,
        autosize=True,
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0},
    )
    if time:
        fig.update_layout(hovermode="x unified")
        for boundary in p.boundaries:
            # One line over the whole figure (all rows share x), so one shape per fold start.
            fig.add_shape(
                type="line",
                x0=boundary,
                x1=boundary,
                xref="x",
                y0=0,
                y1=1,
                yref="paper",
                line={"dash": "dot", "color": "gray", "width": 1},
            )
    return fig
