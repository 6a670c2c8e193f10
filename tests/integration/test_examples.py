"""The examples in ``examples/`` run, on a small universe, and show what they claim to show."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SMALL = {"n_assets": 20, "n_bars": 250, "seed": 3}


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["volatility_stops", "regime_rules", "slippage_comparison"])
def test_example_runs_as_a_script(name):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--assets", "10", "--bars", "120"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "shape:" in done.stdout


def test_volatility_stops_fire_only_in_the_variants_that_have_them():
    table = load("volatility_stops").main(**SMALL)
    stops = dict(table.select("variant", "stop_exits").iter_rows())
    assert stops.pop("no stop") == 0
    assert all(count > 0 for count in stops.values()), stops
    assert table["final_value"].n_unique() == table.height


def test_regime_column_uses_only_bars_up_to_its_own():
    module = load("regime_rules")
    prices = module.synthetic_universe(n_assets=10, n_bars=120, seed=5)
    full = module.with_regime(prices)
    cut = prices["timestamp"].unique().sort()[80]
    early = module.with_regime(prices.filter(pl.col("timestamp") <= cut))
    keys = ["timestamp", "asset"]
    joined = early.select(*keys, "regime").join(full.select(*keys, "regime"), on=keys)
    assert joined.height == early.height
    assert joined.filter(pl.col("regime") != pl.col("regime_right")).height == 0
    assert set(full["regime"].drop_nulls().drop_nans().unique().to_list()) == {0.0, 1.0}


def test_regime_switch_uses_both_stops():
    table = load("regime_rules").main(**SMALL)
    stops = dict(table.select("variant", "stop_exits").iter_rows())
    assert stops["no stop"] == 0
    assert stops["6% turbulent, 15% calm"] > 0


def test_slippage_models_cost_what_they_say():
    table = load("slippage_comparison").main(**SMALL)
    bps = {
        (cash, model): b
        for cash, model, b in table.select(
            "initial_cash", "slippage_model", "slippage_bps"
        ).iter_rows()
    }
    small, large = sorted({cash for cash, _ in bps})
    assert bps[(small, "none")] == 0.0
    # Measured against the fill price, which already includes the 5 bps: 5 / (1 +- 0.0005).
    assert bps[(small, "fixed 5 bps")] == pytest.approx(5.0, rel=1e-3)
    assert bps[(large, "fixed 5 bps")] == pytest.approx(5.0, rel=1e-3)
    # Impact grows with order size; fixed and spread costs do not.
    assert bps[(large, "sqrt impact")] > 3 * bps[(small, "sqrt impact")]
    assert bps[(large, "half spread")] == pytest.approx(bps[(small, "half spread")], rel=0.05)
