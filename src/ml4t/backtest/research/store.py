"""The run store: every recorded backtest in one embedded DuckDB file, queryable with SQL.

Tables:

- ``runs``: ``id`` (1, 2, ...), ``created`` (UTC), ``kind`` (``run``, ``sweep``,
  ``walk_forward``), ``name``, ``config`` and ``params`` (JSON text), ``code_version``
  (package version and git commit), ``data_fingerprint`` (a hash of the feed), ``results``
  (the folder of its Parquet results, if saved), ``error`` (why it failed, if it did), and
  ``group_id`` (the sweep or walk-forward it belongs to).
- ``metrics``: ``run_id``, ``name``, ``value``: one row per metric.

DuckDB lets one process open a file at a time; the store retries while another holds it (saying
so on stderr once it has waited a second, naming the process that holds it), and a sweep writes
from its parent process only, so concurrent runs lose no rows. ``lock_timeout`` bounds the wait
(``None``: as long as it takes); past it, ``StoreLockedError`` is raised.

Example:
    >>> store = RunStore("runs.duckdb")                     # doctest: +SKIP
    >>> run_id = store.record(result, name="topn", params={"n": 10})  # doctest: +SKIP
    >>> store.query("select name, value from metrics where run_id = ?", [run_id])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..data.feed import DataFeed
from ..errors import BacktestError, ConfigError
from ..results.result import BacktestResult

DEFAULT_STORE = "runs.duckdb"
_SCHEMA = """
create sequence if not exists run_ids start 1;
create table if not exists runs (
    id bigint primary key default nextval('run_ids'),
    created timestamp not null,
    kind varchar not null,
    name varchar,
    config varchar,
    params varchar,
    code_version varchar,
    data_fingerprint varchar,
    results varchar,
    error varchar,
    group_id bigint
);
create table if not exists metrics (
    run_id bigint not null,
    name varchar not null,
    value double
);
"""
# The runs columns that differ from run to run of one ``record_many`` call.
_RUN_COLUMNS = ("config", "params", "data_fingerprint", "results", "error")
_LOCK_WAIT_SECONDS = 60.0
# A lock held longer than this is worth a message: writers taking turns hold it milliseconds.
_LOCK_NOTICE_SECONDS = 1.0
_UNSET: Any = object()


class StoreLockedError(BacktestError):
    """Another process held the store's file longer than the wait allowed.

    ``holder`` names that process as DuckDB reports it (program and PID), when it does.
    """

    def __init__(self, path: Path, holder: str, waited: float) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"the run store {path} is locked by {holder} (waited {waited:.1f} s); close that "
            "process's connection, or wait for it to finish"
        )


class RunStore:
    """A DuckDB file of runs and their metrics (created on first use).

    Each call opens the file, writes or reads, and closes it again, so several processes can
    take turns; a call that finds the file locked by another process waits for it, up to
    ``lock_timeout`` seconds (``None``: as long as it takes), then raises ``StoreLockedError``.

    Example:
        >>> store = RunStore("runs.duckdb", lock_timeout=None)  # doctest: +SKIP
    """

    def __init__(
        self, path: str | Path = DEFAULT_STORE, *, lock_timeout: float | None = _UNSET
    ) -> None:
        self.path = Path(path)
        # Read at call time when unset, so the module default stays the one place to change it.
        self._lock_timeout = lock_timeout

    def record(
        self,
        result: BacktestResult | None,
        *,
        kind: str = "run",
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        data_fingerprint: str | None = None,
        results_path: str | Path | None = None,
        error: str | None = None,
        group_id: int | None = None,
    ) -> int:
        """Store one run (its metrics when ``result`` is given) and return its id."""
        return self.record_many(
            [
                {
                    "result": result,
                    "params": params,
                    "error": error,
                    "results_path": results_path,
                    "config": config,
                }
            ],
            kind=kind,
            name=name,
            data_fingerprint=data_fingerprint,
            group_id=group_id,
        )[0]

    def record_many(
        self,
        runs: Sequence[Mapping[str, Any]],
        *,
        kind: str,
        name: str | None = None,
        data_fingerprint: str | None = None,
        group_id: int | None = None,
        lock_timeout: float | None = _UNSET,
    ) -> list[int]:
        """Store several runs in one transaction; each is a mapping with ``result`` and
        optionally ``params``, ``config``, ``error``, ``results_path``, ``metrics`` (a dict
        used instead of the result's) or ``data_fingerprint`` (instead of the argument).
        Returns their ids in order. ``lock_timeout`` overrides the store's for this call
        (``0``: try once)."""
        version = code_version()
        created = datetime.now(UTC).replace(tzinfo=None)
        ids: list[int] = []
        # The rows as columns, built before the file is opened: the lock is held for the
        # writes alone. Metrics of a result are read here, outside the lock, too.
        columns: dict[str, list[Any]] = {name: [] for name in _RUN_COLUMNS}
        metric_names: list[str] = []
        metric_values: list[float | None] = []
        metric_counts: list[int] = []
        for run in runs:
            result = run.get("result")
            config = run.get("config")
            if config is None and result is not None:
                config = result.config
            columns["config"].append(_json(config))
            columns["params"].append(_json(run.get("params")))
            columns["data_fingerprint"].append(run.get("data_fingerprint", data_fingerprint))
            path = run.get("results_path")
            columns["results"].append(None if path is None else str(path))
            columns["error"].append(run.get("error"))
            metrics = run.get("metrics")
            if metrics is None and result is not None:
                metrics = result.metrics
            metrics = metrics or {}
            metric_names.extend(metrics)
            metric_values.extend(_number(v) for v in metrics.values())
            metric_counts.append(len(metrics))

        def write(con: Any) -> None:
            con.execute("begin transaction")
            # Ids in order from the sequence, then every row in one statement per table: an
            # insert per run and one per metric took 23 ms a run (a sweep's 50 runs, 1.2 s).
            drawn = con.execute("select nextval('run_ids') from range(?)", [len(runs)])
            new_ids = sorted(int(row[0]) for row in drawn.fetchall())
            con.execute(
                "insert into runs (id, created, kind, name, config, params, code_version, "
                "data_fingerprint, results, error, group_id) select unnest(?::bigint[]), ?, ?, "
                "?, unnest(?::varchar[]), unnest(?::varchar[]), ?, unnest(?::varchar[]), "
                "unnest(?::varchar[]), unnest(?::varchar[]), ?",
                [new_ids, created, kind, name, columns["config"], columns["params"], version,
                 columns["data_fingerprint"], columns["results"], columns["error"], group_id],
            )  # fmt: skip
            if metric_names:
                run_ids = [i for i, count in zip(new_ids, metric_counts, strict=True)
                           for _ in range(count)]  # fmt: skip
                con.execute(
                    "insert into metrics select unnest(?::bigint[]), unnest(?::varchar[]), "
                    "unnest(?::double[])",
                    [run_ids, metric_names, metric_values],
                )
            con.execute("commit")
            ids[:] = new_ids

        self._with_connection(write, lock_timeout)
        return ids

    def new_group(
        self,
        kind: str,
        name: str | None,
        params: Mapping[str, Any],
        *,
        config: Mapping[str, Any] | None = None,
        lock_timeout: float | None = _UNSET,
    ) -> int:
        """A parent row for a sweep or walk-forward; its runs point to it with ``group_id``."""
        return self.record_many(
            [{"params": params, "config": config}],
            kind=kind,
            name=name,
            lock_timeout=lock_timeout,
        )[0]

    def runs(self) -> pl.DataFrame:
        """Every run, newest first, with its main metrics as columns."""
        return self.query(
            "select r.id, r.created, r.kind, r.name, r.group_id, r.error, "
            "max(case when m.name = 'total_return' then m.value end) as total_return, "
            "max(case when m.name = 'sharpe' then m.value end) as sharpe, "
            "max(case when m.name = 'max_drawdown' then m.value end) as max_drawdown "
            "from runs r left join metrics m on m.run_id = r.id "
            "group by all order by r.id desc"
        )

    def run(self, run_id: int) -> dict[str, Any]:
        """One run: its row (config and params parsed) and its metrics."""
        rows = self.query("select * from runs where id = ?", [run_id])
        if rows.height == 0:
            raise ConfigError(f"no run with id {run_id} in {self.path}")
        out = rows.row(0, named=True)
        for key in ("config", "params"):
            out[key] = None if out[key] is None else json.loads(out[key])
        metrics = self.query("select name, value from metrics where run_id = ?", [run_id])
        out["metrics"] = dict(zip(metrics["name"], metrics["value"], strict=True))
        return out

    def compare(self, run_ids: Sequence[int]) -> pl.DataFrame:
        """Metrics of several runs side by side: one row per metric, one column per run."""
        frames = []
        for run_id in run_ids:
            metrics = self.run(run_id)["metrics"]
            frames.append(
                pl.DataFrame({"metric": list(metrics), f"run {run_id}": list(metrics.values())})
            )
        if not frames:
            return pl.DataFrame({"metric": []})
        out = frames[0]
        for frame in frames[1:]:
            out = out.join(frame, on="metric", how="full", coalesce=True)
        return out

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run SQL against the store and return the answer as a polars frame."""
        frame: list[pl.DataFrame] = []

        def read(con: Any) -> None:
            cursor = con.execute(sql, parameters or [])
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            frame.append(pl.DataFrame(rows, schema=names, orient="row"))

        self._with_connection(read)
        return frame[0]

    def _with_connection(
        self, work: Callable[[Any], None], lock_timeout: float | None = _UNSET
    ) -> None:
        duckdb = _duckdb()
        if lock_timeout is _UNSET:
            lock_timeout = self._lock_timeout
        if lock_timeout is _UNSET:
            lock_timeout = _LOCK_WAIT_SECONDS
        start = time.monotonic()
        delay = 0.01
        told = False
        while True:
            try:
                con = duckdb.connect(str(self.path))
            except duckdb.IOException as exc:
                # Another process holds the file's lock: wait for our turn.
                if "lock" not in str(exc).lower():
                    raise
                waited = time.monotonic() - start
                holder = lock_holder(str(exc))
                if lock_timeout is not None and waited >= lock_timeout:
                    raise StoreLockedError(self.path, holder, waited) from None
                if not told and waited >= _LOCK_NOTICE_SECONDS:
                    print(f"waiting for the store lock held by {holder} on {self.path}",
                          file=sys.stderr, flush=True)  # fmt: skip
                    told = True
                pause = delay if lock_timeout is None else min(delay, lock_timeout - waited)
                time.sleep(max(pause, 0.0))
                delay = min(delay * 2, 0.5)
                continue
            try:
                con.execute(_SCHEMA)
                work(con)
            except duckdb.IOException as exc:
                # Seen under load with several writer processes: a read past the end of the
                # file another process has just written. The transaction rolls back with the
                # connection; try again within the wait allowed, and raise it if it persists.
                if "could not read enough bytes" not in str(exc).lower():
                    raise
                waited = time.monotonic() - start
                if lock_timeout is not None and waited >= lock_timeout:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            finally:
                con.close()
            return


def lock_holder(message: str) -> str:
    """The process holding a DuckDB file, from DuckDB's lock error ("another process" if it
    does not say).

    Example:
        >>> lock_holder('... Conflicting lock is held in /usr/bin/python3 (PID 42). See also x')
        '/usr/bin/python3 (PID 42)'
    """
    found = re.search(r"lock is held in (.+?)(?:\. See also|$)", message)
    return found.group(1).strip() if found else "another process"


def data_fingerprint(feed: DataFeed) -> str:
    """A short hash of a feed's timestamps, assets and every field's values."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(np.ascontiguousarray(feed.timestamps).tobytes())
    digest.update("\x00".join(map(str, feed.assets)).encode())
    for name in feed.fields:
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(feed.array(name)).tobytes())
    return digest.hexdigest()


def code_version() -> str:
    """The package version, plus the git commit of the working directory when there is one."""
    from .. import __version__

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None if math.isnan(value) else float(value)
    return None


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise ConfigError(
            "the run store needs DuckDB: install this project's 'store' extra "
            "(pip install -e '.[store]' from the repository) or the duckdb package"
        ) from None
    return duckdb
