"""Parameter sweeps: grid order, routing of parameters, failures recorded, executors agree."""

from __future__ import annotations

import gc
import importlib
import os
import subprocess
import sys
import threading
import tracemalloc
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed, Engine, TopNStrategy, run_signals
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.execution.commission import CommissionModel
from ml4t.backtest.kernels import driver
from ml4t.backtest.kernels.jit import from_python, released_seconds
from ml4t.backtest.research import (
    RunStore,
    SweepInterrupted,
    data_fingerprint,
    expand_grid,
    sweep,
    sweep_spec,
)
from ml4t.backtest.research import store as store_module
from ml4t.backtest.risk import StopLoss
from ml4t.backtest.spec import BacktestSpec

# The module, not the function the package exports under the same name.
sweep_module = importlib.import_module("ml4t.backtest.research.sweep")


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
    local = sweep(BacktestConfig(commission=0.001), grid, feed, make_topn, "processes", **kwargs)
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


def test_a_lambda_factory_runs_on_local_processes(feed):
    # A notebook's factory: the standard pickle cannot send it, cloudpickle sends it by value.
    grid = {"n": [2, 3, 4]}
    here = sweep(BacktestConfig(), grid, feed, make_topn, "in-process", progress=False)
    width = 3
    there = sweep(
        BacktestConfig(), grid, feed,
        lambda p: TopNStrategy("score", n=p["n"], rebalance_every=width - 2), "processes",
        progress=False,
    )  # fmt: skip
    assert there.equals(here)


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


