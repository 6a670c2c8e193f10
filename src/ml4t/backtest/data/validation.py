"""Value checks on the dense ``[T, N]`` arrays, shared by ``DataFeed(...)`` and ``from_arrays``.

The checks run on the arrays rather than on the input frame so that both constructors apply
exactly the same rules. Each check is one vectorised mask; on failure it reports the first
offending cell in (timestamp, asset) order, which is row-major order of the grid, and how many
cells fail. A cell is one (timestamp, asset) row of the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from ..errors import DataError

PRICES = ("open", "high", "low", "close")
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)


def format_timestamp(microseconds: int, timezone: str | None) -> str:
    """An instant stored as epoch microseconds, shown the way the user's data shows it."""
    if timezone is None:
        return str(_EPOCH_NAIVE + timedelta(microseconds=microseconds))
    return str((_EPOCH_UTC + timedelta(microseconds=microseconds)).astimezone(ZoneInfo(timezone)))


@dataclass(frozen=True)
class Grid:
    """Labels of the ``[T, N]`` grid, to turn a cell index into words."""

    timestamps: NDArray[np.int64]  # epoch microseconds (UTC instants when tz-aware)
    assets: Sequence[str]
    timezone: str | None

    def describe(self, flat: int) -> str:
        t, n = divmod(flat, len(self.assets))
        return (
            f"asset {self.assets[n]!r} at timestamp "
            f"{format_timestamp(int(self.timestamps[t]), self.timezone)}"
        )


def check_unique_cells(counts: NDArray[np.int64], grid: Grid, *, label: str) -> None:
    """``counts`` is rows per cell; more than one is a duplicate (timestamp, asset) row."""
    dup = counts > 1
    n_cells = int(dup.sum())
    if not n_cells:
        return
    first = int(np.argmax(dup))
    n_rows = int(counts[dup].sum())
    raise DataError(
        f"{label} has {int(counts[first])} rows for {grid.describe(first)}; "
        f"{n_cells} (timestamp, asset) pairs appear more than once ({n_rows} rows in total). "
        "Each pair must appear once: find out why they repeat, then drop the extra rows "
        "(e.g. df.unique(['timestamp', 'asset'], keep='last'))"
    )


def check_bar_values(fields: Mapping[str, NDArray[np.float64]], grid: Grid) -> None:
    """Every rule a bar must satisfy; raise ``DataError`` on the first rule that fails.

    A cell whose open, high, low and close are all NaN is a missing bar and passes every rule.
    """
    if _all_valid(fields):
        return
    o, h, low, c, v = (fields[name] for name in (*PRICES, "volume"))
    prices = {"open": o, "high": h, "low": low, "close": c}

    _check_finite(fields, grid)

    missing = {name: np.isnan(arr) for name, arr in prices.items()}
    n_missing = np.zeros(c.shape, dtype=np.int8)
    for mask in missing.values():
        n_missing += mask
    _fail_if(
        (n_missing > 0) & (n_missing < 4),
        missing,
        fields,
        grid,
        rule="open, high, low and close must be all present or all missing (a missing bar), "
        "but column {column!r} is NaN/null",
        show_value=False,
        also=PRICES,
    )
    present = n_missing == 0
    del n_missing
    no_volume = present & np.isnan(v)
    _fail_if(
        no_volume,
        {"volume": no_volume},
        fields,
        grid,
        rule="a bar with prices needs a volume, but column {column!r} is NaN/null",
        show_value=False,
    )
    with np.errstate(invalid="ignore"):
        non_positive = {name: arr <= 0 for name, arr in prices.items()}
        _fail_if_any(non_positive, fields, grid, rule="prices must be > 0")
        _fail_if_any({"high": h < low}, fields, grid, rule="high must be >= low", also=("low",))
        _fail_if_any(
            {"open": (o < low) | (o > h), "close": (c < low) | (c > h)},
            fields,
            grid,
            rule="open and close must lie within [low, high]",
            also=("low", "high"),
        )
        _fail_if_any({"volume": v < 0}, fields, grid, rule="volume must be >= 0")


# Cells per block in the pass/fail scan: its masks are a few hundred kB, so they come from and go
# back to the allocator's free lists instead of leaving [T, N]-sized holes in the heap.
_BLOCK_CELLS = 1 << 16


def _all_valid(fields: Mapping[str, NDArray[np.float64]]) -> bool:
    """True when every cell passes every rule of ``check_bar_values``, scanned a block of
    rows at a time. The full check (masks over the whole grid, to name the first failing cell
    and count them) runs only when this finds a failure."""
    shape = next(iter(fields.values())).shape
    step = max(1, _BLOCK_CELLS // max(1, shape[1]))
    for start in range(0, shape[0], step):
        rows = slice(start, start + step)
        if any(np.isinf(arr[rows]).any() for arr in fields.values()):
            return False
        o, h, low, c, v = (fields[name][rows] for name in (*PRICES, "volume"))
        n_missing = np.isnan(o).view(np.int8) + np.isnan(h) + np.isnan(low) + np.isnan(c)
        if ((n_missing > 0) & (n_missing < 4)).any():
            return False
        if ((n_missing == 0) & np.isnan(v)).any():
            return False
        with np.errstate(invalid="ignore"):
            if (
                (o <= 0).any()
                or (h <= 0).any()
                or (low <= 0).any()
                or (c <= 0).any()
                or (h < low).any()
                or (o < low).any()
                or (o > h).any()
                or (c < low).any()
                or (c > h).any()
                or (v < 0).any()
            ):
                return False
    return True


def _check_finite(fields: Mapping[str, NDArray[np.float64]], grid: Grid) -> None:
    # NaN means "no value"; infinity is never a price, a volume or a usable score.
    infinite = {name: np.isinf(arr) for name, arr in fields.items()}
    _fail_if_any(
        infinite,
        fields,
        grid,
        rule="values must be finite (NaN marks a missing value)",
        fix="replace infinities with NaN or a finite number",
    )


def _fail_if_any(
    masks: Mapping[str, NDArray[np.bool_]],
    fields: Mapping[str, NDArray[np.float64]],
    grid: Grid,
    *,
    rule: str,
    also: tuple[str, ...] = (),
    fix: str = "",
) -> None:
    """Raise if any cell fails in any of the per-column ``masks``."""
    combined = np.zeros(next(iter(fields.values())).shape, dtype=np.bool_)
    for mask in masks.values():
        combined |= mask
    _fail_if(
        combined,
        masks,
        fields,
        grid,
        rule=rule + ", but column {column!r} = {value}",
        also=also,
        fix=fix,
    )


def _fail_if(
    combined: NDArray[np.bool_],
    masks: Mapping[str, NDArray[np.bool_]],
    fields: Mapping[str, NDArray[np.float64]],
    grid: Grid,
    *,
    rule: str,
    show_value: bool = True,
    also: tuple[str, ...] = (),
    fix: str = "",
) -> None:
    """Raise for the first cell of ``combined``, naming the first column that fails there."""
    n_bad = int(np.count_nonzero(combined))
    if not n_bad:
        return
    first = int(np.argmax(combined))
    column = next(name for name, mask in masks.items() if mask.flat[first])
    value = repr(float(fields[column].flat[first])) if show_value else ""
    message = rule.format(column=column, value=value)
    context = [f"{name}={float(fields[name].flat[first])!r}" for name in also]
    if context:
        message += f" ({', '.join(context)})"
    rows = "1 row fails this check" if n_bad == 1 else f"{n_bad} rows fail this check (first shown)"
    message += f", for {grid.describe(first)}; {rows}"
    if fix:
        message += f"; {fix}"
    raise DataError(message)
