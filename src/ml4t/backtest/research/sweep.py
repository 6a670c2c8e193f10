"""Parameter sweeps: one backtest per combination, on local processes or a Dask cluster.

``sweep`` expands a grid (a dict of lists, or an explicit list of dicts), runs every
combination and returns one row per run: its index, its parameters, its metrics, and the error
that stopped it, if one did (the sweep goes on). Rows come back in grid order, so the same grid
gives the same table whatever ran it.

Parameters that are ``BacktestConfig`` keys (``commission``, ``fill_timing``, ...) change the
config; the others go to your ``strategy_factory(params)``, which builds the strategy (and
``position_rules``, when it is a function, builds the rules from the same params). For the
compiled driver, or anything else, pass ``run(feed, config, params) -> BacktestResult``.

Where the runs go (``executor``):

- ``None`` (the default) decides by itself. The first two runs go in this process: the first
  compiles or loads the kernels (so the workers load them from the cache, never compile them),
  the second is timed. The rest go to one spawned local process per core (each receiving the
  data once) when that would save more than starting them costs (about 3 s). Otherwise they
  stay in this process: on one thread per core when the timed run spent enough of its time in
  compiled code that releases the GIL (the compiled driver's loops do: ``_threads_pay``), else
  one after another (a strategy's Python holds the GIL, and threads would only contend for it).
- ``"processes"`` uses the local process pool (after the first run, here, fills the kernel
  cache); ``"threads"`` one thread per core in this process; ``"in-process"`` always runs
  here, one run after another.
- any ``concurrent.futures.Executor`` (a ``ThreadPoolExecutor``, a process pool of your own,
  or ``distributed.Client(...).get_executor()``); ``"dask://host:port"`` connects to a Dask
  scheduler. On Dask the feed is scattered to every worker once.

Runs are sent to processes in batches, several parameter sets per task, so small runs are not
drowned in task overhead; threads of this process take one run per task. A worker sends back
each run's metrics (a dict), not its result, and keeps no result once its metrics are read:
memory does not grow with the runs beyond their rows. What else a run should give,
``extract(result) -> dict`` computes in the worker (its keys become columns); ``timings=True``
adds each run's seconds (``seconds_run``: the run itself, ``seconds_metrics``: reading its
metrics). Lambdas and closures (a notebook's factory) go to process pools pickled by value with
``cloudpickle`` (installed with the ``dask`` extra); without it they run in this process.
The table is the same wherever the runs went.

Ctrl-C cancels what has not started, keeps (and records) what finished and raises
``SweepInterrupted``, whose ``table`` holds the finished runs.

Example:
    >>> table = sweep(                                             # doctest: +SKIP
    ...     BacktestConfig(commission=0.001),
    ...     {"n": [5, 10, 20], "rebalance_every": [5, 20]},
    ...     feed,
    ...     make_topn,                    # def make_topn(p): return TopNStrategy("score", **p)
    ... )
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from ..config import BacktestConfig
from ..data.feed import DataFeed
from ..engine import Engine
from ..errors import ConfigError
from ..kernels.jit import released_seconds
from ..results.result import BacktestResult
from ..risk.portfolio import PortfolioRule
from ..risk.position import PositionRule
from ..spec import BacktestSpec
from ..strategy import Strategy
from .store import RunStore, StoreLockedError, data_fingerprint

Params = dict[str, Any]
StrategyFactory = Callable[[Params], Strategy]
Runner = Callable[[DataFeed, BacktestConfig, Params], BacktestResult]
RulesSpec = PositionRule | Callable[[Params], PositionRule | None] | None
Constraint = Callable[[Params], bool]
Extractor = Callable[[BacktestResult], Mapping[str, Any]]

# executor= strings that choose where runs go without an Executor object.
_PROCESSES = "processes"
_IN_PROCESS = "in-process"
_THREADS = "threads"
# executor=None runs on threads when they would run the sweep at least this many times as
# fast (``_threads_pay``).
_THREADS_SPEEDUP = 1.25
# About what starting the worker processes costs (spawn, import numpy, polars and numba, load
# the cached kernels, receive the feed), measured at 2-4 s on a laptop.
_POOL_STARTUP_SECONDS = 3.0
# A batch sent to a worker holds about this many seconds of runs, when a run's time is known.
_BATCH_SECONDS = 0.25
# Finished runs are written to the store in blocks of this many, or of what finished in this
# many seconds: each write opens the file and reads the code version (some 10-50 ms), and
# batches from a pool can hold a few runs each.
_RECORD_EVERY = 50
_RECORD_SECONDS = 1.0

_CONFIG_KEYS = frozenset(f.name for f in dataclasses.fields(BacktestConfig))
# The feed of this worker process, set once when the process starts (local process pools).
_WORKER_FEED: DataFeed | None = None


def expand_grid(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[Params]:
    """Every combination of a dict of lists (in key order, the last key varying fastest), or
    the explicit list of dicts as given.

    Example:
        >>> expand_grid({"a": [1, 2], "b": ["x", "y"]})
        [{'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}, {'a': 2, 'b': 'y'}]
    """
    if isinstance(grid, Mapping):
        keys = list(grid)
        for key in keys:
            values = grid[key]
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                raise ConfigError(f"grid[{key!r}] must be a list of values, got {values!r}")
        lists = [list(grid[key]) for key in keys]
        if any(len(values) == 0 for values in lists):
            raise ConfigError("every grid entry needs at least one value")
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*lists)]
    combos = list(grid)
    for i, combo in enumerate(combos):
        if not isinstance(combo, Mapping):
            raise ConfigError(f"grid[{i}] must be a mapping of parameters, got {combo!r}")
    return [dict(combo) for combo in combos]


def sweep(
    base_config: BacktestConfig,
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    feed: DataFeed,
    strategy_factory: StrategyFactory | None = None,
    executor: Executor | str | None = None,
    *,
    run: Runner | None = None,
    position_rules: RulesSpec = None,
    portfolio_rules: Iterable[PortfolioRule] = (),
    constraint: Constraint | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    store: RunStore | str | Path | None = None,
    name: str | None = None,
    extract: Extractor | None = None,
    timings: bool = False,
) -> pl.DataFrame:
    """Run one backtest per grid combination; one row per run, in grid order (see module doc).

    ``constraint(params) -> bool`` keeps only the combinations it accepts (before anything
    runs; ``run`` numbers the kept ones). ``store`` records every run (a ``RunStore`` or the
    path of its DuckDB file) under one sweep entry. Ctrl-C raises ``SweepInterrupted``, whose
    ``table`` holds the runs that finished (recorded too, when there is a store).
    ``extract(result)`` returns more columns of a run's row, computed where it ran (the store
    records the metrics only); ``timings=True`` adds ``seconds_run`` and ``seconds_metrics``.

    Example:
        >>> table = sweep(BacktestConfig(), {"n": [2, 5]}, feed, make_topn)  # doctest: +SKIP
        >>> table = sweep(                                                  # doctest: +SKIP
        ...     BacktestConfig(), {"n": [2, 5]}, feed, make_topn,
        ...     extract=lambda result: {"n_long_trades": result.trades.height},
        ... )
    """
    return run_grid(
        base_config,
        grid,
        feed,
        strategy_factory,
        executor,
        run=run,
        position_rules=position_rules,
        portfolio_rules=portfolio_rules,
        constraint=constraint,
        batch_size=batch_size,
        progress=progress,
        store=store,
        name=name,
        extract=extract,
        timings=timings,
    ).table


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a sweep: what had not started was cancelled, what finished is kept.

    ``table`` has the finished runs (in grid order, ``run`` numbers as in the full grid),
    ``finished`` and ``total`` count them, ``store`` is where they were recorded (or ``None``).
    It is a ``KeyboardInterrupt``, so a script still stops; in a notebook, catch it:

    Example:
        >>> try:                                                   # doctest: +SKIP
        ...     table = sweep(config, grid, feed, make_topn)
        ... except SweepInterrupted as stop:
        ...     table = stop.table
    """

    def __init__(self, table: pl.DataFrame, total: int, store: Path | None) -> None:
        self.table = table
        self.finished = table.height
        self.total = total
        self.store = store
        where = f", recorded in {store}" if store is not None else ""
        super().__init__(f"interrupted: {self.finished} of {total} runs finished{where}")


@dataclasses.dataclass(frozen=True)
class GridOutcome:
    """A finished sweep: the combinations run, their rows, and the table of them."""

    combos: list[Params]
    rows: list[dict[str, Any]]
    table: pl.DataFrame


def run_grid(
    base_config: BacktestConfig,
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    feed: DataFeed | None,
    strategy_factory: StrategyFactory | None,
    executor: Executor | str | None,
    *,
    run: Runner | None,
    position_rules: RulesSpec,
    portfolio_rules: Iterable[PortfolioRule],
    constraint: Constraint | None,
    batch_size: int | None,
    progress: bool,
    store: RunStore | str | Path | None,
    name: str | None,
    feed_of: Callable[[Params], DataFeed] | None = None,
    extract: Extractor | None = None,
    timings: bool = False,
) -> GridOutcome:
    """Run every parameter set of ``grid`` (what ``sweep`` and ``optimize`` share): the
    combinations kept by ``constraint``, their rows, and the table."""
    if (strategy_factory is None) == (run is None):
        raise ConfigError("sweep needs exactly one of strategy_factory or run")
    if extract is not None and not callable(extract):
        raise ConfigError(
            f"extract must be a function of a run's result returning a dict of columns, got "
            f"{type(extract).__name__}"
        )
    combos = _constrained(expand_grid(grid), constraint)
    job = _Job(
        base_config, strategy_factory, run, position_rules, tuple(portfolio_rules), feed_of,
        extract,
    )  # fmt: skip
    # Settings errors show before anything runs: build the first combination's config.
    if combos:
        job.config(combos[0])
    if feed is None:
        assert feed_of is not None and combos, "a sweep needs a feed or a feed per run"
        feed = feed_of(combos[0])
    recorder = None
    if store is not None:
        recorder = _Recorder(store, name, combos, None if feed_of else feed, base_config)
    rows: dict[int, dict[str, Any]] = {}
    bar = tqdm(total=len(combos), disable=not progress, unit="run", desc="sweep")

    def collect(done: list[dict[str, Any]]) -> None:
        for row in done:
            _check_extra(row)
            rows[row["run"]] = row
        if recorder is not None:
            recorder.add(done)
        bar.update(len(done))

    interrupted = False
    try:
        _execute(job, combos, feed, executor, batch_size, collect)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        if recorder is not None:
            # Also after Ctrl-C: what finished is kept. Waits for a lock another process holds.
            recorder.flush(wait=True)
    ordered = [rows[i] for i in sorted(rows)]
    table = _table(ordered, timings=timings)
    if interrupted:
        raise SweepInterrupted(
            table, len(combos), None if recorder is None else recorder.store.path
        )
    return GridOutcome(combos, ordered, table)


def _constrained(combos: list[Params], constraint: Constraint | None) -> list[Params]:
    if constraint is None:
        return combos
    kept = [combo for combo in combos if constraint(combo)]
    if combos and not kept:
        raise ConfigError(
            f"the constraint rejects all {len(combos)} combinations of the grid "
            f"(the first: {combos[0]!r}); nothing to run"
        )
    return kept


def _execute(
    job: _Job,
    combos: list[Params],
    feed: DataFeed,
    executor: Executor | str | None,
    batch_size: int | None,
    collect: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Run every combination where the executor says, handing finished rows to ``collect``.

    Ctrl-C (``KeyboardInterrupt``) cancels the batches that have not started, hands over the
    results of those that finished, stops the workers this call started, and re-raises.
    """
    indexed = list(enumerate(combos))
    if executor == _IN_PROCESS:
        _run_here(job, feed, indexed, collect)
        return
    if executor in (None, _PROCESSES) and indexed:
        # The first run here compiles or loads the kernels and writes numba's cache, so the
        # workers load them from it: they never compile (each would, all at once, on a cold
        # cache) and a runner that cannot work fails before any process starts.
        _run_here(job, feed, indexed[:1], collect)
        indexed = indexed[1:]
    run_seconds: float | None = None
    if executor is None and indexed:
        # Time a second, warm, run: a pool pays only when the rest outlasts starting it.
        released = released_seconds()
        started = time.perf_counter()
        _run_here(job, feed, indexed[:1], collect)
        run_seconds = time.perf_counter() - started
        released = released_seconds() - released
        indexed = indexed[1:]
        if not _pool_pays(len(indexed), run_seconds, _cores()):
            if _threads_pay(run_seconds, released, _cores()):
                executor = _THREADS
            else:
                _run_here(job, feed, indexed, collect)
                return
    if not indexed:
        return
    payload = _payload(job, executor)
    if payload is None:  # a closure, and no cloudpickle to send it: run it here
        _run_here(job, feed, indexed, collect)
        return
    own, pool = _executor(executor, feed)
    if executor == _THREADS:
        # One run per task: a task costs a thread microseconds, and single runs keep the
        # threads equally busy to the end.
        batch_size = batch_size or 1
    _run_on(job, payload, feed, indexed, pool, own, batch_size, run_seconds, collect)


def _run_on(
    job: _Job,
    payload: _Job | bytes,
    feed: DataFeed,
    indexed: list[tuple[int, Params]],
    pool: Executor,
    own: bool,
    batch_size: int | None,
    run_seconds: float | None,
    collect: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Run ``indexed`` in batches on ``pool`` (shut down after if this sweep ``own``s it)."""
    # The batches not yet handed to ``collect``: a handed one is dropped at once, so that no
    # batch's rows are held twice (here and in the table being built).
    futures: dict[Future[list[dict[str, Any]]], int] = {}
    spawned = own and isinstance(pool, ProcessPoolExecutor)
    try:
        feed_ref: Any = feed
        if _is_dask(pool):
            feed_ref = _dask_client(pool).scatter(feed, broadcast=True)
        elif spawned:
            feed_ref = None  # the workers got it when they started
        size = batch_size or _batch_size(len(indexed), _workers(pool), run_seconds)
        batches = [indexed[i : i + size] for i in range(0, len(indexed), size)]
        # Our workers are spawned by the first submits: they start with one thread each.
        with _one_thread_per_worker() if spawned else contextlib.nullcontext():
            for batch in batches:
                futures[pool.submit(_run_batch, feed_ref, payload, batch)] = len(batch)
        for future in as_completed(futures):
            done = future.result()
            del futures[future]
            collect(done)
    except KeyboardInterrupt:
        for future in futures:
            future.cancel()
        for future in futures:
            finished = future.done() and not future.cancelled()
            if finished and future.exception() is None:
                collect(future.result())
        if own:
            _stop(pool)
            own = False
        raise
    finally:
        if own:
            # After an error (a bad extract column), the batches still queued never start.
            pool.shutdown(cancel_futures=True)


def _threads_pay(run_seconds: float, released_seconds: float, cores: int) -> bool:
    """Whether one thread per core beats running the rest one after another, for runs that
    take ``run_seconds`` of which ``released_seconds`` in kernels that release the GIL.

    Only the released part goes in parallel: the rest of each run holds the GIL, one thread at
    a time. Runs then go at most ``min(cores, run / held)`` times as fast; threads pay when
    that is at least ``_THREADS_SPEEDUP`` (they cost some switching).

    Example:
        >>> _threads_pay(0.014, 0.009, 2), _threads_pay(0.05, 0.0, 2), _threads_pay(0.01, 0.01, 1)
        (True, False, False)
    """
    held = max(run_seconds - released_seconds, 1e-12)
    return cores > 1 and min(cores, run_seconds / held) >= _THREADS_SPEEDUP


def _run_here(
    job: _Job,
    feed: DataFeed,
    indexed: list[tuple[int, Params]],
    collect: Callable[[list[dict[str, Any]]], None],
) -> None:
    # One run at a time, so Ctrl-C loses only the run it interrupts.
    for item in indexed:
        collect(_run_batch(feed, job, [item]))


# The thread pools of the libraries a run uses, each sized by its variable when it starts.
_THREAD_VARIABLES = (
    "POLARS_MAX_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)  # fmt: skip


@contextlib.contextmanager
def _one_thread_per_worker() -> Iterator[None]:
    """Processes started inside this block size their libraries' thread pools at one thread
    (unless the user set the variable): a pool runs one worker per core, and a worker's polars
    or BLAS threads would only fight the other workers for the cores (measured on 2 cores: a
    sweep of the event driver 10.4 s with one thread per worker, 16.2 s without)."""
    # A spawned process copies this process's environment when it starts, and reads these
    # variables when it imports the libraries: set them here, for the time of the start only.
    added = [name for name in _THREAD_VARIABLES if name not in os.environ]
    for name in added:
        os.environ[name] = "1"
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _stop(pool: Executor) -> None:
    """Shut a pool this sweep started without waiting for the batches that are running."""
    # A running batch would keep the interpreter alive until it ends (the pool's exit hook
    # waits for it): stop the workers, then the pool notices and cleans up its queues at once.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _cores() -> int:
    return os.cpu_count() or 1


def _pool_pays(n_remaining: int, run_seconds: float, cores: int) -> bool:
    """Whether a pool of ``cores`` workers beats running the remaining runs here, given how
    long a warm run took: it saves ``(1 - 1/cores)`` of their time, and costs its start-up.
    This process only waits while the workers run, so on two cores the pool halves the time.

    Example:
        >>> _pool_pays(100, 1.0, 4), _pool_pays(5, 0.2, 4), _pool_pays(100, 1.0, 1)
        (True, False, False)
    """
    saved = n_remaining * run_seconds * (1.0 - 1.0 / max(cores, 1))
    return saved > _POOL_STARTUP_SECONDS


def _payload(job: _Job, executor: Executor | str | None) -> _Job | bytes | None:
    """The job as sent to the workers: itself, or pickled by value (cloudpickle) when it holds a
    lambda or closure that the standard pickle cannot send to a process pool.

    ``None`` when it cannot be sent and this sweep picks the executor (run it here instead).
    """
    to_processes = executor in (None, _PROCESSES) or isinstance(executor, ProcessPoolExecutor)
    if not to_processes:
        return job  # threads share it; Dask pickles with cloudpickle itself
    try:
        pickle.dumps(job)
        return job
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        reason = exc
    try:
        import cloudpickle  # type: ignore[import-untyped]
    except ImportError:
        if executor is None:
            return None
        raise ConfigError(
            "the strategy factory, runner or rules cannot be sent to other processes "
            f"({reason}): define them at module level, install cloudpickle (it sends lambdas "
            "and closures), or use executor='in-process' or a ThreadPoolExecutor"
        ) from None
    payload: bytes = cloudpickle.dumps(job)
    return payload


@dataclasses.dataclass(frozen=True)
class _Job:
    """What every run of a sweep shares; sent to the workers with each batch."""

    base_config: BacktestConfig
    strategy_factory: StrategyFactory | None
    runner: Runner | None
    position_rules: RulesSpec
    portfolio_rules: tuple[PortfolioRule, ...]
    # Builds each run's own data, for grids that vary the data (YAML ``data.*`` keys).
    feed_of: Callable[[Params], DataFeed] | None = None
    # More columns of a run's row, computed from its result where it ran.
    extract: Extractor | None = None

    def config(self, params: Params) -> BacktestConfig:
        changes = {k: v for k, v in params.items() if k in _CONFIG_KEYS}
        return dataclasses.replace(self.base_config, **changes) if changes else self.base_config

    def run(self, feed: DataFeed, params: Params) -> BacktestResult:
        config = self.config(params)
        if self.runner is not None:
            return self.runner(feed, config, params)
        assert self.strategy_factory is not None
        strategy_params = {k: v for k, v in params.items() if k not in _CONFIG_KEYS}
        rules = self.position_rules
        if callable(rules) and not isinstance(rules, PositionRule):
            rules = rules(strategy_params)
        engine = Engine(
            feed,
            self.strategy_factory(strategy_params),
            config,
            position_rules=rules,
            portfolio_rules=self.portfolio_rules,
        )
        return engine.run()


def _run_batch(
    feed: DataFeed | None, job: _Job | bytes, batch: list[tuple[int, Params]]
) -> list[dict[str, Any]]:
    """Run a batch of parameter sets; a run that raises gives a row with its error."""
    if isinstance(job, bytes):
        job = pickle.loads(job)  # cloudpickle's output loads with the standard pickle
    assert isinstance(job, _Job)
    data = feed if feed is not None else _WORKER_FEED
    assert data is not None, "worker started without its feed"
    out = []
    for index, params in batch:
        row: dict[str, Any] = {
            "run": index, "params": params, "metrics": None, "extra": None, "error": None,
            "seconds": (math.nan, math.nan),
        }  # fmt: skip
        try:
            if job.feed_of is not None:
                data = job.feed_of(params)
                row["data_fingerprint"] = data_fingerprint(data)
            started = time.perf_counter()
            result = job.run(data, params)
            ran = time.perf_counter()
            row["metrics"] = result.metrics
            row["seconds"] = (ran - started, time.perf_counter() - ran)
            if job.extract is not None:
                row["extra"] = _extracted(job.extract(result))
            # Only the row goes on: the result (its arrays and frames) is freed here, before
            # the next run, so a worker holds one result at a time whatever the batch size.
            del result
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
        out.append(row)
    return out


# Columns of the table besides a run's parameters and metrics.
_OWN_COLUMNS = frozenset({"run", "error", "seconds_run", "seconds_metrics"})


def _check_extra(row: dict[str, Any]) -> None:
    """A column ``extract`` returned must not take the place of another: checked on the first
    row that has it, so the sweep stops before running the rest."""
    for key in row.get("extra") or {}:
        if key in _OWN_COLUMNS or key in row["params"] or key in (row["metrics"] or {}):
            raise ConfigError(
                f"extract returned column {key!r}, which the table already has (a parameter, "
                "a metric, or one of run, error, seconds_run, seconds_metrics): give it another "
                "name"
            )


def _extracted(values: object) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"extract must return a dict of columns (name: value), got {type(values).__name__}"
        )
    return {str(key): value for key, value in values.items()}


def _start_worker(feed: DataFeed) -> None:
    global _WORKER_FEED
    _WORKER_FEED = feed
    # tqdm's default lock is a multiprocessing semaphore; a worker stopped by Ctrl-C would
    # leave it for the resource tracker to clean up (with a warning). No bar is shared here.
    tqdm.set_lock(threading.RLock())
    # Ctrl-C in a terminal reaches every process of the group: the parent alone handles it
    # (cancels what is queued, keeps what finished), so workers do not die mid-batch.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _executor(executor: Executor | str | None, feed: DataFeed) -> tuple[bool, Executor]:
    """The executor to use and whether this call owns it (and must shut it down)."""
    if executor is None or executor == _PROCESSES:
        workers = _cores()
        # Spawned, not forked: a fork of a process whose polars thread pool is running can
        # deadlock in the child (polars documents this).
        return True, ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(feed,),
        )
    if executor == _THREADS:
        return True, ThreadPoolExecutor(_cores())
    if isinstance(executor, str):
        if not executor.startswith("dask://"):
            raise ConfigError(
                f"executor {executor!r}: a string must be {_PROCESSES!r}, {_THREADS!r}, "
                f"{_IN_PROCESS!r} or a Dask scheduler address, 'dask://host:port'"
            )
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError(
                "executor='dask://...' needs dask.distributed: install this project's 'dask' extra"
            ) from None
        client = Client(executor.replace("dask://", "tcp://", 1))  # type: ignore[no-untyped-call]
        return True, _OwnedDaskExecutor(client)
    if not isinstance(executor, Executor):
        raise ConfigError(
            f"executor must be a concurrent.futures.Executor, 'dask://host:port', "
            f"{_PROCESSES!r}, {_THREADS!r}, {_IN_PROCESS!r} or None, got {type(executor).__name__}"
        )
    return False, executor


class _OwnedDaskExecutor(Executor):
    """A client's executor that closes the client when shut down."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._executor = client.get_executor()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = self._executor.submit(fn, *args, **kwargs)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait)
        self.client.close()


def _is_dask(pool: Executor) -> bool:
    return isinstance(pool, _OwnedDaskExecutor) or type(pool).__module__.startswith("distributed")


def _dask_client(pool: Executor) -> Any:
    if isinstance(pool, _OwnedDaskExecutor):
        return pool.client
    return pool._client  # type: ignore[attr-defined]  # distributed's ClientExecutor


def _workers(pool: Executor) -> int:
    if _is_dask(pool):
        return max(1, int(sum(_dask_client(pool).nthreads().values())))
    return int(getattr(pool, "_max_workers", None) or os.cpu_count() or 1)


def _batch_size(n_runs: int, workers: int, run_seconds: float | None = None) -> int:
    """Runs per task: about four tasks per worker (few enough to amortise task overhead,
    enough to balance), and when a run's time is known, no more runs than fill a quarter of a
    second: the last tasks then leave workers idle for a fraction of a second, not for a
    sixteenth of the sweep (a task costs well under a millisecond to send).

    Example:
        >>> _batch_size(1000, 2), _batch_size(1000, 2, 0.1), _batch_size(1000, 2, 0.0001)
        (125, 3, 125)
    """
    size = max(1, math.ceil(n_runs / (4 * workers)))
    if run_seconds is not None and run_seconds > 0:
        size = min(size, max(1, math.ceil(_BATCH_SECONDS / run_seconds)))
    return size


def _table(rows: list[dict[str, Any]], *, timings: bool = False) -> pl.DataFrame:
    """One row per run: run, the parameters, the metrics, the extracted columns, the error
    (null if none), and with ``timings`` the seconds of the run and of its metrics."""
    params = list(dict.fromkeys(k for row in rows for k in row["params"]))
    metrics = list(dict.fromkeys(k for row in rows for k in (row["metrics"] or {})))
    extra = list(dict.fromkeys(k for row in rows for k in (row.get("extra") or {})))
    columns: dict[str, list[Any]] = {"run": [row["run"] for row in rows]}
    for key in params:
        values = [row["params"].get(key) for row in rows]
        scalar = all(v is None or isinstance(v, bool | int | float | str) for v in values)
        columns[key] = values if scalar else [None if v is None else repr(v) for v in values]
    for key in metrics:
        columns[key] = [None if row["metrics"] is None else row["metrics"].get(key) for row in rows]
    for key in extra:
        columns[key] = [(row.get("extra") or {}).get(key) for row in rows]
    columns["error"] = [row["error"] for row in rows]
    if timings:
        seconds = [row.get("seconds", (math.nan, math.nan)) for row in rows]
        columns["seconds_run"] = [s[0] for s in seconds]
        columns["seconds_metrics"] = [s[1] for s in seconds]
    return pl.DataFrame(columns, strict=False)


class _Recorder:
    """Writes a sweep's runs into the store from the parent process, as batches finish.

    Nothing touches the file before the first batch is in, and a file another process holds
    does not hold up the sweep: rows wait in memory until a write finds it free, and the
    final flush waits for it as long as it takes (saying so on stderr).
    """

    def __init__(
        self,
        store: RunStore | str | Path,
        name: str | None,
        combos: list[Params],
        feed: DataFeed | None,
        config: BacktestConfig,
    ) -> None:
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self.name = name
        # None when every run has its own data (a grid over ``data.*``): each row carries it.
        self.fingerprint = None if feed is None else data_fingerprint(feed)
        self.group_params = {"n_runs": len(combos), "grid": [_plain(c) for c in combos]}
        self.config = config.to_dict()
        self.group: int | None = None
        self.pending: list[dict[str, Any]] = []
        self.written = time.monotonic()

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.pending.extend(rows)
        # Runs arrive one by one (in this process) or a few at a time (a pool's batches):
        # write in blocks, not one transaction per run or per batch.
        due = time.monotonic() - self.written >= _RECORD_SECONDS
        if len(self.pending) >= _RECORD_EVERY or due:
            self.flush(wait=False)

    def flush(self, *, wait: bool) -> None:
        timeout = None if wait else 0.0
        try:
            if self.group is None:
                self.group = self.store.new_group(
                    "sweep", self.name, self.group_params, config=self.config,
                    lock_timeout=timeout,
                )  # fmt: skip
            if self.pending:
                self.store.record_many(
                    [
                        {
                            "params": _plain(row["params"]),
                            "metrics": row["metrics"],
                            "error": row["error"],
                            "data_fingerprint": row.get("data_fingerprint", self.fingerprint),
                        }
                        for row in self.pending
                    ],
                    kind="sweep",
                    name=self.name,
                    group_id=self.group,
                    lock_timeout=timeout,
                )
                self.pending = []
            self.written = time.monotonic()
        except StoreLockedError:
            if wait:
                raise
            # Another process has the file: keep the rows, try again with the next batch.


def _plain(params: Params) -> dict[str, Any]:
    return {
        k: v if v is None or isinstance(v, bool | int | float | str) else repr(v)
        for k, v in params.items()
    }


def sweep_spec(
    spec: BacktestSpec,
    executor: Executor | str | None = None,
    *,
    progress: bool = True,
    store: RunStore | str | Path | None = None,
    name: str | None = None,
) -> pl.DataFrame:
    """Sweep a YAML backtest over its ``grid`` section: dotted paths into the file, each with
    a list of values (``strategy.params.n: [5, 10]``, ``config.commission: [0.0005, 0.001]``,
    ``position_rules.AnyOf.1.TrailingStop: [0.1, 0.2]``, ``data.synthetic.seed: [1, 2]``; list
    items by index).

    Every grid key changes what it names: keys under ``data`` give each run its own data (the
    store records each run's data fingerprint), and a key outside the sections a run reads
    (``output``, ``grid``) is a ``ConfigError``. Every combination is checked before any runs
    (its spec and its strategy are built), so a wrong path fails at once.

    Example:
        >>> table = sweep_spec(BacktestSpec.from_yaml("sweep.yaml"))  # doctest: +SKIP
    """
    if not spec.grid:
        raise ConfigError("the backtest has no 'grid' section to sweep over")
    base = spec.to_dict()
    base.pop("grid", None)
    base.pop("output", None)
    keys = [str(k) for k in spec.grid]
    for key in keys:
        if key.split(".")[0] not in _GRID_SECTIONS:
            raise ConfigError(
                f"grid key '{key}' names nothing a run reads, so every run would be the same; "
                f"grid keys start with one of: {', '.join(s + '.' for s in _GRID_SECTIONS)}"
            )
    combos = expand_grid({str(k): v for k, v in spec.grid.items()})
    for combo in combos:
        _SpecRun.build(base, combo, spec.base_dir).build_strategy()
    runner = _SpecRun(base, spec.base_dir)
    varies_data = any(key.split(".")[0] == "data" for key in keys)
    return run_grid(
        spec.config,
        combos,
        None if varies_data else spec.feed(),
        None,
        executor,
        run=runner,
        position_rules=None,
        portfolio_rules=(),
        constraint=None,
        batch_size=None,
        progress=progress,
        store=store,
        name=name,
        feed_of=runner.feed_of if varies_data else None,
    ).table


# The sections of a backtest file a grid key may change: each one changes what a run computes.
_GRID_SECTIONS = ("data", "strategy", "config", "position_rules", "portfolio_rules")


@dataclasses.dataclass(frozen=True)
class _SpecRun:
    """Runs one combination of a YAML sweep: the resolved spec with the grid's values set."""

    base: dict[str, Any]
    base_dir: Path
    # The last data built and what it was built from: neighbouring runs often share it.
    _feeds: dict[str, DataFeed] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __call__(self, feed: DataFeed, config: BacktestConfig, params: Params) -> BacktestResult:
        return self.build(self.base, params, self.base_dir).run(feed=feed)

    def __getstate__(self) -> dict[str, Any]:
        # Sent with every batch: without the cached data, which each worker builds itself.
        return {"base": self.base, "base_dir": self.base_dir}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in (state | {"_feeds": {}}).items():
            object.__setattr__(self, key, value)

    def feed_of(self, params: Params) -> DataFeed:
        """The data this combination names (its ``data`` section with the grid's values set)."""
        spec = self.build(self.base, params, self.base_dir)
        key = json.dumps(spec.data, sort_keys=True, default=str)
        if key not in self._feeds:
            self._feeds.clear()
            self._feeds[key] = spec.feed()
        return self._feeds[key]

    @staticmethod
    def build(base: dict[str, Any], params: Params, base_dir: Path) -> BacktestSpec:
        values = copy.deepcopy(base)
        for path, value in params.items():
            _set_path(values, path, value)
        return BacktestSpec.from_dict(values, base_dir=base_dir)


def _set_path(values: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = values
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"grid path '{path}': '{where}' is not an index of its list")
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(f"grid path '{path}': '{where}' is a value, not a section")
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"grid path '{path}': '{last}' is not an index of its list")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"grid path '{path}': its parent is a value, not a section")
