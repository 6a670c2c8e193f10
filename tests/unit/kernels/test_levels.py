"""Where a bar meets a price level: the one test behind stop and limit fills and rule exits."""

from __future__ import annotations

import math
from itertools import product

import numpy as np

from ml4t.backtest.kernels.levels import (
    LEVEL_GAPPED,
    LEVEL_MISSED,
    LEVEL_TOUCHED,
    level_touch,
    limit_price_on_bar,
    stop_price_on_bar,
)
from ml4t.backtest.kernels.rules import _hit

# One bar: open 100, high 104, low 96.
OP, HI, LO = 100.0, 104.0, 96.0


def test_level_touch_from_above_gaps_touches_or_misses():
    assert level_touch(True, 101.0, OP, HI, LO) == LEVEL_GAPPED  # opened below it
    assert level_touch(True, 97.0, OP, HI, LO) == LEVEL_TOUCHED  # low 96 reaches it
    assert level_touch(True, 95.0, OP, HI, LO) == LEVEL_MISSED


def test_level_touch_from_below_gaps_touches_or_misses():
    assert level_touch(False, 99.0, OP, HI, LO) == LEVEL_GAPPED
    assert level_touch(False, 103.0, OP, HI, LO) == LEVEL_TOUCHED
    assert level_touch(False, 105.0, OP, HI, LO) == LEVEL_MISSED


def test_buy_limit_fills_at_the_open_below_it_else_at_the_limit():
    assert limit_price_on_bar(True, 101.0, OP, HI, LO) == 100.0
    assert limit_price_on_bar(True, 97.0, OP, HI, LO) == 97.0
    assert math.isnan(limit_price_on_bar(True, 95.0, OP, HI, LO))


def test_sell_limit_fills_at_the_open_above_it_else_at_the_limit():
    assert limit_price_on_bar(False, 99.0, OP, HI, LO) == 100.0
    assert limit_price_on_bar(False, 103.0, OP, HI, LO) == 103.0
    assert math.isnan(limit_price_on_bar(False, 105.0, OP, HI, LO))


def test_buy_stop_gapped_through_fills_at_the_open_else_at_the_stop():
    assert stop_price_on_bar(True, 99.0, OP, HI, LO) == 100.0
    assert stop_price_on_bar(True, 103.0, OP, HI, LO) == 103.0
    assert math.isnan(stop_price_on_bar(True, 105.0, OP, HI, LO))


def test_sell_stop_gapped_through_fills_at_the_open_else_at_the_stop():
    assert stop_price_on_bar(False, 101.0, OP, HI, LO) == 100.0
    assert stop_price_on_bar(False, 97.0, OP, HI, LO) == 97.0
    assert math.isnan(stop_price_on_bar(False, 95.0, OP, HI, LO))


def test_a_position_rule_triggers_exactly_where_its_exit_order_would_fill():
    # A long's stop loss exits by a sell stop, its take profit by a sell limit; a short's by
    # a buy stop and a buy limit. Rule hits and order fills must agree on every level.
    for level, long, protective in product(
        np.arange(94.0, 106.5, 0.5), (True, False), (True, False)
    ):
        hit, when = _hit(protective, long, level, OP, HI, LO, 1.0, 2.0)
        buy = not long
        price = (
            stop_price_on_bar(buy, level, OP, HI, LO)
            if protective
            else limit_price_on_bar(buy, level, OP, HI, LO)
        )
        assert hit == (not math.isnan(price)), (level, long, protective)
        if hit:
            assert (when == 0.0) == (price == OP), (level, long, protective)
