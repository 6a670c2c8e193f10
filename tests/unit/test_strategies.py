"""The ready-made strategies, on tiny feeds whose positions are worked out by hand."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from ml4t.backtest import (
    BacktestConfig,
    BacktestResult,
    ConfigError,
    DataError,
    DataFeed,
    DataWarning,
    Engine,
    OrderError,
    Strategy,
    run_signals,
)
from ml4t.backtest.datasets import synthetic_universe
from ml4t.backtest.risk import AnyOf, StopLoss, TakeProfit, TrailingStop
from ml4t.backtest.strategy import SignalStrategy, TargetWeightStrategy, TopNStrategy

NAN = math.nan


def day(t: int) -> datetime:
    """Timestamp of bar ``t`` in conftest's tables."""
    return datetime(2024, 1, 1) + timedelta(days=t)


def run(feed: DataFeed, strategy: Strategy, **config: Any) -> BacktestResult:
    cfg = BacktestConfig(initial_cash=config.pop("initial_cash", 10_000.0), **config)
    return Engine(feed, strategy, cfg).run()


def held(result: BacktestResult) -> dict[str, float]:
    """Net filled quantity per asset, leaving out assets back to zero."""
    signed = result.fills.select(
        "asset",
        pl.when(pl.col("side") == "buy")
        .then(pl.col("quantity"))
        .otherwise(-pl.col("quantity"))
        .alias("q"),
    )
    totals = signed.group_by("asset").agg(pl.col("q").sum())
    return {a: q for a, q in totals.iter_rows() if q != 0.0}


def flat(price: float, n: int) -> list[tuple[float, float]]:
    return [(price, price)] * n


# ---- SignalStrategy -----------------------------------------------------------------------------


def test_signal_enters_long_at_the_open_after_the_bar_it_crosses_the_entry_threshold(make_feed):
    feed = make_feed(
        {"A": [(100.0, 100.0), (100.0, 100.0), (101.0, 102.0), (103.0, 104.0), (105.0, 106.0)]},
        signal={"A": [0.0, 0.5, 1.5, 1.6, 1.7]},
    )
    strategy = SignalStrategy("signal", entry_threshold=1.0, exit_threshold=0.0, weight=0.5)
    result = run(feed, strategy)
    fill = result.fills.row(0, named=True)
    assert result.fills.height == 1
    assert fill["timestamp"] == day(3)  # decided at the close of bar 2, filled at bar 3's open
    assert fill["price"] == 103.0
    assert fill["quantity"] == math.floor(0.5 * 10_000 / 102.0)  # sized at bar 2's close


def test_signal_holds_between_the_thresholds_without_retrading(make_feed):
    feed = make_feed(
        {"A": [(100.0, 100.0), (100.0, 100.0), (110.0, 110.0), (90.0, 90.0), (95.0, 95.0)]},
        signal={"A": [2.0, 0.5, 0.2, 0.1, 0.5]},
    )
    strategy = SignalStrategy("signal", entry_threshold=1.0, exit_threshold=0.0, weight=0.5)
    result = run(feed, strategy)
    # Equity moves with the price, but the position is not re-sized while the signal stays in
    # [exit, entry]: one order, the entry.
    assert result.orders.height == 1
    assert held(result) == {"A": 50.0}


def test_signal_exits_at_the_open_after_it_falls_below_the_exit_threshold(make_feed):
    feed = make_feed(
        {"A": [(100.0, 100.0), (100.0, 100.0), (110.0, 110.0), (95.0, 95.0), (96.0, 96.0)]},
        signal={"A": [2.0, 0.5, 0.1, -0.1, 0.0]},
    )
    strategy = SignalStrategy("signal", entry_threshold=1.0, exit_threshold=0.0, weight=0.5)
    result = run(feed, strategy)
    fills = result.fills
    assert fills["side"].to_list() == ["buy", "sell"]
    assert fills["quantity"].to_list() == [50.0, 50.0]
    assert fills["timestamp"].to_list() == [day(1), day(4)]
    assert fills["price"].to_list() == [100.0, 96.0]


