"""The HTML tearsheet: one self-contained file (plotly's JavaScript inlined, works offline).

Sections, top to bottom: the title with the strategy, period and config; headline figures
(KPIs, costs as a share of gross PnL, alpha and beta against a benchmark); equity over drawdown;
rolling volatility, Sharpe and beta; the worst drawdowns and the exit-reason breakdown as tables;
monthly and yearly returns; the distribution of per-bar returns; the underwater curve with the
worst drawdowns shaded; long, short, net and gross exposure; open positions; monthly turnover;
trade PnL by exit reason; MAE and MFE against trade return; PnL by exit reason and by asset; all
figures of the summary; and a sortable, scrolling table of trades. The charts are the panels of
``result.plot`` (see ``plot.py``). Walk-forward results draw their fold boundaries on the time
charts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from .metrics import alpha_beta
from .plot import PANELS, ROLLING_BARS, PlotInputs, plot_inputs

if TYPE_CHECKING:
    from .result import BacktestResult

_MAX_TABLE_ROWS = 2000

# (panel, heading, width): "full" spans the page, two "half" sections share a row on wide screens.
_LAYOUT: list[tuple[str, str, str]] = [
    ("equity", "Equity and drawdown", "full"),
    ("rolling", "Rolling statistics ({window} bars)", "full"),
    ("monthly", "Monthly returns (%)", "half"),
    ("yearly", "Yearly returns", "half"),
    ("returns", "Distribution of per-bar returns", "half"),
    ("drawdowns", "Underwater, with the five worst drawdowns", "half"),
    ("exposure", "Exposure: long, short, net and gross (% of equity)", "full"),
    ("positions", "Open positions", "half"),
    ("turnover", "Monthly turnover (one-way)", "half"),
    ("trades", "Trade PnL at exit, by exit reason", "half"),
    ("mae_mfe", "MAE and MFE against trade return", "half"),
    ("exit_reasons", "PnL by exit reason (closed trades)", "half"),
    ("assets", "Contribution by asset (trade PnL)", "half"),
]


def write_report(
    result: BacktestResult,
    path: str | Path,
    *,
    title: str | None = None,
    benchmark: Sequence[float] | None = None,
    boundaries: Sequence[object] = (),
    rolling_window: int = ROLLING_BARS,
) -> Path:
    """Write the tearsheet of ``result`` to ``path`` and return the path.

    ``benchmark`` is a price series aligned with the result's bars (drawn rebased to the
    initial cash; the run's own benchmark when not given); ``boundaries`` are timestamps where
    vertical lines mark fold starts; ``rolling_window`` the bars of the rolling statistics.

    Example:
        >>> write_report(result, "report.html")  # doctest: +SKIP
    """
    import plotly.io as pio

    inputs = plot_inputs(
        result, benchmark=benchmark, rolling_window=rolling_window, boundaries=boundaries
    )
    charts: dict[str, str] = {}
    for i, (panel, heading, _) in enumerate(_LAYOUT):
        figure = PANELS[panel](inputs)
        div = pio.to_html(
            figure,
            include_plotlyjs=(i == 0),
            full_html=False,
            default_width="100%",
            default_height=f"{figure.layout.height}px",
            config={"responsive": True, "displaylogo": False},
        )
        charts[panel] = _section(panel, heading.format(window=inputs.window), div)

    sections = [
        charts["equity"],
        charts["rolling"],
        _grid(
            _section("drawdown-table", "Worst drawdowns", _drawdown_table(result)),
            _section("exit-reason-table", "Exits by reason", _exit_reason_table(result)),
        ),
    ]
    halves: list[str] = []
    for panel, _, width in _LAYOUT[2:]:
        if width == "full":
            sections.append(charts[panel])
        else:
            halves.append(charts[panel])
            if len(halves) == 2:
                sections.append(_grid(*halves))
                halves = []
    sections.append(_section("summary", "All figures", _summary_table(result)))
    sections.append(
        _section("trades-table", "Trades (click a header to sort)", _trades_table(result.trades))
    )
    heading = title if title is not None else _default_title(result)
    page = _PAGE.format(
        title=html.escape(heading),
        subtitle=_subtitle(result),
        config=_config_table(result.config),
        kpis=_kpis(result, inputs),
        sections="\n".join(sections),
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _default_title(result: BacktestResult) -> str:
    name = result.strategy.split("(")[0]
    return f"Backtest report: {name}" if name else "Backtest report"


def _section(key: str, heading: str, body: str) -> str:
    return f"<section id='{key}'><h2>{html.escape(heading)}</h2>{body}</section>"


def _grid(*sections: str) -> str:
    return "<div class='grid'>" + "".join(sections) + "</div>"


def _subtitle(result: BacktestResult) -> str:
    ts = result.equity["timestamp"]
    period = f"{_when(ts[0])} to {_when(ts[-1])}" if len(ts) else "no bars"
    parts = [
        f"<span class='strategy'>{html.escape(result.strategy)}</span>" if result.strategy else "",
        f"{html.escape(period)}, {len(ts)} bars x {len(result.records.assets)} assets, "
        f"{result.periods_per_year:g} bars a year",
    ]
    return "<p class='subtitle'>" + "<br>".join(p for p in parts if p) + "</p>"


def _config_table(config: dict[str, Any]) -> str:
    items = "".join(
        f"<div><span class='key'>{html.escape(str(key))}</span> "
        f"<span class='value'>{html.escape(_config_value(value))}</span></div>"
        for key, value in config.items()
    )
    return (
        "<details class='config'><summary>Configuration "
        f"({len(config)} settings)</summary><div class='config-grid'>{items}</div></details>"
    )


def _config_value(value: object) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={_config_value(v)}" for k, v in value.items() if k != "model")
        return f"{value.get('model', '')}({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_config_value(v) for v in value) + "]"
    return "none" if value is None else str(value)


def _kpis(result: BacktestResult, inputs: PlotInputs) -> str:
    m = result.metrics
    cards = [
        ("Total return", _pct(m["total_return"])),
        ("CAGR", _pct(m["cagr"])),
        ("Sharpe", _num(m["sharpe"])),
        ("Sortino", _num(m["sortino"])),
        ("Max drawdown", _pct(m["max_drawdown"])),
        ("Volatility (ann.)", _pct(m["volatility"])),
        ("Calmar", _num(m["calmar"])),
        ("Win rate", _pct(m["win_rate"])),
        ("Profit factor", _num(m["profit_factor"])),
        ("Closed trades", f"{int(m['n_trades']):,}"),
        ("Turnover (ann.)", _num(m["turnover"])),
        ("Avg exposure", _pct(m["exposure"])),
        ("Total costs", f"{m['total_costs']:,.2f}"),
        ("Costs / gross PnL", _pct(m["costs_share_of_gross_pnl"])),
    ]
    if inputs.benchmark_returns is not None:
        alpha, beta = alpha_beta(
            inputs.returns[1:],
            inputs.benchmark_returns[1:],
            periods_per_year=result.periods_per_year,
        )
        cards += [("Alpha (ann.)", _pct(alpha)), ("Beta", _num(beta))]
    body = "".join(
        f"<div class='kpi'><div class='label'>{html.escape(k)}</div>"
        f"<div class='figure'>{html.escape(v)}</div></div>"
        for k, v in cards
    )
    return f"<div class='kpis' id='kpis'>{body}</div>"


def _summary_table(result: BacktestResult) -> str:
    """The lines of ``result.summary()`` as key-value rows, flowing into columns."""
    rows = []
    for line in result.summary().splitlines()[2:]:
        key, _, value = line.partition("  ")
        rows.append(
            f"<div class='row'><span class='key'>{html.escape(key.strip())}</span>"
            f"<span class='value'>{html.escape(value.strip())}</span></div>"
        )
    return "<div class='figures'>" + "".join(rows) + "</div>"


def _drawdown_table(result: BacktestResult) -> str:
    table = result.drawdown_table(top=5)
    if table.height == 0:
        return "<p>No drawdown: equity never fell below its peak.</p>"
    head = "<tr><th>#</th><th>Start</th><th>Trough</th><th>Recovery</th><th>Depth</th>"
    head += "<th>Bars under water</th></tr>"
    rows = [
        f"<tr><td>{i}</td><td>{_when(r['start'])}</td><td>{_when(r['trough'])}</td>"
        f"<td>{_when(r['recovery']) if r['recovery'] is not None else 'not recovered'}</td>"
        f"<td>{_pct(r['depth'])}</td><td>{r['bars']:,}</td></tr>"
        for i, r in enumerate(table.iter_rows(named=True), start=1)
    ]
    return f"<table class='data'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _exit_reason_table(result: BacktestResult) -> str:
    table = result.exit_reason_table()
    if table.height == 0:
        return "<p>No closed trades.</p>"
    head = "<tr><th>Exit reason</th><th>Trades</th><th>Net PnL</th><th>Avg PnL</th>"
    head += "<th>Win rate</th><th>Avg return</th><th>Avg bars held</th></tr>"
    rows = [
        f"<tr><td>{html.escape(r['exit_reason'])}</td><td>{r['trades']:,}</td>"
        f"<td>{r['pnl']:,.2f}</td><td>{r['avg_pnl']:,.2f}</td><td>{_pct(r['win_rate'])}</td>"
        f"<td>{_pct(r['avg_return'])}</td><td>{r['avg_bars_held']:,.1f}</td></tr>"
        for r in table.iter_rows(named=True)
    ]
    return f"<table class='data'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


# How the trades table shows each numeric column: percentages, cash, prices, counts.
_TRADE_FORMATS = {
    "return": "pct",
    "mae": "pct",
    "mfe": "pct",
    "pnl": "money",
    "commission": "money",
    "entry_price": "price",
    "exit_price": "price",
    "quantity": "price",
}


def _trades_table(trades: pl.DataFrame) -> str:
    if trades.height == 0:
        return "<p>No trades.</p>"
    shown = trades.head(_MAX_TABLE_ROWS)
    head = "".join(f"<th onclick='sortTable(this)'>{html.escape(c)}</th>" for c in shown.columns)
    formats = [_TRADE_FORMATS.get(c, "") for c in shown.columns]
    body = []
    for row in shown.iter_rows():
        cells = "".join(
            f"<td class='text'>{html.escape(v)}</td>"
            if isinstance(v, str)
            else f"<td>{html.escape(_cell(v, f))}</td>"
            for v, f in zip(row, formats, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    note = (
        f"<p>First {_MAX_TABLE_ROWS:,} of {trades.height:,} trades.</p>"
        if trades.height > _MAX_TABLE_ROWS
        else ""
    )
    rows = "".join(body)
    return (
        f"{note}<div class='scroll'><table id='trades' class='data'><thead><tr>{head}</tr>"
        f"</thead><tbody>{rows}</tbody></table></div>"
    )


def _cell(value: object, style: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if style == "pct":
            return f"{100 * value:.2f}%"
        if style == "money":
            return f"{value:,.2f}"
        return f"{value:,.4f}".rstrip("0").rstrip(".") if style == "price" else f"{value:,.4f}"
    return str(value)


def _when(timestamp: datetime) -> str:
    """A date alone for bars stamped at midnight, else the timestamp to the second."""
    if timestamp.time() == time(0):
        return timestamp.date().isoformat()
    return timestamp.strftime("%Y-%m-%d %H:%M:%S")


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}%"


def _num(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) or not np.isfinite(x) else f"{x:.3f}"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
* {{ box-sizing: border-box; }}
/* The scrollbar's room is kept from the start: charts drawn before the page grows long enough to
   scroll would otherwise keep their first, wider size (plotly resizes on window resizes only). */
html {{ overflow-y: scroll; }}
body {{ font-family: system-ui, sans-serif; margin: 16px 24px; color: #222; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
h2 {{ font-size: 16px; margin: 22px 0 6px; }}
.subtitle {{ margin: 0 0 8px; color: #555; font-size: 14px; line-height: 1.5; }}
.subtitle .strategy {{ font-family: ui-monospace, monospace; color: #222; }}
details.config {{ font-size: 13px; margin-bottom: 12px; }}
details.config summary {{ cursor: pointer; color: #1f77b4; }}
.config-grid {{ columns: 4 260px; column-gap: 24px; margin-top: 6px; }}
.config-grid div {{ break-inside: avoid; padding: 1px 0; }}
.config-grid .key {{ color: #666; }}
.config-grid .value {{ font-family: ui-monospace, monospace; }}
.kpis {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; }}
.kpi {{ border: 1px solid #e3e3e3; border-radius: 6px; padding: 8px 10px; background: #fafafa; }}
.kpi .label {{ font-size: 12px; color: #666; white-space: nowrap; }}
.kpi .figure {{ font-size: 19px; font-weight: 600; margin-top: 2px; white-space: nowrap; }}
section {{ width: 100%; min-width: 0; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
  column-gap: 24px; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right;
  white-space: nowrap; }}
table.data th {{ background: #f3f3f3; position: sticky; top: 0; }}
table.data td:first-child, table.data th:first-child, td.text {{ text-align: left; }}
.figures {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr));
  column-gap: 32px; font-size: 13px; }}
.figures .row {{ display: flex; justify-content: space-between; padding: 3px 2px;
  border-bottom: 1px solid #eee; }}
.figures .key {{ color: #444; }}
.figures .value {{ font-variant-numeric: tabular-nums; white-space: nowrap; }}
.scroll {{ max-height: 640px; overflow: auto; border: 1px solid #ddd; }}
#trades th {{ cursor: pointer; }}
</style></head><body>
<h1>{title}</h1>
{subtitle}
{config}
{kpis}
{sections}
<script>
function sortTable(th) {{
  const table = th.closest("table"), body = table.tBodies[0];
  const i = Array.from(th.parentNode.children).indexOf(th);
  const up = th.dataset.up !== "1"; th.dataset.up = up ? "1" : "0";
  const key = (r) => {{ const t = r.children[i].textContent.replace(/[,%]/g, "");
    const n = parseFloat(t); return isNaN(n) || /^\\d{{4}}-/.test(t) ? t : n; }};
  Array.from(body.rows).sort((a, b) => {{ const x = key(a), y = key(b);
    return (x > y ? 1 : x < y ? -1 : 0) * (up ? 1 : -1); }}).forEach((r) => body.appendChild(r));
}}
</script>
</body></html>
"""
