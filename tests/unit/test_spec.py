"""YAML backtests: every error names its key's path, and a spec round-trips."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from ml4t.backtest import ConfigError, DataFeed
from ml4t.backtest.cli import main
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.risk import AnyOf, MaxPositions, StopLoss, TimeExit
from ml4t.backtest.spec import BacktestSpec, equal_weight_benchmark, strategy_class

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def base() -> dict:  # type: ignore[type-arg]
    return {
        "data": {"synthetic": {"n_assets": 8, "n_bars": 80, "seed": 1}},
        "strategy": {"name": "TopNStrategy", "params": {"column": "score", "n": 2}},
    }


def with_(path: str, value: object) -> dict:  # type: ignore[type-arg]
    spec = base()
    *parents, last = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return spec


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (with_("strategyy", {}), r"unknown key 'strategyy'; did you mean 'strategy'"),
        (with_("data.price", "x.parquet"), r"unknown key 'data.price'; did you mean 'prices'"),
        (with_("data.prices", "x.parquet"), "exactly one of 'prices'"),
        (with_("data.synthetic.n_asets", 3), r"'data.synthetic.n_asets'; did you mean 'n_assets'"),
        ({"data": base()["data"]}, "no 'strategy' section"),
        (with_("strategy.name", "TopNStrategi"), r"unknown strategy.*did you mean 'TopNStrategy'"),
        (with_("strategy.name", "no_such_module:X"), "cannot import module 'no_such_module'"),
        (with_("strategy.name", "ml4t.backtest:Nope"), "no Strategy subclass named 'Nope'"),
        (with_("strategy.params.nn", 3), r"'strategy.params.nn'; did you mean 'n'"),
        (with_("config.comission", 0.1), r"'config.comission'; did you mean 'commission'"),
        (with_("config.preset", "vectorbtt"), r"did you mean 'vectorbt'"),
        (with_("config.slippage", {"model": "FixedBps"}), "did you mean 'FixedBpsSlippage'"),
        (with_("position_rules", {"StopLos": 0.1}), r"'position_rules.StopLos'.*'StopLoss'"),
        (with_("position_rules", {"StopLoss": {"pc": 0.1}}), r"'position_rules.StopLoss.pc'"),
        (with_("position_rules", {"AnyOf": [{"StopLoss": 2}]}), r"AnyOf\[0\].StopLoss'.*pct"),
        (with_("position_rules", {"AnyOf": {}}), "non-empty list of rules"),
        (with_("portfolio_rules", {"MaxPositions": 3}), "'portfolio_rules' must be a list"),
        (with_("portfolio_rules", [{"MaxPosition": 3}]), r"did you mean 'MaxPositions'"),
        (with_("portfolio_rules", [{"MaxPositions": 0}]), r"'portfolio_rules\[0\].MaxPositions'"),
    ],
)
def test_each_mistake_is_an_error_naming_its_path(values, match):
    with pytest.raises(ConfigError, match=match):
        BacktestSpec.from_dict(values).run()


def test_a_bad_yaml_file_and_a_missing_one_are_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        BacktestSpec.from_yaml(bad)
    with pytest.raises(ConfigError, match="no such backtest file"):
        BacktestSpec.from_yaml(tmp_path / "missing.yaml")


def test_rules_and_config_are_built_from_the_file():
    spec = BacktestSpec.from_dict(
        with_("position_rules", {"AnyOf": [{"StopLoss": 0.05}, {"TimeExit": {"bars": 10}}]})
        | {"portfolio_rules": [{"MaxPositions": 3}], "config": {"preset": "vectorbt"}}
    )
    assert spec.position_rules == AnyOf(StopLoss(0.05), TimeExit(10))
    assert spec.portfolio_rules == [MaxPositions(3)]
    assert spec.config.fill_timing == "same_close"  # what the vectorbt preset sets


def test_the_resolved_spec_reads_back_into_the_same_backtest():
    spec = BacktestSpec.from_dict(
        with_("position_rules", {"TrailingStop": 0.05}) | {"config": {"commission": 0.001}}
    )
    again = BacktestSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
    first, second = spec.run(), again.run()
    assert first.fills.equals(second.fills)
    assert "trailing_stop" in set(first.fills["reason"])


def test_parquet_paths_are_relative_to_the_file_and_user_strategies_import(tmp_path, monkeypatch):
    synthetic_universe(n_assets=5, n_bars=60, seed=2).write_parquet(tmp_path / "prices.parquet")
    (tmp_path / "my_strategies.py").write_text(
        textwrap.dedent(
            """
            from ml4t.backtest import Strategy

            class BuyFirst(Strategy):
                def __init__(self, qty=10):
                    self.qty = qty

                def on_data(self, timestamp, data, broker):
                    if data.index == 0:
                        broker.submit_order(str(data.assets[0]), self.qty)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "bt.yaml").write_text(
        "data: {prices: prices.parquet}\n"
        "strategy: {name: 'my_strategies:BuyFirst', params: {qty: 7}}\n"
    )
    monkeypatch.chdir(Path(sys.prefix))  # elsewhere: the data path must not depend on it
    result = BacktestSpec.from_yaml(tmp_path / "bt.yaml").run()
    assert result.fills["quantity"].to_list() == [7.0]