class NoPool:
    """Stands in for ProcessPoolExecutor where a test asserts no pool is started."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a process pool was started")


class ThreadPoolAsProcesses(ThreadPoolExecutor):
    """Stands in for ProcessPoolExecutor: records that a pool was started, runs on threads."""

    started: ClassVar[list[int]] = []

    def __init__(self, max_workers, mp_context, initializer, initargs):  # type: ignore[no-untyped-def]
        ThreadPoolAsProcesses.started.append(max_workers)
        super().__init__(max_workers, initializer=initializer, initargs=initargs)


def test_one_core_runs_in_process_without_a_pool(feed, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setattr(sweep_module, "_POOL_STARTUP_SECONDS", 0.0)
    monkeypatch.setattr(sweep_module, "ProcessPoolExecutor", NoPool)
    table = sweep(BacktestConfig(), {"n": [2, 3, 4, 5]}, feed, make_topn, progress=False)
    assert table["error"].null_count() == 4


def test_two_cores_start_a_pool_when_the_runs_outlast_its_start_up(feed, monkeypatch):
    # The parent only waits while the workers run: two workers halve the time.
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sweep_module, "_POOL_STARTUP_SECONDS", 0.0)
    monkeypatch.setattr(sweep_module, "ProcessPoolExecutor", ThreadPoolAsProcesses)
    ThreadPoolAsProcesses.started.clear()
    table = sweep(BacktestConfig(), {"n": [2, 3, 4, 5]}, feed, make_topn, progress=False)
    assert ThreadPoolAsProcesses.started == [2]
    assert table["error"].null_count() == 4


THREAD_OF_RUN: dict[int, str] = {}


def record_thread(params):  # type: ignore[no-untyped-def]
    # Module level, so the pool (threads standing in for processes) records into this dict.
    THREAD_OF_RUN[params["n"]] = threading.current_thread().name
    return make_topn(params)


def test_the_first_run_goes_here_before_the_pool_starts(feed, monkeypatch):
    # It compiles or loads the kernels and fills numba's cache: the workers load, never compile.
    monkeypatch.setattr(sweep_module, "ProcessPoolExecutor", ThreadPoolAsProcesses)
    where = THREAD_OF_RUN
    where.clear()
    sweep(BacktestConfig(), {"n": [2, 3, 4]}, feed, record_thread, "processes", progress=False)
    assert where[2] == threading.main_thread().name
    assert where[3] != threading.main_thread().name and where[4] != threading.main_thread().name


def test_more_cores_start_a_pool_when_the_runs_outlast_its_start_up(feed, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(sweep_module, "_POOL_STARTUP_SECONDS", 0.0)
    monkeypatch.setattr(sweep_module, "ProcessPoolExecutor", ThreadPoolAsProcesses)
    ThreadPoolAsProcesses.started.clear()
    grid = {"n": [2, 3, 4, 5]}
    table = sweep(BacktestConfig(), grid, feed, make_topn, progress=False)
    assert ThreadPoolAsProcesses.started == [4]
    assert table.equals(
        sweep(BacktestConfig(), grid, feed, make_topn, "in-process", progress=False)
    )


def test_more_cores_stay_in_process_when_the_runs_are_shorter_than_start_up(feed, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(sweep_module, "_POOL_STARTUP_SECONDS", 1e9)
    monkeypatch.setattr(sweep_module, "ProcessPoolExecutor", NoPool)
    table = sweep(BacktestConfig(), {"n": [2, 3]}, feed, make_topn, progress=False)
    assert table["error"].null_count() == 2


@pytest.mark.parametrize("threads_pay", [True, False])
def test_short_sweeps_go_on_threads_when_the_runs_release_the_gil_enough(
    feed, monkeypatch, threads_pay
):
    # No pool pays (its start-up outlasts the runs); the runs after the two here go on
    # threads when _threads_pay says so (from the timed run's time without the GIL).
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sweep_module, "_POOL_STARTUP_SECONDS", 1e9)
    monkeypatch.setattr(sweep_module, "_threads_pay", lambda run, released, cores: threads_pay)
    monkeypatch.setattr(sweep_module, "ProcessPoolExecutor", NoPool)
    where = THREAD_OF_RUN
    where.clear()
    grid = {"n": list(range(1, 9))}
    table = sweep(BacktestConfig(), grid, feed, record_thread, progress=False)
    main = threading.main_thread().name
    assert [where[n] == main for n in grid["n"]] == [True, True] + [not threads_pay] * 6
    assert table.equals(
        sweep(BacktestConfig(), grid, feed, make_topn, "in-process", progress=False)
    )


def test_the_compiled_driver_runs_without_the_gil_and_the_event_driver_with_it(feed):
    # What executor=None reads to choose threads (released_seconds, per thread).
    before = released_seconds()
    signals_runner(feed, BacktestConfig(), {"entry": 0.5})
    assert released_seconds() > before
    before = released_seconds()
    Engine(feed, make_topn({"n": 3})).run()
    assert released_seconds() == before


def test_threads_pay_when_the_part_of_a_run_without_the_gil_makes_them_faster():
    # 14 ms a run, 9 of them without the GIL: 2 threads go 2x (run/held 2.8); 4 threads 2.8x.
    assert sweep_module._THREADS_SPEEDUP == 1.25
    assert sweep_module._threads_pay(0.014, 0.009, 2)
    # Held 90% of the time: at most 1/0.9 = 1.11x faster, not worth the switching.
    assert not sweep_module._threads_pay(0.010, 0.001, 4)
    # 1/0.8 = 1.25x: just worth it.
    assert sweep_module._threads_pay(0.010, 0.002, 4)
    assert not sweep_module._threads_pay(0.010, 0.010, 1)  # one core: nothing in parallel


class PerShare(CommissionModel):
    """A commission model of the user's own: computed in Python, through the step's callback."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def commission(self, quantity, price, *, monthly_volume=0.0):  # type: ignore[no-untyped-def]
        return self.rate * quantity


def per_share_topn(params):  # type: ignore[no-untyped-def]
    return TopNStrategy("score", n=3)


