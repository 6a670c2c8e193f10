"""Margin accounts, shorts, margin calls, borrow fees and interest, worked out by hand."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from ml4t.backtest import BacktestConfig, ConfigError, DataFeed
from scripted import run


def feed_of(rows: dict[str, list[tuple[float, float]]], dates: list[datetime]) -> DataFeed:
    """``{asset: [(open, close), ...]}`` on ``dates``; high/low are the max/min of the two."""
    data = [
        {"timestamp": d, "asset": a, "open": o, "high": max(o, c), "low": min(o, c),
         "close": c, "volume": 1e6}
        for a, bars in rows.items()
        for d, (o, c) in zip(dates, bars, strict=True)
    ]  # fmt: skip
    return DataFeed(pl.DataFrame(data))


DAYS = [datetime(2024, 1, d) for d in (1, 2, 3, 4, 5)]  # Monday to Friday


def test_short_sale_credits_the_proceeds_and_marks_the_short_at_the_close():
    feed = feed_of({"A": [(50.0, 50.0), (50.0, 45.0), (40.0, 40.0)]}, DAYS[:3])
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", -100)}, account="margin")
    assert result.fills.select("side", "quantity", "price").row(0) == ("sell", 100.0, 50.0)
    eq = result.equity
    assert eq["cash"][1] == 15_000.0
    assert eq["equity"].to_list() == [10_000.0, 15_000.0 - 4_500.0, 15_000.0 - 4_000.0]


def test_entry_beyond_the_initial_margin_is_scaled_to_the_leverage_cap():
    feed = feed_of({"A": [(100.0, 100.0)] * 3}, DAYS[:3])
    result, _ = run(feed, {0: lambda b, d: b.submit_order("A", 300)}, account="margin")
    # Equity 10,000 covers 50% of at most 20,000 of exposure: 200 shares at 100.
    order = result.orders.row(0, named=True)
    assert (order["filled_quantity"], order["reason"]) == (
        200.0,
        "scaled_down_insufficient_margin",
    )
    assert result.equity["cash"][1] == -10_000.0


def test_entry_beyond_the_initial_margin_is_rejected_when_set():
    feed = feed_of({"A": [(100.0, 100.0)] * 3}, DAYS[:3])
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 300)},
        account="margin",
        on_insufficient_cash="reject",
    )
    assert result.orders.select("status", "reason").row(0) == ("rejected", "insufficient_margin")


def test_margin_call_closes_the_largest_position_first_until_maintenance_is_met():
    feed = feed_of(
        {"A": [(100.0, 100.0), (100.0, 100.0), (100.0, 30.0), (29.0, 29.0), (29.0, 29.0)],
         "B": [(50.0, 50.0), (50.0, 50.0), (50.0, 40.0), (41.0, 41.0), (41.0, 41.0)]},
        DAYS,
    )  # fmt: skip
    result, _ = run(
        feed,
        {0: lambda b, d: (b.submit_order("A", 100), b.submit_order("B", 100))},
        account="margin",
        maintenance_margin=0.4,
    )
    # Cash after the buys: 10,000 - 10,000 - 5,000 = -5,000. Close of bar 2: A = 3,000,
    # B = 4,000, equity 2,000 < 0.4 x 7,000 = 2,800: B (the largest) goes; then
    # 0.4 x 3,000 = 1,200 <= 2,000, so A stays. B sells at bar 3's open, 41.
    calls = result.fills.filter(pl.col("reason") == "margin_call")
    assert calls.select("timestamp", "asset", "side", "quantity", "price").rows() == [
        (DAYS[3], "B", "sell", 100.0, 41.0)
    ]
    assert result.equity["cash"][3] == -5_000.0 + 4_100.0


def test_borrow_fee_accrues_on_the_short_value_for_the_calendar_days_held():
    dates = [datetime(2024, 1, 4), datetime(2024, 1, 5), datetime(2024, 1, 8)]  # Thu, Fri, Mon
    feed = feed_of({"A": [(50.0, 50.0)] * 3}, dates)
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", -100)},
        account="margin",
        borrow_rate_annual=0.1,
    )
    # Short filled Friday's open; Friday -> Monday is 3 days on 100 x 50 at 10% a year.
    fees = result.equity["borrow_fee"].to_list()
    assert fees == [0.0, 0.0, pytest.approx(5_000.0 * 0.1 * 3 / 365)]
    assert result.equity["cash"][2] == pytest.approx(15_000.0 - 5_000.0 * 0.1 * 3 / 365)
    assert result.metrics["total_borrow_fee"] == pytest.approx(fees[2])


def test_cash_earns_and_a_margin_loan_pays_interest():
    feed = feed_of({"A": [(100.0, 100.0)] * 4}, DAYS[:4])
    result, _ = run(
        feed,
        {1: lambda b, d: b.submit_order("A", 150)},
        account="margin",
        cash_interest_rate_annual=0.05,
        margin_interest_rate_annual=0.08,
    )
    # Interest for each day accrues at the start of the next bar on the cash held over it.
    day1 = 10_000.0 * 0.05 / 365
    day2 = (10_000.0 + day1) * 0.05 / 365
    loan = 10_000.0 + day1 + day2 - 15_000.0  # the buy fills at bar 2's open
    day3 = loan * 0.08 / 365  # negative: the loan pays
    assert result.equity["interest"].to_list() == [
        0.0,
        pytest.approx(day1),
        pytest.approx(day2),
        pytest.approx(day3),
    ]
    assert result.equity["cash"][3] == pytest.approx(loan + day3)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"maintenance_margin": 0.6}, "maintenance_margin must be <= 0.5"),
        ({"initial_margin": 0.0}, "initial_margin must be > 0"),
        ({"borrow_rate_annual": -0.01}, "borrow_rate_annual must be >= 0"),
        ({"account": "portfolio"}, "account must be one of 'cash', 'margin'"),
    ],
)
def test_bad_margin_settings_are_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        BacktestConfig(**settings)


def _negative_equity(**config: object) -> pl.DataFrame:
    """200 shares at 100 on 10,000 (initial margin 0.5): the close of bar 2 at 40 leaves
    cash -10,000 plus 8,000 of stock, equity -2,000."""
    feed = feed_of({"A": [(100.0, 100.0), (100.0, 100.0), (100.0, 40.0), (41.0, 41.0)]}, DAYS[:4])
    result, _ = run(
        feed,
        {0: lambda b, d: b.submit_order("A", 200)},
        account="margin",
        maintenance_margin=0.0,
        **config,
    )
    return result.fills


def test_a_margin_account_below_zero_equity_is_called_even_at_zero_maintenance():
    # -2,000 < 0 x 8,000: the 200 shares are sold at bar 3's open, 41.
    calls = _negative_equity().filter(pl.col("reason") == "margin_call")
    assert calls.select("timestamp", "side", "quantity", "price").rows() == [
        (DAYS[3], "sell", 200.0, 41.0)
    ]


def test_without_margin_calls_negative_equity_keeps_its_positions():
    # margin_calls=False (Zipline): nothing is sold; the only fill is the buy.
    fills = _negative_equity(margin_calls=False)
    assert fills.select("side", "quantity", "reason").rows() == [("buy", 200.0, "order")]