def test_cli_run_writes_results_and_prints_json(tmp_path, capsys):
    config = tmp_path / "bt.yaml"
    config.write_text(yaml.safe_dump(with_("position_rules", {"StopLoss": 0.03})))
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["output"] == str(tmp_path / "out")
    assert "sharpe" in printed["metrics"]
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"equity.parquet", "fills.parquet", "trades.parquet", "backtest.yaml"} <= written
    resolved = yaml.safe_load((tmp_path / "out" / "backtest.yaml").read_text())
    assert resolved["position_rules"] == {"StopLoss": {"pct": 0.03}}


def test_cli_run_reports_a_bad_file_as_an_error(tmp_path, capsys):
    config = tmp_path / "bt.yaml"
    config.write_text(yaml.safe_dump(with_("config.comission", 0.1)))
    assert main(["run", str(config), "--quiet"]) == 2
    assert "config.comission" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["simple_signal", "ml_topn", "portfolio_costs"])
def test_example_configs_run(name):
    values = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    values["data"]["synthetic"]["n_bars"] = 200  # a smaller run of the same file
    spec = BacktestSpec.from_dict(values, base_dir=CONFIGS)
    feed = spec.feed()
    assert isinstance(feed, DataFeed)
    result = spec.run(feed=feed)
    assert result.fills.height > 0
    assert spec.output is not None and spec.output.startswith("results/")


def test_saved_results_load_back_and_report_rebuilds(tmp_path, capsys):
    config = tmp_path / "bt.yaml"
    config.write_text(yaml.safe_dump(with_("position_rules", {"StopLoss": 0.03})))
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == 0
    assert (out / "report.html").is_file()
    from ml4t.backtest import BacktestResult

    loaded = BacktestResult.load(out)
    original = BacktestSpec.from_yaml(config).run()
    assert loaded.fills.equals(original.fills)
    assert loaded.trades.equals(original.trades)
    assert loaded.metrics == pytest.approx(original.metrics, nan_ok=True)
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").stat().st_size > 100_000
    assert main(["report", str(tmp_path)]) == 2
    assert "no records/meta.json" in capsys.readouterr().err


def test_data_rename_renames_columns_of_synthetic_and_parquet_data(tmp_path):
    spec = BacktestSpec.from_dict(
        {
            "data": {
                "synthetic": {"n_assets": 4, "n_bars": 40},
                "rename": {"volatility_20": "volatility"},
            },
            "strategy": {"name": "TopNStrategy", "params": {"column": "score", "n": 2}},
        }
    )
    feed = spec.feed()
    assert "volatility" in feed.fields and "volatility_20" not in feed.fields
    assert BacktestSpec.from_dict(spec.to_dict()).feed().fields == feed.fields

    synthetic_universe(n_assets=4, n_bars=40, seed=2).write_parquet(tmp_path / "p.parquet")
    from_files = BacktestSpec.from_dict(
        {
            "data": {"prices": "p.parquet", "rename": {"momentum_20": "mom"}},
            "strategy": {"name": "TopNStrategy", "params": {"column": "mom", "n": 2}},
        },
        base_dir=tmp_path,
    )
    assert "mom" in from_files.feed().fields
    assert from_files.run().metrics["n_trades"] >= 0


def test_data_rename_of_a_missing_column_names_it_and_the_nearest():
    spec = BacktestSpec.from_dict(
        {
            "data": {"synthetic": {"n_assets": 4, "n_bars": 40}, "rename": {"volatilty_20": "v"}},
            "strategy": {"name": "TopNStrategy", "params": {"column": "score", "n": 2}},
        }
    )
    with pytest.raises(
        ConfigError, match=r"no column 'volatilty_20'.*did you mean 'volatility_20'"
    ):
        spec.feed()


def test_a_second_config_section_is_an_error_naming_its_line(tmp_path):
    path = tmp_path / "bt.yaml"
    path.write_text(
        "data: {synthetic: {n_assets: 4, n_bars: 40}}\n"
        "strategy: {name: TopNStrategy, params: {column: score, n: 2}}\n"
        "config: {commission: 0.001}\n"
        "config: {slippage: 0.001}\n"
    )
    with pytest.raises(ConfigError, match=r"duplicate key 'config' in .*bt.yaml at line 4"):
        BacktestSpec.from_yaml(path)


def test_a_key_given_twice_in_a_sweep_grid_is_an_error(tmp_path):
    path = tmp_path / "bt.yaml"
    path.write_text(
        "data: {synthetic: {n_assets: 4, n_bars: 40}}\n"
        "strategy: {name: TopNStrategy, params: {column: score, n: 2}}\n"
        "grid:\n"
        "  strategy.params.n: [1, 2]\n"
        "  strategy.params.n: [3]\n"
    )
    with pytest.raises(ConfigError, match=r"duplicate key 'grid.strategy.params.n'.*line 5"):
        BacktestSpec.from_yaml(path)


