"""Commission models: each fee worked out by hand from the broker's published schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml4t.backtest.errors import ConfigError
from ml4t.backtest.execution.commission import (
    COMMISSION_FIXED,
    COMMISSION_PER_SHARE,
    COMMISSION_PERCENT,
    COMMISSION_PYTHON,
    COMMISSION_TIERED_NOTIONAL,
    COMMISSION_TIERED_VOLUME,
    MAX_TIERS,
    N_COMMISSION_PARAMS,
    CallableCommission,
    CommissionModel,
    FixedCommission,
    PercentCommission,
    PerShareCommission,
    TieredCommission,
    affordable_quantity,
    as_commission_model,
    commission_kernel,
    commission_table,
)

# IB "fixed" US stocks: USD 0.005/share, min USD 1.00 per order, max 1% of trade value.
IB_FIXED = PerShareCommission(0.005, minimum=1.0, maximum_pct=0.01)
# IB "tiered" US stocks by monthly share volume, min USD 0.35, max 1% of trade value.
IB_TIERS = [
    (0, 0.0035),
    (300_000, 0.002),
    (3_000_000, 0.0015),
    (20_000_000, 0.001),
    (100_000_000, 0.0005),
]
IB_TIERED = TieredCommission(IB_TIERS, minimum=0.35, maximum_pct=0.01)
NOTIONAL_TIERS = [(0, 0.001), (100_000, 0.0008)]
NOTIONAL_TIERED = TieredCommission(NOTIONAL_TIERS, basis="notional")

BUILT_INS: list[CommissionModel] = [
    PercentCommission(0.001),
    PercentCommission(0.0),
    PerShareCommission(0.005),
    IB_FIXED,
    FixedCommission(4.95),
    IB_TIERED,
    NOTIONAL_TIERED,
    TieredCommission(NOTIONAL_TIERS, basis="notional", minimum=5.0, maximum_pct=0.0005),
]


# --- percent ---------------------------------------------------------------------------------


def test_percent_charges_rate_times_notional() -> None:
    # 100 * 50.25 = 5025 notional; 10 bps of it is 5.025.
    assert PercentCommission(0.001).commission(100, 50.25) == pytest.approx(5.025)


def test_percent_ignores_monthly_volume() -> None:
    model = PercentCommission(0.001)
    assert model.commission(100, 50.25, monthly_volume=1e9) == model.commission(100, 50.25)


# --- per share -------------------------------------------------------------------------------


def test_per_share_minimum_binds_on_small_order() -> None:
    # 100 * 0.005 = 0.50 < 1.00 minimum; cap is 1% of 5000 = 50.
    assert IB_FIXED.commission(100, 50.0) == pytest.approx(1.0)


def test_per_share_cap_binds_on_penny_stock() -> None:
    # 1000 * 0.005 = 5.00 > cap 1% of (1000 * 0.30 = 300) = 3.00.
    assert IB_FIXED.commission(1000, 0.30) == pytest.approx(3.0)


def test_per_share_neither_minimum_nor_cap_binds() -> None:
    # 1000 * 0.005 = 5.00, between the 1.00 minimum and the cap 1% of 50,000 = 500.
    assert IB_FIXED.commission(1000, 50.0) == pytest.approx(5.0)


def test_per_share_cap_wins_when_minimum_exceeds_it() -> None:
    # 50 * 0.005 = 0.25 -> minimum 1.00, but the cap is 1% of (50 * 1.00) = 0.50: IB charges 0.50.
    assert IB_FIXED.commission(50, 1.0) == pytest.approx(0.5)


def test_per_share_without_cap_charges_full_rate() -> None:
    assert PerShareCommission(0.005).commission(1000, 0.30) == pytest.approx(5.0)


def test_per_share_minimum_and_cap_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        PerShareCommission(0.005, 1.0)  # type: ignore[call-arg]


def test_zero_quantity_costs_nothing_even_with_minimum() -> None:
    assert IB_FIXED.commission(0, 50.0) == 0.0
    assert FixedCommission(4.95).commission(0, 50.0) == 0.0


def test_negative_quantity_is_charged_as_its_absolute_value() -> None:
    assert IB_FIXED.commission(-1000, 50.0) == IB_FIXED.commission(1000, 50.0)


# --- fixed -----------------------------------------------------------------------------------


def test_fixed_charges_amount_whatever_the_size() -> None:
    model = FixedCommission(4.95)
    assert model.commission(1, 10.0) == 4.95
    assert model.commission(100_000, 500.0) == 4.95


# --- tiered by monthly volume ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("monthly_volume", "expected"),
    [
        (0, 1000 * 0.0035),  # 3.50
        (299_999, 1000 * 0.0035),  # fill crosses 300,000: one rate, the tier reached before it
        (300_000, 1000 * 0.002),  # the 300,001st share is the first at 0.002
        (2_999_999, 1000 * 0.002),
        (3_000_000, 1000 * 0.0015),
        (20_000_000, 1000 * 0.001),
        (150_000_000, 1000 * 0.0005),
    ],
)
def test_tiered_volume_rate_follows_months_volume_before_fill(
    monthly_volume: float, expected: float
) -> None:
    # 1000 shares at 20.00: cap 1% of 20,000 = 200 and minimum 0.35 never bind here.
    assert IB_TIERED.commission(1000, 20.0, monthly_volume=monthly_volume) == pytest.approx(
        expected
    )


def test_tiered_volume_minimum_binds_on_small_fill() -> None:
    # 50 * 0.0035 = 0.175 < 0.35 minimum.
    assert IB_TIERED.commission(50, 20.0) == pytest.approx(0.35)


def test_tiered_volume_cap_binds_on_penny_stock() -> None:
    # 10,000 * 0.0035 = 35 > cap 1% of (10,000 * 0.10 = 1,000) = 10.
    assert IB_TIERED.commission(10_000, 0.10) == pytest.approx(10.0)


def test_tiered_stores_tiers_as_tuple_of_floats() -> None:
    tiers = [[0, 0.001], [100_000, 0.0008]]
    model = TieredCommission(tiers, basis="notional")  # type: ignore[arg-type]
    tiers.append([200_000, 0.0005])  # the model must not see later edits
    assert model.tiers == ((0.0, 0.001), (100_000.0, 0.0008))


# --- tiered by notional ----------------------------------------------------------------------


def test_tiered_notional_below_first_threshold() -> None:
    # 1000 * 50 = 50,000 notional, first band: 0.1% -> 50.
    assert NOTIONAL_TIERED.commission(1000, 50.0) == pytest.approx(50.0)


def test_tiered_notional_at_threshold_uses_next_band() -> None:
    # 2000 * 50 = 100,000 notional, exactly the threshold: 0.08% -> 80.
    assert NOTIONAL_TIERED.commission(2000, 50.0) == pytest.approx(80.0)


def test_tiered_notional_applies_band_rate_to_whole_notional() -> None:
    # 3000 * 50 = 150,000 notional: 0.08% of all of it (slab, not marginal) -> 120.
    assert NOTIONAL_TIERED.commission(3000, 50.0) == pytest.approx(120.0)


def test_tiered_notional_ignores_monthly_volume() -> None:
    assert NOTIONAL_TIERED.commission(1000, 50.0, monthly_volume=1e9) == pytest.approx(50.0)


# --- callable --------------------------------------------------------------------------------


def test_callable_with_two_arguments() -> None:
    model = CallableCommission(lambda q, p: max(1.0, 0.0005 * q * p))
    # 100 * 40 * 0.0005 = 2.0 > 1.0.
    assert model.commission(100, 40.0) == pytest.approx(2.0)


def test_callable_with_three_arguments_receives_monthly_volume() -> None:
    def fee(quantity: float, price: float, monthly_volume: float) -> float:
        return quantity * (0.001 if monthly_volume >= 1_000 else 0.002)

    model = CallableCommission(fee)
    assert model.commission(100, 10.0, monthly_volume=0) == pytest.approx(0.2)
    assert model.commission(100, 10.0, monthly_volume=5_000) == pytest.approx(0.1)


def test_callable_with_var_args_receives_monthly_volume() -> None:
    model = CallableCommission(lambda *args: float(args[2]))
    assert model.commission(100, 10.0, monthly_volume=7.0) == 7.0


def test_callable_compiles_to_python_code_row() -> None:
    row = CallableCommission(lambda q, p: 1.0).to_params()
    assert row.shape == (N_COMMISSION_PARAMS,)
    assert row[0] == COMMISSION_PYTHON
    assert math.isnan(commission_kernel(row, 100.0, 10.0, 0.0))


def test_callable_returning_negative_fee_raises_naming_function() -> None:
    def rebate(quantity: float, price: float) -> float:
        return -1.0

    with pytest.raises(ConfigError, match=r"rebate returned -1\.0"):
        CallableCommission(rebate).commission(100, 10.0)


def test_callable_not_callable_raises_naming_value() -> None:
    with pytest.raises(ConfigError, match=r"fn must be callable.*got 0\.5"):
        CallableCommission(0.5)  # type: ignore[arg-type]


def test_callable_with_one_argument_raises() -> None:
    with pytest.raises(ConfigError, match=r"must accept \(quantity, price\)"):
        CallableCommission(lambda q: 1.0)


# --- compiled representation -----------------------------------------------------------------


def _reference_fee(model: CommissionModel, q: float, p: float, mv: float) -> float:
    """The schedules written out independently of the kernel."""
    q = abs(q)
    if q == 0.0:
        return 0.0
    notional = q * p
    minimum, cap = 0.0, math.inf
    if isinstance(model, PercentCommission):
        fee = model.rate * notional
    elif isinstance(model, FixedCommission):
        fee = model.amount
    elif isinstance(model, PerShareCommission):
        fee = model.per_share * q
        minimum = model.minimum
        cap = math.inf if model.maximum_pct is None else model.maximum_pct * notional
    elif isinstance(model, TieredCommission):
        x = mv if model.basis == "monthly_volume" else notional
        rate = max((t for t in model.tiers if t[0] <= x), key=lambda t: t[0])[1]
        fee = rate * (q if model.basis == "monthly_volume" else notional)
        minimum = model.minimum
        cap = math.inf if model.maximum_pct is None else model.maximum_pct * notional
    else:
        raise AssertionError(model)
    return min(max(fee, minimum), cap)


@settings(deadline=None, max_examples=300)
@given(
    st.sampled_from(BUILT_INS),
    st.floats(0.0, 1e7),
    st.floats(0.01, 1e5),
    st.floats(0.0, 2e8),
)
def test_kernel_equals_commission_and_reference_for_built_ins(
    model: CommissionModel, quantity: float, price: float, monthly_volume: float
) -> None:
    from_kernel = commission_kernel(model.to_params(), quantity, price, monthly_volume)
    from_method = model.commission(quantity, price, monthly_volume=monthly_volume)
    assert from_kernel == from_method
    assert from_method == pytest.approx(
        _reference_fee(model, quantity, price, monthly_volume), rel=1e-12, abs=1e-12
    )


@pytest.mark.parametrize(
    ("model", "code"),
    [
        (PercentCommission(0.001), COMMISSION_PERCENT),
        (IB_FIXED, COMMISSION_PER_SHARE),
        (FixedCommission(1.0), COMMISSION_FIXED),
        (IB_TIERED, COMMISSION_TIERED_VOLUME),
        (NOTIONAL_TIERED, COMMISSION_TIERED_NOTIONAL),
    ],
)
def test_built_in_params_row_starts_with_its_code(model: CommissionModel, code: int) -> None:
    row = model.to_params()
    assert row.shape == (N_COMMISSION_PARAMS,)
    assert row.dtype == np.float64
    assert row[0] == code


def test_per_share_params_row_layout() -> None:
    expected = np.zeros(N_COMMISSION_PARAMS)
    expected[:5] = [COMMISSION_PER_SHARE, 0.005, 1.0, 0.01, 0.0]
    np.testing.assert_array_equal(IB_FIXED.to_params(), expected)


def test_tiered_params_row_layout() -> None:
    row = NOTIONAL_TIERED.to_params()
    assert row[:5].tolist() == [COMMISSION_TIERED_NOTIONAL, 0.0, 0.0, math.inf, 2.0]
    assert row[5:9].tolist() == [0.0, 0.001, 100_000.0, 0.0008]
    assert not row[9:].any()


def test_to_params_returns_a_copy() -> None:
    model = PercentCommission(0.001)
    model.to_params()[1] = 0.5
    assert model.commission(100, 10.0) == pytest.approx(1.0)


def test_user_subclass_without_to_params_compiles_to_python_code() -> None:
    class HalfPenny(CommissionModel):
        def commission(
            self, quantity: float, price: float, *, monthly_volume: float = 0.0
        ) -> float:
            return 0.005 * quantity

    assert HalfPenny().to_params()[0] == COMMISSION_PYTHON


def test_subclass_of_built_in_overriding_commission_compiles_to_python_code() -> None:
    class Doubled(PercentCommission):
        def commission(
            self, quantity: float, price: float, *, monthly_volume: float = 0.0
        ) -> float:
            return 2.0 * super().commission(quantity, price, monthly_volume=monthly_volume)

    model = Doubled(0.001)
    assert model.to_params()[0] == COMMISSION_PYTHON
    assert model.commission(100, 10.0) == pytest.approx(2.0)


def test_models_are_frozen_and_hashable() -> None:
    with pytest.raises(AttributeError):
        IB_FIXED.minimum = 0.0  # type: ignore[misc]
    assert TieredCommission(IB_TIERS, minimum=0.35, maximum_pct=0.01) == IB_TIERED
    assert len({IB_FIXED, PerShareCommission(0.005, minimum=1.0, maximum_pct=0.01)}) == 1


# --- affordable quantity ---------------------------------------------------------------------


def test_affordable_quantity_percent_whole_shares() -> None:
    # 99 * 100 * 1.001 = 9,909.9 fits in 10,000; 100 shares cost 10,010.
    q = affordable_quantity(PercentCommission(0.001).to_params(), 10_000.0, 100.0, 0.0, False)
    assert q == 99.0


def test_affordable_quantity_counts_the_minimum() -> None:
    # 100 shares at 10 = 1,000 + 1.00 minimum > 1,000; 99 shares = 990 + 1.00 fits.
    assert affordable_quantity(IB_FIXED.to_params(), 1_000.0, 10.0, 0.0, False) == 99.0


def test_affordable_quantity_counts_fixed_fee() -> None:
    # 9 * 10 + 1 = 91 <= 100.5; 10 * 10 + 1 = 101 > 100.5.
    assert affordable_quantity(FixedCommission(1.0).to_params(), 100.5, 10.0, 0.0, False) == 9.0


def test_affordable_quantity_finds_cheaper_higher_notional_band() -> None:
    # Below 1,000 notional the fee is 1%: 995 shares at 1.00 cost 1,004.95. From 1,000 on it is
    # free, so 1,005 shares (cost 1,005) are affordable although 996-999 are not.
    model = TieredCommission([(0, 0.01), (1_000, 0.0)], basis="notional")
    assert affordable_quantity(model.to_params(), 1_005.0, 1.0, 0.0, False) == 1_005.0


def test_affordable_quantity_fractional_is_largest_float_that_fits() -> None:
    params = PercentCommission(0.001).to_params()
    q = affordable_quantity(params, 1_000.0, 10.0, 0.0, True)
    assert q == pytest.approx(1_000.0 / 10.01)
    assert q * 10.0 + commission_kernel(params, q, 10.0, 0.0) <= 1_000.0
    q_up = np.nextafter(q, np.inf)
    assert q_up * 10.0 + commission_kernel(params, q_up, 10.0, 0.0) > 1_000.0


def test_affordable_quantity_is_zero_without_cash() -> None:
    assert affordable_quantity(IB_FIXED.to_params(), 0.0, 10.0, 0.0, False) == 0.0
    # 0.50 cash cannot pay the 1.00 minimum on even one share at 0.01... but the cap
    # (1% of 0.01) wins over the minimum, so one share costs 0.0101 and 49 shares 0.4949.
    assert affordable_quantity(IB_FIXED.to_params(), 0.50, 0.01, 0.0, False) == 49.0


def test_affordable_quantity_is_nan_for_python_models() -> None:
    row = CallableCommission(lambda q, p: 1.0).to_params()
    assert math.isnan(affordable_quantity(row, 1_000.0, 10.0, 0.0, False))


@settings(deadline=None, max_examples=200)
@given(
    st.sampled_from(BUILT_INS),
    st.floats(1.0, 1e6),
    st.floats(0.01, 1e4),
    st.floats(0.0, 2e8),
)
def test_affordable_quantity_fits_and_one_more_share_does_not(
    model: CommissionModel, cash: float, price: float, monthly_volume: float
) -> None:
    params = model.to_params()

    def cost(q: float) -> float:
        return q * price + commission_kernel(params, q, price, monthly_volume)

    q = affordable_quantity(params, cash, price, monthly_volume, False)
    assert q == math.floor(q) and q >= 0.0
    assert cost(q) <= cash
    # Only tiered-by-notional can be non-monotone; for it, q+1 may cross into a cheaper band
    # that the search already considered, so check the next share is unaffordable for all.
    assert cost(q + 1.0) > cash


# --- as_commission_model ---------------------------------------------------------------------


def test_float_spec_is_percent_of_notional() -> None:
    assert as_commission_model(0.001) == PercentCommission(0.001)


def test_int_zero_spec_is_free_percent() -> None:
    assert as_commission_model(0) == PercentCommission(0.0)


def test_model_spec_is_returned_as_is() -> None:
    assert as_commission_model(IB_FIXED) is IB_FIXED


def test_callable_spec_is_wrapped() -> None:
    model = as_commission_model(lambda q, p: 2.5)
    assert isinstance(model, CallableCommission)
    assert model.commission(10, 1.0) == 2.5


def test_unusable_spec_raises_naming_value() -> None:
    with pytest.raises(ConfigError, match=r"commission must be a CommissionModel.*got 'ib'"):
        as_commission_model("ib")  # type: ignore[arg-type]


def test_bool_spec_raises() -> None:
    with pytest.raises(ConfigError, match=r"got True"):
        as_commission_model(True)


def test_float_spec_of_one_or_more_raises() -> None:
    with pytest.raises(ConfigError, match=r"commission: PercentCommission rate .* got 10\.0"):
        as_commission_model(10.0)


# --- commission_table ------------------------------------------------------------------------


def test_commission_table_rows_follow_assets_and_overrides() -> None:
    fee = CallableCommission(lambda q, p: 0.0)
    table, models = commission_table(
        0.001, ["AAPL", "MSFT", "BTC"], {"BTC": FixedCommission(1.0), "MSFT": fee}
    )
    assert table.shape == (3, N_COMMISSION_PARAMS)
    assert table.dtype == np.float64
    np.testing.assert_array_equal(table[0], PercentCommission(0.001).to_params())
    assert table[1, 0] == COMMISSION_PYTHON
    np.testing.assert_array_equal(table[2], FixedCommission(1.0).to_params())
    assert models == [PercentCommission(0.001), fee, FixedCommission(1.0)]
    assert models[1] is fee


def test_commission_table_without_overrides_repeats_default() -> None:
    table, models = commission_table(IB_FIXED, ["A", "B"])
    np.testing.assert_array_equal(table, np.vstack([IB_FIXED.to_params()] * 2))
    assert models == [IB_FIXED, IB_FIXED]


def test_commission_table_row_drives_kernel_per_asset() -> None:
    table, _ = commission_table(0.001, ["A", "B"], {"B": IB_FIXED})
    # A: 10 bps of 100 * 50 = 5.00; B: 100 * 0.005 = 0.50 -> 1.00 minimum.
    assert commission_kernel(table[0], 100.0, 50.0, 0.0) == pytest.approx(5.0)
    assert commission_kernel(table[1], 100.0, 50.0, 0.0) == pytest.approx(1.0)


def test_commission_table_unknown_override_names_key_and_nearest_asset() -> None:
    with pytest.raises(ConfigError, match=r"'APPL'.*did you mean 'AAPL'"):
        commission_table(0.001, ["AAPL", "MSFT"], {"APPL": 0.002})


def test_commission_table_bad_override_value_names_asset() -> None:
    with pytest.raises(ConfigError, match=r"override for 'MSFT'.*got 'x'"):
        commission_table(0.001, ["AAPL", "MSFT"], {"MSFT": "x"})  # type: ignore[dict-item]


# --- validation ------------------------------------------------------------------------------


def test_percent_negative_rate_raises() -> None:
    with pytest.raises(ConfigError, match=r"PercentCommission rate .*>= 0, got -0\.001"):
        PercentCommission(-0.001)


def test_percent_rate_of_one_or_more_raises() -> None:
    with pytest.raises(ConfigError, match=r"PercentCommission rate .*< 1.*got 5"):
        PercentCommission(5)


def test_percent_nan_rate_raises() -> None:
    with pytest.raises(ConfigError, match=r"PercentCommission rate .*got nan"):
        PercentCommission(math.nan)


def test_per_share_negative_rate_raises() -> None:
    with pytest.raises(ConfigError, match=r"PerShareCommission per_share .*got -0\.005"):
        PerShareCommission(-0.005)


def test_per_share_negative_minimum_raises() -> None:
    with pytest.raises(ConfigError, match=r"PerShareCommission minimum .*got -1\.0"):
        PerShareCommission(0.005, minimum=-1.0)


def test_per_share_negative_cap_raises() -> None:
    with pytest.raises(ConfigError, match=r"PerShareCommission maximum_pct .*got -0\.01"):
        PerShareCommission(0.005, maximum_pct=-0.01)


def test_per_share_cap_above_one_raises() -> None:
    with pytest.raises(ConfigError, match=r"PerShareCommission maximum_pct .*<= 1.*got 1\.5"):
        PerShareCommission(0.005, maximum_pct=1.5)


def test_fixed_negative_amount_raises() -> None:
    with pytest.raises(ConfigError, match=r"FixedCommission amount .*got -4\.95"):
        FixedCommission(-4.95)


def test_fixed_non_number_amount_raises() -> None:
    with pytest.raises(ConfigError, match=r"FixedCommission amount must be a number, got '1'"):
        FixedCommission("1")  # type: ignore[arg-type]


def test_tiered_empty_tiers_raises() -> None:
    with pytest.raises(ConfigError, match=r"tiers must be a non-empty list.*got \[\]"):
        TieredCommission([])


def test_tiered_unsorted_tiers_raises() -> None:
    with pytest.raises(ConfigError, match=r"strictly increasing, got 100000 after 300000\.0"):
        TieredCommission([(0, 0.0035), (300_000, 0.002), (100_000, 0.0015)])


def test_tiered_repeated_threshold_raises() -> None:
    with pytest.raises(ConfigError, match=r"strictly increasing.*tiers\[1\]"):
        TieredCommission([(0, 0.0035), (0, 0.002)])


def test_tiered_not_starting_at_zero_raises() -> None:
    with pytest.raises(ConfigError, match=r"start at threshold 0.*got first threshold 100"):
        TieredCommission([(100, 0.0035), (300_000, 0.002)])


def test_tiered_negative_rate_raises() -> None:
    with pytest.raises(ConfigError, match=r"tiers\[1\] rate \(per share\).*got -0\.002"):
        TieredCommission([(0, 0.0035), (300_000, -0.002)])


def test_tiered_notional_rate_of_one_or_more_raises() -> None:
    with pytest.raises(ConfigError, match=r"tiers\[0\] rate \(fraction of notional\).*got 10"):
        TieredCommission([(0, 10)], basis="notional")


def test_tiered_non_pair_raises() -> None:
    with pytest.raises(ConfigError, match=r"tiers\[1\] must be a \(threshold, rate\) pair"):
        TieredCommission([(0, 0.0035), (300_000,)])  # type: ignore[list-item]


def test_tiered_too_many_tiers_raises() -> None:
    tiers = [(1000.0 * k, 0.001) for k in range(MAX_TIERS + 1)]
    with pytest.raises(ConfigError, match=rf"{MAX_TIERS + 1} tiers; at most {MAX_TIERS}"):
        TieredCommission(tiers)


def test_tiered_bad_basis_raises_listing_valid_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"basis must be one of 'monthly_volume', 'notional', got 'volume'"
    ):
        TieredCommission([(0, 0.0035)], basis="volume")  # type: ignore[arg-type]


def test_tiered_negative_minimum_raises() -> None:
    with pytest.raises(ConfigError, match=r"TieredCommission minimum .*got -0\.35"):
        TieredCommission([(0, 0.0035)], minimum=-0.35)
