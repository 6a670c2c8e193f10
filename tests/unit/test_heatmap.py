"""heatmap: a sweep table as a plotly heatmap over two parameters, others aggregated."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import polars as pl
import pytest

from ml4t.backtest import ConfigError
from ml4t.backtest.research import heatmap

# fast x slow x stop; the sharpe of each run written out so each cell can be checked by hand.
TABLE = pl.DataFrame(
    {
        "run": list(range(8)),
        "fast": [5, 5, 5, 5, 10, 10, 10, 10],
        "slow": [20, 20, 50, 50, 20, 20, 50, 50],
        "stop": [0.1, 0.2, 0.1, 0.2, 0.1, 0.2, 0.1, 0.2],
        "sharpe": [1.0, 3.0, 0.5, math.nan, -1.0, 2.0, None, None],
        "error": [None, None, None, None, None, None, "ValueError: x", "ValueError: x"],
    }
)


def test_cells_take_the_max_over_the_other_parameters():
    fig = heatmap(TABLE, x="fast", y="slow", metric="sharpe")
    assert isinstance(fig, go.Figure)
    heat = fig.data[0]
    assert list(heat.x) == ["5", "10"] and list(heat.y) == ["20", "50"]
    # Rows are y (slow), columns x (fast). (5,20): max(1, 3) = 3; (10,20): max(-1, 2) = 2;
    # (5,50): 0.5 (the NaN run is left out); (10,50): both runs failed, an empty cell.
    assert [list(row) for row in heat.z] == [[3.0, 2.0], [0.5, None]]


def test_cells_take_the_mean_when_asked():
    fig = heatmap(TABLE, x="fast", y="slow", metric="sharpe", agg="mean")
    # (5,20): (1 + 3) / 2 = 2; (10,20): (-1 + 2) / 2 = 0.5; (5,50): 0.5.
    assert [list(row) for row in fig.data[0].z] == [[2.0, 0.5], [0.5, None]]


def test_axes_and_title_name_the_parameters_and_metric():
    fig = heatmap(TABLE, x="stop", y="fast", metric="sharpe", agg="min")
    assert fig.layout.xaxis.title.text == "stop" and fig.layout.yaxis.title.text == "fast"
    assert fig.layout.title.text == "sharpe (min over other parameters)"
    # fast 5, stop 0.1: min(1, 0.5) = 0.5; fast 10, stop 0.2: 2 (the other run failed).
    assert [list(row) for row in fig.data[0].z] == [[0.5, 3.0], [-1.0, 2.0]]


def test_a_column_not_in_the_table_is_refused_naming_the_columns():
    with pytest.raises(ConfigError, match=r"y='slw': no such column .* fast, slow, stop"):
        heatmap(TABLE, x="fast", y="slw", metric="sharpe")


def test_an_unknown_aggregation_is_refused():
    with pytest.raises(ConfigError, match="use one of max, mean, min, median"):
        heatmap(TABLE, x="fast", y="slow", metric="sharpe", agg="sum")  # type: ignore[arg-type]
