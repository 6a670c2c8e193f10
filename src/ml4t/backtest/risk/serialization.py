"""Rules as plain values, for YAML backtests: ``{ClassName: parameters}``.

A position rule is a mapping with one key, the rule's class name, whose value is a mapping of
its parameters, a single value for its first parameter (``StopLoss: 0.05``, ``TimeExit: 20``),
or, for ``AnyOf``/``AllOf``/``RuleChain``, a list of rules. ``RegimeDependent`` takes
``{column, rules: {regime value: rule}, default}``. Portfolio rules are a list of the same
one-key mappings. Unknown names and parameters are errors naming their path and the nearest
valid one.

Example:
    >>> rule = position_rule_from_plain({"AnyOf": [{"StopLoss": 0.05}, {"TimeExit": 20}]})
    >>> rule
    AnyOf(StopLoss(0.05, None), TimeExit(20,))
    >>> position_rule_to_plain(rule)
    {'AnyOf': [{'StopLoss': {'pct': 0.05}}, {'TimeExit': {'bars': 20}}]}
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, TypeVar

from ..errors import ConfigError
from .portfolio import (
    DailyLossLimit,
    MaxDrawdownHalt,
    MaxGrossExposure,
    MaxNetExposure,
    MaxPositions,
    MaxPositionWeight,
    PortfolioRule,
)
from .position import (
    AllOf,
    AnyOf,
    PositionRule,
    RegimeDependent,
    RuleChain,
    SignalExit,
    StopLoss,
    TakeProfit,
    TimeExit,
    TrailingStop,
    VolatilityScaledStop,
)

POSITION_RULES: dict[str, type[PositionRule]] = {
    cls.__name__: cls
    for cls in (
        StopLoss,
        TakeProfit,
        TrailingStop,
        VolatilityScaledStop,
        TimeExit,
        SignalExit,
        RegimeDependent,
        RuleChain,
        AnyOf,
        AllOf,
    )
}
PORTFOLIO_RULES: dict[str, type[PortfolioRule]] = {
    cls.__name__: cls
    for cls in (
        MaxPositions,
        MaxPositionWeight,
        MaxGrossExposure,
        MaxNetExposure,
        DailyLossLimit,
        MaxDrawdownHalt,
    )
}
_COMBINATORS = (AnyOf, AllOf, RuleChain)
_R = TypeVar("_R")


def position_rule_from_plain(value: object, path: str = "position_rules") -> PositionRule:
    """Build a position rule from its plain form (see the module docstring)."""
    name, params = _one_key(value, path, POSITION_RULES)
    cls = POSITION_RULES[name]
    where = f"{path}.{name}"
    if cls in _COMBINATORS:
        if not isinstance(params, list) or not params:
            raise ConfigError(f"'{where}' must be a non-empty list of rules")
        members = [position_rule_from_plain(p, f"{where}[{i}]") for i, p in enumerate(params)]
        return _build(cls, where, members, {})
    if cls is RegimeDependent:
        params = _mapping(params, where)
        _check_keys(params, where, ["column", "rules", "default"])
        rules = _mapping(params.get("rules"), f"{where}.rules")
        built = {
            key: position_rule_from_plain(rule, f"{where}.rules.{key}")
            for key, rule in rules.items()
        }
        default = params.get("default")
        return _build(
            cls,
            where,
            [params.get("column"), built],
            {
                "default": None
                if default is None
                else position_rule_from_plain(default, f"{where}.default")
            },
        )
    return _build(cls, where, *_arguments(cls, params, where))


def position_rule_to_plain(rule: PositionRule) -> dict[str, Any]:
    """The plain form of a position rule, which ``position_rule_from_plain`` reads back."""
    name = type(rule).__name__
    if isinstance(rule, AnyOf | AllOf | RuleChain):
        return {name: [position_rule_to_plain(r) for r in rule.rules]}
    if isinstance(rule, RegimeDependent):
        return {
            name: {
                "column": rule.column,
                "rules": {key: position_rule_to_plain(r) for key, r in rule.rules},
                "default": None if rule.default is None else position_rule_to_plain(rule.default),
            }
        }
    return {name: _parameters(rule)}


def portfolio_rules_from_plain(value: object, path: str = "portfolio_rules") -> list[PortfolioRule]:
    """Build a list of portfolio rules from ``[{ClassName: parameters}, ...]``."""
    if not isinstance(value, list):
        raise ConfigError(f"'{path}' must be a list of rules, e.g. [{{MaxPositions: 20}}]")
    rules = []
    for i, item in enumerate(value):
        name, params = _one_key(item, f"{path}[{i}]", PORTFOLIO_RULES)
        cls = PORTFOLIO_RULES[name]
        where = f"{path}[{i}].{name}"
        rules.append(_build(cls, where, *_arguments(cls, params, where)))
    return rules


def portfolio_rules_to_plain(rules: list[PortfolioRule]) -> list[dict[str, Any]]:
    """The plain form of portfolio rules."""
    return [{type(rule).__name__: _parameters(rule)} for rule in rules]


def _one_key(value: object, path: str, known: dict[str, Any]) -> tuple[str, Any]:
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(
            f"'{path}' must be a mapping with one key, the rule's name (one of "
            f"{', '.join(known)}), got {value!r}"
        )
    name, params = next(iter(value.items()))
    if name not in known:
        near = difflib.get_close_matches(str(name), list(known), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"unknown rule '{path}.{name}'{hint} Valid rules: {', '.join(known)}")
    return str(name), params


def _mapping(value: object, path: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"'{path}' must be a mapping, got {value!r}")
    return value


def _parameter_names(cls: type) -> list[str]:
    return list(inspect.signature(cls).parameters)


def _check_keys(params: dict[Any, Any], path: str, valid: list[str]) -> None:
    for key in params:
        if key not in valid:
            near = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"unknown key '{path}.{key}'{hint} Valid keys: {', '.join(valid)}")


def _arguments(cls: type, params: object, path: str) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments from a parameter mapping or a single value."""
    names = _parameter_names(cls)
    if isinstance(params, dict):
        _check_keys(params, path, names)
        return [], dict(params)
    if params is None:
        return [], {}
    return [params], {}


def _build(cls: type[_R], path: str, args: list[Any], kwargs: dict[str, Any]) -> _R:
    try:
        return cls(*args, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"'{path}': {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"'{path}': {exc}") from None


def _parameters(rule: object) -> dict[str, Any]:
    """Constructor arguments from the attributes of the same names, defaults left out."""
    signature = inspect.signature(type(rule))
    out: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if name == "self":
            continue
        value = getattr(rule, name)
        if parameter.default is inspect.Parameter.empty or value != parameter.default:
            out[name] = value
    return out