def test_runs_on_threads_each_pay_their_own_python_commission_model(feed):
    # The step calls Python models through module state: each thread must see its own run's.
    grid = {"commission": [PerShare(rate) for rate in (0.0, 0.01, 0.05, 0.2, 1.0, 3.0)]}
    on_threads = sweep(BacktestConfig(), grid, feed, per_share_topn, ThreadPoolExecutor(3),
                       batch_size=1, progress=False)  # fmt: skip
    here = sweep(BacktestConfig(), grid, feed, per_share_topn, "in-process", progress=False)
    assert on_threads["error"].null_count() == 6
    assert on_threads.drop("commission").equals(here.drop("commission"))
    assert on_threads["total_commission"].n_unique() == 6


def test_the_compiled_loops_release_the_gil_when_python_calls_them():
    # What lets runs of the compiled driver on threads go in parallel.
    for loop in driver._LOOPS.values():
        assert from_python(loop).targetoptions["nogil"] is True


def test_a_pool_pays_when_the_time_it_saves_beats_its_start_up():
    # 4 workers do the remaining runs in a quarter of the time: they save 3/4 of it.
    # 10 runs x 1 s: saves 7.5 s > 3 s of start-up. 3 runs x 1 s: saves 2.25 s < 3 s.
    assert sweep_module._POOL_STARTUP_SECONDS == 3.0
    assert sweep_module._pool_pays(10, 1.0, 4)
    assert not sweep_module._pool_pays(3, 1.0, 4)
    # 2 workers save half: 10 runs x 1 s save 5 s > 3 s; 5 runs save 2.5 s < 3 s.
    assert sweep_module._pool_pays(10, 1.0, 2)
    assert not sweep_module._pool_pays(5, 1.0, 2)
    assert not sweep_module._pool_pays(1000, 1.0, 1)  # one core: a pool saves nothing


def test_ctrl_c_in_process_keeps_finished_runs_and_starts_no_more(feed, tmp_path):
    calls: list[int] = []

    def interrupt_at_three(params):  # type: ignore[no-untyped-def]
        calls.append(params["n"])
        if params["n"] == 3:
            raise KeyboardInterrupt
        return make_topn(params)

    store = tmp_path / "runs.duckdb"
    with pytest.raises(SweepInterrupted) as stop:
        sweep(
            BacktestConfig(), {"n": [1, 2, 3, 4, 5]}, feed, interrupt_at_three, "in-process",
            progress=False, store=store,
        )  # fmt: skip
    assert calls == [1, 2, 3]
    assert stop.value.table["run"].to_list() == [0, 1]
    assert (stop.value.finished, stop.value.total, stop.value.store) == (2, 5, store)
    assert str(stop.value) == f"interrupted: 2 of 5 runs finished, recorded in {store}"
    recorded = RunStore(store).query(
        "select params from runs where kind = 'sweep' and group_id is not null order by id"
    )
    assert recorded["params"].to_list() == ['{"n": 1}', '{"n": 2}']


def test_ctrl_c_on_a_pool_cancels_the_batches_that_have_not_started(feed):
    calls: list[int] = []
    release = threading.Event()

    def interrupt_at_three(params):  # type: ignore[no-untyped-def]
        calls.append(params["n"])
        if params["n"] == 3:
            raise KeyboardInterrupt
        if params["n"] == 4:
            release.wait(30)  # still running when the parent handles Ctrl-C
        return make_topn(params)

    pool = ThreadPoolExecutor(1)
    try:
        with pytest.raises(SweepInterrupted) as stop:
            sweep(
                BacktestConfig(), {"n": [1, 2, 3, 4, 5]}, feed, interrupt_at_three, pool,
                batch_size=1, progress=False,
            )  # fmt: skip
    finally:
        release.set()
        pool.shutdown()
    assert stop.value.table["run"].to_list() == [0, 1]
    assert 5 not in calls  # queued behind the interrupt: cancelled, never started


