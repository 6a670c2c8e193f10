"""The Strategy base class (four callbacks, all optional but ``on_data``) and ready-made
strategies: ``SignalStrategy``, ``TopNStrategy`` and ``TargetWeightStrategy``."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import polars as pl
from numpy.typing import NDArray

from .data.labels import is_frame
from .data.loading import Wide, read_wide
from .errors import ConfigError, DataError, DataWarning, OrderError

if TYPE_CHECKING:
    import pandas as pd

    from .broker import Broker
    from .data.view import BarView
    from .orders import Fill


class Strategy:
    """Subclass and implement ``on_data``; the engine calls it once per bar, after the close.

    ``data`` shows bars up to and including ``timestamp`` and nothing later. Orders submitted
    through ``broker`` fill at the next bar's open by default.

    Example:
        >>> class BuyAndHold(Strategy):
        ...     def on_data(self, timestamp, data, broker):
        ...         if not broker.positions:
        ...             broker.rebalance({"AAPL": 1.0})
    """

    def on_start(self, broker: Broker) -> None:
        """Called once before the first bar."""

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        """Called at the close of every bar with the point-in-time view of the data."""
        raise NotImplementedError(f"{type(self).__name__} must implement on_data")

    def on_fill(self, fill: Fill, broker: Broker) -> None:
        """Called for every fill of this strategy's orders, before the next ``on_data``."""

    def on_end(self, broker: Broker) -> None:
        """Called once after the last bar."""


