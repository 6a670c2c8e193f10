"""Performance metrics from an equity curve and its trades.

Conventions follow empyrical (Quantopian's metrics library, kept as empyrical-reloaded), so
numbers can be checked against it: simple per-bar returns, sample standard deviation (ddof=1),
Sortino's downside deviation over all bars, max drawdown as a negative fraction.

No metric raises on extreme but valid equity curves. A figure with no meaningful value is NaN
(a ratio over a zero volatility or drawdown, statistics of no trades, a growth rate of a curve
that went below zero); an annualised growth rate too large for a float (a 2-bar run up 5000x
compounds to about 1e466 a year) is ``inf``, as empyrical gives it. See ``annualized_growth``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

# Bar frequencies a span-based estimate snaps to when it lands within 5% of one.
_KNOWN_PERIODS = (252.0, 365.0, 52.0, 12.0, 4.0, 1.0)
_DAYS_PER_YEAR = 365.25


def infer_periods_per_year(timestamps: NDArray[np.datetime64]) -> float:
    """Bars per year from the timestamps (best as local wall-clock times).

    Daily bars (a median of one day between bars) are told apart by the days of the week
    they fall on: no bar on a weekend is equity bars, 252 a year; every day of the week is
    crypto bars, 365. The span alone cannot tell: 60 business days from a Monday span 81
    calendar days, 266 bars a year. Fewer than two bars, or a span under a day, fall back to
    252. Other bars (and daily bars on six days of the week) give the bar count over the
    years they span, snapped to 252, 365, 52, 12, 4 or 1 a year when within 5% of it;
    intraday bars give their true rate.

    Example:
        >>> ts = np.arange("2020-01-01", "2021-01-01", dtype="datetime64[D]")
        >>> infer_periods_per_year(ts)
        365.0
        >>> weekdays = np.busday_offset("2024-01-01", np.arange(60), roll="forward")
        >>> infer_periods_per_year(weekdays)  # 60 business days from a Monday
        252.0
    """
    n = len(timestamps)
    if n < 2:
        return 252.0
    span_days = (timestamps[-1] - timestamps[0]) / np.timedelta64(1, "D")
    if span_days < 1.0:
        return 252.0
    days = np.asarray(timestamps, dtype="datetime64[m]").astype(np.int64) / (24 * 60)
    if 0.9 <= float(np.median(np.diff(days))) <= 1.1:
        weekday = (np.floor(days).astype(np.int64) + 3) % 7  # Monday 0: 1970-01-01 a Thursday
        if not (weekday >= 5).any():
            return 252.0  # no bar on a weekend: equity bars
        if span_days < 7.0 or len(np.unique(weekday)) == 7:
            return 365.0  # every day of the week (as far as the span shows): crypto bars
    estimate = (n - 1) / (float(span_days) / _DAYS_PER_YEAR)
    for known in _KNOWN_PERIODS:
        if abs(estimate - known) <= 0.05 * known:
            return known
    return float(estimate)


def annualized_growth(growth: float, years: float) -> float:
    """The yearly rate that compounds to ``growth`` (final over initial value) in ``years``.

    ``growth ** (1 / years) - 1``, and never raises: ``inf`` when the rate exceeds the
    largest float, ``-1.0`` for a growth of 0 (everything lost), NaN for a negative growth
    (no real rate compounds to it), a NaN input, or ``years <= 0``.
    CAGR is ``annualized_growth(final / initial, bars / periods_per_year)``.

    Example:
        >>> annualized_growth(1.21, 2.0)
        0.10000000000000009
        >>> annualized_growth(5000.0, 2 / 252)
        inf
    """
    if not (years > 0.0) or not (growth >= 0.0):
        return math.nan
    if growth == 0.0:
        return -1.0
    try:
        return float(growth ** (1.0 / years) - 1.0)
    except OverflowError:  # Python floats raise where numpy (and empyrical) give inf
        return math.inf


def returns_from_equity(equity: NDArray[np.float64], initial: float) -> NDArray[np.float64]:
    """Per-bar simple returns, the first one measured from the initial cash."""
    prev = np.concatenate(([initial], equity[:-1]))
    return equity / prev - 1.0


def compute_metrics(
    equity: NDArray[np.float64],
    *,
    initial_cash: float,
    periods_per_year: float,
    gross_exposure: NDArray[np.float64],
    trade_pnl: NDArray[np.float64],
    risk_free_rate: float = 0.0,
) -> dict[str, float]:
    """The headline metrics of one run.

    ``trade_pnl`` holds the net PnL of closed trades; ``gross_exposure`` the gross position
    value per bar. ``risk_free_rate`` is annual and is converted per bar.
    """
    r = returns_from_equity(equity, initial_cash)
    n = len(r)
    rf = (1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0
    excess = r - rf
    final = float(equity[-1]) if n else initial_cash
    total_return = final / initial_cash - 1.0
    years = n / periods_per_year
    cagr = annualized_growth(final / initial_cash, years)

    std = float(np.std(r, ddof=1)) if n > 1 else math.nan
    volatility = std * math.sqrt(periods_per_year)
    sharpe = (
        float(np.mean(excess)) / float(np.std(excess, ddof=1)) * math.sqrt(periods_per_year)
        if n > 1 and float(np.std(excess, ddof=1)) > 0
        else math.nan
    )
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2))) if n else math.nan
    sortino = (
        float(np.mean(excess)) / downside * math.sqrt(periods_per_year)
        if n and downside > 0
        else math.nan
    )

    wealth = np.concatenate(([initial_cash], equity))
    peaks = np.maximum.accumulate(wealth)
    max_drawdown = float(np.min(wealth / peaks - 1.0))

    with np.errstate(divide="ignore", invalid="ignore"):
        exposure_per_bar = np.where(equity > 0, gross_exposure / equity, np.nan)
    exposure = float(np.nanmean(exposure_per_bar)) if n else math.nan

    n_trades = len(trade_pnl)
    win_rate = float(np.mean(trade_pnl > 0)) if n_trades else math.nan
    wins = trade_pnl[trade_pnl > 0]
    losses = trade_pnl[trade_pnl < 0]
    gross_loss = float(-losses.sum())

    return {
        "total_return": total_return,
        "cagr": cagr,
        "volatility": volatility,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": cagr / -max_drawdown if max_drawdown < 0 else math.nan,
        "max_drawdown": max_drawdown,
        "max_drawdown_bars": int(drawdown_bars(wealth)),
        "n_trades": n_trades,
        "win_rate": win_rate,
        "profit_factor": float(wins.sum()) / gross_loss if gross_loss > 0 else math.nan,
        "avg_win": float(wins.mean()) if len(wins) else math.nan,
        "avg_loss": float(losses.mean()) if len(losses) else math.nan,
        "expectancy": float(trade_pnl.mean()) if n_trades else math.nan,
        "exposure": exposure,
    }


def drawdown_bars(wealth: NDArray[np.float64]) -> int:
    """The longest run of bars spent below an earlier peak (to recovery, or to the end).

    Example:
        >>> drawdown_bars(np.array([100.0, 110, 105, 100, 111, 90, 95]))
        2
    """
    # A bar is below the peak unless it is at or above every earlier one (NaN never is, and
    # never becomes the peak: fmax skips it).
    under = ~(wealth >= np.fmax.accumulate(wealth))
    if not under.any():
        return 0
    edges = np.diff(np.concatenate(([0], under.view(np.int8), [0])))
    return int(np.max(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)))


def alpha_beta(
    returns: NDArray[np.float64],
    benchmark_returns: NDArray[np.float64],
    *,
    periods_per_year: float,
) -> tuple[float, float]:
    """Annualised alpha and beta of per-bar ``returns`` against ``benchmark_returns``.

    Computed as empyrical's ``alpha_beta``: beta is the sample covariance over the benchmark's
    sample variance; alpha is the mean of ``returns - beta * benchmark_returns`` compounded over
    a year. Bars where either return is NaN are left out; NaN and NaN when fewer than two bars
    remain or the benchmark never moves.

    Example:
        >>> b = np.array([0.01, -0.02, 0.03])
        >>> alpha, beta = alpha_beta(2 * b, b, periods_per_year=252)
        >>> round(beta, 6), round(alpha, 6)
        (2.0, 0.0)
    """
    ok = np.isfinite(returns) & np.isfinite(benchmark_returns)
    r, b = returns[ok], benchmark_returns[ok]
    if len(r) < 2 or np.var(b) == 0:
        return math.nan, math.nan
    beta = float(np.cov(r, b, ddof=1)[0, 1] / np.var(b, ddof=1))
    alpha_per_bar = float(np.mean(r - beta * b))
    return annualized_growth(1.0 + alpha_per_bar, 1.0 / periods_per_year), beta


def rolling_volatility(
    returns: NDArray[np.float64], window: int, *, periods_per_year: float
) -> NDArray[np.float64]:
    """Annualised volatility of the last ``window`` returns at each bar (sample std, ddof=1);
    NaN until ``window`` bars are in and where the window holds a NaN.

    Example:
        >>> rolling_volatility(np.array([0.01, -0.01, 0.01]), 2, periods_per_year=1.0).round(6)
        array([     nan, 0.014142, 0.014142])
    """
    out = np.full(len(returns), np.nan)
    if window < 2 or len(returns) < window:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(returns, window)
    out[window - 1 :] = windows.std(axis=1, ddof=1) * math.sqrt(periods_per_year)
    return out


def rolling_sharpe(
    returns: NDArray[np.float64], window: int, *, periods_per_year: float
) -> NDArray[np.float64]:
    """Annualised Sharpe ratio (no risk-free rate) of the last ``window`` returns at each bar;
    NaN until ``window`` bars are in and where the window's returns do not vary."""
    out = np.full(len(returns), np.nan)
    if window < 2 or len(returns) < window:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(returns, window)
    sd = windows.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(sd > 0, windows.mean(axis=1) / sd, np.nan)
    out[window - 1 :] = sharpe * math.sqrt(periods_per_year)
    return out


