"""The HTML tearsheet's content: every section, KPIs, tables, title and offline page."""

from __future__ import annotations

import re

import empyrical
import pandas as pd
import pytest

from ml4t.backtest import BacktestConfig, DataFeed, Engine, TopNStrategy
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.risk import TrailingStop
from scripted import run

SECTIONS = [
    "kpis", "equity", "rolling", "drawdown-table", "exit-reason-table", "monthly", "yearly",
    "returns", "drawdowns", "exposure", "positions", "turnover", "trades", "mae_mfe",
    "exit_reasons", "assets", "summary", "trades-table",
]  # fmt: skip


@pytest.fixture(scope="module")
def feed():
    return DataFeed(synthetic_universe(n_assets=8, n_bars=260, seed=3))


@pytest.fixture(scope="module")
def result(feed):
    return Engine(
        feed,
        TopNStrategy("score", n=3, rebalance_every=5),
        BacktestConfig(commission=0.001),
        position_rules=TrailingStop(0.08),
    ).run()


@pytest.fixture(scope="module")
def page(result, tmp_path_factory):
    return result.report(tmp_path_factory.mktemp("report") / "report.html").read_text()


def kpi(page: str, label: str) -> str:
    found = re.search(
        rf"<div class='label'>{re.escape(label)}</div><div class='figure'>([^<]*)<", page
    )
    assert found, f"no KPI {label!r}"
    return found.group(1)


@pytest.mark.parametrize("section", SECTIONS)
def test_the_report_has_each_section(page, section):
    assert f"id='{section}'" in page


def test_the_report_loads_no_script_from_the_network(page):
    # plotly.js is inlined: no script or stylesheet is fetched when the page opens.
    assert re.search(r"<script[^>]+src=", page) is None
    assert "<link" not in page
    assert "Plotly.newPlot" in page and "plotly.js v" in page


def test_the_title_names_the_strategy_and_the_page_shows_its_config(page, result):
    assert "<h1>Backtest report: TopNStrategy</h1>" in page
    assert "TopNStrategy(column=&#x27;score&#x27;, n=3, rebalance_every=5" in page
    assert "<span class='key'>commission</span> <span class='value'>0.001</span>" in page
    assert f"Configuration ({len(result.config)} settings)" in page


def test_an_explicit_title_replaces_the_default(result, tmp_path):
    page = result.report(tmp_path / "r.html", title="Momentum, v2").read_text()
    assert "<h1>Momentum, v2</h1>" in page and "<title>Momentum, v2</title>" in page


def test_costs_are_figures_not_a_chart(page, result):
    m = result.metrics
    assert kpi(page, "Total costs") == f"{m['total_costs']:,.2f}"
    assert kpi(page, "Costs / gross PnL") == f"{100 * m['costs_share_of_gross_pnl']:.2f}%"
    assert "Costs paid" not in page


def test_the_kpis_show_alpha_and_beta_against_a_benchmark_given_to_the_report(
    result, feed, tmp_path
):
    bench = feed.array("close")[:, 2]
    page = result.report(tmp_path / "r.html", benchmark=bench).read_text()
    equity = result.equity["equity"].to_numpy()
    alpha, beta = empyrical.alpha_beta(
        pd.Series(equity[1:] / equity[:-1] - 1.0),
        pd.Series(bench[1:] / bench[:-1] - 1.0),
        annualization=result.periods_per_year,
    )
    assert kpi(page, "Alpha (ann.)") == f"{100 * alpha:.2f}%"
    assert kpi(page, "Beta") == f"{beta:.3f}"


def test_without_a_benchmark_there_is_no_alpha_or_beta(page):
    assert "Alpha (ann.)" not in page and ">Beta<" not in page


def test_the_exit_reason_table_lists_each_reason_with_its_trades(page, result):
    table = result.exit_reason_table()
    section = page.split("id='exit-reason-table'")[1].split("</section>")[0]
    for row in table.iter_rows(named=True):
        assert f"<td>{row['exit_reason']}</td><td>{row['trades']:,}</td>" in section
        assert f"<td>{row['pnl']:,.2f}</td>" in section
    assert set(table["exit_reason"]) >= {"rebalance", "trailing_stop"}


def test_the_drawdown_table_shows_the_worst_ones(page, result):
    section = page.split("id='drawdown-table'")[1].split("</section>")[0]
    depths = result.drawdown_table()["depth"].to_list()
    assert section.count("<tr><td>") == len(depths) >= 1
    for depth in depths:
        assert f"<td>{100 * depth:.2f}%</td>" in section


def test_the_trades_table_scrolls_in_its_own_box_and_does_not_wrap(page):
    assert "<div class='scroll'><table id='trades'" in page
    assert re.search(r"td, th \{[^}]*white-space: nowrap", page)
    assert re.search(r"\.scroll \{[^}]*overflow: auto", page)


def test_daily_timestamps_in_the_trades_table_are_dates(page, result):
    first = result.trades.row(0, named=True)
    body = page.split("<table id='trades'")[1]
    assert f"<td>{first['entry_time'].date().isoformat()}</td>" in body
    assert "00:00:00" not in body


def test_charts_take_the_full_width_of_the_page(page):
    assert "max-width" not in page.split("<style>")[1].split("</style>")[0]
    assert 'style="height:520px; width:100%;"' in page


def test_a_run_with_no_trades_still_writes_every_section(make_feed, tmp_path):
    feed = make_feed({"A": [(100.0, 100.0)] * 5})
    result, _ = run(feed, {})
    page = result.report(tmp_path / "empty.html").read_text()
    for section in SECTIONS:
        assert f"id='{section}'" in page
    assert "No closed trades." in page and "No drawdown" in page
