"""Position-rule state on tiny hand-made arrays: the best prices kept since entry."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest import BacktestConfig, Broker
from ml4t.backtest.kernels.rules import update_extremes
from ml4t.backtest.kernels.state import (
    A_POSITION,
    B_HELD,
    RF_EXTREME,
    RI_ENTRY_BAR,
    Bar,
    pack_bits,
)


@pytest.mark.parametrize("on_entry_bar", [False, True])
@pytest.mark.parametrize("basis", ["high_low", "close"])
def test_best_prices_move_for_the_held_assets_only_across_words(on_entry_bar, basis):
    """130 assets, positions at the words' edges: a long's best price rises to the bar's high
    (a short's falls to its low; the close with ``trail_basis="close"``), never the other
    way; a flat asset's, an asset without a bar's and (unless stops start on the entry bar)
    one entered on this bar's stay as they were. Checked against the rule applied to every
    asset in turn."""
    n, t = 130, 7
    rng = np.random.default_rng(11)
    config = BacktestConfig(trail_basis=basis, stops_on_entry_bar=on_entry_bar)
    state = Broker(np.array([f"A{i}" for i in range(n)]), config).kernel_state
    acc, rs, s = state.account, state.rules, state.settings
    positions = acc.assets[A_POSITION]
    held = [0, 1, 62, 63, 64, 65, 100, 127, 128, 129]
    positions[held] = [5.0, -3.0, 2.0, -1.0, 4.0, 7.0, -2.0, 1.0, -6.0, 3.0]
    acc.bits[B_HELD] = pack_bits(positions[None] != 0.0)[0]
    extreme, entry_bar = rs.floats[RF_EXTREME], rs.ints[RI_ENTRY_BAR]
    extreme[:] = rng.uniform(95.0, 105.0, n)  # flat assets' too: they must not move
    entry_bar[held] = 3
    entry_bar[[64, 129]] = t  # entered on this bar
    close = rng.uniform(95.0, 105.0, n)
    close[[62, 5]] = np.nan  # no bar
    high, low = close + rng.uniform(0.0, 5.0, n), close - rng.uniform(0.0, 5.0, n)
    nan = np.full(n, np.nan)
    bar = Bar(close.copy(), high, low, close, np.full(n, 1e6), nan, nan, nan, nan)

    expected = extreme.copy()
    for a in range(n):
        q = positions[a]
        if q == 0.0 or np.isnan(close[a]) or (not on_entry_bar and entry_bar[a] == t):
            continue
        best = close[a] if basis == "close" else (high[a] if q > 0.0 else low[a])
        expected[a] = max(expected[a], best) if q > 0.0 else min(expected[a], best)
    before = extreme.copy()
    update_extremes(t, bar, acc, rs, s)
    assert extreme.tolist() == expected.tolist()
    moved = {a for a in range(n) if extreme[a] != before[a]}
    assert moved <= set(held) - {62} and len(moved) >= 3  # some moved, each a held one
