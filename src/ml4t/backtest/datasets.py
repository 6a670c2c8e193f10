"""Synthetic market data: a deterministic daily OHLCV universe with a noisy predictive score.

The universe is meant for examples, tests and benchmarks: it looks like a liquid equity
universe (one market factor, per-asset volatility and beta, volatility clustering, fat tails,
overnight gaps, volume that rises on big moves) and carries a model ``score`` whose
cross-sectional rank IC with the forward return is known in advance, so a strategy that
trades on it should earn a modest, noisy edge, not a fortune.

Example:
    >>> from ml4t.backtest.datasets import synthetic_universe
    >>> df = synthetic_universe(n_assets=20, n_bars=252, seed=7)
    >>> df.shape
    (5040, 10)
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import operator

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .errors import ConfigError

__all__ = ["synthetic_universe"]

TRADING_DAYS_PER_YEAR = 252
FEATURE_WINDOW = 20
# The score predicts the open-to-open return from the next bar's open over this many bars,
# the horizon of a typical weekly-rebalanced cross-sectional model.
SCORE_HORIZON = 5

FloatArray = NDArray[np.float64]


def synthetic_universe(
    n_assets: int = 50,
    n_bars: int = 1000,
    seed: int = 42,
    *,
    start: str | dt.date = "2015-01-02",
    score_ic: float = 0.05,
    missing_fraction: float = 0.0,
) -> pl.DataFrame:
    """Build a deterministic daily OHLCV universe with a predictive score, in long format.

    Prices follow a one-factor model: each asset's daily log return is a small drift plus
    ``beta * market`` plus idiosyncratic noise, with annual volatility drawn in [15%, 60%],
    beta in [0.5, 1.5], Student-t shocks and a common volatility regime. Opens gap away from
    the previous close; highs and lows extend beyond the open/close by a random intrabar
    range; volume is lognormal around a per-asset base and larger on big-move days.

    ``score`` is known at the close of bar ``t`` and predicts the open-to-open return from
    bar ``t + 1`` to bar ``t + 6``: its cross-sectional Spearman correlation with that return
    is about ``score_ic`` on average. It is standardised per timestamp (mean 0, sample std 1).
    On the last bars, where that forward return does not exist, it is pure noise.

    ``momentum_20`` is ``close[t] / close[t - 20] - 1`` and ``volatility_20`` the sample std
    of the 20 daily log returns ending at ``t``, annualised by sqrt(252); both use only bars
    up to ``t`` and are NaN on the first 20 bars.

    Args:
        n_assets: Number of assets, named ``A0000``, ``A0001``, ... (more digits past 10000).
        n_bars: Number of daily bars, on business days (Mon-Fri) from ``start``.
        seed: Seed of ``numpy.random.default_rng``; the same arguments give a bit-identical
            frame.
        start: First date (ISO string or date); a weekend rolls forward to Monday.
        score_ic: Target mean rank IC of ``score`` with the forward return, in [-1, 1];
            realistic values are 0.02-0.1.
        missing_fraction: Fraction of (asset, bar) cells dropped as missing bars (no row),
            in [0, 1). An asset's first and last bars are never dropped (so the realised
            fraction is slightly lower on short histories). Prices on the kept
            rows are the same as with ``missing_fraction=0``; features are computed on the
            complete price path, as a vendor holding the full history would.

    Returns:
        A frame sorted by (timestamp, asset) with columns ``timestamp`` (Datetime("us")),
        ``asset`` (String), ``open``, ``high``, ``low``, ``close``, ``volume``, ``score``,
        ``momentum_20``, ``volatility_20`` (Float64).

    Raises:
        ConfigError: If an argument is out of its valid range.

    Example:
        >>> df = synthetic_universe(n_assets=5, n_bars=10, seed=1)
        >>> df.shape
        (50, 10)
        >>> df["asset"].unique().sort().to_list()
        ['A0000', 'A0001', 'A0002', 'A0003', 'A0004']
    """
    n_assets, n_bars, seed = _validate(n_assets, n_bars, seed, score_ic, missing_fraction)
    dates = _business_days(start, n_bars)
    rng = np.random.default_rng(seed)
    T, N = n_bars, n_assets

    # Per-asset parameters.
    vol_annual = rng.uniform(0.15, 0.60, N)
    beta = rng.uniform(0.5, 1.5, N)
    alpha_annual = rng.normal(0.0, 0.03, N)
    start_price = np.exp(rng.uniform(math.log(10.0), math.log(500.0), N))
    base_volume = np.exp(rng.uniform(math.log(1e5), math.log(1e7), N))

    regime = _volatility_regime(rng, T)
    log_ret, daily_vol = _log_returns(rng, vol_annual, beta, alpha_annual, regime)

    volatility_20 = _trailing_volatility(log_ret)
    volume = _volume(rng, log_ret, daily_vol, regime, base_volume)

    # Close: cumulative log return from the start price, built in place to keep memory flat.
    close = np.cumsum(log_ret, axis=0, out=log_ret)
    close += np.log(start_price)
    np.exp(close, out=close)
    del log_ret

    momentum_20 = np.full((T, N), np.nan)
    momentum_20[FEATURE_WINDOW:] = close[FEATURE_WINDOW:] / close[:-FEATURE_WINDOW] - 1.0

    open_ = _opens(rng, close, start_price, daily_vol, regime)
    high, low = _high_low(rng, open_, close, daily_vol, regime)
    score = _raw_score(rng, open_, score_ic)

    # Drawn last so that prices and volumes do not depend on missing_fraction.
    keep: NDArray[np.bool_] | None = None
    if missing_fraction > 0.0:
        missing = rng.random((T, N)) < missing_fraction
        missing[0] = False
        missing[-1] = False
        keep = ~missing
    score = _standardise_rows(score, keep)

    arrays = {
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "score": score,
        "momentum_20": momentum_20,
        "volatility_20": volatility_20,
    }
    del open_, high, low, close, volume, score, momentum_20, volatility_20
    return _long_frame(dates, N, keep, arrays)


def _long_frame(
    dates: NDArray[np.datetime64],
    N: int,
    keep: NDArray[np.bool_] | None,
    arrays: dict[str, NDArray[np.float64]],
) -> pl.DataFrame:
    """The long frame of ``[T, N]`` arrays (emptied from ``arrays`` as they are placed), rows
    sorted by (timestamp, asset), without the cells ``keep`` drops."""
    flat_keep = None if keep is None else keep.ravel()
    timestamps = np.repeat(dates.astype("datetime64[us]"), N)
    asset_index = np.tile(np.arange(N, dtype=np.uint32), len(dates))
    if flat_keep is not None:
        timestamps = timestamps[flat_keep]
        asset_index = asset_index[flat_keep]
    digits = max(4, len(str(N - 1)))
    names = pl.Series("asset", [f"A{i:0{digits}d}" for i in range(N)], dtype=pl.String)

    columns: list[pl.Series] = [
        pl.Series("timestamp", timestamps, dtype=pl.Datetime("us")),
        names.gather(asset_index),
    ]
    del timestamps, asset_index
    # Polars wraps a contiguous float64 array without copying; with missing bars each array
    # is compacted and released one at a time, so at most one extra (T, N) copy is alive.
    for name in list(arrays):
        flat = arrays.pop(name).ravel()
        columns.append(
            pl.Series(name, flat if flat_keep is None else flat[flat_keep], dtype=pl.Float64)
        )
        del flat
    return pl.DataFrame(columns)


def _validate(
    n_assets: int, n_bars: int, seed: int, score_ic: float, missing_fraction: float
) -> tuple[int, int, int]:
    n_assets = _as_int("n_assets", n_assets)
    n_bars = _as_int("n_bars", n_bars)
    seed = _as_int("seed", seed)
    if n_assets < 1:
        raise ConfigError(f"n_assets must be an integer >= 1, got {n_assets}")
    if n_bars < 2:
        raise ConfigError(f"n_bars must be an integer >= 2, got {n_bars}")
    if seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed}")
    if not (isinstance(score_ic, numbers.Real) and -1.0 <= score_ic <= 1.0):
        raise ConfigError(f"score_ic must be a number in [-1, 1], got {score_ic!r}")
    if not (isinstance(missing_fraction, numbers.Real) and 0.0 <= missing_fraction < 1.0):
        raise ConfigError(f"missing_fraction must be a number in [0, 1), got {missing_fraction!r}")
    return n_assets, n_bars, seed


def _as_int(name: str, value: object) -> int:
    # bool is an int subclass, but synthetic_universe(True) is surely a mistake.
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def _business_days(start: str | dt.date, n_bars: int) -> NDArray[np.datetime64]:
    if isinstance(start, dt.datetime):
        start = start.date()
    try:
        first = np.datetime64(start, "D")
    except (TypeError, ValueError):
        raise ConfigError(
            f"start must be an ISO date string such as '2015-01-02' or a datetime.date, "
            f"got {start!r}"
        ) from None
    # Weekends only: exchange holidays differ by market and would make the calendar opaque.
    return np.busday_offset(first, np.arange(n_bars), roll="forward")


def _volatility_regime(rng: np.random.Generator, n_bars: int) -> FloatArray:
    """Common volatility multiplier per bar, with E[multiplier**2] = 1.

    Volatility clusters in real markets; an exponentially weighted sum of Gaussian shocks
    (half-life about a month) gives a persistent log-volatility without a loop over bars.
    """
    decay, memory, vol_of_vol = 0.977, 250, 0.3
    kernel = decay ** np.arange(memory, dtype=np.float64)
    kernel /= np.sqrt(np.sum(kernel**2))  # unit-variance smoothed process
    shocks = rng.standard_normal(n_bars + memory - 1)
    log_vol = np.convolve(shocks, kernel, mode="valid")
    # exp(v * s - v**2) has mean square 1 when s ~ N(0, 1), so target vols hold on average.
    return np.exp(vol_of_vol * log_vol - vol_of_vol**2)


def _student_t(rng: np.random.Generator, dof: float, size: int | tuple[int, int]) -> FloatArray:
    """Unit-variance Student-t draws: daily returns have fatter tails than a normal.

    Clipped at 8 standard deviations: a Student-t with few degrees of freedom occasionally
    draws 20-sigma days that would triple or wipe out a stock overnight.
    """
    draws: FloatArray = rng.standard_t(dof, size)
    draws *= math.sqrt((dof - 2.0) / dof)
    np.clip(draws, -8.0, 8.0, out=draws)
    return draws


def _log_returns(
    rng: np.random.Generator,
    vol_annual: FloatArray,
    beta: FloatArray,
    alpha_annual: FloatArray,
    regime: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Close-to-close log returns, shape (bars, assets), and each asset's daily volatility."""
    n_bars, n_assets = regime.shape[0], vol_annual.shape[0]
    market_vol_annual, market_drift_annual = 0.16, 0.06
    sqrt_year = math.sqrt(TRADING_DAYS_PER_YEAR)
    market_shock = (market_vol_annual / sqrt_year) * regime * _student_t(rng, 5.0, n_bars)

    # Idiosyncratic variance is what is left of the target after the factor's share; a floor
    # keeps high-beta, low-vol assets from becoming pure market clones.
    idio_var = np.maximum(vol_annual**2 - (beta * market_vol_annual) ** 2, (0.3 * vol_annual) ** 2)
    idio_daily = np.sqrt(idio_var) / sqrt_year
    daily_vol = np.sqrt(beta**2 * market_vol_annual**2 + idio_var) / sqrt_year
    # Ito correction: minus half the variance makes the expected simple return, not the log
    # return, equal alpha + beta * market drift, as with any lognormal price model.
    drift = (alpha_annual + beta * market_drift_annual) / TRADING_DAYS_PER_YEAR - 0.5 * daily_vol**2

    log_ret = _student_t(rng, 4.0, (n_bars, n_assets))
    log_ret *= idio_daily
    log_ret *= regime[:, None]
    log_ret += beta * market_shock[:, None]
    log_ret += drift
    return log_ret, daily_vol


