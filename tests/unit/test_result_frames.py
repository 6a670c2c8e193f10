"""BacktestResult builds its frames lazily: only what is read, once."""

from __future__ import annotations

from scripted import run


def one_round_trip(make_feed):
    feed = make_feed({"A": [(10, 10), (10, 11), (11, 12), (12, 12)]})
    result, _ = run(
        feed, {0: lambda b, d: b.submit_order("A", 5), 2: lambda b, d: b.submit_order("A", -5)}
    )
    return result


def test_metrics_are_computed_without_building_the_trades_frame(make_feed):
    result = one_round_trip(make_feed)
    # Bought 5 at the open of bar 1 (10), sold at the open of bar 3 (12): one closed trade.
    assert result.metrics["n_trades"] == 1
    assert "trades" not in vars(result)
    assert "fills" not in vars(result)


def test_trades_and_metrics_are_built_once(make_feed):
    result = one_round_trip(make_feed)
    assert result.trades is result.trades
    assert result.metrics is result.metrics
    assert result.trades["pnl"].to_list() == [5 * (12.0 - 10.0)]
