"""Parity presets: named peer defaults, overridable, and a clear error for unknown names."""

from __future__ import annotations

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