def test_signal_nan_keeps_the_current_position(make_feed):
    feed = make_feed(
        {"A": flat(100.0, 4)},
        signal={"A": [2.0, NAN, NAN, 0.8]},
    )
    # NaN read as 0 would be below the exit threshold of 0.5 and close the position.
    strategy = SignalStrategy("signal", entry_threshold=1.0, exit_threshold=0.5, weight=0.5)
    result = run(feed, strategy)
    assert result.orders.height == 1
    assert held(result) == {"A": 50.0}


def test_signal_default_weight_is_one_over_the_number_of_assets(make_feed):
    feed = make_feed(
        {"A": flat(100.0, 2), "B": flat(50.0, 2)},
        signal={"A": [2.0, 2.0], "B": [2.0, 2.0]},
    )
    result = run(feed, SignalStrategy("signal", entry_threshold=1.0, exit_threshold=0.0))
    assert held(result) == {"A": 0.5 * 10_000 / 100.0, "B": 0.5 * 10_000 / 50.0}


def test_signal_long_short_enters_short_below_minus_entry_threshold(make_feed):
    feed = make_feed({"A": flat(100.0, 3)}, signal={"A": [-1.5, -1.5, -1.5]})
    strategy = SignalStrategy(
        "signal", entry_threshold=1.0, exit_threshold=0.0, long_short=True, weight=0.5
    )
    result = run(feed, strategy, account="margin")
    assert result.orders.height == 1
    assert held(result) == {"A": -50.0}


def test_signal_long_short_covers_above_minus_exit_threshold(make_feed):
    feed = make_feed({"A": flat(100.0, 4)}, signal={"A": [-1.5, -0.5, 0.1, 0.0]})
    strategy = SignalStrategy(
        "signal", entry_threshold=1.0, exit_threshold=0.0, long_short=True, weight=0.5
    )
    result = run(feed, strategy, account="margin")
    # -0.5 is not above -exit_threshold = 0: held; 0.1 is: covered at bar 3's open.
    assert result.fills["side"].to_list() == ["sell", "buy"]
    assert result.fills["timestamp"].to_list() == [day(1), day(3)]
    assert held(result) == {}


def test_signal_long_short_on_a_cash_account_is_refused_by_the_broker(make_feed):
    feed = make_feed({"A": flat(100.0, 2)}, signal={"A": [-1.5, -1.5]})
    strategy = SignalStrategy("signal", entry_threshold=1.0, exit_threshold=0.0, long_short=True)
    with pytest.raises(OrderError, match="cash account cannot short"):
        run(feed, strategy)


# ---- TopNStrategy -------------------------------------------------------------------------------


def test_topn_holds_the_n_highest_scores_at_equal_weight(make_feed):
    feed = make_feed(
        {"A": flat(100.0, 2), "B": flat(50.0, 2), "C": flat(20.0, 2), "D": flat(10.0, 2)},
        score={"A": [1.0, 1.0], "B": [3.0, 3.0], "C": [2.0, 2.0], "D": [0.0, 0.0]},
    )
    result = run(feed, TopNStrategy("score", n=2))
    assert held(result) == {"B": 0.5 * 10_000 / 50.0, "C": 0.5 * 10_000 / 20.0}


def test_topn_rebalances_only_every_k_bars(make_feed):
    tops = ["A", "B", "C", "B", "A", "C", "C"]  # the best asset changes on most bars
    feed = make_feed(
        {a: flat(100.0, 7) for a in "ABC"},
        score={a: [1.0 if top == a else 0.0 for top in tops] for a in "ABC"},
    )
    result = run(feed, TopNStrategy("score", n=1, rebalance_every=3))
    # Decisions at bars 0 (buy A), 3 (sell A, buy B) and 6 (sell B, buy C); none in between.
    orders = result.orders.sort("order_id")
    assert orders["submitted"].to_list() == [day(0), day(3), day(3), day(6), day(6)]
    assert orders["asset"].to_list() == ["A", "A", "B", "B", "C"]


def test_topn_never_picks_an_asset_with_a_nan_score(make_feed):
    feed = make_feed(
        {"A": flat(100.0, 2), "B": flat(100.0, 2), "C": flat(100.0, 2)},
        score={"A": [NAN, NAN], "B": [1.0, 1.0], "C": [0.5, 0.5]},
    )
    result = run(feed, TopNStrategy("score", n=1))
    assert held(result) == {"B": 100.0}


