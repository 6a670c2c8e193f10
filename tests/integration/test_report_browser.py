"""The HTML report in a real browser: headless Chromium loads it offline, logs no console
error, and draws every chart (plotly SVGs in the DOM, and a screenshot that is not blank).

Chromium is Debian's ``chromium`` package; ``make test`` installs it when it is missing.
"""

from __future__ import annotations

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
CHARTS = 9


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
    assert dom.stdout.count("<tr>") > 10  # summary and trades tables

    shot = tmp_path / "shot.png"
    done = chromium(page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,2400")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = Image.open(shot).convert("RGB").resize((300, 600))
    colors = pixels.getcolors(maxcolors=300 * 600) or []
    inked = sum(count for count, rgb in colors if min(rgb) < 235)
    assert inked / (300 * 600) > 0.03, "the screenshot is nearly blank"
    assert len(colors) > 50, "a drawn chart has many shades"


def test_a_page_with_a_script_error_is_caught(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    done = chromium(page, tmp_path / "profile", "--dump-dom")
    assert any("undefinedFunction" in line for line in console_errors(done.stderr))
