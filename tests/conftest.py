"""Shared fixtures: tiny hand-made feeds whose fills can be worked out by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import DataFeed

Bar = tuple[float, float] | tuple[float, float, float, float]
PriceTable = dict[str, list[Bar | None]]


def frame_from_table(
    table: PriceTable, *, volume: float = 1e6, **extra: dict[str, list[float]]
) -> pl.DataFrame:
    """Long OHLCV frame from ``{asset: [bar or None, ...]}``; None is a missing bar.

    A bar is ``(open, close)``, with high and low the max and min of the two, or
    ``(open, high, low, close)``.
    ``extra`` adds columns: ``score={"A": [...], ...}``.
    """
    start = datetime(2024, 1, 1)
    rows = []
    for asset, bars in table.items():
        for t, bar in enumerate(bars):
            if bar is None:
                continue
            if len(bar) == 2:
                o, c = bar
                h, lo = max(o, c), min(o, c)
            else:
                o, h, lo, c = bar
            row = {
                "timestamp": start + timedelta(days=t),
                "asset": asset,
                "open": o,
                "high": h,
                "low": lo,
                "close": c,
                "volume": volume,
            }
            for name, values in extra.items():
                row[name] = values[asset][t]
            rows.append(row)
    return pl.DataFrame(rows)


@pytest.fixture
def make_feed() -> Callable[..., DataFeed]:
    """Build a DataFeed from an ``{asset: [(open, close) | None, ...]}`` table."""

    def build(table: PriceTable, **extra: dict[str, list[float]]) -> DataFeed:
        return DataFeed(frame_from_table(table, **extra))

    return build


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
