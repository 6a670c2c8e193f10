"""The HTML report in a real browser: headless Chromium loads it offline, logs no console
error, draws every chart (plotly SVGs in the DOM, and a screenshot that is not blank), shows
every section, and lays the charts out over the page's whole width.

Chromium is Debian's ``chromium`` package; ``make test`` installs it when it is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from PIL import Image

from ml4t.backtest import BacktestConfig, DataFeed, Engine, TopNStrategy
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.risk import TrailingStop

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=1", "--virtual-time-budget=15000",
]  # fmt: skip
CHARTS = 13
SECTIONS = [
    "kpis", "equity", "rolling", "drawdown-table", "exit-reason-table", "monthly", "yearly",
    "returns", "drawdowns", "exposure", "positions", "turnover", "trades", "mae_mfe",
    "exit_reasons", "assets", "summary", "trades-table",
]  # fmt: skip
# Appended to a copy of the report: once the charts are drawn, write each section's size, each
# chart's width and the page's width into the DOM, where --dump-dom shows them.
MEASURE = """<script>window.addEventListener("load", () => setTimeout(() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return [Math.round(r.width), Math.round(r.height)]; };
  const out = { page: document.documentElement.clientWidth, sections: {}, charts: [],
    scrollWidth: document.documentElement.scrollWidth };
  document.querySelectorAll("section").forEach((s) => { out.sections[s.id] = box(s); });
  document.querySelectorAll(".js-plotly-plot").forEach((p) => {
    const svg = p.querySelector("svg.main-svg");
    out.charts.push({ div: box(p)[0], svg: svg ? Math.round(svg.getBoundingClientRect().width) : 0,
      section: p.closest("section").id });
  });
  const pre = document.createElement("pre"); pre.id = "measured";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
}, 500));</script>"""


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Chromium is missing: `make test` installs Debian's chromium package"
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def console_errors(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    return [line for line in lines if "Uncaught" in line or "Error" in line]


def test_the_report_draws_every_chart_with_no_console_error(tmp_path):
    feed = DataFeed(synthetic_universe(n_assets=15, n_bars=300, seed=4))
    result = Engine(
        feed,
        TopNStrategy("score", n=4, rebalance_every=5),
        BacktestConfig(commission=0.001),
        position_rules=TrailingStop(0.1),
    ).run()
    page = result.report(tmp_path / "report.html", benchmark=feed.array("close")[:, 0])
    assert "cdn" not in page.read_text().lower().split("<body>")[0]  # offline: nothing fetched

    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    drawn = dom.stdout.count('class="main-svg"')
    assert drawn >= CHARTS, f"{drawn} plotly SVGs in the DOM"
    assert dom.stdout.count("<tr>") > 10  # drawdown, exit-reason and trades tables
    for section in SECTIONS:
        assert f'id="{section}"' in dom.stdout, f"section {section} missing"

    shot = tmp_path / "shot.png"
    done = chromium(page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,2400")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = Image.open(shot).convert("RGB").resize((300, 600))
    colors = pixels.getcolors(maxcolors=300 * 600) or []
    inked = sum(count for count, rgb in colors if min(rgb) < 235)
    assert inked / (300 * 600) > 0.03, "the screenshot is nearly blank"
    assert len(colors) > 50, "a drawn chart has many shades"


def test_the_charts_use_the_whole_width_of_the_page(tmp_path):
    feed = DataFeed(synthetic_universe(n_assets=10, n_bars=300, seed=5))
    result = Engine(feed, TopNStrategy("score", n=3, rebalance_every=5), BacktestConfig()).run()
    html = result.report(tmp_path / "report.html").read_text()
    page = tmp_path / "measured.html"
    page.write_text(html.replace("</body>", MEASURE + "</body>"))

    dom = chromium(page, tmp_path / "profile", "--dump-dom", "--window-size=1400,1000")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, re.S)
    assert found, "the measuring script did not run"
    m = json.loads(found.group(1).replace("&quot;", '"'))
    width = m["page"]
    assert m["scrollWidth"] <= width, "the page scrolls sideways: something is wider than it"
    assert len(m["charts"]) == CHARTS
    # 24 px of margin each side: full-width charts span the rest; side-by-side ones a half each
    # (less half the 24 px gap), and no chart's drawing is wider than its box.
    full = width - 48
    for chart in m["charts"]:
        share = chart["div"] / full
        assert 0.97 <= share <= 1.0 or 0.47 <= share <= 0.5, chart
        assert chart["svg"] <= chart["div"] + 1, chart
    assert {c["section"] for c in m["charts"] if c["div"] / full > 0.97} == {
        "equity",
        "rolling",
        "exposure",
    }
    # The trades table scrolls inside its section instead of widening the page.
    assert m["sections"]["trades-table"][0] <= full + 1


def test_a_page_with_a_script_error_is_caught(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    done = chromium(page, tmp_path / "profile", "--dump-dom")
    assert any("undefinedFunction" in line for line in console_errors(done.stderr))
