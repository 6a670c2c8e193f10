"""A whole backtest described by one YAML file: data, strategy, config, rules and output.

```yaml
data:                      # Parquet paths (relative to this file) or the synthetic universe
  prices: data/prices.parquet
  signals: data/predictions.parquet   # optional: extra columns joined on timestamp and asset
  rename: {vol_20d: volatility}       # optional: columns renamed as the data is read
strategy:
  name: TopNStrategy       # a built-in strategy, or "my_module:MyStrategy" from your code
  params: {column: score, n: 10, rebalance_every: 5}
config:                    # any BacktestConfig key; preset: vectorbt|backtrader|zipline first
  initial_cash: 1000000
  commission: 0.0005
position_rules:            # optional, see ml4t.backtest.risk.serialization
  AnyOf: [{VolatilityScaledStop: {k: 2.5}}, {TrailingStop: 0.1}]
portfolio_rules:           # optional
  - MaxPositions: 20
benchmark: SPY             # optional: an asset of the data, or equal_weight (see below)
output: results/my_backtest   # folder for the results (relative to the working directory)
```

Unknown or misspelled keys are errors naming their path and the nearest valid key, and so is
a key given twice in one mapping (plain YAML would keep the last).

``benchmark: equal_weight`` is an equal-weight buy-and-hold of every asset of the data, built
by ``equal_weight_benchmark``; the metrics then carry alpha and beta against it.

Example:
    >>> spec = BacktestSpec.from_dict({
    ...     "data": {"synthetic": {"n_assets": 10, "n_bars": 100}},
    ...     "strategy": {"name": "TopNStrategy", "params": {"column": "score", "n": 3}},
    ... })
    >>> result = spec.run()
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import keyword
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .config import PRESETS, BacktestConfig, load_yaml
from .data.feed import DataFeed
from .datasets import synthetic_universe
from .engine import Engine
from .errors import ConfigError
from .results.result import BacktestResult
from .risk.portfolio import PortfolioRule
from .risk.position import PositionRule
from .risk.serialization import (
    portfolio_rules_from_plain,
    portfolio_rules_to_plain,
    position_rule_from_plain,
    position_rule_to_plain,
)
from .strategy import SignalStrategy, Strategy, TargetWeightStrategy, TopNStrategy

BUILT_IN_STRATEGIES: dict[str, type[Strategy]] = {
    cls.__name__: cls for cls in (SignalStrategy, TopNStrategy, TargetWeightStrategy)
}
_TOP_KEYS = [
    "data", "strategy", "config", "position_rules", "portfolio_rules", "benchmark", "output",
    "grid",
]  # fmt: skip
EQUAL_WEIGHT = "equal_weight"
_DATA_KEYS = ["prices", "signals", "synthetic", "rename"]
_STRATEGY_KEYS = ["name", "params"]


@dataclass
class BacktestSpec:
    """A backtest as data: where the prices come from, which strategy, and how to execute.

    Build it from YAML (``from_yaml``) or a mapping (``from_dict``); ``run()`` runs it and
    ``to_dict()`` gives the resolved form (every config key spelled out), which ``from_dict``
    reads back.
    """

    data: dict[str, Any]
    strategy: str
    strategy_params: dict[str, Any] = field(default_factory=dict)
    config: BacktestConfig = field(default_factory=BacktestConfig)
    position_rules: PositionRule | None = None
    portfolio_rules: list[PortfolioRule] = field(default_factory=list)
    benchmark: str | None = None
    output: str | None = None
    grid: dict[str, Any] | None = None
    base_dir: Path = field(default_factory=Path.cwd)

    @classmethod
    def from_yaml(cls, path: str | Path) -> BacktestSpec:
        """Read a spec from a YAML file; relative data paths are relative to the file."""
        source = Path(path)
        if not source.is_file():
            raise ConfigError(f"no such backtest file: {source}")
        try:
            text = source.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the backtest file {source}: {exc}") from None
        values = load_yaml(text, source=str(source))
        spec = cls.from_dict(values, base_dir=source.resolve().parent)
        if spec.output is None:
            spec.output = str(Path("results") / source.stem)
        return spec

    @classmethod
    def from_dict(cls, values: object, *, base_dir: Path | None = None) -> BacktestSpec:
        """Build a spec from a mapping with the YAML file's keys."""
        if not isinstance(values, dict):
            raise ConfigError(f"a backtest file must be a mapping of sections, got {values!r}")
        _check_keys(values, "", _TOP_KEYS)
        for required in ("data", "strategy"):
            if required not in values:
                raise ConfigError(f"the backtest has no '{required}' section")
        data = _mapping(values["data"], "data")
        _check_keys(data, "data", _DATA_KEYS)
        if ("synthetic" in data) == ("prices" in data):
            raise ConfigError("'data' needs exactly one of 'prices' (Parquet paths) or 'synthetic'")
        if "synthetic" in data:
            synthetic = _mapping(data["synthetic"] or {}, "data.synthetic")
            _check_keys(synthetic, "data.synthetic", _parameters(synthetic_universe))
        rename = _mapping(data.get("rename") or {}, "data.rename")
        for old, new in rename.items():
            if not isinstance(new, str) or not new:
                raise ConfigError(f"data.rename.{old} must be a column name, got {new!r}")
        strategy = _mapping(values["strategy"], "strategy")
        _check_keys(strategy, "strategy", _STRATEGY_KEYS)
        if "name" not in strategy:
            raise ConfigError(
                "'strategy.name' is missing: a built-in strategy "
                f"({', '.join(BUILT_IN_STRATEGIES)}) or 'module:Class'"
            )
        config = _config(values.get("config") or {})
        rules = values.get("position_rules")
        grid = values.get("grid")
        benchmark = values.get("benchmark")
        if benchmark is not None and (not isinstance(benchmark, str) or not benchmark):
            raise ConfigError(
                f"'benchmark' must be an asset name or {EQUAL_WEIGHT!r}, got {benchmark!r}"
            )
        return cls(
            data=data,
            strategy=str(strategy["name"]),
            strategy_params=_mapping(strategy.get("params") or {}, "strategy.params"),
            config=config,
            position_rules=None if rules is None else position_rule_from_plain(rules),
            portfolio_rules=portfolio_rules_from_plain(values.get("portfolio_rules") or []),
            benchmark=benchmark,
            output=None if values.get("output") is None else str(values["output"]),
            grid=None if grid is None else _mapping(grid, "grid"),
            base_dir=base_dir if base_dir is not None else Path.cwd(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec: what ``from_dict`` reads back into the same backtest."""
        data = dict(self.data)
        for key in ("prices", "signals"):
            if key in data:
                data[key] = _resolved_paths(data[key], self.base_dir)
        out: dict[str, Any] = {
            "data": data,
            "strategy": {"name": self.strategy, "params": dict(self.strategy_params)},
            "config": self.config.to_dict(),
        }
        if self.position_rules is not None:
            out["position_rules"] = position_rule_to_plain(self.position_rules)
        if self.portfolio_rules:
            out["portfolio_rules"] = portfolio_rules_to_plain(self.portfolio_rules)
        if self.benchmark is not None:
            out["benchmark"] = self.benchmark
        if self.output is not None:
            out["output"] = self.output
        if self.grid is not None:
            out["grid"] = self.grid
        return out

    def feed(self) -> DataFeed:
        """The data the spec names, as a feed (columns renamed as ``data.rename`` says)."""
        rename: dict[str, str] = dict(self.data.get("rename") or {})
        if "synthetic" in self.data:
            frames = [synthetic_universe(**(self.data["synthetic"] or {}))]
        else:
            prices = _resolved_paths(self.data["prices"], self.base_dir)
            signals = self.data.get("signals")
            if not rename:
                return DataFeed(
                    prices,
                    signals=None if signals is None else _resolved_paths(signals, self.base_dir),
                )
            frames = [pl.read_parquet(prices)]
            if signals is not None:
                frames.append(pl.read_parquet(_resolved_paths(signals, self.base_dir)))
        if rename:
            present = {c for frame in frames for c in frame.columns}
            for old in rename:
                if old not in present:
                    near = difflib.get_close_matches(old, sorted(present), n=1)
                    hint = f"; did you mean {near[0]!r}?" if near else ""
                    raise ConfigError(
                        f"data.rename: no column {old!r} in the data{hint} (columns: "
                        f"{', '.join(sorted(present))})"
                    )
            frames = [f.rename({k: v for k, v in rename.items() if k in f.columns}) for f in frames]
        return DataFeed(frames[0], signals=frames[1] if len(frames) > 1 else None)

    def build_strategy(self, params: dict[str, Any] | None = None) -> Strategy:
        """A fresh strategy object (``params`` override the spec's own)."""
        cls = strategy_class(self.strategy)
        values = {**self.strategy_params, **(params or {})}
        _check_keys(values, "strategy.params", _parameters(cls))
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"'strategy.params' of {self.strategy}: {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"'strategy.params' of {self.strategy}: {exc}") from None

    def run(self, *, feed: DataFeed | None = None, progress: bool = False) -> BacktestResult:
        """Run the backtest (on ``feed`` if given, else on the spec's data)."""
        feed = feed if feed is not None else self.feed()
        benchmark: str | NDArray[np.float64] | None = self.benchmark
        if self.benchmark == EQUAL_WEIGHT:
            benchmark = equal_weight_benchmark(feed)
        elif self.benchmark is not None and self.benchmark not in {str(a) for a in feed.assets}:
            assets = [str(a) for a in feed.assets]
            near = difflib.get_close_matches(self.benchmark, assets, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else "."
            raise ConfigError(
                f"benchmark {self.benchmark!r} is not an asset of the data{hint} Give an asset "
                f"name or {EQUAL_WEIGHT!r} (an equal-weight buy-and-hold of every asset)"
            )
        engine = Engine(
            feed,
            self.build_strategy(),
            self.config,
            position_rules=self.position_rules,
            portfolio_rules=self.portfolio_rules,
            benchmark=benchmark,
        )
        return engine.run(progress=progress)


def strategy_class(name: str) -> type[Strategy]:
    """A built-in strategy by name, or ``"package.module:Class"`` imported from your code.

    A module is looked up on the Python path, then in the working directory (which is added to
    the end of ``sys.path`` when it is not there, so ``ml4t-backtest`` finds the same modules
    as ``python -m ml4t.backtest.cli``). Importing runs a module's code, so what can be checked
    is checked first: both names must be Python names, the module must exist, and its source
    must define (``class Name``) or import (``from x import Name``) the class at its top level.
    A name that fails any check is an error and nothing is imported; only a module without
    source (compiled, or already imported) is imported to look.

    Example:
        >>> strategy_class("TopNStrategy").__name__
        'TopNStrategy'
    """
    if name in BUILT_IN_STRATEGIES:
        return BUILT_IN_STRATEGIES[name]
    if ":" not in name:
        near = difflib.get_close_matches(name, list(BUILT_IN_STRATEGIES), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"unknown strategy 'strategy.name: {name}'{hint} Use one of "
            f"{', '.join(BUILT_IN_STRATEGIES)}, or 'module:Class' for your own"
        )
    module_name, _, class_name = name.partition(":")
    where = f"'strategy.name: {name}'"
    if not all(_is_name(part) for part in module_name.split(".")) or not _is_name(class_name):
        raise ConfigError(
            f"{where} must read 'module:Class' with Python names, e.g. "
            "'my_strategies:MomentumStrategy' or 'package.module:Class'"
        )
    module = sys.modules.get(module_name)
    if module is None:
        _add_working_directory_to_path()
        try:
            # Finding a submodule imports its parent packages (not the module itself).
            found = importlib.util.find_spec(module_name)
        except (ImportError, ValueError) as exc:
            found, reason = None, f" ({exc})"
        else:
            reason = ""
        if found is None:
            raise ConfigError(
                f"{where}: cannot import module {module_name!r}{reason}: it is neither in the "
                f"working directory ({os.getcwd()}) nor on the Python path"
            )
        _check_source_binds(found, class_name, where)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"{where}: cannot import module {module_name!r} ({exc})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"{where}: {module_name} has no Strategy subclass named {class_name!r}")
    return cls


def equal_weight_benchmark(feed: DataFeed) -> NDArray[np.float64]:
    """Per-bar value of an equal-weight buy-and-hold of every asset of ``feed``, from 1.0.

    Each of the N assets gets 1/N of the starting value. It is held as cash until the asset's
    first close, bought at that close and never rebalanced; a missing bar afterwards values it
    at its last close (as the engine marks positions), and after its last bar it keeps that
    value. An asset with no close at all stays cash. So with asset A closing 10, 20, 20 and B
    missing, 50, 25, the values are 1.0 (A 0.5 + cash 0.5), 1.5 (A 1.0 + B bought at 50,
    0.5), 1.25 (A 1.0 + B 0.25).

    Example:
        >>> from ml4t.backtest.datasets import synthetic_universe
        >>> prices = equal_weight_benchmark(DataFeed(synthetic_universe(n_assets=3, n_bars=5)))
        >>> float(prices[0])
        1.0
    """
    close = np.asarray(feed.array("close"), dtype=np.float64)
    n_bars, n_assets = close.shape
    valid = np.isfinite(close)
    # The bar of each asset's latest close up to t (-1 before its first), to carry it forward.
    latest = np.where(valid, np.arange(n_bars)[:, None], -1)
    np.maximum.accumulate(latest, axis=0, out=latest)
    columns = np.arange(n_assets)
    carried = close[np.maximum(latest, 0), columns]
    first = close[valid.argmax(axis=0), columns]
    growth = np.where(latest >= 0, carried / first, 1.0)
    return np.asarray(growth.mean(axis=1), dtype=np.float64)


def _is_name(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


def _add_working_directory_to_path() -> None:
    cwd = os.getcwd()
    on_path = {os.path.abspath(p or os.curdir) for p in sys.path}
    if cwd not in on_path:
        # Last, so a file in the working directory never shadows an installed module.
        sys.path.append(cwd)


def _check_source_binds(found: importlib.machinery.ModuleSpec, class_name: str, where: str) -> None:
    """Refuse a module whose source does not define or import ``class_name`` at the top."""
    source = None
    if isinstance(found.loader, importlib.abc.InspectLoader):
        try:
            source = found.loader.get_source(found.name)
        except (ImportError, OSError, UnicodeDecodeError):
            source = None
    if source is None:
        return
    try:
        tree = ast.parse(source, filename=str(found.origin))
    except SyntaxError as exc:
        raise ConfigError(
            f"{where}: {found.origin} has a syntax error at line {exc.lineno}: {exc.msg}"
        ) from None
    if not _binds(tree.body, class_name):
        raise ConfigError(
            f"{where}: {found.origin} neither defines nor imports {class_name!r} at its top "
            f"level, so it was not imported; it needs 'class {class_name}(...)' or "
            f"'from ... import {class_name}'"
        )


def _binds(body: list[ast.stmt], name: str) -> bool:
    for node in body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == name:
                    return True
        # Definitions under a top-level if/try/with (an optional import, a version check).
        parts: list[list[ast.stmt]] = []
        if isinstance(node, ast.If):
            parts = [node.body, node.orelse]
        elif isinstance(node, ast.With):
            parts = [node.body]
        elif isinstance(node, ast.Try):
            parts = [node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)]
        if any(_binds(part, name) for part in parts):
            return True
    return False


def _config(values: object) -> BacktestConfig:
    config = _mapping(values, "config")
    if "preset" in config:
        name = config["preset"]
        if name not in PRESETS:
            near = difflib.get_close_matches(str(name), list(PRESETS), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                f"unknown preset 'config.preset: {name}'{hint} Presets: {', '.join(PRESETS)}"
            )
        rest = {k: v for k, v in config.items() if k != "preset"}
        return BacktestConfig.from_dict(dict(PRESETS[name]) | rest, path="config")
    return BacktestConfig.from_dict(config, path="config")


def _mapping(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"'{path}' must be a mapping, got {value!r}")
    return value


def _check_keys(values: dict[str, Any], path: str, valid: list[str]) -> None:
    for key in values:
        if key not in valid:
            near = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"unknown key '{where}'{hint} Valid keys: {', '.join(valid)}")


def _parameters(target: Any) -> list[str]:
    return [p for p in inspect.signature(target).parameters if p != "self"]


def _resolved_paths(value: object, base: Path) -> str | list[str]:
    if isinstance(value, list):
        return [str(_resolved(v, base)) for v in value]
    return str(_resolved(value, base))


def _resolved(value: object, base: Path) -> Path:
    if not isinstance(value, str):
        raise ConfigError(f"data paths must be strings, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
