"""Parameter sweeps: grid order, routing of parameters, failures recorded, executors agree."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed, TopNStrategy, run_signals
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.research import RunStore, expand_grid, sweep
from ml4t.backtest.risk import StopLoss


def make_topn(params):  # type: ignore[no-untyped-def]
    if params.get("n") == 0:
        raise ValueError("n must be positive")
    return TopNStrategy("score", **params)


def stop_of(params):  # type: ignore[no-untyped-def]
    return StopLoss(0.05)


def signals_runner(feed, config, params):  # type: ignore[no-untyped-def]
    score = feed.array("score")
    return run_signals(feed, score > params["entry"], score < 0.0, size=0.1, config=config)


@pytest.fixture(scope="module")
def feed() -> DataFeed:
    return DataFeed(synthetic_universe(n_assets=12, n_bars=120, seed=4))


def test_expand_grid_varies_the_last_key_fastest_and_keeps_explicit_lists():
    assert expand_grid({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert expand_grid([{"x": 1}, {"y": 2}]) == [{"x": 1}, {"y": 2}]
    with pytest.raises(ConfigError, match="list of values"):
        expand_grid({"a": 5})


def test_one_row_per_run_in_grid_order_with_params_and_metrics(feed):
    grid = {"n": [2, 4], "rebalance_every": [1, 5], "commission": [0.0, 0.01]}
    table = sweep(BacktestConfig(), grid, feed, make_topn, ThreadPoolExecutor(2), progress=False)
    assert table["run"].to_list() == list(range(8))
    assert table.select("n", "rebalance_every", "commission").rows() == [
        tuple(c.values()) for c in expand_grid(grid)
    ]
    assert table["error"].null_count() == 8
    # Commission is a config key: the same strategy pays it and earns less.
    cheap, dear = table.filter(pl.col("commission") == 0.0), table.filter(pl.col("commission") > 0)
    assert (cheap["total_return"].to_numpy() > dear["total_return"].to_numpy()).all()


def test_a_run_that_raises_is_recorded_and_the_sweep_goes_on(feed):
    table = sweep(
        BacktestConfig(), {"n": [3, 0, 2]}, feed, make_topn, ThreadPoolExecutor(1), progress=False
    )
    assert table["error"].to_list() == [None, "ValueError: n must be positive", None]
    assert table["sharpe"].null_count() == 1


def test_local_processes_and_threads_give_the_identical_table(feed):
    grid = {"n": [2, 3, 5], "rebalance_every": [1, 3]}
    kwargs = {"position_rules": stop_of, "progress": False}
    local = sweep(BacktestConfig(commission=0.001), grid, feed, make_topn, **kwargs)
    threads = sweep(
        BacktestConfig(commission=0.001), grid, feed, make_topn, ThreadPoolExecutor(3), **kwargs
    )
    assert local.equals(threads)


def test_a_runner_sweeps_the_compiled_driver(feed):
    table = sweep(
        BacktestConfig(), {"entry": [0.5, 1.0, 1.5]}, feed, run=signals_runner, progress=False
    )
    assert table["error"].null_count() == 3
    assert table["n_trades"].n_unique() == 3


def test_a_closure_cannot_go_to_local_processes(feed):
    with pytest.raises(ConfigError, match="module level"):
        sweep(BacktestConfig(), {"n": [2]}, feed, lambda p: make_topn(p), progress=False)


def test_a_parameter_no_one_takes_fails_each_run_naming_it(feed):
    # Not a config key, so the strategy factory receives it, and TopNStrategy refuses it.
    table = sweep(
        BacktestConfig(), {"comission": [0.1]}, feed, make_topn, ThreadPoolExecutor(1),
        progress=False,
    )  # fmt: skip
    assert "comission" in table["error"][0]


def test_the_store_gets_every_run_of_a_200_run_sweep(feed, tmp_path):
    small = DataFeed(synthetic_universe(n_assets=4, n_bars=40, seed=1))
    grid = {"n": [1, 2, 3, 4], "rebalance_every": list(range(1, 51))}
    store = RunStore(tmp_path / "runs.duckdb")
    table = sweep(BacktestConfig(), grid, small, make_topn, store=store, name="big", progress=False)
    assert table.height == 200
    runs = store.query(
        "select count(*) as n from runs where kind = 'sweep' and group_id is not null"
    )
    assert runs["n"][0] == 200
    metrics = store.query("select count(distinct run_id) as n from metrics")
    assert metrics["n"][0] == 200
