"""result.save: a folder written whole or not at all, that load reads back as it was saved."""

from __future__ import annotations

import json
import math

import pytest

from ml4t.backtest import BacktestConfig, BacktestResult, ConfigError, Engine, Strategy
from scripted import run

BARS = [(10.0, 10.0), (10.0, 11.0), (11.0, 12.0), (12.0, 11.5), (11.5, 13.0)]


class BuyOnce(Strategy):
    def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
        if data.index == 0:
            broker.submit_order("A", 10)


def test_saving_a_run_without_a_benchmark_over_one_with_leaves_no_stale_benchmark(
    make_feed, tmp_path
):
    feed = make_feed({"A": BARS, "B": [(100.0, 100.0), (100.0, 101.0), (101.0, 99.0),
                                       (99.0, 103.0), (103.0, 104.0)]})  # fmt: skip
    with_benchmark = Engine(feed, BuyOnce(), BacktestConfig(), benchmark="B").run()
    without = Engine(feed, BuyOnce(), BacktestConfig()).run()
    assert math.isfinite(with_benchmark.metrics["beta"])
    folder = tmp_path / "run"
    with_benchmark.save(folder)
    without.save(folder)
    assert not (folder / "records" / "benchmark.npy").exists()
    loaded = BacktestResult.load(folder)
    # The run saved last had no benchmark: no alpha or beta, as it reported itself.
    assert math.isnan(loaded.metrics["alpha"])
    assert math.isnan(loaded.metrics["beta"])


def test_saving_over_an_earlier_result_replaces_its_report_too(make_feed, tmp_path):
    result, _ = run(make_feed({"A": BARS}), {0: lambda b, d: b.submit_order("A", 10)})
    folder = tmp_path / "run"
    result.save(folder)
    (folder / "report.html").write_text("the earlier run's report")
    result.save(folder)
    assert not (folder / "report.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder left


def test_saving_into_a_folder_of_other_files_is_refused_and_touches_nothing(make_feed, tmp_path):
    result, _ = run(make_feed({"A": BARS}), {0: lambda b, d: b.submit_order("A", 10)})
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="holds files but no saved result"):
        result.save(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_a_callable_commission_is_a_config_error_naming_the_key_and_writes_nothing(
    make_feed, tmp_path
):
    result, _ = run(
        make_feed({"A": BARS}), {0: lambda b, d: b.submit_order("A", 10)},
        commission=lambda q, p: 1.0,
    )  # fmt: skip
    assert result.fills["commission"].to_list() == [1.0]
    folder = tmp_path / "run"
    with pytest.raises(ConfigError, match="config key 'commission' holds <function"):
        result.save(folder)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_leaves_the_earlier_result_in_place(make_feed, tmp_path):
    feed = make_feed({"A": BARS})
    good, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10)})
    bad, _ = run(feed, {0: lambda b, d: b.submit_order("A", 5)}, commission=lambda q, p: 1.0)
    folder = tmp_path / "run"
    good.save(folder)
    with pytest.raises(ConfigError):
        bad.save(folder)
    assert BacktestResult.load(folder).fills["quantity"].to_list() == [10.0]


def test_infinite_and_nan_metrics_are_strict_json(make_feed, tmp_path):
    # 10,000 cash buys 10,000 shares at a close of 1; the next close is 5,000: up 5000x in two
    # bars, a CAGR beyond any float (inf). No trade closed, so the win rate is NaN.
    feed = make_feed({"A": [(1.0, 1.0), (1.0, 5_000.0)]})
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 10_000)}, fill_timing="same_close")
    assert result.final_value == 50_000_000.0
    text = (result.save(tmp_path / "run") / "metrics.json").read_text()
    metrics = json.loads(text, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))
    assert metrics["cagr"] == "inf"
    assert metrics["win_rate"] is None
    assert metrics["n_trades"] == 0


def test_a_loaded_result_keeps_the_strategy_that_ran(make_feed, tmp_path):
    result = Engine(make_feed({"A": BARS}), BuyOnce(), BacktestConfig()).run()
    assert result.strategy == "BuyOnce()"
    result.save(tmp_path / "run")
    assert BacktestResult.load(tmp_path / "run").strategy == "BuyOnce()"


def test_counts_in_the_metrics_are_whole_numbers(make_feed):
    m = Engine(make_feed({"A": BARS}), BuyOnce(), BacktestConfig()).run().metrics
    assert type(m["n_fills"]) is int
    assert m["n_fills"] == 1
    # 10 shares bought at 10.0 (bar 1's open): equity 100,010, 100,020, then 100,015 on bar 3
    # (close 11.5 under 12), back above the peak on bar 4: one bar under water.
    assert type(m["max_drawdown_bars"]) is int
    assert m["max_drawdown_bars"] == 1


def test_overwrite_saves_into_a_folder_of_other_files_and_keeps_them(make_feed, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    (folder / "metrics.json").write_text("an older file of that name")
    result = Engine(make_feed({"A": BARS}), BuyOnce(), BacktestConfig()).run()
    with pytest.raises(ConfigError, match="holds files but no saved result"):
        result.save(folder)
    result.save(folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep me"
    assert json.loads((folder / "metrics.json").read_text())["n_fills"] == 1
    assert BacktestResult.load(folder).final_value == result.final_value
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_a_result_rebuilt_from_its_records_is_the_same_run(make_feed):
    result = Engine(make_feed({"A": BARS}), BuyOnce(), BacktestConfig()).run()
    rebuilt = BacktestResult(
        **result.records._asdict(),
        config=result.config,
        initial_cash=result.initial_cash,
        periods_per_year=result.periods_per_year,
    )
    assert rebuilt.final_value == result.final_value == 100_030.0  # 10 shares, 10 -> 13
    assert rebuilt.fills.equals(result.fills)
    assert rebuilt.equity.equals(result.equity)