class SignalStrategy(Strategy):
    """Trade each asset on a signal column: in above one threshold, out below another.

    Per asset, a flat position goes long when ``data[column] > entry_threshold`` and a long goes
    flat when the signal falls below ``exit_threshold`` (at most ``entry_threshold``); in between
    the position is held. An asset whose signal is already above the entry threshold on the
    first bar it trades is entered then. With ``long_short=True`` the rule is mirrored around
    zero: short below ``-entry_threshold``, cover above ``-exit_threshold``. Exits are checked
    before entries, so one bar can turn a long into a short.

    A position that something else closed (a position rule, a margin call), or an entry that
    did not fill, counts as flat: it is entered again while the signal is past the entry
    threshold. With ``fill_timing="same_close"`` a position rule's exit replaces the entries of
    its own bar (``Broker.signals_replaced``), as VectorBT's stops do; with fills on a later bar
    the entry decided at the close of the rule's bar fills at the next bar, as in VectorBT with
    shifted signals. ``run_signals`` with ``entries = signal > entry_threshold``, ``exits =
    signal < exit_threshold``, the mirrored short signals and ``size=weight`` makes the same
    fills when ``exit_threshold >= -entry_threshold`` (below that, a short signal while long
    reverses in ``run_signals`` but is held here: it never reaches the exit threshold).

    Each position is entered at ``weight`` of equity (default ``1 / len(data.assets)``) and
    then left alone until it exits, as VectorBT's ``from_signals`` and a Backtrader signal
    strategy hold it: only the assets whose state changes on a bar trade on it (one
    ``broker.order_target_percents`` call), so an entry elsewhere never trims what is held. A
    NaN signal, or no bar, keeps an asset's state. Shorts need
    ``BacktestConfig(account="margin")``: on a cash account a short entry is an ``OrderError``.

    Example:
        >>> from ml4t.backtest import BacktestConfig
        >>> strategy = SignalStrategy("prediction", entry_threshold=0.02, exit_threshold=0.0)
        >>> config = BacktestConfig(initial_cash=100_000, commission=0.001)
        >>> result = Engine(feed, strategy, config).run()  # doctest: +SKIP
    """

    def __init__(
        self,
        column: str,
        *,
        entry_threshold: float,
        exit_threshold: float,
        long_short: bool = False,
        weight: float | None = None,
    ) -> None:
        self.column = _check_column("column", column)
        self.entry_threshold = _check_finite("entry_threshold", entry_threshold)
        self.exit_threshold = _check_finite("exit_threshold", exit_threshold)
        if self.exit_threshold > self.entry_threshold:
            raise ConfigError(
                f"exit_threshold ({exit_threshold}) must be <= entry_threshold "
                f"({entry_threshold}); otherwise a position entered above the entry threshold "
                "would already be below the exit threshold"
            )
        if long_short and self.entry_threshold <= 0.0:
            raise ConfigError(
                f"entry_threshold must be > 0 with long_short=True, got {entry_threshold}: the "
                "short side enters below -entry_threshold, so the two entry zones would overlap"
            )
        self.long_short = bool(long_short)
        self.weight = None if weight is None else _check_positive("weight", weight)
        self._state: NDArray[np.int8] = np.zeros(0, dtype=np.int8)

    def on_start(self, broker: Broker) -> None:
        self._state = np.zeros(len(broker.assets), dtype=np.int8)

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        # A position closed without this strategy asking (a stop, a time exit, a margin call)
        # or an entry that never filled counts as flat: it is entered again only if the signal
        # is past the entry threshold.
        gone = (broker.quantities == 0.0) & (broker.pending == 0.0)
        self._state[gone] = 0
        state = self.next_state(data)
        # As run_signals: with same-close fills, a rule exit on this bar replaces the entries
        # (and reversals) that would fill on it, as VectorBT's stops replace the bar's signals.
        state[(state != self._state) & (state != 0) & broker.signals_replaced] = 0
        changed = state != self._state
        if not changed.any():
            return
        if self.long_short and broker.config.account == "cash" and (state[changed] < 0).any():
            asset = data.assets[np.flatnonzero(changed & (state < 0))[0]]
            raise OrderError(
                f"short entry for asset {asset}: a cash account cannot short; use "
                "BacktestConfig(account='margin') or long_short=False"
            )
        self._state = state
        weight = self.weight if self.weight is not None else 1.0 / len(data.assets)
        targets = np.full(len(state), np.nan)
        targets[changed] = state[changed] * weight
        broker.order_target_percents(targets)

    def next_state(self, data: BarView) -> NDArray[np.int8]:
        """The position wanted in each asset after this bar: +1 long, -1 short, 0 flat."""
        signal = data[self.column]
        # Comparisons with NaN are False, so a NaN signal neither enters nor exits.
        signal[~data.has_bar] = np.nan
        state = self._state.copy()
        state[(state == 1) & (signal < self.exit_threshold)] = 0
        state[(state == -1) & (signal > -self.exit_threshold)] = 0
        flat = state == 0
        state[flat & (signal > self.entry_threshold)] = 1
        if self.long_short:
            state[flat & (signal < -self.entry_threshold)] = -1
        return state


Weighting = Literal["equal", "score", "inverse_vol"]
_WEIGHTINGS = ("equal", "score", "inverse_vol")
ScoreSource: TypeAlias = (
    "NDArray[np.float64] | pl.DataFrame | pd.DataFrame | Callable[[BarView], Any]"
)


