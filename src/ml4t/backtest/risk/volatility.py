"""Average true range, the volatility ``VolatilityScaledStop`` scales by when given no column."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..kernels.jit import kernel


@kernel
def _wilder_atr(
    highs: np.ndarray, lows: np.ndarray, closes: np.ndarray, window: int, out: np.ndarray
) -> None:
    n_bars, n_assets = closes.shape
    for a in range(n_assets):
        prev_close = np.nan
        seen = 0
        total = 0.0
        atr = np.nan
        for t in range(n_bars):
            c = closes[t, a]
            if np.isnan(c):
                out[t, a] = atr  # no bar: the latest known value stands
                continue
            h = highs[t, a]
            lo = lows[t, a]
            tr = h - lo
            if not np.isnan(prev_close):
                tr = max(tr, abs(h - prev_close), abs(lo - prev_close))
            prev_close = c
            seen += 1
            if seen < window:
                total += tr
            elif seen == window:
                atr = (total + tr) / window
            else:
                atr = (atr * (window - 1) + tr) / window
            out[t, a] = atr


def average_true_range(
    highs: NDArray[np.float64],
    lows: NDArray[np.float64],
    closes: NDArray[np.float64],
    window: int = 14,
) -> NDArray[np.float64]:
    """Wilder's average true range over ``window`` bars, per asset ([bars, assets] arrays).

    True range is the largest of high - low, |high - previous close| and |low - previous close|
    (high - low on an asset's first bar). The first value, on the asset's ``window``-th bar, is
    the mean of the first ``window`` true ranges; after that each bar adds ``1/window`` of its
    true range to ``(window - 1)/window`` of the previous value (Wilder's smoothing, as TA-Lib's
    ATR after its first value). Bars an asset does not trade (NaN close) are skipped and hold
    the latest value. The value at bar ``t`` uses bars ``<= t`` only.

    Example:
        >>> h = np.array([[11.0], [12.0], [13.0]]); lo = h - 2.0; c = h - 1.0
        >>> average_true_range(h, lo, c, window=2)[:, 0].tolist()
        [nan, 2.0, 2.0]
    """
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ConfigError(f"ATR window must be a whole number of bars >= 1, got {window!r}")
    out = np.full(closes.shape, np.nan, dtype=np.float64)
    _wilder_atr(
        np.ascontiguousarray(highs, dtype=np.float64),
        np.ascontiguousarray(lows, dtype=np.float64),
        np.ascontiguousarray(closes, dtype=np.float64),
        window,
        out,
    )
    return out
