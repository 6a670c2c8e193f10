"""A sweep table as a heatmap over two of its parameters (a plotly figure, offline).

Each cell is one ``(x, y)`` pair; when the grid has other parameters, the runs sharing that pair
are aggregated (``agg="max"``: the best the other parameters reach, ``"mean"``: how good the
pair is on average, also ``"min"`` and ``"median"``). Runs that raised or gave NaN are left out;
a pair with no run left is an empty cell. Show it with ``fig.show()`` or save it with
``fig.write_html("heatmap.html", include_plotlyjs=True)`` (self-contained: no network needed).

Example:
    >>> fig = heatmap(table, x="n", y="rebalance_every", metric="sharpe")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Literal

import plotly.graph_objects as go
import polars as pl

from ..errors import ConfigError

Aggregation = Literal["max", "mean", "min", "median"]
_AGGREGATIONS: dict[str, pl.Expr] = {
    "max": pl.col("value").max(),
    "mean": pl.col("value").mean(),
    "min": pl.col("value").min(),
    "median": pl.col("value").median(),
}


def heatmap(
    table: pl.DataFrame,
    *,
    x: str,
    y: str,
    metric: str,
    agg: Aggregation = "max",
    title: str | None = None,
) -> go.Figure:
    """A heatmap of ``metric`` over parameters ``x`` and ``y`` of a sweep table, other
    parameters aggregated by ``agg`` (see the module doc). Axes list the values sorted.

    Example:
        >>> fig = heatmap(table, x="fast", y="slow", metric="sharpe", agg="mean")  # doctest: +SKIP
    """
    for role, column in (("x", x), ("y", y), ("metric", metric)):
        if column not in table.columns:
            raise ConfigError(
                f"heatmap {role}={column!r}: no such column in the sweep table; its columns: "
                f"{', '.join(table.columns)}"
            )
    if x == y:
        raise ConfigError(f"heatmap needs two different parameters, got x=y={x!r}")
    if agg not in _AGGREGATIONS:
        raise ConfigError(f"heatmap agg={agg!r}: use one of {', '.join(_AGGREGATIONS)}")
    values = table.select(
        pl.col(x).alias("x"),
        pl.col(y).alias("y"),
        pl.col(metric).cast(pl.Float64).fill_nan(None).alias("value"),
    )
    cells = values.drop_nulls("value").group_by("x", "y").agg(_AGGREGATIONS[agg])
    xs = values["x"].unique().sort().to_list()
    ys = values["y"].unique().sort().to_list()
    found = {(row["x"], row["y"]): row["value"] for row in cells.iter_rows(named=True)}
    z = [[found.get((xv, yv)) for xv in xs] for yv in ys]
    fig = go.Figure(
        go.Heatmap(
            # Category axes: numeric parameter values would otherwise be spaced by value.
            x=[str(v) for v in xs],
            y=[str(v) for v in ys],
            z=z,
            colorscale="RdYlGn",
            colorbar={"title": metric},
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric} ({agg})=%{{z}}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or f"{metric} ({agg} over other parameters)",
        xaxis={"title": x, "type": "category"},
        yaxis={"title": y, "type": "category"},
    )
    return fig