class _ScoreInput:
    """``TopNStrategy(scores=...)``: a ``[bars, assets]`` array, a labelled frame or a callable."""

    def __init__(self, scores: object) -> None:
        self._call: Callable[[BarView], Any] | None = None
        self._array: NDArray[np.float64] | None = None
        self._wide: Wide | None = None
        if is_frame(scores):
            self._wide = read_wide(scores, label="scores")
        elif callable(scores):
            self._call = scores
        else:
            array = np.asarray(scores)
            if array.ndim != 2 or not (
                np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            ):
                raise ConfigError(
                    "scores must be a [bars, assets] array of numbers, a frame labelled by "
                    f"timestamp and asset, or a callable; got {type(scores).__name__} "
                    f"{getattr(array, 'shape', '')} {array.dtype}"
                )
            self._array = np.asarray(array, dtype=np.float64)
        self._assets: NDArray[np.str_] = np.zeros(0, dtype=np.str_)
        self._table: dict[datetime, NDArray[np.float64]] = {}
        self._seen: set[datetime] = set()

    def start(self, assets: NDArray[np.str_]) -> None:
        self._assets = assets
        self._seen = set()
        if self._array is not None and self._array.shape[1] != len(assets):
            raise ConfigError(
                f"scores has {self._array.shape[1]} columns but the feed has {len(assets)} "
                "assets; a scores array is [bars, assets] in feed.assets order"
            )
        if self._wide is not None:
            index = {str(a): i for i, a in enumerate(assets)}
            unknown = [a for a in self._wide.assets if a not in index]
            if unknown:
                raise DataError(
                    f"scores has {len(unknown)} column(s) naming no asset of the feed: "
                    f"{', '.join(map(repr, unknown[:5]))}; the feed's assets are e.g. "
                    f"{', '.join(map(str, assets[:5]))}"
                )
            aligned = np.full((len(self._wide.timestamps), len(assets)), np.nan)
            aligned[:, [index[a] for a in self._wide.assets]] = self._wide.values
            times = self._wide.timestamps.to_list()
            self._table = {t: aligned[i] for i, t in enumerate(times)}

    def has_row(self, data: BarView) -> bool:
        """False when a frame has no row for this bar (the strategy does not rebalance)."""
        if self._wide is None:
            return True
        naive = self._wide.timestamps.dtype == pl.Datetime("us")
        if naive != (data.timestamp.tzinfo is None):
            raise DataError(
                f"scores timestamps are {'naive' if naive else 'tz-aware'} but the feed's are "
                f"{'tz-aware' if naive else 'naive'} (bar at {data.timestamp}); give both the "
                "same kind so rows can be matched to bars"
            )
        self._seen.add(data.timestamp)
        return data.timestamp in self._table

    def unmatched(self) -> list[datetime]:
        """Frame rows whose timestamp was no bar of the run seen so far."""
        return [t for t in self._table if t not in self._seen]

    def row(self, data: BarView) -> NDArray[np.float64]:
        n = len(data.assets)
        if self._wide is not None:
            return self._table[data.timestamp].copy()
        if self._array is not None:
            if data.index >= self._array.shape[0]:
                raise ConfigError(
                    f"scores has {self._array.shape[0]} rows but the feed has more bars (bar "
                    f"{data.index}); a scores array is [bars, assets]"
                )
            row: NDArray[np.float64] = self._array[data.index].copy()
            return row
        assert self._call is not None
        result = self._call(data)
        if hasattr(result, "items") and not isinstance(result, np.ndarray):
            # A dict or a pandas Series keyed by asset: placed by name, missing ones NaN.
            index = {str(a): i for i, a in enumerate(data.assets)}
            placed = np.full(n, np.nan)
            for asset, value in result.items():
                if asset not in index:
                    raise DataError(
                        f"scores callable returned a score for {asset!r}, which is not an asset "
                        "of the feed"
                    )
                placed[index[asset]] = value
            return placed
        row = np.asarray(result, dtype=np.float64)
        if row.shape != (n,):
            raise ConfigError(
                f"scores callable returned shape {row.shape}; it must return one score per "
                f"asset of data.assets ({n}), or a dict / Series keyed by asset"
            )
        return row


