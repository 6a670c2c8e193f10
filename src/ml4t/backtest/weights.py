"""Scores -> target weights for ``run_weights``: the top-N portfolio as one array.

``topn_weights`` turns a ``[bars, assets]`` score array (a model's predictions for the whole
history) into the weight array ``run_weights`` trades: on every ``every``-th bar the ``n``
highest scores are held long (and the ``short_n`` lowest short), equal or inverse-volatility
weighted; the bars in between are NaN rows, which leave the portfolio alone.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import ConfigError, DataError

TopNWeighting = Literal["equal", "inverse_vol"]


def topn_weights(
    scores: ArrayLike,
    n: int,
    *,
    short_n: int = 0,
    weighting: TopNWeighting = "equal",
    volatility: ArrayLike | None = None,
    every: int = 1,
    offset: int = 0,
    gross: float = 1.0,
) -> NDArray[np.float64]:
    """Top-``n`` (and bottom-``short_n``) weights from a ``[bars, assets]`` score array.

    Rebalance bars are ``offset``, ``offset + every``, ...; every other row is NaN (no
    rebalance in ``run_weights``). On a rebalance bar:

    - an asset is eligible when its score is finite and, for ``"inverse_vol"``, its volatility
      is finite and > 0: an asset with zero or NaN volatility is left out (it would get an
      infinite or undefined weight), never given one. A negative volatility is a
      ``DataError`` naming the asset's column and the bar;
    - the ``n`` highest eligible scores are held long, then the ``short_n`` lowest of the
      remaining eligible assets short (fewer when fewer qualify); ties go to the lower column;
    - long-only, the longs' weights sum to ``gross``; with shorts, each side has ``gross / 2``
      (the shorts' weights sum to ``-gross / 2``), as ``TopNStrategy(long_short=True)``;
    - within a side, ``"equal"`` gives every pick the same weight, ``"inverse_vol"`` weights
      proportional to ``1 / volatility``;
    - every other asset has weight 0, so ``run_weights`` closes what it held. A rebalance bar
      with no eligible asset is a row of zeros: everything is closed.

    Shorts need ``BacktestConfig(account="margin")`` in ``run_weights``.

    Example:
        >>> scores = np.array([[3.0, 1.0, 2.0], [1.0, 2.0, 3.0]])
        >>> topn_weights(scores, 2, every=2)
        array([[0.5, 0. , 0.5],
               [nan, nan, nan]])
    """
    score = _matrix("scores", scores)
    n = _count("n", n, minimum=1)
    short_n = _count("short_n", short_n, minimum=0)
    every = _count("every", every, minimum=1)
    offset = _count("offset", offset, minimum=0)
    if offset >= every:
        raise ConfigError(f"offset must be below every ({every}), got {offset}")
    if weighting not in ("equal", "inverse_vol"):
        raise ConfigError(f"weighting must be 'equal' or 'inverse_vol', got {weighting!r}")
    if isinstance(gross, bool) or not isinstance(gross, int | float) or not gross > 0:
        raise ConfigError(f"gross must be a number > 0 (1.0 = fully invested), got {gross!r}")
    vol = None
    if weighting == "inverse_vol":
        if volatility is None:
            raise ConfigError("weighting='inverse_vol' needs volatility=, a [bars, assets] array")
        vol = _matrix("volatility", volatility)
        if vol.shape != score.shape:
            raise ConfigError(
                f"volatility has shape {vol.shape}; it must match scores, {score.shape}"
            )
        negative = vol < 0.0
        if negative.any():
            t, a = np.argwhere(negative)[0]
            raise DataError(
                f"volatility is {vol[t, a]} for asset column {a} at bar {t} "
                f"({int(negative.sum())} negative values); volatility must be >= 0"
            )
    elif volatility is not None:
        raise ConfigError("volatility= is only used with weighting='inverse_vol'")

    out = np.full(score.shape, np.nan)
    side_gross = gross / 2 if short_n else gross
    for t in range(offset, score.shape[0], every):
        row = score[t]
        eligible = np.isfinite(row)
        if vol is not None:
            eligible &= np.isfinite(vol[t]) & (vol[t] > 0.0)
        weights = np.zeros(score.shape[1])
        # Stable sorts on the negated score keep ties in column order.
        ranked = np.where(eligible, row, -np.inf)
        longs = np.argsort(-ranked, kind="stable")[: min(n, int(eligible.sum()))]
        weights[longs] = side_gross * _side(longs, vol, t)
        if short_n:
            rest = eligible.copy()
            rest[longs] = False
            ranked = np.where(rest, row, np.inf)
            shorts = np.argsort(ranked, kind="stable")[: min(short_n, int(rest.sum()))]
            weights[shorts] = -side_gross * _side(shorts, vol, t)
        out[t] = weights
    return out


def _side(picked: NDArray[np.intp], vol: NDArray[np.float64] | None, t: int) -> NDArray[np.float64]:
    """Weights of one side's picks, summing to 1 (empty when nothing is picked)."""
    if len(picked) == 0:
        return np.zeros(0)
    raw = np.ones(len(picked)) if vol is None else 1.0 / vol[t, picked]
    share: NDArray[np.float64] = raw / raw.sum()
    return share


def _matrix(name: str, values: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(values)
    if array.ndim != 2:
        raise ConfigError(f"{name} must be a [bars, assets] array, got {array.ndim} dimensions")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ConfigError(f"{name} must be numbers, got dtype {array.dtype}")
    return np.asarray(array, dtype=np.float64)


def _count(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)
