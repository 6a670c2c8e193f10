"""Each code table maps every code to its own name; the kernels' aliases are bound by name."""

from __future__ import annotations

from ml4t.backtest.kernels import records as r


def test_every_reason_code_alias_names_its_own_reason():
    expected = {
        r.R_NONE: "",
        r.R_INSUFFICIENT_CASH: "insufficient_cash",
        r.R_SCALED_DOWN: "scaled_down_insufficient_cash",
        r.R_SHORT_NOT_ALLOWED: "short_not_allowed",
        r.R_CANCELLED_BY_USER: "cancelled_by_user",
        r.R_END_OF_DATA: "open_at_end",
        r.R_DAY_EXPIRED: "day_order_expired",
        r.R_OCO: "other_bracket_leg_filled",
        r.R_PARENT_ENDED: "bracket_entry_ended_unfilled",
        r.R_BOTH_STOP_FIRST: "both_bracket_legs_touched_stop_filled",
        r.R_BOTH_LIMIT_FIRST: "both_bracket_legs_touched_limit_filled",
        r.R_VOLUME_REMAINDER: "volume_limit_remainder_cancelled",
        r.R_INSUFFICIENT_MARGIN: "insufficient_margin",
        r.R_SCALED_DOWN_MARGIN: "scaled_down_insufficient_margin",
        r.R_TARGET_MET: "target_already_met_at_fill_price",
        r.R_MAX_POSITIONS: "max_positions",
        r.R_MAX_POSITION_WEIGHT: "max_position_weight",
        r.R_MAX_GROSS_EXPOSURE: "max_gross_exposure",
        r.R_MAX_NET_EXPOSURE: "max_net_exposure",
        r.R_DAILY_LOSS_LIMIT: "daily_loss_limit",
        r.R_MAX_DRAWDOWN_HALT: "max_drawdown_halt",
        r.R_REPLACED_BY_TARGET: "replaced_by_target_order",
        r.R_REPLACED_BY_RULE: "replaced_by_position_rule",
    }
    assert len(expected) == len(r.REASON_NAMES)  # no two aliases share a code
    assert {code: r.REASON_NAMES[code] for code in expected} == expected


def test_every_origin_code_alias_names_its_own_origin():
    expected = {
        r.O_ORDER: "order",
        r.O_TARGET: "target",
        r.O_REBALANCE: "rebalance",
        r.O_CLOSE: "close_position",
        r.O_TAKE_PROFIT: "take_profit",
        r.O_STOP_LOSS: "stop_loss",
        r.O_MARGIN_CALL: "margin_call",
        r.O_TRAILING_STOP: "trailing_stop",
        r.O_VOLATILITY_STOP: "volatility_stop",
        r.O_TIME_EXIT: "time_exit",
        r.O_SIGNAL_EXIT: "signal_exit",
        r.O_DAILY_LOSS_LIMIT: "daily_loss_limit",
        r.O_MAX_DRAWDOWN_HALT: "max_drawdown_halt",
        r.O_FOLD_END: "fold_end",
        r.O_END_OF_RUN: "end_of_run",
    }
    assert len(expected) == len(r.ORIGIN_NAMES)
    assert {code: r.ORIGIN_NAMES[code] for code in expected} == expected


def test_order_type_status_and_tif_aliases_name_their_own_codes():
    assert [r.ORDER_TYPE_NAMES[c] for c in (r.MARKET, r.LIMIT, r.STOP)] == [
        "market",
        "limit",
        "stop",
    ]
    assert r.ORDER_TYPE_NAMES[r.STOP_LIMIT] == "stop_limit"
    assert r.ORDER_TYPE_NAMES[r.TRAILING_STOP] == "trailing_stop"
    statuses = (r.OPEN, r.PARTIALLY_FILLED, r.FILLED, r.CANCELLED, r.REJECTED, r.EXPIRED)
    assert [r.STATUS_NAMES[c] for c in statuses] == [
        "open",
        "partially_filled",
        "filled",
        "cancelled",
        "rejected",
        "expired",
    ]
    assert r.STATUS_NAMES[r.INACTIVE] == "waiting_for_parent"
    assert (r.TIF_NAMES[r.GTC], r.TIF_NAMES[r.DAY]) == ("gtc", "day")


def test_each_table_maps_each_code_to_its_field_name():
    tables = [
        (r.OrderType, r.ORDER_TYPE_NAMES),
        (r.Status, r.STATUS_NAMES),
        (r.TimeInForce, r.TIF_NAMES),
        (r.Origin, r.ORIGIN_NAMES),
        (r.ExecutionOrder, r.EXECUTION_ORDER_NAMES),
    ]
    for table, names in tables:
        for name in r.names(type(table)):
            assert names[getattr(table, name)] == name
    for name in r.names(r.ReasonT)[1:]:
        assert r.REASON_NAMES[getattr(r.Reason, name)] == name


def test_config_setting_tables_are_named_by_the_config_values():
    assert (r.CashPolicy.scale_down, r.CashPolicy.reject, r.CashPolicy.allow) == (
        r.CASH_SCALE_DOWN,
        r.CASH_REJECT,
        r.CASH_ALLOW,
    )
    assert (r.IntrabarPriority.stop, r.IntrabarPriority.limit) == (
        r.PRIORITY_STOP,
        r.PRIORITY_LIMIT,
    )
    assert (r.TrailBasis.high_low, r.TrailBasis.close) == (r.TRAIL_HIGH_LOW, r.TRAIL_CLOSE)
    assert r.ExecutionOrder.exits_first_smallest_entries_first == r.EXEC_EXITS_FIRST_SMALLEST


def test_codes_nothing_sets_are_gone():
    assert not hasattr(r, "R_NO_PRICE")
    assert not hasattr(r, "R_TOO_SMALL")
    assert "no_price" not in r.REASON_NAMES
    assert "below_minimum_quantity" not in r.REASON_NAMES
