"""A sweep on a real Dask cluster (worker processes) gives the table local processes give."""

from __future__ import annotations

import sys

import cloudpickle
import pytest
from distributed import Client, LocalCluster

from ml4t.backtest import BacktestConfig, DataFeed, TopNStrategy
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.research import RunStore, sweep
from ml4t.backtest.risk import TrailingStop

# Dask's workers are fresh processes that cannot import this test file: send it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def make_topn(params):  # type: ignore[no-untyped-def]
    if params["n"] == 7:
        raise RuntimeError("seven is unlucky")
    return TopNStrategy("score", **params)


def trailing(params):  # type: ignore[no-untyped-def]
    return TrailingStop(0.08)


@pytest.fixture(scope="module")
def cluster():  # type: ignore[no-untyped-def]
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


def test_dask_cluster_and_local_processes_give_the_identical_table(cluster, tmp_path):
    feed = DataFeed(synthetic_universe(n_assets=15, n_bars=150, seed=9))
    grid = {"n": [2, 4, 7], "rebalance_every": [1, 5], "slippage": [0.0, 0.001]}
    config = BacktestConfig(commission=0.0005)
    local = sweep(config, grid, feed, make_topn, position_rules=trailing, progress=False)
    with Client(cluster) as client:
        on_dask = sweep(
            config, grid, feed, make_topn, client.get_executor(), position_rules=trailing,
            progress=False, store=tmp_path / "runs.duckdb",
        )  # fmt: skip
    assert local.height == 12
    assert local.equals(on_dask)
    assert local["error"].drop_nulls().to_list() == ["RuntimeError: seven is unlucky"] * 4
    assert RunStore(tmp_path / "runs.duckdb").runs().height == 13  # 12 runs and the sweep


def test_a_dask_address_string_connects_to_the_scheduler(cluster):
    feed = DataFeed(synthetic_universe(n_assets=6, n_bars=60, seed=2))
    address = cluster.scheduler_address.replace("tcp://", "dask://")
    table = sweep(BacktestConfig(), {"n": [1, 2]}, feed, make_topn, address, progress=False)
    assert table["error"].null_count() == 2
