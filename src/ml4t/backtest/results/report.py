"""The HTML tearsheet: one self-contained file (plotly's JavaScript inlined, works offline).

Sections: the summary table; equity (against a benchmark when given) on a log axis; the
underwater drawdown; monthly returns as a heatmap; rolling Sharpe; gross exposure and the number
of positions over time; the distribution of trade PnL; costs; each asset's contribution; and a
sortable table of trades. Walk-forward results draw their fold boundaries on the time charts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from .result import BacktestResult

_ROLLING_BARS = 63
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_MAX_TABLE_ROWS = 2000


def write_report(
    result: BacktestResult,
    path: str | Path,
    *,
    title: str = "Backtest report",
    benchmark: Sequence[float] | None = None,
    boundaries: Sequence[object] = (),
) -> Path:
    """Write the tearsheet of ``result`` to ``path`` and return the path.

    ``benchmark`` is a price series aligned with the result's bars (drawn rebased to the
    initial cash); ``boundaries`` are timestamps where vertical lines mark fold starts.
    """
    import plotly.graph_objects as go
    import plotly.io as pio

    eq = result.equity
    ts = eq["timestamp"].to_list()
    equity = eq["equity"].to_numpy()
    returns = np.diff(np.concatenate(([result.initial_cash], equity))) / np.concatenate(
        ([result.initial_cash], equity[:-1])
    )
    figures: list[tuple[str, Any]] = []

    fig = go.Figure(go.Scatter(x=ts, y=equity, name="strategy", line={"width": 1.6}))
    # The benchmark given here, else the run's own, when it had one.
    prices = benchmark if benchmark is not None else result._benchmark
    if prices is not None:
        bench = np.asarray(prices, dtype=np.float64)
        first = bench[np.isfinite(bench)][0] if np.isfinite(bench).any() else math.nan
        fig.add_trace(go.Scatter(x=ts, y=bench / first * result.initial_cash, name="benchmark"))
    fig.update_yaxes(type="log", title="equity")
    figures.append(("Equity (log scale)", fig))

    fig = go.Figure(
        go.Scatter(x=ts, y=eq["drawdown"].to_numpy() * 100, fill="tozeroy", name="drawdown")
    )
    fig.update_yaxes(title="drawdown (%)")
    figures.append(("Underwater (drawdown)", fig))

    monthly = _monthly_returns(eq, result.initial_cash)
    if monthly.height:
        years = sorted(set(monthly["year"].to_list()))
        grid = np.full((len(years), 12), np.nan)
        for year, month, value in monthly.iter_rows():
            grid[years.index(year), month - 1] = value * 100
        fig = go.Figure(
            go.Heatmap(
                z=grid,
                x=[
                    "Jan",
                    "Feb",
                    "Mar",
                    "Apr",
                    "May",
                    "Jun",
                    "Jul",
                    "Aug",
                    "Sep",
                    "Oct",
                    "Nov",
                    "Dec",
                ],
                y=[str(y) for y in years],
                colorscale="RdYlGn",
                zmid=0,
                text=np.where(np.isnan(grid), "", np.round(grid, 1).astype(str)),
                texttemplate="%{text}",
            )
        )
        figures.append(("Monthly returns (%)", fig))

    window = min(_ROLLING_BARS, max(2, len(returns) // 4))
    rolling = _rolling_sharpe(returns, window, result.periods_per_year)
    fig = go.Figure(go.Scatter(x=ts, y=rolling, name=f"{window}-bar Sharpe"))
    figures.append((f"Rolling Sharpe ({window} bars)", fig))

    exposure = np.where(equity > 0, eq["gross_exposure"].to_numpy() / equity, np.nan)
    fig = go.Figure(go.Scatter(x=ts, y=exposure * 100, name="gross exposure (% equity)"))
    fig.add_trace(go.Scatter(x=ts, y=_positions_over_time(result), name="positions", yaxis="y2"))
    fig.update_layout(
        yaxis={"title": "gross exposure (%)"},
        yaxis2={"title": "positions", "overlaying": "y", "side": "right"},
    )
    figures.append(("Exposure and number of positions", fig))

    trades = result.trades
    closed = trades.filter(pl.col("status") == "closed")
    fig = go.Figure(go.Histogram(x=closed["pnl"].to_numpy(), nbinsx=50, name="trade PnL"))
    figures.append((f"Trade PnL ({closed.height} closed trades)", fig))

    m = result.metrics
    costs = {
        "commission": m["total_commission"],
        "slippage": m["total_slippage"],
        "borrow fees": m["total_borrow_fee"],
    }
    fig = go.Figure(go.Bar(x=list(costs), y=list(costs.values()), name="costs"))
    figures.append(("Costs paid", fig))

    by_asset = (
        trades.group_by("asset").agg(pl.col("pnl").sum()).sort("pnl", descending=True)
        if trades.height
        else pl.DataFrame({"asset": [], "pnl": []})
    )
    fig = go.Figure(go.Bar(x=by_asset["asset"].to_list(), y=by_asset["pnl"].to_list()))
    figures.append(("Contribution by asset (trade PnL)", fig))

    for _, figure in figures[:5]:
        for boundary in boundaries:
            figure.add_vline(x=boundary, line_dash="dot", line_color="gray")

    parts = []
    for i, (heading, figure) in enumerate(figures):
        figure.update_layout(
            height=360, margin={"l": 50, "r": 50, "t": 20, "b": 40}, template="plotly_white"
        )
        div = pio.to_html(
            figure, include_plotlyjs=(i == 0), full_html=False, config={"responsive": True}
        )
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{div}</section>")
    page = _PAGE.format(
        title=html.escape(title),
        summary=_summary_table(result),
        charts="\n".join(parts),
        trades=_trades_table(trades),
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _monthly_returns(eq: pl.DataFrame, initial_cash: float) -> pl.DataFrame:
    """Each calendar month's return: its last equity over the previous month's (or the cash)."""
    if eq.height == 0:
        return pl.DataFrame({"year": [], "month": [], "return": []})
    last = (
        eq.select("timestamp", "equity")
        .group_by(pl.col("timestamp").dt.year().alias("year"), pl.col("timestamp").dt.month())
        .agg(pl.col("equity").last())
        .sort("year", "timestamp")
    )
    values = last["equity"].to_numpy()
    previous = np.concatenate(([initial_cash], values[:-1]))
    return pl.DataFrame(
        {
            "year": last["year"],
            "month": last["timestamp"].cast(pl.Int64),
            "return": values / previous - 1.0,
        }
    )


def _rolling_sharpe(returns: np.ndarray, window: int, periods_per_year: float) -> np.ndarray:
    out = np.full(len(returns), np.nan)
    for t in range(window, len(returns) + 1):
        chunk = returns[t - window : t]
        sd = chunk.std(ddof=1)
        if sd > 0:
            out[t - 1] = chunk.mean() / sd * math.sqrt(periods_per_year)
    return out


def _positions_over_time(result: BacktestResult) -> np.ndarray:
    """Open positions at each bar's close, rebuilt from the fills."""
    fills = result._fills
    n_bars = len(result._cash)
    if len(fills) == 0:
        return np.zeros(n_bars)
    assets = np.unique(fills["asset"])
    column = np.searchsorted(assets, fills["asset"])
    held = np.zeros((n_bars, len(assets)))
    np.add.at(held, (fills["bar"], column), fills["quantity"])
    held = np.cumsum(held, axis=0)
    counts: np.ndarray = (np.abs(held) > 1e-9).sum(axis=1).astype(np.float64)
    return counts