def test_topn_score_weighting_is_proportional_to_the_positive_part_of_the_score(make_feed):
    feed = make_feed(
        {a: flat(100.0, 2) for a in "ABC"},
        score={"A": [3.0, 3.0], "B": [1.0, 1.0], "C": [-1.0, -1.0]},
    )
    result = run(feed, TopNStrategy("score", n=3, weighting="score"))
    # Weights 3/4 and 1/4; C is picked but its negative score gives it nothing.
    assert held(result) == {"A": 0.75 * 10_000 / 100.0, "B": 0.25 * 10_000 / 100.0}


def test_topn_inverse_vol_weighting_from_a_vol_column(make_feed):
    feed = make_feed(
        {"A": flat(100.0, 2), "B": flat(50.0, 2)},
        score={"A": [2.0, 2.0], "B": [1.0, 1.0]},
        vol={"A": [0.25, 0.25], "B": [0.5, 0.5]},
    )
    strategy = TopNStrategy("score", n=2, weighting="inverse_vol", vol_column="vol")
    result = run(feed, strategy)
    # 1/0.25 = 4 and 1/0.5 = 2: weights 4/6 and 2/6.
    assert held(result) == {
        "A": math.floor(4 / 6 * 10_000 / 100.0),
        "B": math.floor(2 / 6 * 10_000 / 50.0),
    }


def test_topn_inverse_vol_uses_only_closes_up_to_the_decision_bar(make_feed):
    closes_a = [100.0, 102.0, 99.0, 103.0]
    closes_b = [50.0, 51.0, 50.0, 49.0]
    # Bar 4 opens at bar 3's close and then jumps: a window reaching into it would differ.
    feed = make_feed(
        {
            "A": [(c, c) for c in closes_a] + [(103.0, 300.0)],
            "B": [(c, c) for c in closes_b] + [(49.0, 10.0)],
        },
        score={"A": [1.0] * 5, "B": [2.0] * 5},
    )
    strategy = TopNStrategy("score", n=2, rebalance_every=3, weighting="inverse_vol", vol_window=3)
    result = run(feed, strategy)

    def stdev_of_returns(closes: list[float]) -> float:
        return statistics.stdev(b / a - 1.0 for a, b in itertools.pairwise(closes))

    # At bar 0 there is no 3-return window yet; at bar 3 it is closes 0..3.
    inv_a, inv_b = 1 / stdev_of_returns(closes_a), 1 / stdev_of_returns(closes_b)
    w_a, w_b = inv_a / (inv_a + inv_b), inv_b / (inv_a + inv_b)
    assert result.fills["timestamp"].unique().to_list() == [day(4)]
    assert held(result) == {
        "A": math.floor(w_a * 10_000 / 103.0),
        "B": math.floor(w_b * 10_000 / 49.0),
    }


def test_topn_long_short_shorts_the_n_lowest_with_half_the_gross_on_each_side(make_feed):
    feed = make_feed(
        {a: flat(100.0, 2) for a in "ABCD"},
        score={"A": [2.0, 2.0], "B": [1.0, 1.0], "C": [-1.0, -1.0], "D": [-2.0, -2.0]},
    )
    result = run(feed, TopNStrategy("score", n=1, long_short=True), account="margin")
    assert held(result) == {"A": 50.0, "D": -50.0}


def test_topn_long_short_never_puts_tied_assets_on_both_sides(make_feed):
    feed = make_feed({a: flat(100.0, 2) for a in "AB"}, score={"A": [1.0, 1.0], "B": [1.0, 1.0]})
    result = run(feed, TopNStrategy("score", n=1, long_short=True), account="margin")
    assert held(result) == {"A": 50.0, "B": -50.0}  # ties go to the first asset in feed order


def test_topn_seed_example_trades_on_the_synthetic_universe():
    feed = DataFeed(synthetic_universe(n_assets=25, n_bars=300, seed=1))
    result = Engine(
        feed, TopNStrategy("momentum_20", n=5, rebalance_every=20), BacktestConfig()
    ).run()
    decision_days = set(feed.datetimes[::20])
    assert result.fills.height > 0
    assert set(result.orders["submitted"].to_list()) <= decision_days
    assert len(held(result)) == 5


# ---- TargetWeightStrategy -----------------------------------------------------------------------


