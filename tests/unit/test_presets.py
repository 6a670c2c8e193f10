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
    """The knob x framework table of docs/presets.md, cells that name a value only."""
    from pathlib import Path

    from ml4t.backtest.execution import commission, slippage

    text = (Path(__file__).parents[2] / "docs" / "presets.md").read_text()
    namespace = {**vars(commission), **vars(slippage)}
    frameworks = ("vectorbt", "backtrader", "zipline")
    table: dict[str, dict[str, object]] = {name: {} for name in frameworks}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not re.fullmatch(r"`\w+`", cells[0]):
            continue
        knob = cells[0].strip("`")
        for name, cell in zip(frameworks, cells[1:4], strict=True):
            values = re.findall(r"`([^`]+)`", cell)
            if not cell.startswith("`"):
                continue  # "n/a", "(unused)", "no equivalent ...": no value to compare
            table[name][knob] = eval(values[0], namespace)
            for extra in values[1:]:
                key, _, value = extra.partition("=")
                if value and key in BacktestConfig.__dataclass_fields__:
                    table[name][key] = eval(value, namespace)
    return table


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_docs_table_matches_what_each_preset_sets(name):
    config = BacktestConfig.preset(name)
    documented = _documented_presets()[name]
    assert documented, "docs/presets.md has no table rows"
    for knob, value in documented.items():
        assert getattr(config, knob) == value, f"{name}: {knob}"