def _trailing_volatility(log_ret: FloatArray) -> FloatArray:
    """Annualised sample std of the 20 log returns ending at each bar (two-pass, exact).

    Row 0 of ``log_ret`` is the move from the unobserved start price to the first close, so
    the first window that uses only observed closes ends at bar 20.
    """
    n_bars = log_ret.shape[0]
    out = np.full(log_ret.shape, np.nan)
    if n_bars <= FEATURE_WINDOW:
        return out
    rows = n_bars - FEATURE_WINDOW

    def lagged(k: int) -> FloatArray:
        # Element k of each window: the window ending at bar t = 20 + j starts at bar j + 1.
        return log_ret[1 + k : 1 + k + rows]

    mean = np.zeros((rows, log_ret.shape[1]))
    for k in range(FEATURE_WINDOW):
        mean += lagged(k)
    mean /= FEATURE_WINDOW
    sum_sq = np.zeros_like(mean)
    for k in range(FEATURE_WINDOW):
        deviation = lagged(k) - mean
        deviation *= deviation
        sum_sq += deviation
    sum_sq /= FEATURE_WINDOW - 1
    np.sqrt(sum_sq, out=sum_sq)
    sum_sq *= math.sqrt(TRADING_DAYS_PER_YEAR)
    out[FEATURE_WINDOW:] = sum_sq
    return out