def two_asset_feed(make_feed):
    return make_feed(
        {
            "A": [(100.0, 100.0), (100.0, 110.0), (110.0, 120.0), (120.0, 120.0)],
            "B": [(50.0, 50.0), (50.0, 40.0), (40.0, 45.0), (45.0, 45.0)],
        }
    )


def test_target_weights_from_a_wide_frame_are_sized_at_the_decision_close(make_feed):
    weights = pl.DataFrame({"timestamp": [day(0), day(2)], "A": [0.5, 0.25], "B": [0.5, 0.75]})
    result = run(two_asset_feed(make_feed), TargetWeightStrategy(weights))
    # Bar 0: 50 A at 100 and 100 B at 50 (all the cash). Bar 2's close: equity
    # 50 * 120 + 100 * 45 = 10,500, so A -> floor(0.25 * 10500 / 120), B -> 0.75 * 10500 / 45.
    equity = 50 * 120.0 + 100 * 45.0
    assert held(result) == {
        "A": math.floor(0.25 * equity / 120.0),
        "B": math.floor(0.75 * equity / 45.0),
    }
    assert result.fills["timestamp"].to_list() == [day(1), day(1), day(3), day(3)]


def test_target_weights_bars_without_a_frame_row_keep_the_target(make_feed):
    weights = pl.DataFrame({"timestamp": [day(0)], "A": [0.5], "B": [0.5]})
    result = run(two_asset_feed(make_feed), TargetWeightStrategy(weights))
    assert result.orders.height == 2  # prices move on bars 1-3, but nothing is re-sized
    assert held(result) == {"A": 50.0, "B": 100.0}


def test_target_weights_accepts_a_pandas_frame(make_feed):
    weights = pd.DataFrame({"timestamp": [day(0)], "A": [0.5], "B": [0.5]})
    result = run(two_asset_feed(make_feed), TargetWeightStrategy(weights))
    assert held(result) == {"A": 50.0, "B": 100.0}


def test_target_weights_from_a_feed_column_read_nan_as_zero(make_feed):
    feed = make_feed(
        {"A": flat(100.0, 3), "B": flat(50.0, 3)},
        w={"A": [0.5, 0.5, 0.5], "B": [0.25, NAN, NAN]},
    )
    result = run(feed, TargetWeightStrategy(column="w"))
    # Bar 0 buys 50 A and 50 B; bar 1's NaN for B is a target of 0: B is sold, A untouched.
    assert result.fills["asset"].to_list() == ["A", "B", "B"]
    assert held(result) == {"A": 50.0}


def test_target_weights_min_trade_keeps_a_holding_whose_change_is_smaller(make_feed):
    feed = make_feed({"A": flat(100.0, 3), "B": flat(100.0, 3)})
    weights = pl.DataFrame({"timestamp": [day(0), day(1)], "A": [0.5, 0.52], "B": [0.3, 0.1]})
    result = run(feed, TargetWeightStrategy(weights, min_trade=0.05))
    # At bar 1 A is at 0.5 of equity: 0.02 from its target, under min_trade, so it keeps its 50
    # shares; B is 0.2 away and goes to 10 shares.
    assert result.orders.filter(pl.col("submitted") == day(1))["asset"].to_list() == ["B"]
    assert held(result) == {"A": 50.0, "B": 10.0}


def test_target_weights_frame_without_a_timestamp_column_is_a_config_error():
    weights = pl.DataFrame({"date_": [day(0)], "A": [0.5]})
    with pytest.raises(ConfigError, match="no 'timestamp' column"):
        TargetWeightStrategy(weights)


def test_target_weights_frame_columns_naming_no_asset_are_a_data_error(make_feed):
    weights = pl.DataFrame({"timestamp": [day(0)], "A": [0.5], "ZZZ": [0.2], "YYY": [0.1]})
    with pytest.raises(DataError, match="'ZZZ', 'YYY'"):
        run(two_asset_feed(make_feed), TargetWeightStrategy(weights))


def test_target_weights_frame_with_a_repeated_timestamp_is_a_config_error():
    weights = pl.DataFrame({"timestamp": [day(0), day(0)], "A": [0.5, 0.4]})
    with pytest.raises(ConfigError, match="more than one row for timestamp 2024-01-01"):
        TargetWeightStrategy(weights)


