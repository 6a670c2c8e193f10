"""Every Python block of the documentation site runs; every YAML block parses.

Blocks that stand alone run as written, in a fresh folder holding a ``prices.parquet`` (the
bundled synthetic universe), the file the getting-started page reads. A block using a ``broker``
it does not create is an excerpt of a strategy's ``on_data``: it runs there, on the first bar of
a feed whose assets are the ones the docs name. A block with ``if __name__ == "__main__":`` is a
script for other processes (sweeps) and runs as one. The migration guides from a peer framework
have their own test (``test_migration.py``), which also runs the peers' code; the pandas guide,
which needs no peer, runs here.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from codeblocks import run_block
from ml4t.backtest import BacktestConfig, Broker, DataFeed, Engine, Strategy
from ml4t.backtest.data import BarView
from ml4t.backtest.datasets import synthetic_universe

DOCS = Path(__file__).parents[2] / "docs"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", flags=re.S | re.M)
EXCERPT_ASSETS = ["AAPL", "MSFT", "GOOG", "TSLA", "BTC", "SPY"]
# The guides test_migration.py runs, with the peer's code beside ours.
PEER_GUIDES = {"backtrader.md", "vectorbt.md", "zipline.md"}


def blocks(language: str) -> list[Any]:
    """Every fenced block in ``language`` outside the peer migration guides, as test parameters
    ``(page:line, code)`` named by their page and line."""
    out = []
    for page in sorted(DOCS.rglob("*.md")):
        if "migration" in page.parts and page.name in PEER_GUIDES:
            continue
        text = page.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) == language:
                line = text[: match.start()].count("\n") + 1
                where = f"{page.relative_to(DOCS)}:{line}"
                out.append(pytest.param(where, match.group(2), id=where))
    return out


def test_the_guides_have_code() -> None:
    pages = {param.values[0].split(":")[0] for param in blocks("python")}
    wanted = {"getting-started.md", "guides/ml.md", "concepts/drivers.md", "migration/pandas.md"}
    assert wanted <= pages


class _Excerpt(Strategy):
    """Runs a docs excerpt inside ``on_data`` on the first bar, with ``broker`` and ``data``."""

    def __init__(self, code: str, where: str) -> None:
        self.code = compile(code, where, "exec")

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        if data.index == 0:
            # ``order_id`` stands for an order the excerpt refers to without creating it.
            order_id = broker.submit_order("AAPL", 10, limit_price=float(data.close[0]) * 0.9)
            namespace: dict[str, Any] = {"broker": broker, "data": data, "order_id": order_id}
            exec(self.code, namespace)


def _excerpt_feed() -> DataFeed:
    frame = synthetic_universe(n_assets=len(EXCERPT_ASSETS), n_bars=30, seed=5)
    names = {f"A{i:04d}": a for i, a in enumerate(EXCERPT_ASSETS)}
    return DataFeed(frame.with_columns(frame["asset"].replace_strict(names)))


@pytest.mark.parametrize("where,code", blocks("python"))
def test_python_block_runs(where: str, code: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    synthetic_universe(n_assets=20, n_bars=120, seed=3).write_parquet("prices.parquet")
    uses_broker = re.search(r"\bbroker\.", code) and not re.search(r"\bdef on_data\b", code)
    if uses_broker:
        config = BacktestConfig(account="margin", fractional_shares=True)
        Engine(_excerpt_feed(), _Excerpt(code, where), config).run()
        return
    run_block(code, where, tmp_path)


@pytest.mark.parametrize("where,code", blocks("yaml"))
def test_yaml_block_parses(where: str, code: str) -> None:
    assert yaml.safe_load(code) is not None, where