@pytest.mark.parametrize("name", ["my strategies:X", "1st:X", "mod:1X", "mod:class", "mod.:X"])
def test_a_strategy_name_that_is_not_module_colon_class_is_refused(name):
    with pytest.raises(ConfigError, match="must read 'module:Class' with Python names"):
        strategy_class(name)


def test_a_module_that_does_not_define_the_class_is_not_imported(tmp_path, monkeypatch, capsys):
    # Importing runs the module: here it would print; the name is refused before that.
    (tmp_path / "noisy.py").write_text("print('imported!')\nclass Other: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="neither defines nor imports 'Momentum'"):
        strategy_class("noisy:Momentum")
    assert "noisy" not in sys.modules
    assert capsys.readouterr().out == ""


def test_the_zen_of_python_is_not_printed_for_a_this_strategy(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "this", raising=False)
    for name in ("this:Strategy", "this:s"):  # 's' is a string the module assigns
        with pytest.raises(ConfigError, match="neither defines nor imports"):
            strategy_class(name)
    assert "this" not in sys.modules
    assert "Beautiful is better" not in capsys.readouterr().out


def test_a_class_imported_by_a_strategy_module_is_found(tmp_path, monkeypatch):
    (tmp_path / "reexports.py").write_text(
        "try:\n    from ml4t.backtest import TopNStrategy as Chosen\nexcept ImportError:\n"
        "    raise\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert strategy_class("reexports:Chosen").__name__ == "TopNStrategy"


def test_a_strategy_module_in_the_working_directory_is_found_when_not_on_the_path(
    tmp_path, monkeypatch
):
    # The installed ml4t-backtest script starts with its own folder on sys.path, not the
    # working directory (python -m puts the working directory first).
    (tmp_path / "wd_strategies.py").write_text(
        "from ml4t.backtest import Strategy\n\n"
        "class Hold(Strategy):\n    def on_data(self, timestamp, data, broker):\n        pass\n"
    )
    monkeypatch.chdir(tmp_path)
    outside = [p for p in sys.path if p and Path(p).resolve() != tmp_path.resolve()]
    monkeypatch.setattr(sys, "path", outside)
    assert strategy_class("wd_strategies:Hold").__name__ == "Hold"
    assert Path(sys.path[-1]).resolve() == tmp_path.resolve()  # last: it shadows nothing


def test_equal_weight_benchmark_holds_cash_until_an_asset_first_trades_and_carries_closes():
    day = [datetime(2024, 1, d) for d in (1, 2, 3, 4)]
    rows = [("A", day[0], 10.0), ("A", day[1], 20.0), ("A", day[2], 20.0)]  # A: no bar 4
    rows += [("B", day[1], 50.0), ("B", day[2], 25.0), ("B", day[3], 100.0)]  # B: no bar 1
    frame = pl.DataFrame(rows, schema=["asset", "timestamp", "close"], orient="row")
    frame = frame.with_columns(
        open=pl.col("close"), high=pl.col("close"), low=pl.col("close"), volume=pl.lit(1e3)
    )
    prices = equal_weight_benchmark(DataFeed(frame))
    # Half of 1.0 each. Bar 1: A at its first close (0.5) + B's half as cash (0.5).
    # Bar 2: A doubled (0.5 * 20/10 = 1.0) + B bought at 50 (0.5). Bar 3: A 1.0 + B at
    # 25/50 (0.25). Bar 4: A keeps its last close (1.0) + B at 100/50 (1.0).
    assert prices.tolist() == [1.0, 1.5, 1.25, 2.0]


def test_a_benchmark_gives_alpha_and_beta_and_equal_weight_is_the_universe():
    feed = BacktestSpec.from_dict(base()).feed()
    without = BacktestSpec.from_dict(base()).run(feed=feed)
    assert math.isnan(without.metrics["beta"])
    for benchmark in ("A0003", "equal_weight"):
        spec = BacktestSpec.from_dict(base() | {"benchmark": benchmark})
        assert spec.to_dict()["benchmark"] == benchmark
        result = spec.run(feed=feed)
        assert math.isfinite(result.metrics["alpha"]) and math.isfinite(result.metrics["beta"])
        assert "Beta" in result.summary()
    close = feed.array("close")
    # The equal-weight index's return over the run is the mean of the assets' own returns.
    expected = float(np.mean(close[-1] / close[0]))
    assert equal_weight_benchmark(feed)[-1] == pytest.approx(expected, rel=1e-12)


def test_a_benchmark_that_is_not_an_asset_names_the_nearest():
    spec = BacktestSpec.from_dict(base() | {"benchmark": "A003"})
    with pytest.raises(ConfigError, match=r"benchmark 'A003'.*did you mean 'A0003'.*equal_weight"):
        spec.run()