def test_target_weights_tz_aware_frame_on_a_naive_feed_is_a_config_error(make_feed):
    weights = pl.DataFrame({"timestamp": [day(0)], "A": [0.5]}).with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC")
    )
    with pytest.raises(ConfigError, match="tz-aware but the feed's are naive"):
        run(two_asset_feed(make_feed), TargetWeightStrategy(weights))


def test_target_weights_frame_rows_matching_no_bar_are_reported(make_feed):
    weights = pl.DataFrame(
        {"timestamp": [day(0), day(0) + timedelta(hours=16)], "A": [0.5, 0.4], "B": [0.5, 0.6]}
    )
    with pytest.warns(DataWarning, match="1 of 2 weights rows match no bar"):
        run(two_asset_feed(make_feed), TargetWeightStrategy(weights))


def test_target_weights_needs_exactly_one_of_a_frame_or_a_column():
    weights = pl.DataFrame({"timestamp": [day(0)], "A": [0.5]})
    with pytest.raises(ConfigError, match="exactly one of weights"):
        TargetWeightStrategy()
    with pytest.raises(ConfigError, match="got both"):
        TargetWeightStrategy(weights, column="w")


# ---- argument validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: SignalStrategy("s", entry_threshold=0.0, exit_threshold=1.0), "exit_threshold"),
        (lambda: SignalStrategy("s", entry_threshold=NAN, exit_threshold=0.0), "entry_threshold"),
        (
            lambda: SignalStrategy("s", entry_threshold=0.0, exit_threshold=0.0, long_short=True),
            "entry_threshold",
        ),
        (lambda: SignalStrategy("s", entry_threshold=1, exit_threshold=0, weight=0), "weight"),
        (lambda: SignalStrategy("", entry_threshold=1, exit_threshold=0), "column"),
        (lambda: TopNStrategy("s", n=0), "n"),
        (lambda: TopNStrategy("s", n=2.5), "n"),
        (lambda: TopNStrategy("s", n=1, rebalance_every=0), "rebalance_every"),
        (lambda: TopNStrategy("s", n=1, weighting="rank"), "weighting"),
        (lambda: TopNStrategy("s", n=1, vol_column="vol"), "vol_column"),
        (lambda: TopNStrategy("s", n=1, weighting="inverse_vol", vol_window=1), "vol_window"),
        (lambda: TopNStrategy("s", n=1, gross=-1.0), "gross"),
        (lambda: TargetWeightStrategy(column="w", min_trade=-0.1), "min_trade"),
        (lambda: TargetWeightStrategy(column=""), "column"),
    ],
)
def test_invalid_arguments_are_config_errors_naming_the_argument(make, argument):
    with pytest.raises(ConfigError, match=rf"^{argument}\b|{argument}="):
        make()


def test_strategy_state_is_reset_between_runs(make_feed):
    feed = make_feed({"A": flat(100.0, 3)}, signal={"A": [2.0, 2.0, 2.0]})
    strategy = SignalStrategy("signal", entry_threshold=1.0, exit_threshold=0.0, weight=0.5)
    first, second = run(feed, strategy), run(feed, strategy)
    assert held(first) == held(second) == {"A": 50.0}


def test_topn_target_weights_sum_to_gross_on_each_side():
    feed = DataFeed(synthetic_universe(n_assets=12, n_bars=30, seed=3))
    seen: list[np.ndarray] = []

    class Recording(TopNStrategy):
        def on_data(self, timestamp, data, broker):
            if data.index == 25:
                seen.append(self.target_weights(data))

    strategy = Recording("score", n=4, long_short=True, weighting="score", gross=1.5)
    run(feed, strategy, account="margin")
    (weights,) = seen
    assert weights[weights > 0].sum() == pytest.approx(0.75)
    assert weights[weights < 0].sum() == pytest.approx(-0.75)
    assert (weights != 0).sum() <= 8


def test_signal_entry_elsewhere_does_not_resize_what_is_held(make_feed):
    # A enters at bar 0's close; B at bar 2's. The equity has moved by then (A's price rose),
    # but A is held as entered: two orders, not a trim of A when B comes in.
    feed = make_feed(
        {"A": [(100.0, 100.0), (100.0, 110.0), (110.0, 120.0), (120.0, 120.0)],
         "B": flat(50.0, 4)},
        signal={"A": [2.0, 2.0, 2.0, 2.0], "B": [0.0, 0.0, 2.0, 2.0]},
    )  # fmt: skip
    strategy = SignalStrategy("signal", entry_threshold=1.0, exit_threshold=0.0, weight=0.4)
    result = run(feed, strategy)
    assert result.orders.height == 2
    equity_at_bar_2 = 10_000 - 40 * 100.0 + 40 * 120.0
    assert held(result) == {"A": 40.0, "B": math.floor(0.4 * equity_at_bar_2 / 50.0)}


