"""Whether and where a bar meets a price level, written once for orders and position rules.

A level is met from above (a buy limit, a sell stop, a long's stop loss, a short's take profit:
the price falls to it) or from below (the mirror cases). The bar meets it at its open when it
opened already at or past the level (a gap: the fill is the open, not the level), else at the
level when its range reaches it. ``kernels.step`` prices limit and stop orders with this, and
``kernels.rules`` finds which position rules a bar triggers with it, so the two cannot differ.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .jit import folded, leaf

LEVEL_MISSED: Final = 0
LEVEL_GAPPED: Final = 1  # the open was already at or past the level
LEVEL_TOUCHED: Final = 2  # the bar's range reached it after the open


@leaf
def level_touch(from_above: bool, level: float, o: float, h: float, lo: float) -> int:
    """How the bar ``o, h, lo`` meets ``level``, met by a falling price when ``from_above``."""
    if from_above:
        if o <= level:
            return LEVEL_GAPPED
        return LEVEL_TOUCHED if lo <= level else LEVEL_MISSED
    if o >= level:
        return LEVEL_GAPPED
    return LEVEL_TOUCHED if h >= level else LEVEL_MISSED


@leaf
def level_price(from_above: bool, level: float, o: float, h: float, lo: float) -> float:
    """The price at which the bar meets ``level``: the open on a gap, else the level; NaN if
    the bar never reaches it."""
    touch = level_touch(from_above, level, o, h, lo)
    if touch == LEVEL_GAPPED:
        return o
    if touch == LEVEL_TOUCHED:
        return level
    return np.nan


@folded
def limit_price_on_bar(buy: bool, limit: float, o: float, h: float, lo: float) -> float:
    """Price a limit order gets on a bar, NaN if the bar never reaches it: a buy limit is met
    by a falling price, a sell limit by a rising one."""
    return level_price(buy, limit, o, h, lo)


@folded
def stop_price_on_bar(buy: bool, stop: float, o: float, h: float, lo: float) -> float:
    """Price a stop order gets on a bar (the open when it gaps through), NaN if not touched:
    a buy stop is met by a rising price, a sell stop by a falling one."""
    return level_price(not buy, stop, o, h, lo)