class TopNStrategy(Strategy):
    """Hold the ``n`` assets with the highest score, rebalanced every ``rebalance_every`` bars.

    The score is one of:

    - ``column``: the name of a feed column (``data[column]``);
    - ``scores=`` an array ``[bars, assets]`` in ``feed.assets`` order (row ``data.index`` is
      read at each rebalance), or a frame labelled by timestamp and asset (pandas
      ``DatetimeIndex`` x asset columns, or polars with a timestamp column), aligned by label:
      an asset without a column has no score, a rebalance bar without a row does not
      rebalance, and an asset label the feed lacks is a ``DataError``;
    - ``scores=`` a callable ``f(data) -> scores over data.assets`` (an array, or a dict /
      pandas Series keyed by asset), e.g. a model trained in ``fit()`` scoring the view.

    Rebalancing happens on bars whose ``data.index`` is ``offset`` plus a multiple of
    ``rebalance_every`` (the first bar is 0). A strategy rebalancing every few bars can do much
    better or worse on one of those days than another by chance: sweep ``offset`` over
    ``range(rebalance_every)`` to see how much of a result is the calendar.

    Assets with a NaN score or no bar (and, for ``"inverse_vol"``, no volatility estimate) are
    never picked; ties go to the asset first in ``data.assets``. With ``long_short=True`` the
    ``n`` lowest are held short, each side ``gross / 2``; when fewer than ``2 * n`` assets
    qualify, each side takes half of them. Long-only holds ``gross``.

    Within a side, the weights sum to that side's gross and are

    - ``"equal"``: the same for every asset picked;
    - ``"score"``: proportional to the score's positive part for longs (``max(score, 0)``) and
      to ``max(-score, 0)`` for shorts, so a picked asset with the wrong sign gets nothing;
    - ``"inverse_vol"``: proportional to ``1 / vol``, with vol from ``data[vol_column]``, or
      else the sample std of the last ``vol_window`` close-to-close returns
      (``data.history("close", vol_window + 1)``, bars up to this one; a gap in the window means
      no estimate).

    Shorts need ``BacktestConfig(account="margin")``: a cash account refuses negative weights.

    Example:
        >>> strategy = TopNStrategy("momentum_20", n=5, rebalance_every=20)
        >>> feed = DataFeed(synthetic_universe(n_assets=25, n_bars=300, seed=1))  # doctest: +SKIP
        >>> result = Engine(feed, strategy, BacktestConfig()).run()  # doctest: +SKIP
        >>> TopNStrategy(scores=lambda data: model.predict(features(data)), n=5)  # doctest: +SKIP
    """

    def __init__(
        self,
        column: str | None = None,
        *,
        scores: ScoreSource | None = None,
        n: int,
        rebalance_every: int = 1,
        long_short: bool = False,
        weighting: Weighting = "equal",
        vol_column: str | None = None,
        vol_window: int = 20,
        gross: float = 1.0,
        offset: int = 0,
    ) -> None:
        if (column is None) == (scores is None):
            raise ConfigError(
                "give exactly one of column (a feed column of scores) or scores= (a [bars, "
                f"assets] array, a labelled frame, or a callable), got "
                f"{'both' if column is not None else 'neither'}"
            )
        self.column = None if column is None else _check_column("column", column)
        self._scores = _ScoreInput(scores) if scores is not None else None
        self.n = _check_count("n", n, minimum=1)
        self.rebalance_every = _check_count("rebalance_every", rebalance_every, minimum=1)
        self.offset = _check_count("offset", offset, minimum=0)
        if self.offset >= self.rebalance_every:
            raise ConfigError(
                f"offset must be below rebalance_every ({rebalance_every}), got {offset}: it "
                "picks which bar of each period rebalances"
            )
        self.long_short = bool(long_short)
        if weighting not in _WEIGHTINGS:
            raise ConfigError(
                f"weighting must be one of {', '.join(map(repr, _WEIGHTINGS))}, got {weighting!r}"
            )
        self.weighting = weighting
        if vol_column is not None:
            _check_column("vol_column", vol_column)
            if weighting != "inverse_vol":
                raise ConfigError(
                    f"vol_column={vol_column!r} is only used with weighting='inverse_vol', "
                    f"got weighting={weighting!r}; drop vol_column or change the weighting"
                )
        self.vol_column = vol_column
        # Two returns are the fewest a sample std can be computed from.
        self.vol_window = _check_count("vol_window", vol_window, minimum=2)
        self.gross = _check_positive("gross", gross)

    def on_start(self, broker: Broker) -> None:
        if self._scores is not None:
            self._scores.start(broker.assets)

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        has_row = self._scores is None or self._scores.has_row(data)
        if (data.index - self.offset) % self.rebalance_every or not has_row:
            return
        broker.rebalance(self.target_weights(data))

    def on_end(self, broker: Broker) -> None:
        unused = self._scores.unmatched() if self._scores is not None else []
        if unused:
            warnings.warn(
                f"{len(unused)} scores rows match no bar of the feed and were not used (first: "
                f"{unused[0]}); rows are matched to bar timestamps exactly, so check the time "
                "of day and time zone",
                DataWarning,
                stacklevel=2,
            )

    def scores(self, data: BarView) -> NDArray[np.float64]:
        """This bar's scores over ``data.assets`` (NaN: no score)."""
        if self._scores is not None:
            return self._scores.row(data)
        assert self.column is not None
        return data[self.column]

    def target_weights(self, data: BarView) -> NDArray[np.float64]:
        """The weights this bar's rebalance targets, over ``data.assets``."""
        score = self.scores(data)
        eligible = np.isfinite(score) & data.has_bar
        vol = None
        if self.weighting == "inverse_vol":
            vol = self.volatility(data)
            eligible &= np.isfinite(vol) & (vol > 0.0)
        k = int(eligible.sum())
        if self.long_short:
            k //= 2
        k = min(self.n, k)
        weights = np.zeros(len(score))
        if k == 0:
            return weights
        # Stable sorts on the negated score keep ties in asset order on both sides.
        ranked = np.where(eligible, score, -np.inf)
        longs = np.argsort(-ranked, kind="stable")[:k]
        side_gross = self.gross / 2 if self.long_short else self.gross
        weights[longs] = side_gross * self._side_weights(score[longs], vol, longs)
        if self.long_short:
            # The longs are left out so that tied scores cannot put one asset on both sides.
            ranked = np.where(eligible, score, np.inf)
            ranked[longs] = np.inf
            shorts = np.argsort(ranked, kind="stable")[:k]
            weights[shorts] = -side_gross * self._side_weights(-score[shorts], vol, shorts)
        return weights

    def volatility(self, data: BarView) -> NDArray[np.float64]:
        """Per-asset volatility for inverse-vol weights: ``data[vol_column]`` or trailing std."""
        if self.vol_column is not None:
            return data[self.vol_column]
        closes = data.history("close", self.vol_window + 1)
        returns = closes[1:] / closes[:-1] - 1.0
        std: NDArray[np.float64] = np.std(returns, axis=0, ddof=1)
        return std

    def _side_weights(
        self,
        score: NDArray[np.float64],
        vol: NDArray[np.float64] | None,
        picked: NDArray[np.intp],
    ) -> NDArray[np.float64]:
        """Weights of one side's picks summing to 1 (or all 0 when nothing has weight)."""
        if self.weighting == "score":
            raw = np.maximum(score, 0.0)
        elif self.weighting == "inverse_vol":
            assert vol is not None
            raw = 1.0 / vol[picked]
        else:
            raw = np.ones(len(picked))
        total = raw.sum()
        return raw / total if total > 0.0 else np.zeros(len(picked))