def _summary_table(result: BacktestResult) -> str:
    rows = []
    for line in result.summary().splitlines()[2:]:
        key, _, value = line.partition("  ")
        rows.append(
            f"<tr><th>{html.escape(key.strip())}</th><td>{html.escape(value.strip())}</td></tr>"
        )
    return "<table class='summary'>" + "".join(rows) + "</table>"


def _trades_table(trades: pl.DataFrame) -> str:
    if trades.height == 0:
        return "<p>No trades.</p>"
    shown = trades.head(_MAX_TABLE_ROWS)
    head = "".join(f"<th onclick='sortTable(this)'>{html.escape(c)}</th>" for c in shown.columns)
    body = []
    for row in shown.iter_rows():
        cells = "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    note = (
        f"<p>First {_MAX_TABLE_ROWS} of {trades.height} trades.</p>"
        if trades.height > _MAX_TABLE_ROWS
        else ""
    )
    rows = "".join(body)
    return f"{note}<table id='trades'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:,.4f}"
    return "" if value is None else str(value)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 16px; margin: 24px 0 4px; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }}
table.summary th {{ text-align: left; }}
#trades th {{ cursor: pointer; background: #f3f3f3; }}
section {{ max-width: 1100px; }}
</style></head><body>
<h1>{title}</h1>
{summary}
{charts}
<section><h2>Trades (click a header to sort)</h2>{trades}</section>
<script>
function sortTable(th) {{
  const table = th.closest("table"), body = table.tBodies[0];
  const i = Array.from(th.parentNode.children).indexOf(th);
  const up = th.dataset.up !== "1"; th.dataset.up = up ? "1" : "0";
  const key = (r) => {{ const t = r.children[i].textContent.replace(/,/g, "");
    const n = parseFloat(t); return isNaN(n) ? t : n; }};
  Array.from(body.rows).sort((a, b) => {{ const x = key(a), y = key(b);
    return (x > y ? 1 : x < y ? -1 : 0) * (up ? 1 : -1); }}).forEach((r) => body.appendChild(r));
}}
</script>
</body></html>
"""
