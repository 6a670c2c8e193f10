"""The run store: runs and metrics in DuckDB, read back, compared, and shared by processes."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time

import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed, Engine, TopNStrategy
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.research import RunStore, StoreLockedError, data_fingerprint
from ml4t.backtest.research.store import lock_holder


def result(n: int):  # type: ignore[no-untyped-def]
    feed = DataFeed(synthetic_universe(n_assets=6, n_bars=60, seed=1))
    return Engine(feed, TopNStrategy("score", n=n), BacktestConfig(commission=0.001)).run()


def test_a_recorded_run_reads_back_with_its_config_params_and_metrics(tmp_path):
    store = RunStore(tmp_path / "runs.duckdb")
    first = result(2)
    run_id = store.record(first, name="top2", params={"n": 2}, data_fingerprint="abc")
    row = store.run(run_id)
    assert row["name"] == "top2" and row["kind"] == "run" and row["data_fingerprint"] == "abc"
    assert row["params"] == {"n": 2}
    assert row["config"]["commission"] == 0.001
    assert row["metrics"]["sharpe"] == pytest.approx(first.metrics["sharpe"])
    assert row["code_version"].startswith("0.")


def test_runs_lists_newest_first_and_compare_puts_runs_side_by_side(tmp_path):
    store = RunStore(tmp_path / "runs.duckdb")
    a = store.record(result(2), name="a")
    b = store.record(result(3), name="b")
    assert store.runs()["id"].to_list() == [b, a]
    table = store.compare([a, b])
    assert table.columns == ["metric", f"run {a}", f"run {b}"]
    sharpe = table.filter(table["metric"] == "sharpe").row(0)
    assert sharpe[1] != sharpe[2]
    with pytest.raises(ConfigError, match="no run with id 99"):
        store.run(99)


def test_users_can_query_the_file_with_sql(tmp_path):
    store = RunStore(tmp_path / "runs.duckdb")
    for n in (1, 2, 3):
        store.record(result(n), params={"n": n})
    best = store.query(
        "select r.params, m.value from runs r join metrics m on m.run_id = r.id "
        "where m.name = 'sharpe' order by m.value desc limit 1"
    )
    assert best.height == 1


def _write_many(path: str, who: int) -> None:
    store = RunStore(path)
    for i in range(25):
        store.record(None, name=f"writer {who}", params={"i": i}, error=None)


def test_writers_in_several_processes_lose_no_rows(tmp_path):
    path = str(tmp_path / "runs.duckdb")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(path, w)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    counts = RunStore(path).query("select name, count(*) as n from runs group by name order by 1")
    assert counts["n"].to_list() == [25, 25, 25]


def test_the_fingerprint_changes_with_any_value():
    frame = synthetic_universe(n_assets=3, n_bars=20, seed=1)
    same = data_fingerprint(DataFeed(frame)) == data_fingerprint(DataFeed(frame))
    bumped = frame.with_columns(frame["close"].scatter(5, frame["close"][5] + 0.01))
    assert same
    assert data_fingerprint(DataFeed(frame)) != data_fingerprint(DataFeed(bumped))


def test_a_store_held_past_its_lock_timeout_raises_naming_the_holder(tmp_path):
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
         "time.sleep(3)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(StoreLockedError, match=rf"locked by .*\(PID {holder.pid}\)"):
            RunStore(path, lock_timeout=0.3).record(None, name="blocked")
        assert time.monotonic() - started < 2.5  # gave up after its timeout, not the default
    finally:
        holder.wait(30)


def test_lock_holder_reads_duckdbs_message_and_falls_back():
    message = (
        'IO Error: Could not set lock on file "/x/runs.duckdb": Conflicting lock is held in '
        "/usr/bin/python3.11 (PID 9650). See also https://duckdb.org/docs/current/connect/"
    )
    assert lock_holder(message) == "/usr/bin/python3.11 (PID 9650)"
    assert lock_holder("IO Error: lock") == "another process"


def test_record_many_gives_ids_in_order_and_each_run_only_its_own_metrics(tmp_path):
    store = RunStore(tmp_path / "runs.duckdb")
    first = store.record(None, params={"a": 0})
    ids = store.record_many(
        [
            {"params": {"a": 1}, "metrics": {"sharpe": 1.5, "cagr": float("nan")}},
            {"params": {"a": 2}, "error": "ValueError: boom"},
            {"params": {"a": 3}, "metrics": {"sharpe": -0.5}},
        ],
        kind="sweep",
        group_id=first,
    )
    assert ids == [first + 1, first + 2, first + 3]
    runs = store.query(
        f"select id, params, error, group_id from runs where id > {first} order by id"
    )
    assert runs.rows() == [
        (first + 1, '{"a": 1}', None, first),
        (first + 2, '{"a": 2}', "ValueError: boom", first),
        (first + 3, '{"a": 3}', None, first),
    ]
    metrics = store.query("select run_id, name, value from metrics order by run_id, name")
    # A NaN metric is stored as NULL; the run with an error has no metrics.
    assert metrics.rows() == [
        (first + 1, "cagr", None), (first + 1, "sharpe", 1.5), (first + 3, "sharpe", -0.5),
    ]  # fmt: skip


class _ShortReads:
    """duckdb, whose connections fail their first ``failures`` inserts as a read past the end
    of the file does (seen under load with several writer processes)."""

    def __init__(self, failures: int) -> None:
        import duckdb

        self.duckdb, self.left = duckdb, failures
        self.IOException = duckdb.IOException

    def connect(self, path: str):  # type: ignore[no-untyped-def]
        outer, con = self, self.duckdb.connect(path)

        class Connection:
            def execute(self, sql: str, *args):  # type: ignore[no-untyped-def]
                if sql.startswith("insert into runs") and outer.left > 0:
                    outer.left -= 1
                    raise outer.IOException("IO Error: Could not read enough bytes from file")
                return con.execute(sql, *args)

            def close(self) -> None:
                con.close()

        return Connection()


def test_a_short_read_of_the_file_is_tried_again_and_writes_the_row_once(tmp_path, monkeypatch):
    import ml4t.backtest.research.store as store_module

    monkeypatch.setattr(store_module, "_duckdb", lambda: _ShortReads(2))
    store = RunStore(tmp_path / "runs.duckdb")
    store.record(None, name="after two short reads", params={"i": 1}, error=None)
    monkeypatch.undo()
    rows = RunStore(tmp_path / "runs.duckdb").query("select name from runs")
    assert rows["name"].to_list() == ["after two short reads"]


def test_a_short_read_that_persists_past_the_wait_is_raised(tmp_path, monkeypatch):
    import duckdb

    import ml4t.backtest.research.store as store_module

    monkeypatch.setattr(store_module, "_duckdb", lambda: _ShortReads(10**6))
    store = RunStore(tmp_path / "runs.duckdb", lock_timeout=0.05)
    with pytest.raises(duckdb.IOException, match="Could not read enough bytes"):
        store.record(None, name="never", params={}, error=None)