# Kept weights are scaled up by this much so that the broker's truncation to whole shares lands
# on the quantity held: quantity * price / equity * equity / price can come out a few ulps
# below the quantity, and truncating that would sell one share.
_KEEP_NUDGE = 1.0 + 1e-12


class TargetWeightStrategy(Strategy):
    """Hold target weights of equity given as a wide frame or as a feed column.

    - ``weights``: a polars or pandas frame with a ``timestamp`` column (or ``date`` /
      ``datetime``, or a pandas ``DatetimeIndex``) and one column per asset, matched to the
      feed's assets by name (a column naming no asset is a ``DataError``). A row's timestamp
      is matched exactly (same instant; a date column means midnight) to the bar's
      ``timestamp``; bars without a row keep the last target. Assets without a column,
      and NaN cells, are weight 0. Rows that match no bar are reported by a ``DataWarning`` at
      the end of the run.
    - ``column="w"``: ``data["w"]`` is each asset's target weight on every bar; NaN (no value,
      or no bar) is 0.

    The portfolio is rebalanced (``broker.rebalance``) only on bars where the target changes.
    There, an asset whose target differs from its current weight (``quantity * close / equity``)
    by less than ``min_trade`` keeps its current holding, to avoid trading small differences.
    Negative weights (shorts) need ``BacktestConfig(account="margin")``.

    Example:
        >>> from datetime import datetime
        >>> days = [datetime(2024, 1, 2), datetime(2024, 2, 1)]
        >>> weights = pl.DataFrame({"timestamp": days, "AAPL": [0.5, 0.3], "MSFT": [0.5, 0.7]})
        >>> strategy = TargetWeightStrategy(weights, min_trade=0.01)
        >>> result = Engine(feed, strategy, BacktestConfig()).run()  # doctest: +SKIP
    """

    def __init__(
        self,
        weights: pl.DataFrame | pd.DataFrame | None = None,
        *,
        min_trade: float = 0.0,
        column: str | None = None,
    ) -> None:
        if (weights is None) == (column is None):
            raise ConfigError(
                "give exactly one of weights (a wide frame: timestamp plus one column per asset) "
                f"or column (a feed column of weights), got "
                f"{'both' if column is not None else 'neither'}"
            )
        self.column = None if column is None else _check_column("column", column)
        self.min_trade = _check_finite("min_trade", min_trade)
        if self.min_trade < 0.0:
            raise ConfigError(
                f"min_trade must be >= 0 (a fraction of equity, 0.01 = 1%), got {min_trade}"
            )
        self._times: list[datetime] = []
        self._frame_assets: list[str] = []
        self._values: NDArray[np.float64] = np.zeros((0, 0))
        if weights is not None:
            self._times, self._frame_assets, self._values = _wide_weights(weights)
        self._naive = bool(self._times) and self._times[0].tzinfo is None
        self._table: dict[datetime, NDArray[np.float64]] = {}
        self._used: set[datetime] = set()
        self._target: NDArray[np.float64] = np.zeros(0)

    def on_start(self, broker: Broker) -> None:
        self._target = np.zeros(len(broker.assets))
        self._used = set()
        if self.column is None:
            self._table = _align_weights(
                self._times, self._frame_assets, self._values, broker.assets
            )

    def on_data(self, timestamp: datetime, data: BarView, broker: Broker) -> None:
        if self.column is not None:
            target = data[self.column]
            target[np.isnan(target)] = 0.0
        else:
            if self._naive != (timestamp.tzinfo is None):
                raise ConfigError(
                    f"weights timestamps are {'naive' if self._naive else 'tz-aware'} but the "
                    f"feed's are {'tz-aware' if self._naive else 'naive'} (bar at {timestamp}); "
                    "give both the same kind so rows can be matched to bars"
                )
            row = self._table.get(timestamp)
            if row is None:
                return
            self._used.add(timestamp)
            target = row
        if np.array_equal(target, self._target):
            return
        self._target = target.copy()
        weights = target
        if self.min_trade > 0.0:
            current = self.current_weights(broker)
            keep = np.abs(target - current) < self.min_trade
            weights = np.where(keep, current * _KEEP_NUDGE, target)
        broker.rebalance(weights)

    def on_end(self, broker: Broker) -> None:
        unused = [t for t in self._table if t not in self._used]
        if unused:
            warnings.warn(
                f"{len(unused)} of {len(self._table)} weights rows match no bar of the feed and "
                f"were not used (first: {unused[0]}); rows are matched to bar timestamps "
                "exactly, so check the time of day and time zone",
                DataWarning,
                stacklevel=2,
            )

    @staticmethod
    def current_weights(broker: Broker) -> NDArray[np.float64]:
        """Each asset's held value over equity, at the latest close."""
        quantities = broker.quantities
        held = quantities != 0.0
        values = np.zeros(len(quantities))
        values[held] = quantities[held] * broker.last_prices[held]
        equity = broker.equity
        return values / equity if equity > 0.0 else np.zeros(len(quantities))