def _volume(
    rng: np.random.Generator,
    log_ret: FloatArray,
    daily_vol: FloatArray,
    regime: FloatArray,
    base_volume: FloatArray,
) -> FloatArray:
    """Whole-share volume, lognormal around each asset's base, higher on big moves."""
    # Size of the day's move in units of the asset's normal daily volatility; E|Z| = 0.8 for
    # a normal, subtracted so an ordinary day trades about the base volume.
    move = np.abs(log_ret) / daily_vol
    np.minimum(move, 6.0, out=move)  # a fat-tail shock should not print a billion shares
    move -= 0.8
    move *= 0.35
    noise = rng.standard_normal(log_ret.shape)
    noise *= 0.35
    move += noise
    del noise
    # Volume also rises with market-wide volatility, as in 2008 or March 2020.
    move += 0.5 * np.log(regime)[:, None]
    move += np.log(base_volume)
    np.exp(move, out=move)
    np.rint(move, out=move)
    np.maximum(move, 1.0, out=move)
    return move


def _opens(
    rng: np.random.Generator,
    close: FloatArray,
    start_price: FloatArray,
    daily_vol: FloatArray,
    regime: FloatArray,
) -> FloatArray:
    """Open = previous close times an overnight gap worth 30% of a day's volatility."""
    gap = rng.standard_normal(close.shape)
    gap *= 0.3 * daily_vol
    gap *= regime[:, None]
    np.exp(gap, out=gap)
    gap[0] *= start_price
    gap[1:] *= close[:-1]
    return gap


