"""Parameter sweeps: one backtest per combination, on local processes or a Dask cluster.

``sweep`` expands a grid (a dict of lists, or an explicit list of dicts), runs every
combination and returns one row per run: its index, its parameters, its metrics, and the error
that stopped it, if one did (the sweep goes on). Rows come back in grid order, so the same grid
gives the same table whatever ran it.

Parameters that are ``BacktestConfig`` keys (``commission``, ``fill_timing``, ...) change the
config; the others go to your ``strategy_factory(params)``, which builds the strategy (and
``position_rules``, when it is a function, builds the rules from the same params). For the
compiled driver, or anything else, pass ``run(feed, config, params) -> BacktestResult``.

Where the runs go: ``executor=None`` starts one local process per core, each receiving the
data once; any ``concurrent.futures.Executor`` works (a ``ThreadPoolExecutor``, a process pool
of your own, or ``distributed.Client(...).get_executor()``); ``executor="dask://host:port"``
connects to a Dask scheduler. On Dask the feed is scattered to every worker once. Runs are sent
in batches, several parameter sets per task, so small runs are not drowned in task overhead.
Functions sent to other processes must be importable (module-level); Dask also takes closures.

Example:
    >>> table = sweep(                                             # doctest: +SKIP
    ...     BacktestConfig(commission=0.001),
    ...     {"n": [5, 10, 20], "rebalance_every": [5, 20]},
    ...     feed,
    ...     make_topn,                    # def make_topn(p): return TopNStrategy("score", **p)
    ... )
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from ..config import BacktestConfig
from ..data.feed import DataFeed
from ..engine import Engine
from ..errors import ConfigError
from ..results.result import BacktestResult
from ..risk.portfolio import PortfolioRule
from ..risk.position import PositionRule
from ..spec import BacktestSpec
from ..strategy import Strategy
from .store import RunStore, data_fingerprint

Params = dict[str, Any]
StrategyFactory = Callable[[Params], Strategy]
Runner = Callable[[DataFeed, BacktestConfig, Params], BacktestResult]
RulesSpec = PositionRule | Callable[[Params], PositionRule | None] | None

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
    batch_size: int | None = None,
    progress: bool = True,
    store: RunStore | str | Path | None = None,
    name: str | None = None,
) -> pl.DataFrame:
    """Run one backtest per grid combination; one row per run, in grid order (see module doc).

    ``store`` records every run (a ``RunStore`` or the path of its DuckDB file) under one
    sweep entry.
    """
    if (strategy_factory is None) == (run is None):
        raise ConfigError("sweep needs exactly one of strategy_factory or run")
    combos = expand_grid(grid)
    job = _Job(base_config, strategy_factory, run, position_rules, tuple(portfolio_rules))
    # Settings errors show before anything runs: build the first combination's config.
    if combos:
        job.config(combos[0])
    own, pool = _executor(executor, feed)
    recorder = None
    if store is not None:
        recorder = _Recorder(store, name, combos, feed, base_config)
    try:
        feed_ref: Any = feed
        if isinstance(pool, ProcessPoolExecutor):
            _check_picklable(job)
        if _is_dask(pool):
            feed_ref = _dask_client(pool).scatter(feed, broadcast=True)
        elif own:
            feed_ref = None  # the workers got it when they started
        size = batch_size or _batch_size(len(combos), _workers(pool))
        batches = [list(enumerate(combos))[i : i + size] for i in range(0, len(combos), size)]
        rows: dict[int, dict[str, Any]] = {}
        bar = tqdm(total=len(combos), disable=not progress, unit="run", desc="sweep")
        futures: dict[Future[list[dict[str, Any]]], int] = {
            pool.submit(_run_batch, feed_ref, job, batch): len(batch) for batch in batches
        }
        for future in as_completed(futures):
            done = future.result()
            for row in done:
                rows[row["run"]] = row
            if recorder is not None:
                recorder.write(done)
            bar.update(futures[future])
        bar.close()
    finally:
        if own:
            pool.shutdown()
    return _table([rows[i] for i in range(len(combos))])


@dataclasses.dataclass(frozen=True)
class _Job:
    """What every run of a sweep shares; sent to the workers with each batch."""

    base_config: BacktestConfig
    strategy_factory: StrategyFactory | None
    runner: Runner | None
    position_rules: RulesSpec
    portfolio_rules: tuple[PortfolioRule, ...]

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
    feed: DataFeed | None, job: _Job, batch: list[tuple[int, Params]]
) -> list[dict[str, Any]]:
    """Run a batch of parameter sets; a run that raises gives a row with its error."""
    data = feed if feed is not None else _WORKER_FEED
    assert data is not None, "worker started without its feed"
    out = []
    for index, params in batch:
        row: dict[str, Any] = {"run": index, "params": params, "metrics": None, "error": None}
        try:
            row["metrics"] = job.run(data, params).metrics
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
        out.append(row)
    return out


def _set_worker_feed(feed: DataFeed) -> None:
    global _WORKER_FEED
    _WORKER_FEED = feed


def _executor(executor: Executor | str | None, feed: DataFeed) -> tuple[bool, Executor]:
    """The executor to use and whether this call owns it (and must shut it down)."""
    if executor is None:
        workers = os.cpu_count() or 1
        # Spawned, not forked: a fork of a process whose polars thread pool is running can
        # deadlock in the child (polars documents this).
        return True, ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_set_worker_feed,
            initargs=(feed,),
        )
    if isinstance(executor, str):
        if not executor.startswith("dask://"):
            raise ConfigError(
                f"executor {executor!r}: a string must be a Dask scheduler address, "
                "'dask://host:port'"
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
            f"executor must be a concurrent.futures.Executor, 'dask://host:port' or None, got "
            f"{type(executor).__name__}"
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


def _batch_size(n_runs: int, workers: int) -> int:
    # About four batches per worker: few enough to amortise task overhead, enough to balance.
    return max(1, math.ceil(n_runs / (4 * workers)))


def _check_picklable(job: _Job) -> None:
    try:
        pickle.dumps(job)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ConfigError(
            "the strategy factory, runner and rules must be importable (defined at module "
            f"level) to run in other processes: {exc}. Use a module-level function, or "
            "executor=ThreadPoolExecutor() or a Dask executor"
        ) from None


def _table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per run: run, the parameters, the metrics, the error (null if none)."""
    params = list(dict.fromkeys(k for row in rows for k in row["params"]))
    metrics = list(dict.fromkeys(k for row in rows for k in (row["metrics"] or {})))
    columns: dict[str, list[Any]] = {"run": [row["run"] for row in rows]}
    for key in params:
        values = [row["params"].get(key) for row in rows]
        scalar = all(v is None or isinstance(v, bool | int | float | str) for v in values)
        columns[key] = values if scalar else [None if v is None else repr(v) for v in values]
    for key in metrics:
        columns[key] = [None if row["metrics"] is None else row["metrics"].get(key) for row in rows]
    columns["error"] = [row["error"] for row in rows]
    return pl.DataFrame(columns, strict=False)