def rolling_beta(
    returns: NDArray[np.float64], benchmark_returns: NDArray[np.float64], window: int
) -> NDArray[np.float64]:
    """Beta of the last ``window`` returns against the benchmark's at each bar (sample
    covariance over sample variance); NaN until ``window`` bars are in, where the window holds
    a NaN, and where the benchmark does not move in it.

    Example:
        >>> b = np.array([0.01, -0.02, 0.03, 0.01])
        >>> rolling_beta(0.5 * b, b, 3)
        array([nan, nan, 0.5, 0.5])
    """
    out = np.full(len(returns), np.nan)
    if window < 2 or len(returns) < window:
        return out
    r = np.lib.stride_tricks.sliding_window_view(returns, window)
    b = np.lib.stride_tricks.sliding_window_view(benchmark_returns, window)
    r_dev = r - r.mean(axis=1, keepdims=True)
    b_dev = b - b.mean(axis=1, keepdims=True)
    cov = (r_dev * b_dev).sum(axis=1)
    var = (b_dev * b_dev).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[window - 1 :] = np.where(var > 0, cov / var, np.nan)
    return out


def worst_drawdowns(
    equity: NDArray[np.float64], *, initial: float, top: int = 5
) -> list[tuple[int, int, int, float]]:
    """The ``top`` deepest drawdowns of an equity curve, deepest first.

    A drawdown is a stretch of bars below the running peak (the initial cash counts as the peak
    before the first bar). Each is ``(start, trough, recovery, depth)``: the first bar under
    water, the bar of its lowest equity, the first bar back at or above the peak (-1 while not
    recovered), and the depth as a negative fraction of the peak.

    Example:
        >>> found = worst_drawdowns(np.array([100.0, 90, 95, 101, 99, 102]), initial=100.0)
        >>> [(start, trough, recovery, round(depth, 4)) for start, trough, recovery, depth in found]
        [(1, 1, 3, -0.1), (4, 4, 5, -0.0198)]
    """
    wealth = np.concatenate(([initial], equity))
    peaks = np.maximum.accumulate(wealth)
    under = wealth < peaks
    found: list[tuple[int, int, int, float]] = []
    i, n = 1, len(wealth)
    while i < n:
        if not under[i]:
            i += 1
            continue
        start = i
        while i < n and under[i]:
            i += 1
        stretch = wealth[start:i] / peaks[start:i] - 1.0
        low = int(np.argmin(stretch))
        # Wealth index k is bar k - 1: the initial cash sits before the first bar.
        recovery = i - 1 if i < n else -1
        found.append((start - 1, start - 1 + low, recovery, float(stretch[low])))
    found.sort(key=lambda d: d[3])
    return found[:top]


def period_returns(
    labels: NDArray[np.int64], equity: NDArray[np.float64], *, initial: float
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Compounded return of each period (bars sharing a label, e.g. a year), in order:
    the period's last equity over the previous period's last (the initial cash for the first).

    Example:
        >>> period_returns(np.array([2020, 2020, 2021]), np.array([110.0, 120, 90]), initial=100.0)
        (array([2020, 2021]), array([ 0.2 , -0.25]))
    """
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    last = np.flatnonzero(np.append(labels[1:] != labels[:-1], True))
    ends = equity[last]
    previous = np.concatenate(([initial], ends[:-1]))
    return labels[last].astype(np.int64), ends / previous - 1.0