def _high_low(
    rng: np.random.Generator,
    open_: FloatArray,
    close: FloatArray,
    daily_vol: FloatArray,
    regime: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """High and low extend the open/close body by positive half-normal ranges.

    They are built from the body, not drawn independently, so low <= open, close <= high
    holds exactly: x * exp(e) >= x for e >= 0 survives rounding because rounding is monotone.
    """
    scale = 0.5 * daily_vol * regime[:, None]
    high = np.abs(rng.standard_normal(close.shape))
    high *= scale
    np.exp(high, out=high)
    high *= np.maximum(open_, close)
    low = np.abs(rng.standard_normal(close.shape))
    low *= scale
    np.negative(low, out=low)
    np.exp(low, out=low)
    low *= np.minimum(open_, close)
    return high, low


def _raw_score(rng: np.random.Generator, open_: FloatArray, score_ic: float) -> FloatArray:
    """A noisy copy of the cross-sectional rank of the forward open-to-open return.

    ``signal * rank + sqrt(1 - signal**2) * noise`` has rank correlation sqrt(3/pi) * signal
    with the forward return when the rank is uniform and the noise Gaussian (for small
    signals), so the signal weight is scaled up by sqrt(pi/3) to hit ``score_ic``. The noise
    is a 5-bar moving average so the score is persistent, like a real model's, instead of
    reshuffling every day.
    """
    n_bars, n_assets = open_.shape
    smooth = SCORE_HORIZON
    shocks = rng.standard_normal((n_bars + smooth - 1, n_assets))
    score = shocks[smooth - 1 :].copy()
    for k in range(1, smooth):
        score += shocks[smooth - 1 - k : n_bars + smooth - 1 - k]
    del shocks
    score /= math.sqrt(smooth)

    # Forward return at t: open[t + 1] -> open[t + 1 + horizon]; undefined near the end.
    n_fwd = n_bars - 1 - SCORE_HORIZON
    signal = float(np.clip(score_ic * math.sqrt(math.pi / 3.0), -1.0, 1.0))
    if n_fwd <= 0 or n_assets < 2 or signal == 0.0:
        return score
    forward = open_[1 + SCORE_HORIZON :] / open_[1:-SCORE_HORIZON]
    order = np.argsort(forward, axis=1)
    del forward
    rank = np.empty((n_fwd, n_assets))
    # Centred ranks scaled to unit variance: the discrete uniform on 0..N-1 has var (N^2-1)/12.
    centred = (np.arange(n_assets) - (n_assets - 1) / 2.0) / math.sqrt((n_assets**2 - 1) / 12.0)
    np.put_along_axis(rank, order, np.broadcast_to(centred, order.shape), axis=1)
    del order
    rank *= signal
    score[:n_fwd] *= math.sqrt(1.0 - signal**2)
    score[:n_fwd] += rank
    return score


def _standardise_rows(score: FloatArray, keep: NDArray[np.bool_] | None) -> FloatArray:
    """Cross-sectional z-score per bar (sample std) over the assets that have a row there.

    Works in place. A bar with fewer than two assets has no cross-sectional spread; its
    score is 0.
    """
    if keep is None:
        count = np.full(score.shape[0], score.shape[1], dtype=np.float64)
    else:
        count = keep.sum(axis=1, dtype=np.float64)
        dropped = ~keep
        # Zeroed so they add nothing to the sums; these cells become no row anyway.
        score[dropped] = 0.0
    score -= (score.sum(axis=1) / np.maximum(count, 1.0))[:, None]
    if keep is not None:
        score[dropped] = 0.0
    sum_sq = np.einsum("ij,ij->i", score, score)
    spread = (count >= 2.0) & (sum_sq > 0.0)
    scale = np.zeros_like(sum_sq)
    scale[spread] = np.sqrt((count[spread] - 1.0) / sum_sq[spread])
    score *= scale[:, None]
    return score