class _Recorder:
    """Writes a sweep's runs into the store from the parent process, as batches finish."""

    def __init__(
        self,
        store: RunStore | str | Path,
        name: str | None,
        combos: list[Params],
        feed: DataFeed,
        config: BacktestConfig,
    ) -> None:
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self.name = name
        self.fingerprint = data_fingerprint(feed)
        self.group = self.store.new_group(
            "sweep",
            name,
            {"n_runs": len(combos), "grid": [_plain(c) for c in combos]},
            config=config.to_dict(),
        )

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.store.record_many(
            [
                {"params": _plain(row["params"]), "metrics": row["metrics"], "error": row["error"]}
                for row in rows
            ],
            kind="sweep",
            name=self.name,
            data_fingerprint=self.fingerprint,
            group_id=self.group,
        )


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
    ``position_rules.AnyOf.1.TrailingStop: [0.1, 0.2]``; list items by index).

    Every combination is checked before any runs, so a wrong path fails at once.
    """
    if not spec.grid:
        raise ConfigError("the backtest has no 'grid' section to sweep over")
    base = spec.to_dict()
    base.pop("grid", None)
    base.pop("output", None)
    combos = expand_grid({str(k): v for k, v in spec.grid.items()})
    for combo in combos:
        _SpecRun.build(base, combo, spec.base_dir)
    return sweep(
        spec.config,
        combos,
        spec.feed(),
        executor=executor,
        run=_SpecRun(base, spec.base_dir),
        progress=progress,
        store=store,
        name=name,
    )


@dataclasses.dataclass(frozen=True)
class _SpecRun:
    """Runs one combination of a YAML sweep: the resolved spec with the grid's values set."""

    base: dict[str, Any]
    base_dir: Path

    def __call__(self, feed: DataFeed, config: BacktestConfig, params: Params) -> BacktestResult:
        return self.build(self.base, params, self.base_dir).run(feed=feed)

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
