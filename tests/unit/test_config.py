"""BacktestConfig validation and the YAML reader every file of the package goes through."""

from __future__ import annotations

import math

import pytest

from ml4t.backtest import BacktestConfig, ConfigError
from ml4t.backtest.config import load_yaml


def test_a_key_given_twice_at_the_top_is_an_error_naming_it_and_both_lines():
    text = "initial_cash: 1000\ncommission: 0.001\ninitial_cash: 2000\n"
    with pytest.raises(
        ConfigError, match=r"duplicate key 'initial_cash' in c.yaml at line 3 \(first at line 1\)"
    ):
        load_yaml(text, source="c.yaml")


def test_a_key_given_twice_in_a_nested_mapping_names_its_path():
    text = "config:\n  slippage: {model: FixedBpsSlippage, bps: 5, bps: 7}\n"
    with pytest.raises(ConfigError, match=r"duplicate key 'config.slippage.bps'.*line 2"):
        load_yaml(text, source="c.yaml")


def test_a_key_given_twice_inside_a_list_item_names_its_index():
    text = "portfolio_rules:\n  - MaxPositions: 3\n  - {MaxPositions: 3, MaxPositions: 4}\n"
    with pytest.raises(ConfigError, match=r"'portfolio_rules\[1\].MaxPositions'"):
        load_yaml(text)


def test_config_from_a_yaml_string_with_a_duplicate_key_is_an_error():
    with pytest.raises(ConfigError, match="duplicate key 'commission'"):
        BacktestConfig.from_yaml("commission: 0.001\ncommission: 0.002\n")


def test_equal_keys_in_different_mappings_and_yaml_merges_are_not_duplicates():
    text = "a: {x: 1}\nb: {x: 2}\nbase: &base {x: 1, y: 2}\nc:\n  <<: *base\n  x: 3\n"
    assert load_yaml(text) == {
        "a": {"x": 1},
        "b": {"x": 2},
        "base": {"x": 1, "y": 2},
        "c": {"x": 3, "y": 2},  # the merge's x is overridden, as YAML means it to be
    }


def test_invalid_yaml_is_a_config_error_naming_the_source():
    with pytest.raises(ConfigError, match=r"c\.yaml is not valid YAML"):
        load_yaml("data: [unclosed", source="c.yaml")


@pytest.mark.parametrize("key", ["initial_cash", "periods_per_year"])
@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_an_infinite_number_is_an_error(key, value):
    with pytest.raises(ConfigError, match=f"{key} must be a finite number"):
        BacktestConfig(**{key: value})


def test_infinite_cash_in_yaml_is_an_error():
    # ``.inf`` is how YAML spells infinity; it used to give a run whose metrics were all NaN.
    with pytest.raises(ConfigError, match="initial_cash must be a finite number"):
        BacktestConfig.from_yaml("initial_cash: .inf\n")


def test_a_misspelt_keyword_suggests_the_nearest_key():
    with pytest.raises(
        ConfigError, match=r"unknown keyword 'comission'; did you mean 'commission'"
    ):
        BacktestConfig(comission=0.001)  # type: ignore[call-arg]


def test_a_misspelt_keyword_is_still_a_type_error_as_python_raises_one():
    with pytest.raises(TypeError, match="did you mean 'initial_cash'"):
        BacktestConfig(initial_cach=1e6)  # type: ignore[call-arg]


def test_a_positional_argument_is_a_config_error():
    with pytest.raises(ConfigError, match="keyword arguments only"):
        BacktestConfig(1e6)  # type: ignore[misc]


def test_an_unknown_convention_value_names_the_nearest_valid_one():
    with pytest.raises(ConfigError, match="got 'next_opne'; did you mean 'next_open'"):
        BacktestConfig(fill_timing="next_opne")


def test_an_unknown_convention_value_from_yaml_names_the_nearest_valid_one():
    with pytest.raises(ConfigError, match="did you mean 'exits_first'"):
        BacktestConfig.from_yaml("execution_order: exit_first\n")


@pytest.mark.parametrize("timing", ["same_close", "next_close"])
def test_stops_on_the_entry_bar_with_fills_at_a_close_are_refused_with_the_reason(timing):
    with pytest.raises(ConfigError, match="no part of the entry bar is left to check"):
        BacktestConfig(fill_timing=timing, stops_on_entry_bar=True)


@pytest.mark.parametrize(
    ("timing", "expected"), [("next_open", True), ("same_close", False), ("next_close", False)]
)
def test_unset_stops_on_entry_bar_follows_the_fill_timing(timing, expected):
    assert BacktestConfig(fill_timing=timing).stops_start_on_entry_bar is expected


def test_an_explicit_stops_on_entry_bar_false_is_kept_at_the_open():
    assert BacktestConfig(stops_on_entry_bar=False).stops_start_on_entry_bar is False