# ---- argument checks and frame conversion ------------------------------------------------------


def _check_column(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{name} must be the name of a feed column (a non-empty str), got {value!r}"
        )
    return value


def _check_finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return number


def _check_positive(name: str, value: object) -> float:
    number = _check_finite(name, value)
    if number <= 0.0:
        raise ConfigError(f"{name} must be > 0 (a fraction of equity, 0.1 = 10%), got {value!r}")
    return number


def _check_count(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _wide_weights(
    weights: pl.DataFrame | pd.DataFrame,
) -> tuple[list[datetime], list[str], NDArray[np.float64]]:
    """A wide weights frame -> (timestamps, asset names, [rows, assets] weights with NaN as 0)."""
    if not isinstance(weights, pl.DataFrame):
        if type(weights).__name__ != "DataFrame" or not type(weights).__module__.startswith(
            "pandas"
        ):
            raise ConfigError(
                "weights must be a polars or pandas DataFrame (a timestamp column plus one "
                f"column per asset), got {type(weights).__name__}"
            )
        import pandas as pd

        if "timestamp" not in weights.columns and (
            weights.index.name == "timestamp" or isinstance(weights.index, pd.DatetimeIndex)
        ):
            # A DatetimeIndex (any name, e.g. yfinance's "Date") labels the rows by time.
            weights = weights.rename_axis(index="timestamp").reset_index()
        weights = pl.from_pandas(weights)
    aliases = [c for c in weights.columns if c.lower() in ("date", "datetime")]
    if "timestamp" not in weights.columns and len(aliases) == 1:
        weights = weights.rename({aliases[0]: "timestamp"})
    if "timestamp" not in weights.columns:
        raise ConfigError(
            f"weights has no 'timestamp' column (columns: {', '.join(weights.columns)}); the "
            "wide format is a timestamp column plus one column per asset"
        )
    if weights.height == 0:
        raise ConfigError("weights has no rows; give at least one row of target weights")
    times = weights["timestamp"]
    if times.dtype == pl.Date:
        times = times.cast(pl.Datetime("us"))
    if not isinstance(times.dtype, pl.Datetime):
        raise ConfigError(
            f"weights column 'timestamp' has dtype {times.dtype}; it must be a datetime or date"
        )
    if times.null_count():
        raise ConfigError(f"weights column 'timestamp' has {times.null_count()} null values")
    duplicated = times.is_duplicated()
    if duplicated.any():
        raise ConfigError(
            f"weights has more than one row for timestamp {times.filter(duplicated)[0]}; "
            "give one row per timestamp"
        )
    assets = [c for c in weights.columns if c != "timestamp"]
    if not assets:
        raise ConfigError("weights has no asset columns; add one column of weights per asset")
    for name in assets:
        if not weights[name].dtype.is_numeric():
            raise ConfigError(
                f"weights column {name!r} has dtype {weights[name].dtype}; weights must be numeric"
            )
    values = weights.select(pl.col(assets).cast(pl.Float64)).to_numpy()
    values = np.where(np.isnan(values), 0.0, values)
    if not np.isfinite(values).all():
        row, col = np.argwhere(~np.isfinite(values))[0]
        raise ConfigError(
            f"weights column {assets[col]!r} is {values[row, col]} at timestamp {times[int(row)]}; "
            "weights must be finite (NaN means 0)"
        )
    return times.to_list(), assets, values


def _align_weights(
    times: list[datetime],
    frame_assets: list[str],
    values: NDArray[np.float64],
    assets: NDArray[np.str_],
) -> dict[datetime, NDArray[np.float64]]:
    """{timestamp: weights over ``assets``}; a frame column naming no feed asset is an error."""
    index = {str(a): i for i, a in enumerate(assets)}
    unknown = [a for a in frame_assets if a not in index]
    if unknown:
        shown = ", ".join(map(repr, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        raise DataError(
            f"weights has {len(unknown)} column(s) naming no asset of the feed: {shown}; "
            f"the feed's assets are e.g. {', '.join(map(str, assets[:5]))}"
        )
    aligned = np.zeros((len(times), len(assets)))
    aligned[:, [index[a] for a in frame_assets]] = values
    return {t: aligned[i] for i, t in enumerate(times)}