def test_topn_offset_picks_the_bar_of_each_period_that_rebalances(make_feed):
    # Scores swap leaders every bar, so every rebalance trades: with every=5 and offset=2 the
    # decisions are at bars 2 and 7 only.
    n = 10
    feed = make_feed(
        {"A": flat(100.0, n), "B": flat(50.0, n)},
        score={"A": [float(t % 2) for t in range(n)], "B": [float(1 - t % 2) for t in range(n)]},
    )
    result = run(feed, TopNStrategy("score", n=1, rebalance_every=5, offset=2))
    assert sorted(set(result.orders["submitted"].to_list())) == [day(2), day(7)]


@pytest.mark.parametrize("offset", [-1, 5, 1.5])
def test_topn_offset_outside_the_period_is_a_config_error(offset):
    with pytest.raises(ConfigError, match="offset"):
        TopNStrategy("score", n=1, rebalance_every=5, offset=offset)


# ---- TopNStrategy scores given as an array, a frame or a callable -------------------------------


def four_flat_assets(make_feed):
    return make_feed(
        {"A": flat(100.0, 2), "B": flat(50.0, 2), "C": flat(20.0, 2), "D": flat(10.0, 2)}
    )


# Scores over A, B, C, D as in test_topn_holds_the_n_highest_scores_at_equal_weight: B and C win.
SCORES = [1.0, 3.0, 2.0, 0.0]
TOP_TWO = {"B": 0.5 * 10_000 / 50.0, "C": 0.5 * 10_000 / 20.0}


def test_topn_scores_array_picks_like_the_column(make_feed):
    result = run(four_flat_assets(make_feed), TopNStrategy(scores=np.array([SCORES, SCORES]), n=2))
    assert held(result) == TOP_TWO


def test_topn_scores_pandas_frame_is_aligned_by_asset_label(make_feed):
    frame = pd.DataFrame(
        {"D": [0.0, 0.0], "C": [2.0, 2.0], "B": [3.0, 3.0], "A": [1.0, 1.0]},
        index=pd.DatetimeIndex([day(0), day(1)], name="Date"),
    )
    result = run(four_flat_assets(make_feed), TopNStrategy(scores=frame, n=2))
    assert held(result) == TOP_TWO


def test_topn_scores_frame_bar_without_a_row_does_not_rebalance(make_feed):
    # Only bar 1 has scores: nothing is decided at bar 0, and bar 1's orders fill after the end.
    frame = pl.DataFrame({"timestamp": [day(1)], "A": [1.0], "B": [3.0], "C": [2.0], "D": [0.0]})
    result = run(four_flat_assets(make_feed), TopNStrategy(scores=frame, n=2))
    assert result.orders["submitted"].to_list() == [day(1), day(1)]


def test_topn_scores_frame_unknown_asset_is_a_data_error(make_feed):
    frame = pl.DataFrame({"timestamp": [day(0)], "A": [1.0], "MSFT": [2.0]})
    with pytest.raises(DataError, match="naming no asset of the feed: 'MSFT'"):
        run(four_flat_assets(make_feed), TopNStrategy(scores=frame, n=2))


def test_topn_scores_callable_sees_the_view_and_may_return_a_dict(make_feed):
    seen = []

    def model(data):
        seen.append(data.index)
        return dict(zip(["A", "B", "C", "D"], SCORES, strict=True))

    result = run(four_flat_assets(make_feed), TopNStrategy(scores=model, n=2))
    assert held(result) == TOP_TWO
    assert seen == [0, 1]


def test_topn_scores_callable_with_the_wrong_length_is_a_config_error(make_feed):
    with pytest.raises(ConfigError, match=r"returned shape \(2,\).*one score per asset"):
        run(four_flat_assets(make_feed), TopNStrategy(scores=lambda data: [1.0, 2.0], n=2))