@pytest.fixture
def held_store(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A store file another process holds open for 4 seconds; yields its path and the PID."""
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
         "time.sleep(4)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    yield path, holder.pid
    holder.wait(30)


def test_a_store_held_by_another_process_does_not_stop_the_sweep(feed, held_store, capsys,
                                                                monkeypatch):  # fmt: skip
    # The store would give up after half a second; the sweep runs, then waits to record.
    monkeypatch.setattr(store_module, "_LOCK_WAIT_SECONDS", 0.5)
    path, pid = held_store
    table = sweep(BacktestConfig(), {"n": [1, 2, 3]}, feed, make_topn, "in-process",
                  progress=False, store=path)  # fmt: skip
    assert table["error"].null_count() == 3
    err = capsys.readouterr().err
    assert "waiting for the store lock held by" in err and f"(PID {pid})" in err
    runs = RunStore(path).query("select count(*) as n from runs where group_id is not null")
    assert runs["n"][0] == 3


SMALL_SPEC = {
    "data": {"synthetic": {"n_assets": 6, "n_bars": 60, "seed": 2}},
    "strategy": {"name": "TopNStrategy", "params": {"column": "score", "n": 2}},
}


def test_a_yaml_grid_over_data_gives_each_run_its_own_data(tmp_path):
    grid = {"data.synthetic.seed": [1, 2], "data.synthetic.n_bars": [40, 70]}
    spec = BacktestSpec.from_dict(SMALL_SPEC | {"grid": grid})
    store = tmp_path / "runs.duckdb"
    table = sweep_spec(spec, "in-process", progress=False, store=store)
    recorded = RunStore(store).query(
        "select data_fingerprint from runs where group_id is not null order by id"
    )
    for i, (seed, n_bars) in enumerate([(1, 40), (1, 70), (2, 40), (2, 70)]):
        data = SMALL_SPEC["data"]["synthetic"] | {"seed": seed, "n_bars": n_bars}
        alone = BacktestSpec.from_dict(SMALL_SPEC | {"data": {"synthetic": data}})
        assert table["total_return"][i] == alone.run().metrics["total_return"]
        assert recorded["data_fingerprint"][i] == data_fingerprint(alone.feed())
    assert table["total_return"].n_unique() == 4


def test_a_yaml_grid_key_no_run_reads_is_refused_naming_it():
    spec = BacktestSpec.from_dict(SMALL_SPEC | {"grid": {"output": ["a", "b"]}})
    with pytest.raises(ConfigError, match=r"grid key 'output' .* data\., strategy\., config\."):
        sweep_spec(spec, "in-process", progress=False)


def test_a_yaml_grid_value_the_strategy_refuses_fails_before_anything_runs():
    spec = BacktestSpec.from_dict(SMALL_SPEC | {"grid": {"strategy.params.top": [1, 2]}})
    with pytest.raises(ConfigError, match=r"strategy\.params\.top"):
        sweep_spec(spec, "in-process", progress=False)


def stop_runner(feed, config, params):  # type: ignore[no-untyped-def]
    score = feed.array("score")
    return run_signals(
        feed, score > params["entry"], score < params["exit"], size=0.2, config=config,
        position_rules=StopLoss(params["stop"]),
    )  # fmt: skip


def _same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


@pytest.mark.parametrize("executor", ["in-process", "processes", "threads"])
def test_each_row_equals_the_metrics_of_a_plain_run_with_its_parameters(feed, executor):
    grid = {"entry": [0.5, 1.0], "exit": [-0.5, 0.0], "stop": [0.02, 0.1], "commission": [0.001]}
    table = sweep(BacktestConfig(), grid, feed, executor=executor, run=stop_runner, progress=False)
    assert table["error"].null_count() == table.height == 8
    for row, params in zip(table.iter_rows(named=True), expand_grid(grid), strict=True):
        config = BacktestConfig(commission=params["commission"])
        plain = stop_runner(feed, config, params).metrics
        assert set(plain) <= set(row)
        different = {k: (row[k], v) for k, v in plain.items() if not _same(row[k], v)}
        assert different == {}


def fills_and_trades(result):  # type: ignore[no-untyped-def]
    return {"fills_rows": result.fills.height, "first_fill_price": result.fills["price"][0]}


@pytest.mark.parametrize("executor", ["in-process", "processes"])
def test_extract_adds_the_columns_it_computes_from_each_result(feed, executor):
    grid = {"entry": [0.5, 1.5], "exit": [0.0], "stop": [0.05]}
    table = sweep(
        BacktestConfig(), grid, feed, executor=executor, run=stop_runner, progress=False,
        extract=fills_and_trades,
    )  # fmt: skip
    for row, params in zip(table.iter_rows(named=True), expand_grid(grid), strict=True):
        plain = stop_runner(feed, BacktestConfig(), params)
        # One row of the fills frame per fill the metrics count.
        assert row["fills_rows"] == row["n_fills"] == plain.fills.height
        assert row["first_fill_price"] == plain.fills["price"][0]
    assert table.columns[-3:] == ["fills_rows", "first_fill_price", "error"]


def test_extract_naming_a_metric_fails_naming_the_column_after_the_first_run(feed):
    ran: list[float] = []

    def counted(feed, config, params):  # type: ignore[no-untyped-def]
        ran.append(params["entry"])
        return signals_runner(feed, config, params)

    with pytest.raises(ConfigError, match="'sharpe'"):
        sweep(
            BacktestConfig(), {"entry": [0.5, 1.0, 1.5]}, feed, run=counted, progress=False,
            executor="in-process", extract=lambda result: {"sharpe": 1.0},
        )  # fmt: skip
    assert ran == [0.5]


def test_extract_returning_no_dict_is_the_error_of_each_run(feed):
    table = sweep(
        BacktestConfig(), {"entry": [0.5, 1.0]}, feed, run=signals_runner, progress=False,
        executor="in-process", extract=lambda result: 3,
    )  # fmt: skip
    assert (
        table["error"].to_list()
        == ["ConfigError: extract must return a dict of columns (name: value), got int"] * 2
    )


def test_timings_give_each_run_its_seconds_and_its_metrics_seconds(feed):
    table = sweep(
        BacktestConfig(), {"entry": [0.5, 1.0]}, feed, run=signals_runner, progress=False,
        executor="in-process", timings=True,
    )  # fmt: skip
    assert table.columns[-3:] == ["error", "seconds_run", "seconds_metrics"]
    assert (table["seconds_run"] > 0).all() and (table["seconds_metrics"] > 0).all()
    plain = sweep(
        BacktestConfig(), {"entry": [0.5, 1.0]}, feed, run=signals_runner, progress=False,
        executor="in-process",
    )  # fmt: skip
    assert "seconds_run" not in plain.columns


def test_a_sweep_keeps_no_result_once_its_metrics_are_read(feed, tmp_path):
    alive: weakref.WeakSet[object] = weakref.WeakSet()
    seen_alive: list[int] = []

    def tracked(feed, config, params):  # type: ignore[no-untyped-def]
        gc.collect()
        seen_alive.append(len(alive))  # results of the runs before this one still held
        result = signals_runner(feed, config, params)
        alive.add(result)
        return result

    grid = {"entry": [0.2 * k for k in range(12)]}
    sweep(BacktestConfig(), grid, feed, run=tracked, progress=False, executor="in-process",
          store=tmp_path / "runs.duckdb", batch_size=4)  # fmt: skip
    gc.collect()
    assert seen_alive == [0] * 12
    assert len(alive) == 0


class HeavyResult:
    """Stands in for a run's result: 80 KB of arrays and a metrics dict."""

    def __init__(self, value: float) -> None:
        self.arrays = np.full(10_000, value)
        self.metrics = {"value": value}


def heavy_run(feed, config, params):  # type: ignore[no-untyped-def]
    return HeavyResult(float(params["k"]))


def _sweep_peak_bytes(feed: DataFeed, n_runs: int, store: Path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        sweep(BacktestConfig(), {"k": list(range(n_runs))}, feed, run=heavy_run,
              progress=False, executor="in-process", store=store)  # fmt: skip
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_sweep_with_a_store_grows_by_its_rows_not_by_its_results(feed, tmp_path):
    few = _sweep_peak_bytes(feed, 200, tmp_path / "few.duckdb")
    many = _sweep_peak_bytes(feed, 1000, tmp_path / "many.duckdb")
    # Keeping each result would add at least its 80,000 bytes of arrays per run; a row (params,
    # metrics, table cells) is a few hundred bytes. A tenth of a result per run separates them.
    per_run = (many - few) / 800
    assert per_run < HeavyResult(0.0).arrays.nbytes / 10


def polars_threads(result):  # type: ignore[no-untyped-def]
    return {"polars_threads": pl.thread_pool_size()}


def test_local_workers_run_polars_on_one_thread_each(feed, monkeypatch):
    # One worker per core: a worker's own thread pool would fight the others for the cores.
    monkeypatch.delenv("POLARS_MAX_THREADS", raising=False)
    table = sweep(
        BacktestConfig(), {"entry": [0.5, 1.0, 1.5]}, feed, run=signals_runner, progress=False,
        executor="processes", extract=polars_threads,
    )  # fmt: skip
    # The first run is this process's (its pool as it was); the two others ran in workers.
    assert table["polars_threads"].to_list()[1:] == [1, 1]
    assert "POLARS_MAX_THREADS" not in os.environ  # set for the workers' start only


def test_batches_hold_about_a_quarter_second_of_runs_when_a_run_time_is_known():
    # 1000 runs on 2 workers: 4 tasks a worker is 1000 / 8 = 125 runs a task.
    assert sweep_module._batch_size(1000, 2) == 125
    # 0.1 s a run: ceil(0.25 / 0.1) = 3 runs a task, so the last task idles a worker 0.3 s.
    assert sweep_module._batch_size(1000, 2, 0.1) == 3
    # 0.1 ms a run: a quarter second would be 2500 runs, more than 125: 125 it stays.
    assert sweep_module._batch_size(1000, 2, 0.0001) == 125


def test_a_pools_batches_are_written_to_the_store_in_blocks_not_one_write_each(
    feed, tmp_path, monkeypatch
):
    # Each write opens the file; batches of 2 from a pool would make 5 writes for 10 runs.
    monkeypatch.setattr(sweep_module, "_RECORD_SECONDS", 1e9)
    writes: list[int] = []
    record_many = RunStore.record_many

    def counted(self, runs, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("group_id") is not None:
            writes.append(len(runs))
        return record_many(self, runs, **kwargs)

    monkeypatch.setattr(RunStore, "record_many", counted)
    table = sweep(
        BacktestConfig(), {"entry": [0.1 * k for k in range(10)]}, feed, run=signals_runner,
        executor=ThreadPoolExecutor(2), batch_size=2, progress=False, store=tmp_path / "r.duckdb",
    )  # fmt: skip
    assert table.height == 10
    assert writes == [10]


def test_each_row_of_an_event_driver_sweep_equals_a_plain_engine_run(feed):
    grid = {"n": [2, 5], "rebalance_every": [1, 4], "commission": [0.002]}
    table = sweep(
        BacktestConfig(), grid, feed, make_topn, "processes", position_rules=stop_of,
        progress=False,
    )  # fmt: skip
    assert table["error"].null_count() == table.height == 4
    for row, params in zip(table.iter_rows(named=True), expand_grid(grid), strict=True):
        strategy = make_topn({"n": params["n"], "rebalance_every": params["rebalance_every"]})
        config = BacktestConfig(commission=params["commission"])
        plain = Engine(feed, strategy, config, position_rules=stop_of(params)).run().metrics
        different = {k: (row[k], v) for k, v in plain.items() if not _same(row[k], v)}
        assert different == {}
