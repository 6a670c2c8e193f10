"""BacktestConfig: every setting of a backtest in one frozen, validated, keyword-only object."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError, ConfigKeywordError
from .execution.commission import (
    CommissionModel,
    FixedCommission,
    PercentCommission,
    PerShareCommission,
    TieredCommission,
    as_commission_model,
)
from .execution.slippage import (
    SLIPPAGE_LEAF_WIDTH,
    SLIPPAGE_VOLUME_SHARE,
    CombinedSlippage,
    FixedBpsSlippage,
    NoSlippage,
    OrderTypeSlippage,
    PercentSlippage,
    PerShareSlippage,
    SlippageModel,
    SpreadSlippage,
    VolumeShareSlippage,
    as_slippage_model,
)

FillTiming = Literal["next_open", "same_close", "next_close"]
CashPolicy = Literal["scale_down", "reject", "allow"]
AccountType = Literal["cash", "margin"]
IntrabarPriority = Literal["stop", "limit"]
TrailBasis = Literal["high_low", "close"]
OrderTrigger = Literal["high_low", "close"]
RemainderPolicy = Literal["keep", "cancel"]
StopAnchor = Literal["fill", "decision"]
SizingPrice = Literal["decision", "fill"]
SizingEquity = Literal["decision", "fill"]
TargetRounding = Literal["target", "order"]
OpenPriority = Literal["orders", "rules"]
ExecutionOrder = Literal["as_submitted", "exits_first", "exits_first_smallest_entries_first"]

_FILL_TIMINGS = ("next_open", "same_close", "next_close")
_CASH_POLICIES = ("scale_down", "reject", "allow")
_ACCOUNTS = ("cash", "margin")
# Models a config file can name: {"model": "FixedBpsSlippage", "bps": 5}.
_MODELS: dict[str, type[SlippageModel] | type[CommissionModel]] = {
    cls.__name__: cls
    for cls in (
        PercentCommission,
        PerShareCommission,
        FixedCommission,
        TieredCommission,
        NoSlippage,
        PercentSlippage,
        FixedBpsSlippage,
        PerShareSlippage,
        SpreadSlippage,
        VolumeShareSlippage,
        OrderTypeSlippage,
        CombinedSlippage,
    )
}
_PRIORITIES = ("stop", "limit")
_TRAIL_BASES = ("high_low", "close")
_ORDER_TRIGGERS = ("high_low", "close")
_REMAINDER_POLICIES = ("keep", "cancel")
_EXECUTION_ORDERS = ("as_submitted", "exits_first", "exits_first_smallest_entries_first")


@dataclass(frozen=True, kw_only=True)
class BacktestConfig:
    """How a backtest executes: cash, costs, fill timing and account rules.

    Args:
        initial_cash: Starting cash in the account's currency.
        commission: A commission model (``PerShareCommission``, ``FixedCommission``,
            ``TieredCommission``, ...) or a fraction of traded notional (0.001 = 10 bps a side).
        commission_overrides: Per-asset commission, ``{asset: model or fraction}``.
        slippage: A slippage model (``FixedBpsSlippage``, ``SpreadSlippage``,
            ``VolumeShareSlippage``, ``OrderTypeSlippage``, ...) or a fraction of price: buys fill
            at ``price * (1 + slippage)``, sells at ``price * (1 - slippage)``.
        slippage_overrides: Per-asset slippage, ``{asset: model or fraction}``.
        fill_timing: ``"next_open"`` fills orders decided at bar ``t`` at the open of ``t+1``
            (the default, what a live trader gets); ``"same_close"`` fills them at the close of
            ``t`` (VectorBT's default convention, Backtrader's cheat-on-close); ``"next_close"``
            at the close of ``t+1`` (Zipline's daily mode).
        sizing_price: The price target orders (``order_target_value``/``_percent``,
            ``rebalance``) turn a value into shares at: the decision bar's close (``"decision"``,
            Backtrader and Zipline) or the fill's price before slippage (``"fill"``, VectorBT,
            which sizes at execution). The value itself is fixed at decision time unless
            ``sizing_equity="fill"``.
        sizing_equity: The equity percent targets (``order_target_percent(s)``,
            ``rebalance``, ``run_signals(size_type="percent")``, ``run_weights``) are a
            fraction of: the equity at the decision close (``"decision"``, the default), or
            the equity marked at the fill bar's prices before any of its fills (``"fill"``:
            cash plus positions at the open with next-open fills; an asset without a bar at
            its last close), as VectorBT values a group with ``val_price=np.inf`` and
            ``price=open``. Needs ``sizing_price="fill"``: the shares are then sized at the
            fill's price too. Targets given as values (``order_target_value``) are unchanged.
        target_rounding: With whole shares, what a target order (``order_target_value`` /
            ``_percent``, ``order_target_percents``, ``rebalance``) rounds towards zero: the
            target quantity, then orders the difference (``"target"``, the default: the
            position lands on whole shares of the target), or the order itself, the target
            less what is held (``"order"``, as Backtrader and Zipline do). They differ only
            when trimming or adding to a position: ``"order"`` can trade one share less.
        snap_near_whole: With whole shares, a target order's amount (under
            ``target_rounding="order"``; the target under ``"target"``) within 1e-4 of a whole
            number becomes that number before it is rounded towards zero, as Zipline's
            ``round_order`` does (3.99995 shares buy 4, not 3). Off by default.
        execution_order: The order one bar's orders fill in: ``"exits_first"`` (reductions,
            then entries, each in submission order: exits free the cash entries use),
            ``"as_submitted"``, or ``"exits_first_smallest_entries_first"`` (entries by
            ascending notional, so the largest absorbs a cash shortfall).
        slippage_within_bar: Clamp fill prices after slippage to the bar's [low, high]
            (Backtrader's ``slip_out=False``); off by default.
        fractional_shares: Allow non-integer quantities. Off by default, as for equities.
        on_insufficient_cash: A buy the cash cannot cover is cut to what the cash buys
            (``"scale_down"``) or rejected whole (``"reject"``); either way the order records
            why. ``"allow"`` fills it whole and lets cash go negative, checking neither cash
            nor margin (Zipline, which never checks cash). A margin account applies the same
            choice to a fill past its initial margin.
        account: ``"cash"``: no shorting, no borrowing. ``"margin"``: shorts and leverage up
            to what ``initial_margin`` allows; below ``maintenance_margin`` positions are
            liquidated, largest first, with reason ``margin_call``.
        initial_margin: Margin account: equity after a fill that adds exposure must be at least
            this fraction of gross exposure (0.5 = Reg T, leverage up to 2).
        maintenance_margin: Margin account: when equity at a close falls below this fraction of
            gross exposure, positions are closed, largest first, until it no longer does.
        margin_calls: Margin account: ``False`` never closes positions for margin, not even
            at negative equity, as Zipline (which checks no margin at all) does. ``True`` by
            default.
        borrow_rate_annual: Fee a year on the value of short positions, charged every bar for
            the time since the last one.
        cash_interest_rate_annual: Interest a year earned on positive cash.
        margin_interest_rate_annual: Interest a year paid on negative cash (a margin loan).
        intrabar_priority: When one bar touches both legs of a bracket, which fills: the stop
            (``"stop"``, the pessimistic default, as backtesting.py) or the limit (``"limit"``).
            The filled leg's order records that both were touched. Position rules read it as
            the bar's path: the adverse extreme first (``"stop"``) or the favourable one.
        stops_on_entry_bar: Whether a bracket's legs, and position rules, may fill on the bar
            the entry filled at the open (the rest of that bar comes after the open). ``None``
            (the default) means True with ``fill_timing="next_open"``; with fills at a close
            nothing of the entry bar comes after the fill, so there it means False, and an
            explicit True is refused.
        open_priority: What a bar meets first when orders of earlier bars fill at its open
            and a position rule fires on it. ``"orders"`` (the default): the orders fill at
            the open, then the rules check the rest of the bar. ``"rules"``: the rules check
            the positions held at the open first; a rule that fires exits at its level (at
            the open if the bar gapped through it) and replaces the market orders working on
            its asset, which are cancelled with reason ``replaced_by_position_rule`` (a
            VectorBT stop replaces the signal of its bar, ``simulate_from_signals_nb``); then
            the orders fill at the open, and the rules check the positions entered there
            when ``stops_on_entry_bar``. Limit and stop orders keep working.
        max_participation: Cap on each bar's fills per asset as a fraction of the bar's volume
            (0.1 = 10%); None for no cap. With a cap, a zero-volume bar fills nothing.
        participation_remainder: What a cap leaves of an order keeps working on later bars
            (``"keep"``, partial fills) or is cancelled (``"cancel"``).
        stop_anchor: What bracket levels given as fractions are measured from: the entry's fill
            price (``"fill"``, as VectorBT's ``sl_stop``) or the decision close (``"decision"``).
        trail_basis: What a trailing stop (order or ``TrailingStop`` rule) trails: the bar's
            high (low for buy stops and shorts), ``"high_low"``, or its close, ``"close"``.
        order_trigger: What stop, limit, stop-limit and trailing-stop orders are checked
            against: the bar's open, high and low (``"high_low"``: a touched level fills at
            the level, a gapped one at the open), or its close only (``"close"``: a level the
            close reached fills at the close, slippage on top), as Zipline's daily mode does.
            ``"close"`` needs ``fill_timing="next_close"``. Position rules are not affected.
        close_at_end: End the run flat: after the last bar's decisions, working orders are
            cancelled (reason ``open_at_end``) and every position is closed at the last close,
            commission and slippage paid, by a fill with reason ``end_of_run``, so trade
            statistics include the last position (backtesting.py's ``finalize_trades=True``,
            which fills at the last bar's open instead: ``docs/presets.md``).
        periods_per_year: Bars per year for annualised metrics; inferred from timestamps if None.
        risk_free_rate: Annual risk-free rate used by Sharpe and Sortino.

    Example:
        >>> cfg = BacktestConfig(initial_cash=50_000, commission=0.001)
        >>> cfg.fill_timing
        'next_open'
        >>> BacktestConfig.from_dict({"initial_cash": 1e6, "slippage": 0.0005}).slippage
        0.0005
    """

    initial_cash: float = 100_000.0
    commission: float | CommissionModel | Callable[..., float] = 0.0
    commission_overrides: dict[str, float | CommissionModel] | None = None
    slippage: float | SlippageModel | Callable[..., float] = 0.0
    slippage_overrides: dict[str, float | SlippageModel] | None = None
    fill_timing: FillTiming = "next_open"
    sizing_price: SizingPrice = "decision"
    sizing_equity: SizingEquity = "decision"
    target_rounding: TargetRounding = "target"
    snap_near_whole: bool = False
    execution_order: ExecutionOrder = "exits_first"
    slippage_within_bar: bool = False
    fractional_shares: bool = False
    on_insufficient_cash: CashPolicy = "scale_down"
    account: AccountType = "cash"
    initial_margin: float = 0.5
    maintenance_margin: float = 0.25
    margin_calls: bool = True
    borrow_rate_annual: float = 0.0
    cash_interest_rate_annual: float = 0.0
    margin_interest_rate_annual: float = 0.0
    intrabar_priority: IntrabarPriority = "stop"
    stops_on_entry_bar: bool | None = None
    open_priority: OpenPriority = "orders"
    stop_anchor: StopAnchor = "fill"
    trail_basis: TrailBasis = "high_low"
    order_trigger: OrderTrigger = "high_low"
    max_participation: float | None = None
    participation_remainder: RemainderPolicy = "keep"
    close_at_end: bool = False
    periods_per_year: float | None = None
    risk_free_rate: float = 0.0

    def __new__(cls, *args: Any, **kwargs: Any) -> BacktestConfig:
        # The generated __init__ would raise a bare TypeError for a misspelt keyword; check the
        # names first so Python gets the nearest-key hint a YAML file gets.
        if args:
            raise ConfigKeywordError(
                f"BacktestConfig takes keyword arguments only (initial_cash=..., "
                f"commission=...), got {len(args)} positional"
            )
        valid = [f.name for f in fields(cls)]
        for key in kwargs:
            if key not in valid:
                near = difflib.get_close_matches(key, valid, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ConfigKeywordError(
                    f"BacktestConfig got an unknown keyword {key!r}{hint} Valid keys: "
                    f"{', '.join(valid)}"
                )
        return super().__new__(cls)

    def __post_init__(self) -> None:
        _check_number("initial_cash", self.initial_cash, low=0.0, low_open=True)
        if isinstance(self.commission, int | float):
            _check_number("commission", self.commission, low=0.0, high=1.0, high_open=True)
        else:
            as_commission_model(self.commission)
        for asset, spec in (self.commission_overrides or {}).items():
            as_commission_model(spec, name=f"commission_overrides[{asset!r}]")
        if isinstance(self.slippage, int | float):
            _check_number("slippage", self.slippage, low=0.0, high=1.0, high_open=True)
        else:
            as_slippage_model(self.slippage)
        for asset, slip in (self.slippage_overrides or {}).items():
            as_slippage_model(slip, name=f"slippage_overrides[{asset!r}]")
        _check_choice("fill_timing", self.fill_timing, _FILL_TIMINGS)
        _check_choice("on_insufficient_cash", self.on_insufficient_cash, _CASH_POLICIES)
        _check_choice("account", self.account, _ACCOUNTS)
        _check_number("initial_margin", self.initial_margin, low=0.0, high=1.0, low_open=True)
        _check_number(
            "maintenance_margin", self.maintenance_margin, low=0.0, high=self.initial_margin
        )
        for key in (
            "borrow_rate_annual",
            "cash_interest_rate_annual",
            "margin_interest_rate_annual",
        ):
            _check_number(key, getattr(self, key), low=0.0, high=1.0)
        _check_choice("intrabar_priority", self.intrabar_priority, _PRIORITIES)
        _check_choice("trail_basis", self.trail_basis, _TRAIL_BASES)
        _check_choice("order_trigger", self.order_trigger, _ORDER_TRIGGERS)
        if self.order_trigger == "close" and self.fill_timing != "next_close":
            # A level checked against the decision bar's own close, or at a close after an
            # open the order could have filled at: no peer does either.
            raise ConfigError(
                "order_trigger='close' needs fill_timing='next_close': stop and limit orders "
                "checked against the close only are Zipline's daily mode, where orders are "
                f"first offered at the next session's close (got fill_timing="
                f"{self.fill_timing!r})"
            )
        _check_choice("execution_order", self.execution_order, _EXECUTION_ORDERS)
        _check_choice("sizing_price", self.sizing_price, ("decision", "fill"))
        _check_choice("sizing_equity", self.sizing_equity, ("decision", "fill"))
        if self.sizing_equity == "fill" and self.sizing_price != "fill":
            # Equity marked at the fill bar converted into shares at the decision close mixes
            # two bars' prices: no peer does it.
            raise ConfigError(
                "sizing_equity='fill' needs sizing_price='fill': a target valued at the fill "
                "bar is converted into shares at the fill's price (VectorBT's val_price=np.inf)"
            )
        _check_choice("target_rounding", self.target_rounding, ("target", "order"))
        _check_choice("open_priority", self.open_priority, ("orders", "rules"))
        _check_choice("stop_anchor", self.stop_anchor, ("fill", "decision"))
        _check_choice("participation_remainder", self.participation_remainder, _REMAINDER_POLICIES)
        if self.max_participation is not None:
            _check_number(
                "max_participation", self.max_participation, low=0.0, high=1.0, low_open=True
            )
        else:
            _check_cumulative_has_a_cap(self.slippage, self.slippage_overrides)
        for key in (
            "fractional_shares",
            "snap_near_whole",
            "margin_calls",
            "stops_on_entry_bar",
            "slippage_within_bar",
            "close_at_end",
        ):
            value = getattr(self, key)
            if not isinstance(value, bool) and not (key == "stops_on_entry_bar" and value is None):
                raise ConfigError(f"{key} must be true or false, got {value!r}")
        if self.stops_on_entry_bar and self.fill_timing != "next_open":
            # No peer checks stops on a bar whose close is the entry's fill: the bar's range
            # came before the fill, so the setting could only mean stops firing before entry.
            raise ConfigError(
                f"stops_on_entry_bar=True cannot apply with fill_timing={self.fill_timing!r}: "
                "entries fill at a close, after the whole of their bar, so no part of the "
                "entry bar is left to check; use fill_timing='next_open' or leave "
                "stops_on_entry_bar unset"
            )
        if self.periods_per_year is not None:
            _check_number("periods_per_year", self.periods_per_year, low=0.0, low_open=True)
        _check_number("risk_free_rate", self.risk_free_rate, low=-1.0, high=1.0)

    @property
    def stops_start_on_entry_bar(self) -> bool:
        """Whether stops are checked on the entry's own bar: ``stops_on_entry_bar``, or when
        unset, whether entries fill at the open.

        Example:
            >>> BacktestConfig().stops_start_on_entry_bar
            True
            >>> BacktestConfig(fill_timing="same_close").stops_start_on_entry_bar
            False
        """
        if self.stops_on_entry_bar is None:
            return self.fill_timing == "next_open"
        return self.stops_on_entry_bar

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> BacktestConfig:
        """A config set to a peer framework's default behaviour, plus ``overrides``.

        ``name`` is ``"vectorbt"`` (``Portfolio.from_signals``), ``"backtrader"`` (Cerebro's
        default broker) or ``"zipline"`` (zipline-reloaded, daily bars). ``docs/presets.md``
        lists every knob each preset sets and the peer source it reproduces.

        Example:
            >>> BacktestConfig.preset("backtrader", commission=0.001).fill_timing
            'next_open'
        """
        if name not in PRESETS:
            near = difflib.get_close_matches(str(name), list(PRESETS), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"unknown preset {name!r}{hint} Presets: {', '.join(PRESETS)}")
        values = dict(PRESETS[name]) | overrides
        return cls.from_dict(values, path=f"preset[{name!r}]")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain Python values (what ``from_dict`` and YAML take back).

        A model becomes ``{"model": class name, **its parameters}``.
        """
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, path: str = "config") -> BacktestConfig:
        """Build a config from a mapping, rejecting unknown keys with the nearest valid one.

        Example:
            >>> BacktestConfig.from_dict({"comission": 0.001})
            Traceback (most recent call last):
            ...
            ml4t.backtest.errors.ConfigError: unknown key 'config.comission'; did you mean ...
        """
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must be a mapping of settings, got {type(values).__name__}")
        valid = [f.name for f in fields(cls)]
        for key in values:
            if key not in valid:
                near = difflib.get_close_matches(str(key), valid, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ConfigError(
                    f"unknown key '{path}.{key}'{hint} Valid keys: {', '.join(valid)}"
                )
        return cls(**{key: _from_plain(value, f"{path}.{key}") for key, value in values.items()})

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Dump the config as YAML; also write it to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, source: str | Path) -> BacktestConfig:
        """Load a config from a YAML file path or a YAML string."""
        if _looks_like_path(source):
            values = load_yaml(Path(source).read_text(), source=str(source))
        else:
            values = load_yaml(str(source), source="config")
        return cls.from_dict(values or {})


def load_yaml(text: str, *, source: str = "<string>") -> Any:
    """Parse YAML as ``yaml.safe_load`` does, but a key given twice in one mapping is an error.

    Plain YAML keeps the last of two equal keys, so a second ``config:`` section would silently
    replace the first. Every YAML file the package reads goes through here.

    Example:
        >>> load_yaml("config: {commission: 0.001}\\nconfig: {}", source="bt.yaml")
        Traceback (most recent call last):
        ...
        ml4t.backtest.errors.ConfigError: duplicate key 'config' in bt.yaml at line 2 ...
    """
    loader = _UniqueKeyLoader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


class _UniqueKeyLoader(yaml.SafeLoader):
    source = "<string>"

    def construct_document(self, node: yaml.Node) -> Any:
        self._check_unique_keys(node, "", set())
        return super().construct_document(node)

    def _check_unique_keys(self, node: yaml.Node, path: str, seen: set[int]) -> None:
        if id(node) in seen:  # an alias of a node already checked (or a recursive one)
            return
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._check_unique_keys(item, f"{path}[{i}]", seen)
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *base" then overriding keys is how YAML merges are meant
                key = (
                    self.construct_object(key_node)
                    if isinstance(key_node, yaml.ScalarNode)
                    else repr(key_node.value)
                )
                where = f"{path}.{key}" if path else str(key)
                line = key_node.start_mark.line + 1
                if key in first_line:
                    raise ConfigError(
                        f"duplicate key '{where}' in {self.source} at line {line} (first at line "
                        f"{first_line[key]}): YAML would keep only the last; give each key once"
                    )
                first_line[key] = line
                self._check_unique_keys(value_node, where, seen)


def _plain(value: object) -> Any:
    if isinstance(value, SlippageModel | CommissionModel):
        if not is_dataclass(value) or type(value).__name__ not in _MODELS:
            return f"<{type(value).__name__}: not serialisable>"
        out: dict[str, Any] = {"model": type(value).__name__}
        for f in fields(value):
            out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _from_plain(value: object, path: str) -> Any:
    if isinstance(value, dict) and "model" in value:
        name = value["model"]
        if name not in _MODELS:
            near = difflib.get_close_matches(str(name), list(_MODELS), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"unknown model {name!r} at '{path}.model'{hint}")
        params = {k: _from_plain(v, f"{path}.{k}") for k, v in value.items() if k != "model"}
        try:
            return _MODELS[name](**params)
        except TypeError as exc:
            raise ConfigError(f"bad parameters for {name} at '{path}': {exc}") from None
    if isinstance(value, dict):
        return {k: _from_plain(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_from_plain(v, f"{path}.{i}") for i, v in enumerate(value)]
    return value


def _looks_like_path(source: str | Path) -> bool:
    if isinstance(source, Path):
        return True
    return "\n" not in source and ":" not in source and Path(source).suffix in (".yaml", ".yml")


def _check_cumulative_has_a_cap(
    slippage: object, overrides: dict[str, float | SlippageModel] | None
) -> None:
    """A cumulative ``VolumeShareSlippage`` reads the volume a bar's fills took, which the
    engine counts under ``max_participation`` only: without one it would price every fill
    alone, silently."""
    named = {"slippage": slippage}
    named.update({f"slippage_overrides[{a!r}]": m for a, m in (overrides or {}).items()})
    for name, spec in named.items():
        if not isinstance(spec, SlippageModel):
            continue  # a number, or a function the kernel does not run
        row = spec.to_params()
        for base in range(0, len(row), SLIPPAGE_LEAF_WIDTH):
            if row[base] == SLIPPAGE_VOLUME_SHARE and row[base + 4] == 1.0:
                raise ConfigError(
                    f"{name}: VolumeShareSlippage(cumulative=True) needs max_participation "
                    "(a fraction of bar volume, as Zipline's volume_limit): the volume a bar's "
                    "fills took is counted only under a participation cap"
                )


def _check_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        near = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"{key} must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}"
        )


def _check_number(
    key: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    # No setting means anything at infinity: infinite cash turns every metric into NaN.
    if math.isinf(value):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ConfigError(f"{key} must be {bound}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ConfigError(f"{key} must be {bound}, got {value!r}")


# Each peer's default behaviour as our settings; docs/presets.md gives the peer source of each
# knob and the gaps no setting closes yet.
PRESETS: dict[str, dict[str, Any]] = {
    "vectorbt": {
        "fill_timing": "same_close",  # from_signals: price=np.inf -> the signal bar's close
        "sizing_price": "fill",  # val_price=np.inf -> the order price
        "execution_order": "as_submitted",  # call_seq="default": column order
        "on_insufficient_cash": "scale_down",  # allow_partial=True
        "slippage_within_bar": False,
        "stops_on_entry_bar": False,
        "trail_basis": "high_low",
        "intrabar_priority": "stop",
        "fractional_shares": True,  # size_granularity=None
        "account": "cash",  # direction="longonly"
    },
    "backtrader": {
        "fill_timing": "next_open",  # market orders execute on the next bar's open
        "sizing_price": "decision",  # order_target_* size with data.close[0]
        "target_rounding": "order",  # getsize(price, target - value): the order is rounded
        "execution_order": "as_submitted",  # the broker walks pending orders in order
        "on_insufficient_cash": "reject",  # the order ends with status Margin
        "slippage_within_bar": True,  # slip_out=False keeps slipped prices inside the bar
        "stops_on_entry_bar": False,  # bracket children activate after the parent's bar
        "trail_basis": "close",  # StopTrail follows the close
        "intrabar_priority": "stop",
        "fractional_shares": False,
        # Shorts need no collateral in Backtrader; a 100% margin account is the nearest setting.
        "account": "margin",
        "initial_margin": 1.0,
        "maintenance_margin": 0.0,
    },
    "zipline": {
        "fill_timing": "next_close",  # daily mode: the next bar's close
        "sizing_price": "decision",  # order_target_percent uses the current price
        "target_rounding": "order",  # round_order(target amount - position)
        "snap_near_whole": True,  # round_if_near_integer(amount, epsilon=1e-4), then int()
        "execution_order": "as_submitted",
        "slippage_within_bar": False,
        "fractional_shares": False,
        # US equity defaults: PerShare(cost=0.001) and
        # FixedBasisPointsSlippage(basis_points=5, volume_limit=0.1).
        "commission": PerShareCommission(0.001),
        "slippage": FixedBpsSlippage(5),
        "max_participation": 0.1,
        "participation_remainder": "keep",
        # Order.check_order_triggers gets the bar's close: stop/limit orders trigger on it.
        "order_trigger": "close",
        # Zipline checks neither cash nor margin: fills go through and cash may go negative.
        "on_insufficient_cash": "allow",
        # Shorts are allowed; with "allow" the initial margin is not checked.
        "account": "margin",
        "initial_margin": 1e-6,
        "maintenance_margin": 0.0,
        "margin_calls": False,  # nothing in Zipline's ledger closes a position for margin
    },  # The look-ahead-free set-ups careful users run (docs/presets.md, "Next-open set-ups").
    "vectorbt_next_open": {
        # from_signals / from_orders on signals shifted one bar with price=open
        "fill_timing": "next_open",
        "sizing_price": "fill",  # val_price=np.inf -> the order price, the open
        "sizing_equity": "fill",  # the group valued at val_price before the row's orders
        "execution_order": "as_submitted",  # call_seq="default"
        "on_insufficient_cash": "scale_down",  # allow_partial=True
        "slippage_within_bar": False,
        "stops_on_entry_bar": False,  # stops are checked before the row's order is placed
        "open_priority": "rules",  # "Stop signal comes first": a stop replaces the row's order
        "stop_anchor": "fill",  # stop_entry_price="fillprice"
        "trail_basis": "high_low",
        "intrabar_priority": "stop",
        "fractional_shares": True,
        "account": "cash",
    },
    "backtrader_cheat_on_open": {
        # Cerebro(cheat_on_open=True), orders placed in next_open at the known open
        "fill_timing": "next_open",
        "sizing_price": "fill",  # sized on data.open[0], the fill bar's open
        "sizing_equity": "fill",  # equity: cash plus the position at that open
        "target_rounding": "order",
        "execution_order": "as_submitted",
        "on_insufficient_cash": "reject",
        "slippage_within_bar": True,
        "stops_on_entry_bar": False,
        "trail_basis": "close",
        "intrabar_priority": "stop",
        "fractional_shares": False,
        "account": "margin",
        "initial_margin": 1.0,
        "maintenance_margin": 0.0,
    },
    "backtesting_py": {
        # backtesting.py 0.6 Backtest defaults: trade_on_close=False, margin=1.0, hedging=False
        "fill_timing": "next_open",
        "sizing_price": "fill",  # buy() sizes from the margin available at the fill open
        "sizing_equity": "fill",
        "execution_order": "as_submitted",  # _Broker.orders in placement order
        "on_insufficient_cash": "reject",  # "Broker canceled the order due to insufficient margin"
        "slippage_within_bar": False,
        "stops_on_entry_bar": True,  # sl/tp are reprocessed on the entry bar
        "stop_anchor": "decision",
        "intrabar_priority": "stop",  # SL orders are inserted before TP orders
        "fractional_shares": False,  # sizes are whole units
        # margin=1.0: an order must fit the margin available, gross, shorts included
        "account": "margin",
        "initial_margin": 1.0,
        "maintenance_margin": 0.0,
    },
}
