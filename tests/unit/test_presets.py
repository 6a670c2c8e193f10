"""Parity presets: named peer defaults, overridable, and a clear error for unknown names."""

from __future__ import annotations

import re

import pytest

from ml4t.backtest import BacktestConfig, ConfigError
from ml4t.backtest.config import PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_sets_every_knob_it_names(name):
    config = BacktestConfig.preset(name)
    for key, value in PRESETS[name].items():
        assert getattr(config, key) == value, key


def test_preset_overrides_win():
    config = BacktestConfig.preset("backtrader", commission=0.002, fill_timing="same_close")
    assert (config.commission, config.fill_timing) == (0.002, "same_close")
    assert config.on_insufficient_cash == "reject"


def test_presets_differ_where_the_frameworks_do():
    vbt, bt, zl = (BacktestConfig.preset(n) for n in ("vectorbt", "backtrader", "zipline"))
    assert (vbt.fill_timing, bt.fill_timing, zl.fill_timing) == (
        "same_close",
        "next_open",
        "next_close",
    )


def test_unknown_preset_names_the_nearest():
    with pytest.raises(ConfigError, match="unknown preset 'vectorbtpro'; did you mean 'vectorbt'"):
        BacktestConfig.preset("vectorbtpro")


def test_misspelled_override_in_a_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="did you mean 'commission'"):
        BacktestConfig.preset("zipline", comission=0.0)


def _documented_presets() -> dict[str, dict[str, object]]:
    """The knob x preset tables of docs/presets.md (each headed "| Knob | `preset` | ..."),
    cells that name a value only."""
    from pathlib import Path

    from ml4t.backtest.execution import commission, slippage

    text = (Path(__file__).parents[2] / "docs" / "presets.md").read_text()
    namespace = {**vars(commission), **vars(slippage)}
    table: dict[str, dict[str, object]] = {}
    columns: list[str] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            columns = []  # a table ends at the first line that is not a row
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "Knob":
            columns = [c.strip("`") for c in cells[1:] if re.fullmatch(r"`\w+`", c)]
            continue
        if not columns or not re.fullmatch(r"`\w+`", cells[0]):
            continue
        knob = cells[0].strip("`")
        for name, cell in zip(columns, cells[1 : 1 + len(columns)], strict=True):
            values = re.findall(r"`([^`]+)`", cell)
            if not cell.startswith("`"):
                continue  # "n/a", "(unused)", "no equivalent ...": no value to compare
            table.setdefault(name, {})[knob] = eval(values[0], namespace)
            for extra in values[1:]:
                key, _, value = extra.partition("=")
                if value and key in BacktestConfig.__dataclass_fields__:
                    table[name][key] = eval(value, namespace)
    return table


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_docs_table_matches_what_each_preset_sets(name):
    config = BacktestConfig.preset(name)
    documented = _documented_presets().get(name)
    assert documented, "docs/presets.md has no table rows"
    for knob, value in documented.items():
        assert getattr(config, knob) == value, f"{name}: {knob}"


def test_unknown_new_preset_names_the_nearest():
    with pytest.raises(
        ConfigError, match="unknown preset 'backtesting'; did you mean 'backtesting_py'"
    ):
        BacktestConfig.preset("backtesting")


@pytest.mark.parametrize(
    ("name", "peer"),
    [
        ("vectorbt_next_open", "vectorbt"),
        ("backtrader_cheat_on_open", "backtrader"),
    ],
)
def test_a_next_open_preset_fills_at_the_open_and_sizes_there(name, peer):
    # The look-ahead-free set-up of a peer whose default fills at the close (VectorBT) or sizes
    # at the decision close (Backtrader): both fill at the next open and size at that open.
    config = BacktestConfig.preset(name)
    assert (config.fill_timing, config.sizing_price) == ("next_open", "fill")
    assert config.fractional_shares == BacktestConfig.preset(peer).fractional_shares


def test_backtesting_py_preset_checks_brackets_from_the_entry_bar_and_rejects_unaffordable():
    # backtesting.py reprocesses sl/tp on the entry bar (_Broker._process_orders) and cancels
    # an order the margin cannot cover ("Broker canceled the order due to insufficient margin").
    config = BacktestConfig.preset("backtesting_py")
    assert config.stops_start_on_entry_bar
    assert config.on_insufficient_cash == "reject"
    assert (config.account, config.initial_margin) == ("margin", 1.0)
