"""Round-trip trades from fills, matched first in, first out per asset.

Each record pairs one opening lot (or the part of it that was closed) with the fill that closed
it: buying 100 then selling 60 and 40 gives two trades. Commissions are charged to trades pro
rata by quantity, on both the entry and the exit side. Lots still open at the end become open
trades marked at the last price.

Float arithmetic on fractional quantities leaves residues (a lot of 0.7 less fills summing to
0.7 may keep 1e-16), which would show up as "dust" trades. The matcher follows the position
the way the broker books it (the running sum of fills), and treats as closed:

- every lot, when a fill leaves the position within ``QUANTITY_RTOL`` of its size before the
  fill (or of the fill): the position is flat;
- a lot whose remainder is within ``QUANTITY_RTOL`` of the lot's own size;
- what is left of a fill after closing lots, when within ``QUANTITY_RTOL`` of the fill.

``QUANTITY_RTOL`` is the broker's: a target order within it of the position is already met.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..kernels.jit import released, released_counted
from ..kernels.records import FILL_DTYPE

TRADE_DTYPE = np.dtype(
    [
        ("asset", np.int64),
        ("direction", np.int8),  # +1 long, -1 short
        ("is_open", np.bool_),
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),  # -1 for open trades
        ("entry_price", np.float64),
        ("exit_price", np.float64),  # last mark for open trades
        ("quantity", np.float64),  # > 0
        ("commission", np.float64),  # entry share plus exit share
        ("pnl", np.float64),  # net of commission
        ("return", np.float64),  # pnl over entry notional
        ("entry_origin", np.int8),  # the origin code of the opening fill (its reason)
        ("exit_origin", np.int8),  # of the closing fill; -1 for open trades
    ],
    align=True,
)

QUANTITY_RTOL = 1e-9


@released_counted
def _match_fifo(fills: np.ndarray, last_price: np.ndarray, out: np.ndarray) -> int:
    n = fills.shape[0]
    # The fills of each asset in execution order: a stable counting sort by asset (one mark
    # in ``last_price`` per asset).
    n_assets = last_price.shape[0]
    start = np.zeros(n_assets + 1, dtype=np.int64)
    for i in range(n):
        start[fills[i].asset + 1] += 1
    for a in range(n_assets):
        start[a + 1] += start[a]
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        a = fills[i].asset
        order[start[a]] = i
        start[a] += 1
    # Open lots of the asset being processed: a FIFO queue as parallel arrays.
    lot_qty = np.empty(n)  # signed remaining quantity
    lot_size = np.empty(n)  # the quantity the lot opened with
    lot_price = np.empty(n)
    lot_bar = np.empty(n, dtype=np.int64)
    lot_comm_per_unit = np.empty(n)
    lot_origin = np.empty(n, dtype=np.int8)
    n_out = 0
    k = 0
    while k < n:
        a = fills[order[k]].asset
        head = 0
        tail = 0
        pos = 0.0  # the position as the broker books it: fills summed in execution order
        while k < n and fills[order[k]].asset == a:
            f = fills[order[k]]
            q = f.quantity
            size = abs(q)
            p = f.price
            comm_per_unit = f.commission / size
            before = pos
            pos = before + q
            flat = abs(pos) <= QUANTITY_RTOL * max(abs(before), size)
            while q != 0.0 and head < tail and (lot_qty[head] > 0.0) != (q > 0.0):
                lq = lot_qty[head]
                # Flat after this fill: it closes every lot whole, whatever residue is left.
                closed = abs(lq) if flat else min(abs(lq), abs(q))
                direction = 1 if lq > 0.0 else -1
                comm = closed * (lot_comm_per_unit[head] + comm_per_unit)
                gross = direction * closed * (p - lot_price[head])
                rec = out[n_out]
                rec.asset = a
                rec.direction = direction
                rec.is_open = False
                rec.entry_bar = lot_bar[head]
                rec.exit_bar = f.bar
                rec.entry_price = lot_price[head]
                rec.exit_price = p
                rec.quantity = closed
                rec.commission = comm
                rec.pnl = gross - comm
                rec["return"] = (gross - comm) / (closed * lot_price[head])
                rec.entry_origin = lot_origin[head]
                rec.exit_origin = f.origin
                n_out += 1
                lot_left = abs(lq) - closed
                if lot_left <= QUANTITY_RTOL * lot_size[head]:
                    head += 1
                else:
                    lot_qty[head] = lot_left if lq > 0.0 else -lot_left
                if flat:
                    continue  # q goes on closing lots until none is left
                q_left = abs(q) - closed
                if q_left <= QUANTITY_RTOL * size:
                    q_left = 0.0
                q = q_left if q > 0.0 else -q_left
            if q != 0.0 and not flat:
                lot_qty[tail] = q
                lot_size[tail] = abs(q)
                lot_price[tail] = p
                lot_bar[tail] = f.bar
                lot_comm_per_unit[tail] = comm_per_unit
                lot_origin[tail] = f.origin
                tail += 1
            k += 1
        for j in range(head, tail):
            lq = lot_qty[j]
            direction = 1 if lq > 0.0 else -1
            closed = abs(lq)
            mark = last_price[a]
            comm = closed * lot_comm_per_unit[j]
            gross = direction * closed * (mark - lot_price[j])
            rec = out[n_out]
            rec.asset = a
            rec.direction = direction
            rec.is_open = True
            rec.entry_bar = lot_bar[j]
            rec.exit_bar = -1
            rec.entry_price = lot_price[j]
            rec.exit_price = mark
            rec.quantity = closed
            rec.commission = comm
            rec.pnl = gross - comm
            rec["return"] = (gross - comm) / (closed * lot_price[j])
            rec.entry_origin = lot_origin[j]
            rec.exit_origin = -1
            n_out += 1
    return n_out


def match_trades(fills: NDArray[np.void], last_price: NDArray[np.float64]) -> NDArray[np.void]:
    """Pair fills into FIFO round trips; returns ``TRADE_DTYPE`` records, closed then open by asset.

    ``fills`` are ``FILL_DTYPE`` records in execution order; ``last_price`` marks open lots.
    """
    n = len(fills)
    out = np.zeros(2 * n + 1, dtype=TRADE_DTYPE)
    if n == 0:
        return out[:0]
    if not (fills.dtype == FILL_DTYPE and fills.flags.c_contiguous and fills.flags.writeable):
        # The one layout the kernel is compiled for (a result rebuilt from saved arrays).
        fills = np.array(fills, dtype=FILL_DTYPE)
    n_out = _match_fifo(fills, last_price, out)
    return out[:n_out]


def trade_excursions(
    trades: NDArray[np.void],
    highs: NDArray[np.float64] | None,
    lows: NDArray[np.float64] | None,
    *,
    last_bar: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Maximum adverse and favourable excursion (MAE, MFE) of each trade, as returns on its
    entry price, over its bars: entry to exit, or to ``last_bar`` while open. The entry and
    exit bars count whole (the path inside them is unknown); NaN bars are skipped, and a trade
    whose bars are all NaN, or a run without ``highs`` and ``lows``, gets NaN.

    One compiled pass over each trade's window of its asset's column (``_window_extremes``):
    the windows' total length, where transposing the highs and lows for ``reduceat`` cost
    twice the whole [bars, assets] arrays.

    Example:
        >>> t = np.zeros(1, dtype=TRADE_DTYPE)
        >>> t["direction"], t["entry_bar"], t["exit_bar"], t["entry_price"] = 1, 0, 1, 100.0
        >>> highs, lows = np.array([[104.0], [108.0]]), np.array([[97.0], [95.0]])
        >>> mae, mfe = trade_excursions(t, highs, lows, last_bar=1)
        >>> round(float(mae[0]), 12), round(float(mfe[0]), 12)
        (-0.05, 0.08)
    """
    n = len(trades)
    if highs is None or lows is None or n == 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    end = np.where(trades["is_open"], last_bar, trades["exit_bar"]).astype(np.int64)
    high, low = np.empty(n), np.empty(n)
    _window_extremes(
        np.ascontiguousarray(trades["asset"], dtype=np.int64),
        np.ascontiguousarray(trades["entry_bar"], dtype=np.int64),
        end,
        np.ascontiguousarray(highs, dtype=np.float64),
        np.ascontiguousarray(lows, dtype=np.float64),
        high,
        low,
    )
    entry = trades["entry_price"]
    long = trades["direction"] > 0
    mae = np.where(long, low / entry - 1.0, 1.0 - high / entry)
    mfe = np.where(long, high / entry - 1.0, 1.0 - low / entry)
    return mae, mfe


@released
def _window_extremes(
    assets: NDArray[np.int64],
    first: NDArray[np.int64],
    last: NDArray[np.int64],
    highs: NDArray[np.float64],
    lows: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
) -> None:
    """Per window ``k`` (bars ``first[k]..last[k]`` of column ``assets[k]``): the highest high
    and the lowest low, NaN bars skipped (as ``np.fmax`` and ``np.fmin``), NaN if all are."""
    for k in range(assets.shape[0]):
        a = assets[k]
        hi = np.nan
        lo = np.nan
        for t in range(first[k], last[k] + 1):
            h = highs[t, a]
            if h > hi or np.isnan(hi):
                hi = h
            v = lows[t, a]
            if v < lo or np.isnan(lo):
                lo = v
        high[k] = hi
        low[k] = lo
