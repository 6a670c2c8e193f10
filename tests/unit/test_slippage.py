"""Slippage models: fill prices worked out by hand, the kernel agreeing with the Python API."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from ml4t.backtest.errors import ConfigError
from ml4t.backtest.execution.slippage import (
    SLIPPAGE_FIXED_BPS,
    SLIPPAGE_LEAF_WIDTH,
    SLIPPAGE_NONE,
    SLIPPAGE_ORDER_TYPE,
    SLIPPAGE_PARAMS_WIDTH,
    SLIPPAGE_PER_SHARE,
    SLIPPAGE_PERCENT,
    SLIPPAGE_PYTHON,
    SLIPPAGE_SPREAD,
    SLIPPAGE_VOLUME_SHARE,
    BarQuote,
    CallableSlippage,
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
    check_slippage_fields,
    slippage_kernel,
    slippage_table,
)
from ml4t.backtest.kernels.records import LIMIT, MARKET, STOP, STOP_LIMIT, TRAILING_STOP

NAN = math.nan
QUOTE = BarQuote()


def _kernel(model: SlippageModel, price: float, qty: float, order_type: int, q: BarQuote) -> float:
    params = model.to_params()
    fill = slippage_kernel(
        params, price, qty, order_type, q.volume, q.bid, q.ask, q.spread, q.volatility
    )
    return float(fill)


# ---------------------------------------------------------------------------------------------
# Each model, a buy and a sell.
# ---------------------------------------------------------------------------------------------


def test_no_slippage_fills_buy_and_sell_at_the_price() -> None:
    assert NoSlippage().fill_price(100.0, 10) == 100.0
    assert NoSlippage().fill_price(100.0, -10) == 100.0


def test_percent_slippage_buy_pays_rate_above_price() -> None:
    # 0.1% of 100 is 0.10
    assert PercentSlippage(0.001).fill_price(100.0, 10) == pytest.approx(100.10)


def test_percent_slippage_sell_receives_rate_below_price() -> None:
    assert PercentSlippage(0.001).fill_price(100.0, -10) == pytest.approx(99.90)


def test_percent_slippage_matches_the_flat_rate_step_bit_for_bit() -> None:
    # BacktestConfig(slippage=s) filled buys at price * (1 + s): the same float expression.
    assert PercentSlippage(0.0007).fill_price(123.45, 3) == 123.45 * (1.0 + 0.0007)
    assert PercentSlippage(0.0007).fill_price(123.45, -3) == 123.45 * (1.0 - 0.0007)


def test_fixed_bps_slippage_buy_pays_bps_of_price() -> None:
    # 25 bps of 40 is 40 * 0.0025 = 0.10
    assert FixedBpsSlippage(25).fill_price(40.0, 100) == pytest.approx(40.10)


def test_fixed_bps_slippage_sell_receives_bps_below_price() -> None:
    assert FixedBpsSlippage(25).fill_price(40.0, -100) == pytest.approx(39.90)


def test_per_share_slippage_buy_pays_amount_above_price() -> None:
    assert PerShareSlippage(0.02).fill_price(50.0, 100) == pytest.approx(50.02)


def test_per_share_slippage_sell_receives_amount_below_price() -> None:
    assert PerShareSlippage(0.02).fill_price(50.0, -100) == pytest.approx(49.98)


def test_per_share_slippage_sell_never_fills_below_zero() -> None:
    assert PerShareSlippage(0.05).fill_price(0.03, -100) == 0.0


def test_zero_quantity_fills_at_the_price() -> None:
    assert PercentSlippage(0.01).fill_price(100.0, 0.0) == 100.0


# ---------------------------------------------------------------------------------------------
# Spread: a constant given wins; else a named column; else bid/ask, then the spread column.
# ---------------------------------------------------------------------------------------------


def test_spread_slippage_buy_pays_half_the_bid_ask_spread() -> None:
    quote = BarQuote(bid=99.90, ask=100.10)  # spread 0.20, half 0.10
    assert SpreadSlippage().fill_price(100.0, 10, bar=quote) == pytest.approx(100.10)


def test_spread_slippage_sell_receives_half_the_bid_ask_spread_less() -> None:
    quote = BarQuote(bid=99.90, ask=100.10)
    assert SpreadSlippage().fill_price(100.0, -10, bar=quote) == pytest.approx(99.90)


def test_spread_slippage_uses_the_spread_column_without_bid_ask() -> None:
    quote = BarQuote(spread=0.30)  # half 0.15
    assert SpreadSlippage().fill_price(100.0, 10, bar=quote) == pytest.approx(100.15)


def test_spread_slippage_uses_the_constant_spread_without_columns() -> None:
    # constant spread 0.50 in price units, half 0.25
    assert SpreadSlippage(spread=0.50).fill_price(20.0, -5) == pytest.approx(19.75)


def test_spread_slippage_uses_spread_bps_of_price_without_columns() -> None:
    # 20 bps of 50 is 0.10 of spread, half 0.05
    assert SpreadSlippage(spread_bps=20).fill_price(50.0, -5) == pytest.approx(49.95)


def test_spread_slippage_constant_beats_bid_ask_and_spread_column() -> None:
    # The user's constant 1.0 (half 0.5) wins over the quotes' 0.2 and the column's 0.6.
    quote = BarQuote(bid=99.9, ask=100.1, spread=0.6)
    assert SpreadSlippage(spread=1.0).fill_price(100.0, 1, bar=quote) == pytest.approx(100.5)


def test_spread_slippage_bps_ignores_a_negative_spread_column() -> None:
    # A "spread" column of -5 (a pairs z-score, say) must not cancel 10 bps: half of 0.10.
    quote = BarQuote(spread=-5.0)
    assert SpreadSlippage(spread_bps=10).fill_price(100.0, 1, bar=quote) == pytest.approx(100.05)


def test_spread_slippage_named_column_is_read_instead_of_bid_ask() -> None:
    # bar.spread holds the named column (0.6, half 0.3); the quotes' 0.2 is not used.
    quote = BarQuote(bid=99.9, ask=100.1, spread=0.6)
    model = SpreadSlippage(spread="spread_est")
    assert model.fill_price(100.0, 1, bar=quote) == pytest.approx(100.3)
    assert model.required_fields() == (("spread_est",),)
    assert model.quote_columns() == {"spread": "spread_est"}


def test_spread_slippage_needs_both_bid_and_ask_to_use_quotes() -> None:
    quote = BarQuote(bid=99.0, spread=1.0)  # no ask: falls through to the column, half of 1.0
    assert SpreadSlippage().fill_price(100.0, 1, bar=quote) == pytest.approx(100.5)


def test_spread_slippage_without_any_source_cannot_price_the_fill() -> None:
    assert math.isnan(SpreadSlippage().fill_price(100.0, 1))


def test_spread_slippage_crossed_quote_costs_nothing() -> None:
    quote = BarQuote(bid=100.2, ask=100.0)  # bad data: ask below bid
    assert SpreadSlippage().fill_price(100.0, 1, bar=quote) == 100.0
    assert SpreadSlippage().fill_price(100.0, -1, bar=quote) == 100.0


# ---------------------------------------------------------------------------------------------
# Volume share: impact * sigma * participation ** exponent.
# ---------------------------------------------------------------------------------------------


def test_volume_share_buy_pays_square_root_impact() -> None:
    # participation 10,000 / 1,000,000 = 0.01, sqrt = 0.1; fraction 0.1 * 0.02 * 0.1 = 0.0002
    model = VolumeShareSlippage(impact=0.1, volatility=0.02)
    assert model.fill_price(100.0, 10_000, bar=BarQuote(volume=1e6)) == pytest.approx(100.02)


def test_volume_share_sell_receives_square_root_impact_less() -> None:
    model = VolumeShareSlippage(impact=0.1, volatility=0.02)
    assert model.fill_price(100.0, -10_000, bar=BarQuote(volume=1e6)) == pytest.approx(99.98)


def test_volume_share_constant_beats_volatility_column() -> None:
    # participation 0.04, sqrt = 0.2; the constant 0.02, not the column's 30 (percent units):
    # fraction 0.1 * 0.02 * 0.2 = 0.0004
    model = VolumeShareSlippage(impact=0.1, volatility=0.02)
    quote = BarQuote(volume=1e6, volatility=30.0)
    assert model.fill_price(50.0, 40_000, bar=quote) == pytest.approx(50.0 * 1.0004)


def test_volume_share_named_column_is_read_from_the_volatility_slot() -> None:
    # fraction 0.1 * 0.03 * sqrt(0.04) = 0.0006
    model = VolumeShareSlippage(impact=0.1, volatility="vol_20d")
    quote = BarQuote(volume=1e6, volatility=0.03)
    assert model.fill_price(50.0, 40_000, bar=quote) == pytest.approx(50.0 * 1.0006)
    assert model.required_fields() == (("vol_20d", "volume"),)
    assert model.quote_columns() == {"volatility": "vol_20d"}


def test_a_combined_model_cannot_read_one_field_from_two_columns() -> None:
    with pytest.raises(ConfigError, match="'volatility' from two columns, 'vol_5d' and 'vol_20d'"):
        CombinedSlippage(
            VolumeShareSlippage(volatility="vol_5d"), VolumeShareSlippage(volatility="vol_20d")
        )


def test_volume_share_exponent_two_with_unit_volatility_is_zipline_volume_share() -> None:
    # Zipline: price + price * price_impact * volume_share ** 2 = 5 + 5 * 0.3 * 0.1**2 = 5.015
    model = VolumeShareSlippage(impact=0.3, exponent=2, volatility=1.0)
    assert model.fill_price(5.0, 10, bar=BarQuote(volume=100)) == pytest.approx(5.015)


def test_volume_share_zero_volume_cannot_fill() -> None:
    model = VolumeShareSlippage(volatility=0.02)
    assert math.isnan(model.fill_price(100.0, 10, bar=BarQuote(volume=0.0)))


def test_volume_share_missing_volume_cannot_fill() -> None:
    model = VolumeShareSlippage(volatility=0.02)
    assert math.isnan(model.fill_price(100.0, 10, bar=BarQuote()))


def test_volume_share_without_any_volatility_cannot_fill() -> None:
    model = VolumeShareSlippage()
    assert math.isnan(model.fill_price(100.0, 10, bar=BarQuote(volume=1e6)))


# ---------------------------------------------------------------------------------------------
# Order-type routing.
# ---------------------------------------------------------------------------------------------


def _routed() -> OrderTypeSlippage:
    return OrderTypeSlippage(market=PercentSlippage(0.001), stop=PercentSlippage(0.003))


def test_order_type_slippage_market_order_pays_market_model() -> None:
    assert _routed().fill_price(100.0, 1, order_type=MARKET) == pytest.approx(100.1)


def test_order_type_slippage_stop_order_pays_stop_model() -> None:
    assert _routed().fill_price(100.0, 1, order_type=STOP) == pytest.approx(100.3)


def test_order_type_slippage_trailing_stop_pays_stop_model() -> None:
    assert _routed().fill_price(100.0, -1, order_type=TRAILING_STOP) == pytest.approx(99.7)


def test_order_type_slippage_limit_orders_pay_none_by_default() -> None:
    assert _routed().fill_price(100.0, 1, order_type=LIMIT) == 100.0
    assert _routed().fill_price(100.0, -1, order_type=STOP_LIMIT) == 100.0


def test_order_type_slippage_stop_defaults_to_market_model() -> None:
    model = OrderTypeSlippage(market=0.002)
    assert model.fill_price(100.0, 1, order_type=STOP) == pytest.approx(100.2)


def test_order_type_slippage_limit_model_can_be_set() -> None:
    model = OrderTypeSlippage(market=0.002, limit=PerShareSlippage(0.01))
    assert model.fill_price(100.0, 1, order_type=LIMIT) == pytest.approx(100.01)


def test_order_type_slippage_unknown_order_type_cannot_be_priced() -> None:
    assert math.isnan(_routed().fill_price(100.0, 1, order_type=99))


def test_order_type_slippage_params_hold_three_leaf_rows() -> None:
    params = _routed().to_params()
    w = SLIPPAGE_LEAF_WIDTH
    assert params[0] == SLIPPAGE_ORDER_TYPE
    assert list(params[w : w + 2]) == [SLIPPAGE_PERCENT, 0.001]  # market
    assert params[2 * w] == SLIPPAGE_NONE  # limit
    assert list(params[3 * w : 3 * w + 2]) == [SLIPPAGE_PERCENT, 0.003]  # stop


def test_order_type_slippage_with_a_function_runs_in_python_and_still_routes() -> None:
    model = OrderTypeSlippage(market=lambda p, q, t, bar: p + 0.05, stop=0.003)
    assert model.to_params()[0] == SLIPPAGE_PYTHON
    assert model.fill_price(100.0, 1, order_type=MARKET) == pytest.approx(100.05)
    assert model.fill_price(100.0, 1, order_type=STOP) == pytest.approx(100.3)


def test_order_type_slippage_rejects_a_nested_order_type_model() -> None:
    with pytest.raises(
        ConfigError,
        match=r"OrderTypeSlippage stop must be a single model .*, not OrderTypeSlippage\(",
    ):
        OrderTypeSlippage(market=0.001, stop=OrderTypeSlippage(market=0.002))


# ---------------------------------------------------------------------------------------------
# Python models: callables and user subclasses.
# ---------------------------------------------------------------------------------------------


def test_callable_slippage_passes_price_quantity_order_type_and_bar() -> None:
    seen = []

    def fn(price: float, quantity: float, order_type: int, bar: BarQuote) -> float:
        seen.append((price, quantity, order_type, bar.volume))
        return price + 0.01

    model = CallableSlippage(fn)
    assert model.fill_price(10.0, 5, order_type=LIMIT, bar=BarQuote(volume=7.0)) == 10.01
    assert seen == [(10.0, 5, LIMIT, 7.0)]


def test_callable_slippage_compiles_to_python_code_and_kernel_returns_nan() -> None:
    model = CallableSlippage(lambda p, q, t, bar: p)
    assert model.to_params()[0] == SLIPPAGE_PYTHON
    assert math.isnan(_kernel(model, 100.0, 1.0, MARKET, BarQuote()))


def test_callable_slippage_favourable_fill_raises_naming_the_side() -> None:
    model = CallableSlippage(lambda p, q, t, bar: p - 0.01)
    with pytest.raises(
        ConfigError, match=re.escape("for a buy of 10 at 100.0; slippage must be adverse")
    ):
        model.fill_price(100.0, 10)


def test_callable_slippage_with_wrong_signature_is_rejected_up_front() -> None:
    with pytest.raises(ConfigError, match=r"cannot be called as fn\(price, quantity"):
        CallableSlippage(lambda price, quantity: price)  # type: ignore[arg-type,misc]


def test_user_subclass_runs_in_python() -> None:
    class HalfCent(SlippageModel):
        def fill_price(
            self, price: float, quantity: float, *, order_type: int = MARKET, bar: BarQuote = QUOTE
        ) -> float:
            return price + 0.005 if quantity > 0 else price - 0.005

    assert HalfCent().to_params()[0] == SLIPPAGE_PYTHON
    assert HalfCent().fill_price(10.0, -1) == pytest.approx(9.995)


def test_subclass_overriding_a_builtin_fill_price_runs_in_python() -> None:
    # Its params would say "percent" while its fill_price says otherwise: Python must win.
    class Doubled(PercentSlippage):
        def fill_price(
            self, price: float, quantity: float, *, order_type: int = MARKET, bar: BarQuote = QUOTE
        ) -> float:
            return 2 * super().fill_price(price, quantity) - price

    assert Doubled(0.01).to_params()[0] == SLIPPAGE_PYTHON
    assert PercentSlippage(0.01).to_params()[0] == SLIPPAGE_PERCENT


# ---------------------------------------------------------------------------------------------
# Compiled representation.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "code"),
    [
        (NoSlippage(), SLIPPAGE_NONE),
        (PercentSlippage(0.001), SLIPPAGE_PERCENT),
        (FixedBpsSlippage(5), SLIPPAGE_FIXED_BPS),
        (PerShareSlippage(0.01), SLIPPAGE_PER_SHARE),
        (SpreadSlippage(spread_bps=5), SLIPPAGE_SPREAD),
        (VolumeShareSlippage(volatility=0.02), SLIPPAGE_VOLUME_SHARE),
        (OrderTypeSlippage(market=0.001), SLIPPAGE_ORDER_TYPE),
    ],
)
def test_builtin_params_row_has_fixed_width_and_model_code_first(
    model: SlippageModel, code: int
) -> None:
    params = model.to_params()
    assert params.shape == (SLIPPAGE_PARAMS_WIDTH,)
    assert params.dtype == np.float64
    assert params[0] == code


def test_to_params_returns_a_copy_the_caller_may_change() -> None:
    model = PercentSlippage(0.001)
    model.to_params()[1] = 0.5
    assert model.fill_price(100.0, 1) == pytest.approx(100.1)


def test_models_are_frozen() -> None:
    model = PercentSlippage(0.001)
    with pytest.raises(FrozenInstanceError):
        model.rate = 0.002  # type: ignore[misc]


_rates = st.floats(0.0, 0.5)
_leaf_models = st.one_of(
    st.just(NoSlippage()),
    st.builds(PercentSlippage, _rates),
    st.builds(FixedBpsSlippage, st.floats(0.0, 500.0)),
    st.builds(PerShareSlippage, st.floats(0.0, 5.0)),
    st.just(SpreadSlippage()),
    st.builds(SpreadSlippage, spread=st.floats(0.0, 5.0)),
    st.builds(SpreadSlippage, spread_bps=st.floats(0.0, 500.0)),
    st.builds(
        VolumeShareSlippage,
        impact=st.floats(0.0, 1.0),
        exponent=st.floats(0.1, 3.0),
        volatility=st.none() | st.floats(0.0, 0.2),
    ),
)
_models = _leaf_models | st.builds(
    OrderTypeSlippage, market=_leaf_models, stop=_leaf_models, limit=_leaf_models
)
_maybe_nan = st.just(NAN)


@st.composite
def _quotes(draw: st.DrawFn) -> BarQuote:
    bid = draw(_maybe_nan | st.floats(1.0, 1000.0))
    ask = draw(_maybe_nan | st.floats(0.0, 10.0).map(lambda w: bid + w))
    return BarQuote(
        volume=draw(_maybe_nan | st.floats(0.0, 1e8)),
        bid=bid,
        ask=ask,
        spread=draw(_maybe_nan | st.floats(0.0, 5.0)),
        volatility=draw(_maybe_nan | st.floats(0.0, 0.2)),
    )


_prices = st.floats(0.01, 10_000.0)
_quantities = st.floats(-1e6, 1e6).filter(lambda q: q != 0.0)
_order_types = st.sampled_from([MARKET, LIMIT, STOP, STOP_LIMIT, TRAILING_STOP])


@settings(max_examples=300, deadline=None)
@given(model=_models, price=_prices, qty=_quantities, order_type=_order_types, quote=_quotes())
def test_kernel_equals_fill_price_for_every_builtin(
    model: SlippageModel, price: float, qty: float, order_type: int, quote: BarQuote
) -> None:
    expected = model.fill_price(price, qty, order_type=order_type, bar=quote)
    got = _kernel(model, price, qty, order_type, quote)
    assert got == expected or (math.isnan(got) and math.isnan(expected))


@settings(max_examples=300, deadline=None)
@given(model=_models, price=_prices, qty=_quantities, order_type=_order_types, quote=_quotes())
def test_slippage_is_always_adverse(
    model: SlippageModel, price: float, qty: float, order_type: int, quote: BarQuote
) -> None:
    fill = model.fill_price(price, qty, order_type=order_type, bar=quote)
    if math.isnan(fill):
        return
    if qty > 0:
        assert fill >= price
    else:
        assert 0.0 <= fill <= price


@settings(max_examples=200, deadline=None)
@given(
    impact=st.floats(0.0, 1.0),
    exponent=st.floats(0.1, 3.0),
    small=st.floats(1.0, 1e5),
    extra=st.floats(0.0, 1e5),
)
def test_volume_share_buy_price_never_falls_as_quantity_grows(
    impact: float, exponent: float, small: float, extra: float
) -> None:
    # The broker may scale a buy down to what cash affords: a smaller buy must not cost more.
    model = VolumeShareSlippage(impact=impact, exponent=exponent, volatility=0.02)
    quote = BarQuote(volume=1e6)
    assert model.fill_price(100.0, small, bar=quote) <= model.fill_price(
        100.0, small + extra, bar=quote
    )


@njit
def _fill_all(
    table: np.ndarray, prices: np.ndarray, qty: np.ndarray, volume: np.ndarray
) -> np.ndarray:
    out = np.empty(prices.shape[0])
    for i in range(prices.shape[0]):
        out[i] = slippage_kernel(
            table[i], prices[i], qty[i], MARKET, volume[i], np.nan, np.nan, np.nan, np.nan
        )
    return out


def test_kernel_runs_from_compiled_code_over_a_table() -> None:
    table, models = slippage_table(
        0.001,
        ["A", "B", "C"],
        {"B": PerShareSlippage(0.05), "C": VolumeShareSlippage(impact=0.1, volatility=0.02)},
    )
    prices = np.array([100.0, 20.0, 100.0])
    qty = np.array([10.0, -10.0, 10_000.0])
    volume = np.array([1e6, 1e6, 1e6])
    # A: 100 * 1.001; B: 20 - 0.05; C: 100 * (1 + 0.1 * 0.02 * sqrt(0.01)) = 100.02
    np.testing.assert_allclose(_fill_all(table, prices, qty, volume), [100.1, 19.95, 100.02])
    for i, model in enumerate(models):
        assert _fill_all(table, prices, qty, volume)[i] == model.fill_price(
            prices[i], qty[i], bar=BarQuote(volume=volume[i])
        )


# ---------------------------------------------------------------------------------------------
# Per-asset table, specs, required fields.
# ---------------------------------------------------------------------------------------------


def test_slippage_table_uses_overrides_and_the_default_elsewhere() -> None:
    table, models = slippage_table(
        0.001, ["AAPL", "MSFT", "BTC"], {"BTC": FixedBpsSlippage(10), "MSFT": lambda p, q, t, b: p}
    )
    assert table.shape == (3, SLIPPAGE_PARAMS_WIDTH)
    assert list(table[:, 0]) == [SLIPPAGE_PERCENT, SLIPPAGE_PYTHON, SLIPPAGE_FIXED_BPS]
    assert table[0, 1] == 0.001
    assert table[2, 1] == 10.0
    assert models[0] == PercentSlippage(0.001)
    assert isinstance(models[1], CallableSlippage)
    assert models[2] == FixedBpsSlippage(10)


def test_slippage_table_unknown_asset_names_it() -> None:
    with pytest.raises(ConfigError, match="unknown asset 'ETH'; the feed's assets are 'AAPL'"):
        slippage_table(0.001, ["AAPL", "BTC"], {"ETH": 0.002})


def test_slippage_table_bad_override_names_the_asset() -> None:
    with pytest.raises(ConfigError, match="slippage for 'BTC' must be a SlippageModel"):
        slippage_table(0.001, ["AAPL", "BTC"], {"BTC": "ten bps"})  # type: ignore[dict-item]


def test_as_slippage_model_turns_a_rate_into_percent_slippage() -> None:
    assert as_slippage_model(0.001) == PercentSlippage(0.001)


def test_as_slippage_model_keeps_a_model_and_wraps_a_function() -> None:
    model = SpreadSlippage(spread=0.1)
    assert as_slippage_model(model) is model
    assert isinstance(as_slippage_model(lambda p, q, t, b: p), CallableSlippage)


@pytest.mark.parametrize("spec", [None, "0.001", True, [0.001]])
def test_as_slippage_model_rejects_other_values(spec: object) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"got {spec!r}")):
        as_slippage_model(spec)


def test_as_slippage_model_rejects_a_class_and_shows_how_to_instantiate() -> None:
    with pytest.raises(ConfigError, match=re.escape("not the class PercentSlippage")):
        as_slippage_model(PercentSlippage)


def test_required_fields_spread_needs_quotes_or_spread_column_without_constant() -> None:
    assert SpreadSlippage().required_fields() == (("ask", "bid"), ("spread",))
    assert SpreadSlippage(spread_bps=5).required_fields() == ()


def test_required_fields_volume_share_needs_volume_and_maybe_volatility() -> None:
    assert VolumeShareSlippage(volatility=0.02).required_fields() == (("volume",),)
    assert VolumeShareSlippage().required_fields() == (("volatility", "volume"),)


def test_required_fields_order_type_combines_its_children() -> None:
    model = OrderTypeSlippage(market=SpreadSlippage(), stop=VolumeShareSlippage(volatility=0.02))
    assert model.required_fields() == (("spread", "volume"), ("ask", "bid", "volume"))


def test_check_slippage_fields_accepts_any_satisfied_alternative() -> None:
    check_slippage_fields(SpreadSlippage(), ["open", "close", "spread"])
    check_slippage_fields(PercentSlippage(0.001), [])


def test_check_slippage_fields_names_the_missing_columns_and_asset() -> None:
    with pytest.raises(ConfigError, match=r"for asset 'BTC' needs the feed columns \(ask, bid\)"):
        check_slippage_fields(SpreadSlippage(), ["close", "bid"], asset="BTC")


# ---------------------------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------------------------


_INVALID: dict[str, tuple[Callable[[], object], str]] = {
    "negative-rate": (
        lambda: PercentSlippage(-0.001),
        "PercentSlippage rate must be a finite number in [0, 1)",
    ),
    "rate-one": (
        lambda: PercentSlippage(1.0),
        "PercentSlippage rate must be a finite number in [0, 1)",
    ),
    "nan-rate": (lambda: PercentSlippage(NAN), "PercentSlippage rate must be a finite number"),
    "bool-rate": (lambda: PercentSlippage(True), "PercentSlippage rate must be a finite number"),
    "string-rate": (
        lambda: PercentSlippage("0.1"),  # type: ignore[arg-type]
        "PercentSlippage rate must be a finite number",
    ),
    "negative-bps": (
        lambda: FixedBpsSlippage(-1),
        "FixedBpsSlippage bps must be a finite number in [0, 10000)",
    ),
    "negative-amount": (
        lambda: PerShareSlippage(-0.01),
        "PerShareSlippage amount must be a finite number in [0,",
    ),
    "negative-spread": (
        lambda: SpreadSlippage(spread=-0.1),
        "SpreadSlippage spread must be a finite number in [0,",
    ),
    "negative-spread-bps": (
        lambda: SpreadSlippage(spread_bps=-5),
        "SpreadSlippage spread_bps must be",
    ),
    "both-spreads": (
        lambda: SpreadSlippage(spread=0.1, spread_bps=5),
        "spread or spread_bps, not both",
    ),
    "negative-impact": (
        lambda: VolumeShareSlippage(impact=-0.1),
        "VolumeShareSlippage impact must be",
    ),
    "zero-exponent": (
        lambda: VolumeShareSlippage(exponent=0),
        "VolumeShareSlippage exponent must be a finite number in (0,",
    ),
    "negative-exponent": (
        lambda: VolumeShareSlippage(exponent=-1),
        "VolumeShareSlippage exponent must be",
    ),
    "negative-volatility": (
        lambda: VolumeShareSlippage(volatility=-0.2),
        "VolumeShareSlippage volatility must be",
    ),
    "non-callable": (
        lambda: CallableSlippage(42),  # type: ignore[arg-type]
        "CallableSlippage fn must be a function",
    ),
}


@pytest.mark.parametrize("case", list(_INVALID))
def test_invalid_parameters_raise_config_error_naming_them(case: str) -> None:
    build, message = _INVALID[case]
    with pytest.raises(ConfigError, match=re.escape(message)):
        build()


def test_invalid_parameter_message_shows_the_bad_value() -> None:
    with pytest.raises(ConfigError, match=re.escape("got -0.25")):
        VolumeShareSlippage(exponent=-0.25)


# ---- CombinedSlippage ---------------------------------------------------------------------------


def test_combined_adds_a_half_spread_and_square_root_impact():
    # Half of the 0.10 quoted spread is 0.05; impact 0.1 x 2% x sqrt(100 / 10,000) = 0.02%
    # of 100 is 0.02. A buy pays both, a sell gets both less.
    model = CombinedSlippage(SpreadSlippage(), VolumeShareSlippage(impact=0.1, volatility=0.02))
    quote = BarQuote(volume=10_000.0, bid=99.95, ask=100.05)
    assert model.fill_price(100.0, 100, bar=quote) == pytest.approx(100.07, abs=1e-12)
    assert model.fill_price(100.0, -100, bar=quote) == pytest.approx(99.93, abs=1e-12)
    assert model.required_fields() == (("spread", "volume"), ("ask", "bid", "volume"))


def test_combined_cannot_price_a_bar_one_part_cannot():
    model = CombinedSlippage(FixedBpsSlippage(5), VolumeShareSlippage(volatility=0.02))
    assert math.isnan(model.fill_price(100.0, 10, bar=BarQuote(volume=0.0)))


def test_combined_with_a_function_runs_in_python_and_agrees():
    def tick(price, quantity, order_type, bar):
        return price + 0.01 if quantity > 0 else price - 0.01

    model = CombinedSlippage(FixedBpsSlippage(10), tick)
    assert model.to_params()[0] == SLIPPAGE_PYTHON
    assert model.fill_price(50.0, 1) == pytest.approx(50.0 * 1.001 + 0.01)
    assert model.fill_price(50.0, -1) == pytest.approx(50.0 * 0.999 - 0.01)


def test_combined_sell_never_fills_below_zero():
    model = CombinedSlippage(PerShareSlippage(0.6), PerShareSlippage(0.6))
    assert model.fill_price(1.0, -5) == 0.0


@pytest.mark.parametrize(
    "parts, match",
    [
        ((), "1 to 3 models"),
        ((0.001,) * 4, "1 to 3 models"),
        ((OrderTypeSlippage(market=0.001),), r"part 0 .*, not OrderTypeSlippage\("),
        ((CombinedSlippage(0.001),), r"part 0 .*, not CombinedSlippage\("),
    ],
)
def test_combined_refuses_bad_parts(parts, match):
    with pytest.raises(ConfigError, match=match):
        CombinedSlippage(*parts)


def test_order_type_refuses_a_combined_child():
    with pytest.raises(
        ConfigError, match=r"market must be a single model .*, not CombinedSlippage\("
    ):
        OrderTypeSlippage(market=CombinedSlippage(0.001, FixedBpsSlippage(1)))