def test_topn_needs_exactly_one_of_column_or_scores():
    with pytest.raises(ConfigError, match="exactly one of column"):
        TopNStrategy(n=2)
    with pytest.raises(ConfigError, match="got both"):
        TopNStrategy("score", scores=np.zeros((2, 2)), n=2)


def test_target_weights_accepts_a_pandas_frame_indexed_by_date(make_feed):
    weights = pd.DataFrame({"B": [0.5], "A": [0.5]}, index=pd.DatetimeIndex([day(0)], name="Date"))
    result = run(two_asset_feed(make_feed), TargetWeightStrategy(weights))
    # 0.5 x 10,000 at bar 0's closes: 50 A at 100 and 100 B at 50.
    assert held(result) == {"A": 50.0, "B": 100.0}


def test_target_weights_accepts_a_polars_date_column(make_feed):
    weights = pl.DataFrame({"Date": [day(0).date()], "A": [0.5], "B": [0.5]})
    result = run(two_asset_feed(make_feed), TargetWeightStrategy(weights))
    assert held(result) == {"A": 50.0, "B": 100.0}


@pytest.mark.parametrize("long_short", [False, True])
@pytest.mark.parametrize("fill_timing", ["next_open", "same_close"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_signal_strategy_makes_the_fills_of_run_signals_with_position_rules(
    seed, fill_timing, long_short
):
    """``SignalStrategy`` and ``run_signals`` on the same thresholds agree fill for fill, with
    stops closing positions: same-close entries on a stop's bar are replaced by it, next-open
    entries decided at that bar's close fill at the next open, and a signal past the other
    side reverses the position in one order."""
    feed = DataFeed(synthetic_universe(n_assets=3, n_bars=250, seed=seed))
    score = feed.array("score")
    config = BacktestConfig(
        initial_cash=100_000.0,
        fill_timing=fill_timing,
        account="margin" if long_short else "cash",
        stops_on_entry_bar=fill_timing == "next_open",
    )
    rules = AnyOf(StopLoss(0.03), TakeProfit(0.05), TrailingStop(0.03))
    strategy = SignalStrategy(
        "score", entry_threshold=0.5, exit_threshold=0.0, long_short=long_short, weight=0.3
    )
    event = Engine(feed, strategy, config, position_rules=rules).run()
    shorts = {"short_entries": score < -0.5, "short_exits": score > 0.0} if long_short else {}
    compiled = run_signals(
        feed, score > 0.5, score < 0.0, **shorts, size=0.3, config=config, position_rules=rules
    )
    columns = ["timestamp", "asset", "side", "quantity", "price"]
    assert event.fills.select(columns).equals(compiled.fills.select(columns))
    reasons = set(compiled.fills["reason"].to_list())
    assert reasons & {"stop_loss", "take_profit", "trailing_stop"}  # the rules did close some
    assert event.final_value == compiled.final_value


def test_signal_strategy_same_close_entry_on_a_stops_bar_waits_for_the_next_bar(make_feed):
    # Bars (open, high, low, close); the signal stays above the threshold. 0.5 x 10,000 / 100
    # = 50 shares at bar 0's close; bar 2's low of 94 reaches the 5% stop at 95. The entry of
    # bar 2's close would fill on the stop's own bar (replaced, as in VectorBT); bar 3's fills
    # at 97: 0.5 x 9,750 / 97 = 50.3 -> 50 shares.
    bars = [
        (100.0, 100.0, 100.0, 100.0),
        (100.0, 100.0, 100.0, 100.0),
        (99.0, 100.0, 94.0, 96.0),
        (97.0, 97.0, 97.0, 97.0),
    ]
    feed = make_feed({"A": bars}, signal={"A": [1.0, 1.0, 1.0, 1.0]})
    strategy = SignalStrategy("signal", entry_threshold=0.5, exit_threshold=0.0, weight=0.5)
    config = BacktestConfig(
        initial_cash=10_000.0, fill_timing="same_close", stops_on_entry_bar=False
    )
    result = Engine(feed, strategy, config, position_rules=StopLoss(0.05)).run()
    assert result.fills.select("timestamp", "side", "quantity", "price").rows() == [
        (day(0), "buy", 50.0, 100.0),
        (day(2), "sell", 50.0, 95.0),
        (day(3), "buy", 50.0, 97.0),
    ]
