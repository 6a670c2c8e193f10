"""The demo end to end: the command line, the saved files, and a run big enough to grow buffers."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import yaml

from ml4t.backtest import BacktestConfig, DataFeed, Engine, TopNStrategy
from ml4t.backtest.cli import main
from ml4t.backtest.datasets import synthetic_universe


def test_demo_command_prints_the_summary_and_writes_results(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--assets", "30", "--bars", "120", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Final value" in printed and "Sharpe" in printed and str(out) in printed
    for name in ("equity", "fills", "trades", "orders"):
        assert pl.read_parquet(out / f"{name}.parquet").height > 0
    metrics = json.loads((out / "metrics.json").read_text())
    equity = pl.read_parquet(out / "equity.parquet")
    assert metrics["final_value"] == equity["equity"][-1]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert BacktestConfig.from_dict(config).commission == 0.0005


def test_long_run_keeps_every_order_and_fill_past_the_initial_buffers():
    feed = DataFeed(synthetic_universe(n_assets=60, n_bars=400, seed=3))
    config = BacktestConfig(initial_cash=1_000_000, commission=0.001)
    result = Engine(feed, TopNStrategy("score", n=15, rebalance_every=1), config).run()
    orders, fills = result.orders, result.fills
    assert orders.height > 2048 and fills.height > 2048
    assert orders["order_id"].to_list() == list(range(orders.height))
    # Every fill belongs to a filled order and their quantities agree.
    per_order = fills.group_by("order_id").agg(pl.col("quantity").sum())
    joined = orders.join(per_order, on="order_id")
    assert np.allclose(joined["filled_quantity"], joined["quantity_right"])
    # The book closes: final cash equals initial cash less what every fill cost.
    sign = np.where(fills["side"] == "buy", 1.0, -1.0)
    spent = (sign * fills["quantity"] * fills["price"] + fills["commission"]).sum()
    assert np.isclose(result.equity["cash"][-1], 1_000_000 - spent, rtol=1e-12)


def test_same_inputs_give_bit_identical_results():
    def once() -> tuple[pl.DataFrame, pl.DataFrame]:
        feed = DataFeed(synthetic_universe(n_assets=20, n_bars=200, seed=5))
        result = Engine(
            feed, TopNStrategy("score", n=5, rebalance_every=3), BacktestConfig(slippage=0.001)
        ).run()
        return result.equity, result.fills

    (eq1, f1), (eq2, f2) = once(), once()
    assert eq1.equals(eq2) and f1.equals(f2)
