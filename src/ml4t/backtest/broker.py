"""The broker: the strategy's handle on orders, positions and cash.

A thin front end over the run's state records (``kernels.state``: settings, book, account, rule
state): the methods a strategy calls check their arguments and write orders into the book; the
phases of each bar are compiled (``kernels.clock``) and the engine runs them through
``open_phase`` and ``close_phase``. The compiled driver reads the same records
(``kernel_state``). Sizing helpers
(``order_target_percent``, ``rebalance``, ...) work at decision time: they use the equity and the
close of the bar the strategy is looking at, and net out orders still waiting to fill. Settings
move parts of that to the fill: ``sizing_price="fill"`` the price a value becomes shares at,
``sizing_equity="fill"`` the equity a percent is of; an all-in order (a quantity or target
value of inf) takes its size from the cash at its fill.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .config import BacktestConfig
from .errors import ConfigError, OrderError, OrderWarning
from .execution.commission import COMMISSION_PYTHON, commission_table
from .execution.slippage import SLIPPAGE_PYTHON, SlippageModel, slippage_table
from .kernels import clock, python_models, sizing
from .kernels.accounts import mark_to_market
from .kernels.book import (
    H_BLOCK,
    H_STOPPED,
    H_WIDTH,
    cancel_order,
    reject_growing,
    start_day,
)
from .kernels.driver import (
    SIGNAL_ROWS,
    SIZE_SHARES,
    OppositeEntryT,
    SizeTypeT,
    bar_signals,
    broker_target,
    room_for_bar,
    signals_replaced,
)
from .kernels.jit import kept_call
from .kernels.records import (
    DAY,
    GTC,
    INACTIVE,
    LIMIT,
    MARKET,
    O_CLOSE,
    O_ORDER,
    O_REBALANCE,
    O_STOP_LOSS,
    O_TAKE_PROFIT,
    O_TARGET,
    OPEN,
    ORDER_TYPE_NAMES,
    PARTIALLY_FILLED,
    R_CANCELLED_BY_USER,
    R_END_OF_DATA,
    REASON_NAMES,
    REJECTED,
    SIZE_AT_DECISION,
    STATUS_NAMES,
    STOP,
    STOP_LIMIT,
    TRAILING_STOP,
    FillTiming,
    names,
)
from .kernels.sizing import all_in_estimate
from .kernels.state import (
    A_LAST_PRICE,
    A_PENDING,
    A_POSITION,
    A_VOLUME_USED,
    C_FILLS,
    C_OPEN,
    C_ORDERS,
    FULL_FILLS,
    PLAIN_FILLS,
    REC_WIDTH,
    RF_ENTRY_PRICE,
    RF_SCRATCH_QTY,
    RI_ASSET_SET,
    RI_EXIT_ORDER,
    RI_POSITION_SET,
    RI_SCRATCH_ASSETS,
    S_DAILY_LIMIT,
    S_DAILY_LIQUIDATE,
    S_DRAWDOWN_LIMIT,
    S_DRAWDOWN_LIQUIDATE,
    S_EQUITY,
    S_HALT,
    S_LIMITS,
    S_MONTH_VOLUME,
    S_RULES_ON,
    Account,
    Book,
    Full,
    KernelState,
    Market,
    RuleState,
    Settings,
    bit_words,
    new_account,
    new_rule_rows,
    settings_from_config,
)
from .kernels.targets import NO_ROOM, REFUSED, target_orders
from .orders import FillLog, Order, OrderBook
from .risk.portfolio import (
    DailyLossLimit,
    MaxDrawdownHalt,
    MaxGrossExposure,
    MaxNetExposure,
    MaxPositions,
    MaxPositionWeight,
    PortfolioRule,
)
from .risk.position import ATR_PREFIX, PositionRule, RuleTables
from .risk.volatility import average_true_range

OrderType = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
TimeInForce = Literal["gtc", "day"]
SizeType = Literal["percent", "value", "shares"]
OppositeEntry = Literal["reverse", "close", "ignore"]
_SIZE_TYPES: tuple[str, ...] = names(SizeTypeT)
_OPPOSITE_ENTRIES: tuple[str, ...] = names(OppositeEntryT)


# The config's kernel codes: ``kernels.state.settings_from_config`` is the one translation; these
# names keep the spelling part 1 of issue 14 gave them.
KernelSettings = Settings
kernel_settings = settings_from_config

# Called with the range [first, last) of the fills a step of a bar made.
FillRange = Callable[[int, int], None]


class Broker:
    """Orders, positions and cash for one backtest; handed to every ``Strategy`` callback.

    Example:
        >>> def on_data(self, timestamp, data, broker):  # doctest: +SKIP
        ...     broker.order_target_percent("AAPL", 0.5)   # half the equity in AAPL
        ...     broker.rebalance({"MSFT": 0.3, "GOOG": 0.2})  # and everything else closed
    """

    def __init__(
        self,
        assets: NDArray[np.str_],
        config: BacktestConfig,
        *,
        columns: Callable[[str], NDArray[np.float64]] | None = None,
        n_bars: int = 0,
    ) -> None:
        n = len(assets)
        self._n_assets = n
        self._assets = assets
        names: list[str] = np.asarray(assets).tolist()  # str, not np.str_: a C loop
        self._index = dict(zip(names, range(n), strict=True))
        self._config = config
        self._settings = settings = settings_from_config(config)
        self._fractional = settings.fractional
        self._cash_account = settings.cash_account
        self._size_at_fill = settings.fill_sizing != SIZE_AT_DECISION
        self._fill_equity = settings.fill_equity
        self._same_close = settings.fill_timing == FillTiming.same_close
        self._rounding = settings.rounding
        slippage, self._slippage_models = slippage_table(
            config.slippage, names, config.slippage_overrides
        )
        commission, self._commission_models = commission_table(
            config.commission, names, config.commission_overrides
        )
        # Models written in Python run through a callback from the step (see python_models).
        self._python_models = bool(
            (commission[:, 0] == COMMISSION_PYTHON).any()
            or (slippage[:, 0] == SLIPPAGE_PYTHON).any()
        )
        self._acc = acc = new_account(
            config.initial_cash, n, borrow_rate=config.borrow_rate_annual,
            commission=commission, slippage=slippage,
        )  # fmt: skip
        self._settings_need_full = self._settings_ask_full_fills()
        # Views of the account's rows: Python and the compiled phases share the memory.
        self._account = acc.scalars  # cash is its first value
        self._acc_assets = acc.assets
        self._positions: NDArray[np.float64] = acc.assets[A_POSITION]
        self._pending: NDArray[np.float64] = acc.assets[A_PENDING]
        self._last_price: NDArray[np.float64] = acc.assets[A_LAST_PRICE]
        self._halt = acc.scalars[S_HALT : S_HALT + H_WIDTH]
        self._warned_no_equity = False
        self._bar = -1

        # Position rules: what each position was entered at, and the compiled rule sets.
        self._rules = RuleTables(
            None if columns is None else self._rule_column_source(columns), n_bars, n
        )
        self._rule_rows = new_rule_rows(n)
        floats, ints = self._rule_rows
        self._position_set = ints[RI_POSITION_SET]
        self._asset_set = ints[RI_ASSET_SET]
        self._entry_price = floats[RF_ENTRY_PRICE]
        self._rebalance_assets = ints[RI_SCRATCH_ASSETS]
        self._rebalance_quantities = floats[RF_SCRATCH_QTY]
        self._asset_own = np.zeros(n, dtype=np.bool_)  # set per asset, not by the global rule
        self._global_set = -1
        self._rule_state: RuleState | None = None  # built from the tables when they change
        # ``target_orders``' compiled function, once typed (``_target_orders``).
        self._targets_call: Callable[..., tuple[int, int, int, int]] | None = None
        self._signals_call: Callable[..., tuple[int, int, bool]] | None = None
        # ``order_signals``' rows of bits (``kernels.driver.signal_words``: entries, exits), one
        # word per 64 assets.
        self._signal_words = np.zeros((SIGNAL_ROWS, bit_words(n)), dtype=np.uint64)
        self._target_call: Callable[..., int] | None = None
        self._signal_sizing: tuple[object, tuple[float, int, int]] | None = None
        self._row_shape = (n,)
        self._no_row = np.zeros(n, dtype=np.bool_)  # no exit signals (read, never written)

        self.orders = OrderBook()
        self.fills = FillLog(self.orders.counts)
        self._book: Book | None = None
        # ``open_phase``'s compiled function for the records it was last called with.
        self._open_for: tuple[object, ...] | None = None
        self._open_call: Callable[..., None] = clock.open_plain
        # The steps, book and rules of the last plain open phase: while they stay, a bar's open
        # phase is ``_open_call`` and nothing else.
        self._open_plain: tuple[Callable[..., None], ...] | None = ()
        self._open_book: Book | None = None
        self._open_rules: RuleState | None = None
        self._open_full: Full = PLAIN_FILLS
        # The last plain open phase's call and what it was made for (``_open_fast``): while
        # the books have room and nothing it holds was replaced, a bar calls it and no more.
        self._open_fast: _OpenCall | None = None
        # ``close_phase``'s compiled function, and the records it was typed for.
        self._close_call: Callable[..., None] = clock.close_phase
        self._close_for: tuple[object, ...] = ()
        # The steps of the open phase this run's settings need (``clock.open_steps``); rules
        # and portfolio rules set later change them.
        self._open_steps: tuple[Callable[..., None], ...] | None = None
        self._steps_one_by_one = False
        # What the engine attaches for a run: the market and the per-bar records.
        self._market: Market | None = None
        self._records = np.zeros((REC_WIDTH, max(n_bars, 1)))

    # ---- what the strategy reads -------------------------------------------------------------

    @property
    def config(self) -> BacktestConfig:
        """The configuration this broker runs under."""
        return self._config

    @property
    def cash(self) -> float:
        """Cash in the account now."""
        return float(self._account[0])

    @property
    def equity(self) -> float:
        """Cash plus positions marked at the latest close (the close of the current bar)."""
        return float(self._account[S_EQUITY])

    @property
    def slippage_models(self) -> tuple[SlippageModel, ...]:
        """Each asset's slippage model (the config's, or its override), over ``assets``.

        Example:
            >>> broker.slippage_models[0]  # doctest: +SKIP
            NoSlippage()
        """
        return tuple(self._slippage_models)

    @property
    def assets(self) -> NDArray[np.str_]:
        """The feed's assets; arrays over assets (``quantities``, ``rebalance``) use this order."""
        return self._assets

    @property
    def quantities(self) -> NDArray[np.float64]:
        """Positions as an array over ``assets`` (a copy; signed quantities)."""
        return self._positions.copy()

    @property
    def pending(self) -> NDArray[np.float64]:
        """Signed quantities of market orders still waiting to fill, over ``assets`` (a copy)."""
        return self._pending.copy()

    @property
    def last_prices(self) -> NDArray[np.float64]:
        """The latest close of every asset (its last mark; NaN before its first bar), a copy."""
        return self._last_price.copy()

    @property
    def positions(self) -> dict[str, float]:
        """Open positions by asset (assets with zero quantity are left out)."""
        held = np.flatnonzero(self._positions)
        return {str(self._assets[i]): float(self._positions[i]) for i in held}

    def position(self, asset: str) -> float:
        """Signed quantity held in ``asset`` (0.0 if none)."""
        return float(self._positions[self._asset_id(asset)])

    @property
    def open_orders(self) -> list[Order]:
        """Orders working or waiting (bracket legs before their entry fills), oldest first."""
        ids = np.sort(self.orders.open_ids[: self.orders.n_open])
        status = self.orders.records["status"][ids]
        live = (status == OPEN) | (status == PARTIALLY_FILLED) | (status == INACTIVE)
        return [self.orders.snapshot(int(i), self._assets) for i in ids[live]]

    # ---- orders ------------------------------------------------------------------------------

    def submit_order(
        self,
        asset: str,
        quantity: float,
        *,
        side: Literal["buy", "sell"] | None = None,
        order_type: OrderType | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        tif: TimeInForce = "gtc",
        position_rules: PositionRule | None = None,
    ) -> int:
        """Submit an order and return its id.

        ``quantity`` is signed (> 0 buys, < 0 sells), or positive with ``side="buy"|"sell"``.
        ``math.inf`` (``-math.inf`` to sell short, margin accounts) is all-in, VectorBT's
        ``size=np.inf`` and backtesting.py's ``buy()``: the order takes its size at its fill,
        the most the cash (or margin) pays for at the fill price, commission and slippage
        included, whole shares unless fractional; it is recorded as a plain fill.
        ``order_type`` defaults from the prices given: none is a market order, ``limit_price``
        a limit, ``stop_price`` a stop, both a stop-limit, a trail a trailing stop. Market orders
        fill at the next bar's open (or this bar's close with ``fill_timing="same_close"``);
        the others from the next bar on, at their level or at the open when it gapped past it.
        ``tif="day"`` orders expire after the first bar they could fill on.
        ``position_rules`` watch the position this order opens (see ``set_position_rules``).

        Example:
            >>> broker.submit_order("AAPL", 100)  # doctest: +SKIP
            >>> broker.submit_order("AAPL", 40, side="sell", limit_price=195.0)  # doctest: +SKIP
            >>> broker.submit_order("AAPL", -100, trail_percent=0.05)  # doctest: +SKIP
            >>> broker.submit_order("AAPL", math.inf)  # all the cash buys  # doctest: +SKIP
        """
        a = self._asset_id(asset)
        all_in = _is_infinite(quantity)
        target_value = math.nan
        if all_in:
            side_sign = self._all_in_side(asset, float(quantity), side)
            qty = side_sign * all_in_estimate(
                self.cash, float(self._last_price[a]), self._fractional
            )
            target_value = side_sign * math.inf
        else:
            qty = self._signed_quantity(asset, quantity, side)
        kind = self._order_kind(
            asset, order_type, limit_price, stop_price, trail_amount, trail_percent
        )
        _check_tif(asset, tif)
        trail_ref = np.nan
        if kind == TRAILING_STOP:
            trail_ref = self._decision_price(a)
        ids = self.orders.add(
            np.array([a], dtype=np.int64),
            np.array([qty]),
            bar=self._bar,
            origin=O_ORDER,
            order_type=kind,
            limit_price=_price_or_nan(limit_price),
            stop_price=_price_or_nan(stop_price),
            trail_amount=_price_or_nan(trail_amount),
            trail_percent=_price_or_nan(trail_percent),
            trail_ref=trail_ref,
            target_value=target_value,
            tif=DAY if tif == "day" else GTC,
        )
        if kind == MARKET:
            self._pending[a] += qty
        if position_rules is not None:
            self.orders.records["rule_set"][ids[0]] = self._rules.set_id(position_rules)
            self._rule_state = None  # the tables may have grown
        self._open_steps = None
        self._screen(ids)
        return int(ids[0])

    def submit_bracket(
        self,
        asset: str,
        quantity: float,
        *,
        take_profit: float | None = None,
        stop_loss: float | None = None,
        take_profit_pct: float | None = None,
        stop_loss_pct: float | None = None,
        side: Literal["buy", "sell"] | None = None,
        limit_price: float | None = None,
        tif: TimeInForce = "gtc",
    ) -> tuple[int, int, int]:
        """Submit an entry with a take-profit limit and a stop-loss stop that cancel each other.

        The legs work from the bar the entry fills (see ``stops_on_entry_bar``) for the quantity
        filled; when one fills, the other is cancelled. If one bar touches both, the config's
        ``intrabar_priority`` picks the one that fills. Returns (entry, take-profit, stop-loss)
        ids. The entry is a market order, or a limit order with ``limit_price``.

        Each level is a price (``take_profit``, ``stop_loss``) or a distance from the entry as a
        fraction (``take_profit_pct``, ``stop_loss_pct``), measured from what the config's
        ``stop_anchor`` names: the entry's fill price (``"fill"``) or the decision close.

        Example:
            >>> broker.submit_bracket("AAPL", 100, take_profit=210, stop_loss=180)  # doctest: +SKIP
            >>> broker.submit_bracket(  # doctest: +SKIP
            ...     "AAPL", 100, take_profit_pct=0.1, stop_loss_pct=0.05
            ... )
        """
        a = self._asset_id(asset)
        qty = self._signed_quantity(asset, quantity, side)
        _check_tif(asset, tif)
        direction = 1.0 if qty > 0 else -1.0
        # Signed distances from the anchor: a long's take-profit is above it, its stop below.
        offsets = {
            "take_profit": _bracket_offset(asset, "take_profit", take_profit, take_profit_pct),
            "stop_loss": _bracket_offset(asset, "stop_loss", stop_loss, stop_loss_pct),
        }
        tp_offset = direction * offsets["take_profit"]
        sl_offset = -direction * offsets["stop_loss"]
        anchored = self._config.stop_anchor == "fill"
        if not anchored:
            close = self._decision_price(a)
            if take_profit is None:
                take_profit = close * (1.0 + tp_offset)
            if stop_loss is None:
                stop_loss = close * (1.0 + sl_offset)
        # A level still None is anchored to the fill: the step sets it when the entry fills.
        tp_level, sl_level = take_profit, stop_loss
        for name, level in (("take_profit", tp_level), ("stop_loss", sl_level)):
            if level is not None:
                _check_price(asset, name, level)
        if (
            tp_level is not None
            and sl_level is not None
            and ((qty > 0 and not sl_level < tp_level) or (qty < 0 and not tp_level < sl_level))
        ):
            raise OrderError(
                f"bracket on asset {asset}: a {'long' if qty > 0 else 'short'} entry needs "
                f"{'stop_loss < take_profit' if qty > 0 else 'take_profit < stop_loss'}, got "
                f"take_profit={tp_level}, stop_loss={sl_level}"
            )
        if limit_price is not None:
            _check_price(asset, "limit_price", limit_price)
        entry_kind = MARKET if limit_price is None else LIMIT
        assets = np.array([a], dtype=np.int64)
        entry = int(
            self.orders.add(
                assets,
                np.array([qty]),
                bar=self._bar,
                origin=O_ORDER,
                order_type=entry_kind,
                limit_price=_price_or_nan(limit_price),
                tif=DAY if tif == "day" else GTC,
            )[0]
        )
        if entry_kind == MARKET:
            self._pending[a] += qty
        legs = np.array([-qty])
        tp = entry + 1
        sl = entry + 2
        self.orders.add(
            assets,
            legs,
            bar=self._bar,
            origin=O_TAKE_PROFIT,
            order_type=LIMIT,
            limit_price=_price_or_nan(tp_level),
            level_offset=tp_offset if tp_level is None else math.nan,
            parent=entry,
            oco=sl,
            status=INACTIVE,
        )
        self.orders.add(
            assets,
            legs,
            bar=self._bar,
            origin=O_STOP_LOSS,
            order_type=STOP,
            stop_price=_price_or_nan(sl_level),
            level_offset=sl_offset if sl_level is None else math.nan,
            parent=entry,
            oco=tp,
            status=INACTIVE,
        )
        self._screen(np.array([entry], dtype=np.int64))
        return entry, tp, sl

    def replace_order(
        self,
        order_id: int,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> None:
        """Change a working order's quantity or price levels in place (it keeps its id).

        Only an order with nothing filled yet can be replaced; the change applies from the next
        bar it is checked on.
        """
        book = self.orders.records
        order = self._live_order(order_id)
        asset = str(self._assets[order["asset"]])
        if order["status"] != OPEN or order["filled"] != 0.0:
            raise OrderError(
                f"order {order_id} on asset {asset} is {_status_name(order)}: only an open, "
                "unfilled order can be replaced"
            )
        kind = int(order["order_type"])
        if quantity is not None:
            qty = self._check_quantity(asset, quantity)
            if kind == MARKET:
                self._pending[order["asset"]] += qty - order["quantity"]
            book["quantity"][order_id] = qty
        if limit_price is not None:
            if kind not in (LIMIT, STOP_LIMIT):
                raise OrderError(
                    f"order {order_id} on asset {asset} is a {ORDER_TYPE_NAMES[kind]} order: "
                    "it has no limit price to replace"
                )
            book["limit_price"][order_id] = _check_price(asset, "limit_price", limit_price)
        if stop_price is not None:
            if kind not in (STOP, STOP_LIMIT):
                raise OrderError(
                    f"order {order_id} on asset {asset} is a {ORDER_TYPE_NAMES[kind]} order: "
                    "it has no stop price to replace"
                )
            book["stop_price"][order_id] = _check_price(asset, "stop_price", stop_price)

    def order_target_quantity(self, asset: str, target: float) -> int | None:
        """Order what it takes to hold ``target`` shares once waiting orders fill.

        Returns the order id, or None when no order is needed.
        """
        a = self._asset_id(asset)
        if not math.isfinite(target):
            raise OrderError(f"target quantity for asset {asset} must be finite, got {target}")
        if not self._fractional and target != int(target):
            raise OrderError(
                f"target quantity {target} for asset {asset} is fractional but "
                "fractional_shares is off; pass a whole number"
            )
        return self._order_towards(a, float(target), O_TARGET)

    def order_target_value(self, asset: str, value: float) -> int | None:
        """Order what it takes to hold ``value`` worth of ``asset`` at the current close.

        Whole shares are rounded towards zero unless fractional shares are on. ``math.inf``
        (``-math.inf``: short, margin accounts) orders all-in, as ``submit_order(asset,
        math.inf)`` does: whatever is held, the order buys what the cash pays for at its fill.

        Example:
            >>> broker.order_target_value("AAPL", 10_000)  # doctest: +SKIP
            >>> broker.order_target_value("AAPL", math.inf)  # all-in  # doctest: +SKIP
        """
        return self._target_value(asset, value, math.nan)

    def _target_value(self, asset: str, value: float, weight: float) -> int | None:
        """``order_target_value``, the order carrying ``weight`` (a weight of equity, NaN for
        none) for ``sizing_equity="fill"``."""
        a = self._asset_id(asset)
        price = self._decision_price(a)
        if _is_infinite(value):
            side = self._all_in_side(asset, float(value), None)
            estimate = all_in_estimate(self.cash, price, self._fractional)
            return self._order_towards(a, side * estimate, O_TARGET, target_value=side * math.inf)
        if not math.isfinite(value):
            raise OrderError(f"target value for asset {asset} must be finite, got {value}")
        return self._order_towards(
            a, math.nan, O_TARGET, value=value, target_value=float(value), target_weight=weight
        )

    def order_target_percent(self, asset: str, percent: float) -> int | None:
        """Order what it takes to hold ``percent`` of equity (0.1 = 10%) in ``asset``.

        While equity is zero or negative no order is placed (a percent of a negative equity
        would turn a buy into a sell) and an ``OrderWarning`` says so, once per run; close
        positions with ``close_position`` or ``order_target_quantity``. With
        ``sizing_equity="fill"`` the percent is of the equity at the fill bar (its open, before
        its fills), not of ``equity`` now.
        """
        if not math.isfinite(percent):
            raise OrderError(f"target percent for asset {asset} must be finite, got {percent}")
        self._decision_price(self._asset_id(asset))
        if self._no_equity(f"order_target_percent({asset!r}, {percent!r})"):
            return None
        return self._target_value(asset, percent * self._equity, float(percent))

    def order_target_percents(self, percents: Mapping[str, float] | ArrayLike) -> NDArray[np.int64]:
        """``order_target_percent`` for many assets in one call; returns the order ids.

        ``percents`` is a mapping ``{asset: percent}`` or an array over ``data.assets`` where
        NaN leaves an asset alone (unlike ``rebalance``, which closes what it is not given).
        The orders and their order are those of calling ``order_target_percent`` asset by
        asset, in ``assets`` order, without a Python call per asset (none while equity <= 0).

        Example:
            >>> p = np.full(len(data.assets), np.nan)  # doctest: +SKIP
            >>> p[entries] = 0.01; p[exits] = 0.0      # doctest: +SKIP
            >>> broker.order_target_percents(p)        # doctest: +SKIP
        """
        return self._order_targets(percents, self._equity, "percent")

    def order_target_values(self, values: Mapping[str, float] | ArrayLike) -> NDArray[np.int64]:
        """``order_target_value`` for many assets in one call (NaN: leave alone); the ids.

        Example:
            >>> v = np.full(len(data.assets), np.nan)   # doctest: +SKIP
            >>> v[entries] = 10_000.0; v[exits] = 0.0   # doctest: +SKIP
            >>> broker.order_target_values(v)           # doctest: +SKIP
        """
        # A value is a percent of an equity of 1: value * 1.0 / price is value / price exactly.
        return self._order_targets(values, 1.0, "value")

    def order_signals(
        self,
        entries: ArrayLike,
        exits: ArrayLike | None = None,
        *,
        short_entries: ArrayLike | None = None,
        short_exits: ArrayLike | None = None,
        size: float = 1.0,
        size_type: SizeType = "percent",
        upon_opposite_entry: OppositeEntry = "reverse",
    ) -> NDArray[np.int64]:
        """Trade this bar's entry and exit signals (one bool per asset, ``assets`` order) as
        ``run_signals`` trades its row for this bar; returns the ids of the new orders.

        The rule is ``run_signals``' own, compiled, in one call: per asset with a bar, an exit
        signal closes a long (a short exit a short), an entry signal on an asset with no
        position and no order waiting opens ``size`` (a fraction of equity, an amount of cash
        or shares; ``np.inf`` is all-in), an entry against the position held reverses it
        (``upon_opposite_entry``), and an entry a position rule's exit replaces on its bar is
        dropped. A strategy that calls it with the rows of ``run_signals``' arrays on every bar
        makes the same orders and fills, to the bit (a property test checks it), and can mix
        in decisions of its own.

        Example:
            >>> def on_data(self, timestamp, data, broker):  # doctest: +SKIP
            ...     score = self.model.predict(data)          # one score per asset
            ...     broker.order_signals(score > 1.0, score < 0.0, size=0.1)
        """
        key = (size, size_type, upon_opposite_entry)
        sized = self._signal_sizing
        if sized is None or sized[0] != key:
            checked = signal_sizing(
                size, size_type, upon_opposite_entry, fractional=self.config.fractional_shares
            )
            sized = self._signal_sizing = (key, checked)
        value, size_code, opposite_code = sized[1]
        long_in = self._signal_row("entries", entries)
        long_out = self._no_row if exits is None else self._signal_row("exits", exits)
        short_in = short_out = _NO_ROW
        if short_entries is not None or short_exits is not None:
            short_in, short_out = self._short_rows(short_entries, short_exits)
        market = self._market
        if market is None:
            raise OrderError("order_signals needs a run's market: call it from on_data")
        if value == math.inf:
            self.orders.needs_full_fills = True  # all-in orders: sized at their fill
        call = self._signals_call
        while True:
            args = (
                self._bar, long_in, long_out, short_in, short_out, value, size_code,
                opposite_code, _NO_FLOATS, _NO_BARS, self._signal_words, self._settings, market,
                self._book_record(), self._acc, self._rules_record(),
            )  # fmt: skip
            if call is None:
                # The rows are C-ordered, writeable bool arrays (``_signal_row``): later calls
                # have the same argument types and skip the typing of each.
                (first, last, refused), call = kept_call(bar_signals, args)
                self._signals_call = call
            else:
                first, last, refused = call(*args)
            if first >= 0:
                break
            self.orders.reserve(self._n_assets)  # the rule places at most one order per asset
        if refused:
            self._no_equity("order_signals(...)")  # the rule placed no entry: say so once
        return np.arange(first, last, dtype=np.int64)

    def _signal_row(self, name: str, row: ArrayLike) -> NDArray[np.bool_]:
        """A row of signals as ``bar_signals`` takes it: a C-ordered, writeable bool array over
        assets (its compiled function was typed for that)."""
        if type(row) is not np.ndarray or row.dtype is not _BOOL or row.shape != self._row_shape:
            row = np.asarray(row)
            if row.dtype != np.bool_ or row.shape != self._row_shape:
                raise OrderError(
                    f"{name} must be a bool array with one entry per asset, shape "
                    f"({self._n_assets},); got dtype {row.dtype}, shape {row.shape}"
                )
        if not row.flags.carray:
            row = np.array(row, dtype=np.bool_, order="C")
        return row

    def _short_rows(
        self, short_entries: ArrayLike | None, short_exits: ArrayLike | None
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        if short_entries is None or short_exits is None:
            raise ConfigError("short_entries and short_exits go together: give both or neither")
        if self._settings.cash_account:
            raise ConfigError(
                "short_entries need BacktestConfig(account='margin'): a cash account cannot short"
            )
        return (
            self._signal_row("short_entries", short_entries),
            self._signal_row("short_exits", short_exits),
        )

    def _order_targets(
        self, targets: Mapping[str, float] | ArrayLike, scale: float, what: str
    ) -> NDArray[np.int64]:
        n = self._n_assets
        if type(targets) is not np.ndarray and isinstance(targets, Mapping):
            p = np.full(n, np.nan)
            for asset, target in targets.items():
                p[self._asset_id(asset)] = target
        else:
            p = np.asarray(targets, dtype=np.float64)
            if p.shape != (n,):
                raise OrderError(
                    f"target {what}s array must have one entry per asset, shape "
                    f"({n},), got {p.shape}"
                )
        percent = what == "percent"
        first, count, problem, i = self._target_orders(p, scale, True, True, percent, O_TARGET)
        if problem == sizing.NOT_FINITE:
            raise OrderError(f"target {what} for asset {self._assets[i]} must be finite or NaN")
        if problem == REFUSED:
            self._no_equity("order_target_percents(...)")
            return np.zeros(0, dtype=np.int64)
        if problem != sizing.OK:
            raise OrderError(_weight_problem(problem, str(self._assets[i]), p[i], self._bar))
        return np.arange(first, first + count, dtype=np.int64)

    def _target_orders(
        self,
        targets: NDArray[np.float64],
        scale: float,
        allow_negative: bool,
        nan_leaves_alone: bool,
        weights: bool,
        origin: int,
    ) -> tuple[int, int, int, int]:
        """``kernels.targets.target_orders``: market orders from ``origin`` that move each asset
        to ``targets`` x ``scale`` in value, in one compiled call. With ``weights`` the targets
        are weights of equity: none is placed while equity <= 0, and each order carries its
        weight under ``sizing_equity="fill"``. Returns ``(first id, count, problem, asset)``."""
        if not targets.flags.carray:
            # The compiled function is the one for writeable, aligned, C-ordered float arrays.
            targets = np.array(targets, dtype=np.float64, order="C")
        o = self.orders
        call = self._targets_call
        while True:
            args = (
                self._bar, targets, scale, self._rounding, allow_negative, nan_leaves_alone,
                weights and not self._account[S_EQUITY] > 0.0, origin, self._size_at_fill,
                weights and self._fill_equity, o.records, o.open_ids, o.counts,
                self._acc_assets, self._rebalance_assets, self._rebalance_quantities,
            )  # fmt: skip
            if call is None:
                # Every argument's type is fixed (arrays of fixed dtypes and layouts, the
                # targets made so above): later calls skip the typing of each argument.
                (first, count, problem, asset), call = kept_call(target_orders, args)
                self._targets_call = call
            else:
                first, count, problem, asset = call(*args)
            if problem != NO_ROOM:
                break
            o.reserve(self._n_assets)
        if count and self._halt[H_BLOCK]:
            self._screen(np.arange(first, first + count, dtype=np.int64))
        return first, count, problem, asset

    def close_position(self, asset: str) -> int | None:
        """Order the whole position in ``asset`` out (net of orders still waiting)."""
        return self._order_towards(self._asset_id(asset), 0.0, O_CLOSE)

    def rebalance(self, weights: Mapping[str, float] | ArrayLike) -> NDArray[np.int64]:
        """Move the portfolio to target ``weights`` of equity; assets not named are closed.

        ``weights`` is a mapping ``{asset: weight}`` or an array aligned to ``data.assets``.
        Quantities are sized at the current close and equity, rounded towards zero to whole
        shares unless fractional shares are on. Returns the ids of the orders submitted.
        While equity is zero or negative nothing is ordered (see ``order_target_percent``).

        Example:
            >>> broker.rebalance({"AAPL": 0.5, "MSFT": 0.5})  # doctest: +SKIP
            >>> broker.rebalance(np.full(len(data.assets), 1 / len(data.assets)))  # doctest: +SKIP
        """
        w = self._weights_array(weights)
        first, count, problem, i = self._target_orders(
            w, self._equity, not self._cash_account, False, True, O_REBALANCE
        )
        if problem == REFUSED:
            self._no_equity("rebalance(...)")
            return np.zeros(0, dtype=np.int64)
        if problem != sizing.OK:
            raise OrderError(_weight_problem(problem, str(self._assets[i]), w[i], self._bar))
        return np.arange(first, first + count, dtype=np.int64)

    def _no_equity(self, call: str) -> bool:
        """Whether percent-of-equity sizing is off because equity is <= 0 (warns once)."""
        if self._equity > 0.0:
            return False
        if not self._warned_no_equity:
            self._warned_no_equity = True
            warnings.warn(
                f"{call} at bar {self._bar} placed no order: equity is {self._equity:,.2f}, and "
                "a percent of it would turn a buy into a sell. While equity <= 0, "
                "order_target_percent(s) and rebalance place no orders (this warning shows "
                "once per run); close_position and order_target_quantity still trade",
                OrderWarning,
                stacklevel=3,
            )
        return True

    def cancel_order(self, order_id: int) -> bool:
        """Cancel a working order (and the legs of a bracket whose entry it is).

        Returns False if it had already filled or ended.
        """
        self._live_order(order_id)
        return bool(
            cancel_order(
                self.orders.records,
                self.orders.n,
                order_id,
                self._bar,
                R_CANCELLED_BY_USER,
                self._pending,
            )
        )

    # ---- risk rules ----------------------------------------------------------------------------

    def set_position_rules(
        self,
        rules: PositionRule | None,
        *,
        asset: str | Iterable[str] | None = None,
        order_id: int | None = None,
    ) -> None:
        """Attach position rules: to every asset, to some assets, or to one order's position.

        With neither ``asset`` nor ``order_id`` the rules are the global ones, for every asset
        without rules of its own; ``asset`` sets an asset's own (a name or several), which win
        over the global ones; ``order_id`` sets the rules of the position that order opens (or
        adds to), which win over both for as long as that position lasts. ``None`` removes
        rules at that level. Rules apply from the next rule check (the next bar), also to
        positions already open, measured from their entry price and best price since entry.

        Example:
            >>> from ml4t.backtest.risk import AnyOf, StopLoss, TrailingStop
            >>> rules = AnyOf(StopLoss(0.05), TrailingStop(0.1))
            >>> broker.set_position_rules(rules)  # doctest: +SKIP
            >>> broker.set_position_rules(StopLoss(0.02), asset="TSLA")  # doctest: +SKIP
        """
        if asset is not None and order_id is not None:
            raise ConfigError("set_position_rules takes asset= or order_id=, not both")
        set_id = -1 if rules is None else self._rules.set_id(rules)
        if order_id is not None:
            order = self._live_order(order_id)
            self.orders.records["rule_set"][order_id] = set_id
            a = int(order["asset"])
            # An order that already opened the current position hands it the rules now.
            if int(order["filled"]) != 0 and self._positions[a] != 0.0:
                self._position_set[a] = set_id
        elif asset is None:
            self._global_set = set_id
            self._asset_set[~self._asset_own] = set_id
        else:
            names = [asset] if isinstance(asset, str) else list(asset)
            ids = [self._asset_id(name) for name in names]
            self._asset_own[ids] = rules is not None
            self._asset_set[ids] = set_id if rules is not None else self._global_set
        self._rule_state = None  # the tables may have grown
        self._open_steps = None
        self._account[S_RULES_ON] = float(
            (self._asset_set >= 0).any()
            or (self.orders.records["rule_set"][: self.orders.n] >= 0).any()
            or (self._position_set >= 0).any()
        )

    def set_portfolio_rules(self, rules: Iterable[PortfolioRule]) -> None:
        """Replace the portfolio rules (``risk.MaxPositions``, ``MaxPositionWeight``, ...).

        Limits bind on fills that grow a position; halts are checked at each close. An empty
        list removes them all. See ``ml4t.backtest.risk.portfolio``.

        Example:
            >>> from ml4t.backtest.risk import MaxDrawdownHalt, MaxPositions
            >>> rules = [MaxPositions(10), MaxDrawdownHalt(0.2)]
            >>> broker.set_portfolio_rules(rules)  # doctest: +SKIP
        """
        limits = np.full(4, np.nan)
        daily: DailyLossLimit | None = None
        drawdown: MaxDrawdownHalt | None = None
        seen: set[type] = set()
        for rule in rules:
            if not isinstance(rule, PortfolioRule):
                raise ConfigError(
                    "portfolio rules must be MaxPositions, MaxPositionWeight, MaxGrossExposure, "
                    f"MaxNetExposure, DailyLossLimit or MaxDrawdownHalt, got {type(rule).__name__}"
                )
            if type(rule) in seen:
                raise ConfigError(f"portfolio rules name {type(rule).__name__} twice; keep one")
            seen.add(type(rule))
            if isinstance(rule, MaxPositions):
                limits[0] = rule.n
            elif isinstance(rule, MaxPositionWeight):
                limits[1] = rule.weight
            elif isinstance(rule, MaxGrossExposure):
                limits[2] = rule.multiple
            elif isinstance(rule, MaxNetExposure):
                limits[3] = rule.multiple
            elif isinstance(rule, DailyLossLimit):
                daily = rule
            elif isinstance(rule, MaxDrawdownHalt):
                drawdown = rule
        scalars = self._account
        scalars[S_LIMITS : S_LIMITS + 4] = limits
        scalars[S_DAILY_LIMIT] = math.nan if daily is None else daily.limit
        scalars[S_DAILY_LIQUIDATE] = daily is not None and daily.action == "liquidate"
        scalars[S_DRAWDOWN_LIMIT] = math.nan if drawdown is None else drawdown.limit
        scalars[S_DRAWDOWN_LIQUIDATE] = drawdown is not None and drawdown.action == "liquidate"
        self._open_steps = None
        self._settings_need_full = self._settings_ask_full_fills()

    @property
    def stopped(self) -> bool:
        """True once a ``MaxDrawdownHalt(action="liquidate")`` stopped trading for good."""
        return bool(self._halt[H_STOPPED])

    @property
    def entries_blocked(self) -> str | None:
        """The halt blocking new entries now (``"daily_loss_limit"``, ...), or None."""
        reason = int(self._halt[H_BLOCK])
        return REASON_NAMES[reason] if reason else None

    @property
    def signals_replaced(self) -> NDArray[np.bool_]:
        """Per asset, whether a position rule's exit replaces an entry decided now: with
        ``fill_timing="same_close"``, a rule fired on this bar (placed its exit, whatever that
        filled under a volume cap), and an entry (or a reversal) decided at its close would
        fill on that same bar, which VectorBT gives to the stop alone. Always False with fills
        on a later bar. ``run_signals`` and ``SignalStrategy`` drop such entries
        (``kernels.driver.signal_replaced``).

        Example:
            >>> broker.signals_replaced  # doctest: +SKIP
            array([False,  True])
        """
        out = np.zeros(len(self._assets), dtype=np.bool_)
        if self._same_close and (self._rule_rows[1][RI_EXIT_ORDER] >= 0).any():
            state = self.kernel_state
            signals_replaced(self._bar, state.settings, state.book.orders, state.rules, out)
        return out

    # ---- what the engine drives --------------------------------------------------------------

    @property
    def kernel_state(self) -> KernelState:
        """The run's state records as the compiled phases take them (``kernels.state``): the
        settings, the book, the account and the rule state. Arrays are shared, not copied; the
        book is current as of this call (the order book and fill log grow by replacing their
        arrays).

        Example:
            >>> state = broker.kernel_state                  # doctest: +SKIP
            >>> float(state.account.scalars[S_CASH]) == broker.cash  # doctest: +SKIP
            True
        """
        return KernelState(self._settings, self._book_record(), self._acc, self._rules_record())

    def attach(self, market: Market, records: NDArray[np.float64]) -> None:
        """Engine: the market of the run (``core.market_arrays``) and the per-bar records
        (``REC_*`` rows over bars) that ``open_phase`` and ``close_phase`` read and write."""
        self._market = market
        self._records = records
        self._open_book = None  # the open phase's fast paths were for the previous market
        self._open_fast = None

    def phase_kernels(self, *, one_by_one: bool = False) -> tuple[Callable[..., None], ...]:
        """Engine: the compiled steps this run's open phase calls from Python (with its settings
        and rules as they are now), then the close phase; what a first run compiles.

        Example:
            >>> broker.phase_kernels()  # doctest: +SKIP
            (CPUDispatcher(<function open_plain ...>), CPUDispatcher(<function close_phase ...>))
        """
        state = self.kernel_state
        steps = clock.open_steps(state.settings, state.account, one_by_one=one_by_one)
        return (*steps, clock.close_phase)

    def open_phase(self, bar: int, on_fills: FillRange | None = None) -> None:
        """Engine: everything bar ``bar`` does before the strategy decides (``kernels.clock``):
        fills at the open, position rules, next-close fills, the mark, margin calls and halts.

        ``on_fills`` gets the range ``[first, last)`` of the fills of each step that made some,
        right after the step (the steps then run as separate compiled calls)."""
        self._bar = bar
        fast = self._open_fast
        if fast is not None and on_fills is None and self._open_fast_holds(fast):
            # The common bar: the steps, the books, the rules and the fill step are those of
            # the last bar, and the books have room for what this bar can add.
            fast.call(bar, *fast.args)
            return
        self._open_fast = None
        s, book, acc, rs, full = self._phase_state()
        if (
            on_fills is None
            and self._open_steps is self._open_plain
            and book is self._open_book
            and rs is self._open_rules
            and full is self._open_full
        ):
            # The steps, the book, the rules and the fill step are those of the last bar.
            self._open_call(bar, s, self._market, book, acc, rs, self._records, full)
            self._keep_open_call(s, book, acc, rs, full)
            return
        market, records = self._market, self._records
        assert market is not None, "attach the market first"
        steps = self._open_steps
        if steps is None or (on_fills is not None) != self._steps_one_by_one:
            steps = self._open_steps = clock.open_steps(s, acc, one_by_one=on_fills is not None)
            self._steps_one_by_one = on_fills is not None
        if on_fills is None and len(steps) == 1:
            records_now = (s, market, book, acc, rs, records, full)
            if self._open_for is None or any(
                a is not b for a, b in zip(records_now, self._open_for, strict=True)
            ):
                args = (bar, s, market, book, acc, rs, records, full)
                _, self._open_call = kept_call(steps[0], args)
                self._open_for = records_now
            else:
                self._open_call(bar, s, market, book, acc, rs, records, full)
            self._open_plain, self._open_book, self._open_rules = steps, book, rs
            self._open_full = full
            self._keep_open_call(s, book, acc, rs, full)
            return
        for step in steps:
            first = self.fills.n
            step(bar, s, market, book, acc, rs, records, full)
            if on_fills is not None and self.fills.n > first:
                on_fills(first, self.fills.n)
                s, book, acc, rs, full = self._phase_state()  # on_fill may have added orders

    def _keep_open_call(
        self, s: Settings, book: Book, acc: Account, rs: RuleState, full: Full
    ) -> None:
        """Keep the open phase just called for the next bars (``_open_fast_holds``): not with
        models written in Python, which are installed before each phase."""
        if self._python_models:
            return
        need_full = self._settings_need_full or self.orders.needs_full_fills
        self._open_fast = _OpenCall(
            self._open_call, (s, self._market, book, acc, rs, self._records, full), book, rs,
            book.orders.shape[0], book.open_ids.shape[0], book.fills.shape[0],
            self._open_steps, need_full,
        )  # fmt: skip

    def _open_fast_holds(self, fast: _OpenCall) -> bool:
        """Whether the kept open phase still fits: the books' arrays, the rules and the steps
        are the ones it holds, no order has asked for the full fill step since, and the books
        have room for what a bar can add (``_phase_state``'s reserve)."""
        o, book = self.orders, fast.book
        counts = o.counts.tolist()
        orders_needed, fills_needed = _room_for_bar(counts[C_OPEN], self._n_assets)
        return (
            o.records is book.orders
            and o.open_ids is book.open_ids
            and self.fills.records is book.fills
            and self._rule_state is fast.rules
            and self._open_steps is fast.steps
            and (self._settings_need_full or o.needs_full_fills) == fast.need_full
            and counts[C_ORDERS] + orders_needed <= fast.orders_room
            and counts[C_OPEN] + orders_needed <= fast.open_room
            and counts[C_FILLS] + fills_needed <= fast.fills_room
        )

    def close_phase(
        self, bar: int, on_fills: FillRange | None = None, *, final: bool = False
    ) -> None:
        """Engine, after the strategy decided: same-bar fills at the close and the bar recorded
        again (``kernels.clock.close_phase``). ``final`` fills at this close whatever the
        timing (after ``close_all``). ``on_fills`` gets the range of the fills, before the bar
        is recorded again."""
        if not final and not self._same_close:
            return  # the phase does nothing then: spare the compiled call
        market, records = self._market, self._records
        assert market is not None, "attach the market first"
        s, book, acc, rs, full = self._phase_state()
        args = (bar, s, market, book, acc, rs, records, final, full)
        first = self.fills.n
        records_now = (market, book, rs, records, full)
        if len(self._close_for) == len(records_now) and all(
            a is b for a, b in zip(records_now, self._close_for, strict=True)
        ):
            self._close_call(*args)
        else:
            _, self._close_call = kept_call(clock.close_phase, args)
            self._close_for = records_now
        if on_fills is not None and self.fills.n > first:
            on_fills(first, self.fills.n)

    def _phase_state(self) -> tuple[Settings, Book, Account, RuleState, Full]:
        """The records for a compiled phase, with room in the book for what a bar can add,
        and the fill step it takes (``clock.fill_features``)."""
        o = self.orders
        counts = o.counts.tolist()
        orders_needed, fills_needed = _room_for_bar(counts[C_OPEN], self._n_assets)
        if (
            counts[C_ORDERS] + orders_needed > o.records.shape[0]
            or counts[C_OPEN] + orders_needed > o.open_ids.shape[0]
            or counts[C_FILLS] + fills_needed > self.fills.records.shape[0]
        ):
            o.reserve(orders_needed)
            self.fills.reserve(fills_needed)
        if self._python_models:
            python_models.install(self._commission_models, self._slippage_models)
        book, rs = self._book_record(), self._rules_record()
        return self._settings, book, self._acc, rs, self.fill_step()

    def _settings_ask_full_fills(self) -> bool:
        """Whether the settings alone (portfolio limits included) need the full fill step
        (``clock.fill_features``); the orders can ask for it too (``OrderBook``)."""
        full = clock.fill_features(self._settings, self._acc, orders_need_full=False)
        return full is FULL_FILLS

    def fill_step(self) -> Full:
        """The fill step the phases take now (``kernels.clock.fill_features``): ``None`` for
        the plain one while neither the settings nor an order so far needs the full one.

        Example:
            >>> broker.fill_step() is None  # a cash account, market orders  # doctest: +SKIP
            True
        """
        if self._settings_need_full or self.orders.needs_full_fills:
            return FULL_FILLS
        return PLAIN_FILLS

    def _book_record(self) -> Book:
        book, o, f = self._book, self.orders, self.fills
        if (
            book is None
            or book.orders is not o.records
            or book.open_ids is not o.open_ids
            or book.fills is not f.records
        ):
            book = self._book = Book(o.records, o.open_ids, f.records, o.counts)
        return book

    def _rules_record(self) -> RuleState:
        if self._rule_state is None:
            t = self._rules
            floats, ints = self._rule_rows
            self._rule_state = RuleState(
                floats, ints, t.set_start, t.set_root, t.nodes, t.children, t.child_keys,
                t.columns,
            )  # fmt: skip
        return self._rule_state

    def start_bar(self, bar: int, *, new_month: bool = False, new_day: bool = False) -> None:
        """The clock moved to ``bar`` (new orders are stamped with it), outside a run: what
        ``open_phase`` does first, for a broker driven by hand."""
        self._bar = bar
        if new_month:
            self._account[S_MONTH_VOLUME] = 0.0
        if self._settings.max_participation > 0.0:
            self._acc.assets[A_VOLUME_USED] = 0.0
        if new_day:
            start_day(self._halt, self._equity)

    def mark(
        self,
        bar: int,
        closes: NDArray[np.float64],
        cash_out: NDArray[np.float64],
        positions_value_out: NDArray[np.float64],
        gross_out: NDArray[np.float64],
    ) -> float:
        """Mark positions at ``closes`` and record the account into the ``_out`` arrays at
        ``bar``, outside a run (a broker driven by hand); returns equity."""
        records = np.zeros((REC_WIDTH, bar + 1))
        closes = np.asarray(closes, dtype=np.float64)
        equity = float(mark_to_market(bar, closes, self._acc, records))
        self._account[S_EQUITY] = equity
        cash_out[bar], positions_value_out[bar], gross_out[bar] = records[:3, bar]
        return equity

    def close_all(self, *, origin: int, bar: int | None = None) -> None:
        """Engine: cancel every working order (reason ``open_at_end``) and order every position
        out at market with ``origin``; ``close_phase(final=True)`` then fills them. ``bar``
        stamps the orders (the compiled driver's last bar; the current bar by default)."""
        if bar is not None:
            self._bar = bar
        book = self.orders
        for oid in book.open_ids[: book.n_open]:
            cancel_order(book.records, book.n, int(oid), self._bar, R_END_OF_DATA, self._pending)
        self._pending[:] = 0.0  # nothing works any more: no float residue of the cancels
        for a in np.flatnonzero(self._positions):
            self._submit(int(a), -float(self._positions[a]), origin)

    @property
    def _equity(self) -> float:
        return float(self._account[S_EQUITY])

    # ---- internals ---------------------------------------------------------------------------

    def _live_order(self, order_id: int) -> np.void:
        if isinstance(order_id, bool) or not isinstance(order_id, int | np.integer):
            raise OrderError(
                f"order id must be an int as returned by submit_order, got {order_id!r}"
            )
        if not 0 <= order_id < self.orders.n:
            raise OrderError(f"unknown order id {order_id}; ids run from 0 to {self.orders.n - 1}")
        rec: np.void = self.orders.records[order_id]
        return rec

    def _signed_quantity(self, asset: str, quantity: float, side: str | None) -> float:
        qty = self._check_quantity(asset, quantity)
        if side is None:
            return qty
        if side not in ("buy", "sell"):
            raise OrderError(f"side must be 'buy' or 'sell', got {side!r} for asset {asset}")
        if qty < 0:
            raise OrderError(
                f"quantity must be positive when side is given, got {quantity} for asset {asset}"
            )
        return qty if side == "buy" else -qty

    @staticmethod
    def _order_kind(
        asset: str,
        order_type: str | None,
        limit_price: float | None,
        stop_price: float | None,
        trail_amount: float | None,
        trail_percent: float | None,
    ) -> int:
        trailing = trail_amount is not None or trail_percent is not None
        if order_type is None:
            if trailing:
                order_type = "trailing_stop"
            elif limit_price is not None and stop_price is not None:
                order_type = "stop_limit"
            elif limit_price is not None:
                order_type = "limit"
            elif stop_price is not None:
                order_type = "stop"
            else:
                order_type = "market"
        if order_type not in ORDER_TYPE_NAMES:
            raise OrderError(
                f"order_type for asset {asset} must be one of {', '.join(ORDER_TYPE_NAMES)}, "
                f"got {order_type!r}"
            )
        kind = ORDER_TYPE_NAMES.index(order_type)
        needs_limit = kind in (LIMIT, STOP_LIMIT)
        needs_stop = kind in (STOP, STOP_LIMIT)
        given = {
            "limit_price": limit_price,
            "stop_price": stop_price,
            "trail_amount": trail_amount,
            "trail_percent": trail_percent,
        }
        for name, value in given.items():
            wanted = (
                (name == "limit_price" and needs_limit)
                or (name == "stop_price" and needs_stop)
                or (name.startswith("trail") and kind == TRAILING_STOP)
            )
            if value is None:
                if wanted and not name.startswith("trail"):
                    raise OrderError(f"a {order_type} order on asset {asset} needs {name}")
                continue
            if not wanted:
                raise OrderError(f"a {order_type} order on asset {asset} takes no {name}")
            _check_price(asset, name, value)
        if kind == TRAILING_STOP:
            if (trail_amount is None) == (trail_percent is None):
                raise OrderError(
                    f"a trailing_stop order on asset {asset} needs exactly one of "
                    "trail_amount (price units) or trail_percent (a fraction, 0.05 = 5%)"
                )
            if trail_percent is not None and not 0.0 < trail_percent < 1.0:
                raise OrderError(
                    f"trail_percent for asset {asset} must be a fraction in (0, 1), "
                    f"got {trail_percent}"
                )
        return kind

    def _submit(
        self,
        a: int,
        qty: float,
        origin: int,
        *,
        target_value: float = math.nan,
        target_weight: float = math.nan,
    ) -> int:
        self._pending[a] += qty
        # An all-in order's infinite value is kept whatever the sizing settings: it is what
        # makes the fill step size it.
        keep_value = self._size_at_fill or math.isinf(target_value)
        ids = self.orders.add(
            np.array([a], dtype=np.int64),
            np.array([qty]),
            bar=self._bar,
            origin=origin,
            target_value=target_value if keep_value else math.nan,
            target_weight=target_weight if self._fill_equity else math.nan,
        )
        self._screen(ids)
        return int(ids[0])

    def _screen(self, ids: NDArray[np.int64]) -> None:
        """While a halt blocks entries, reject new orders that would grow a position."""
        if self._halt[H_BLOCK]:
            reject_growing(
                self.orders.records, self.orders.n, ids, self._positions, self._bar,
                REJECTED, int(self._halt[H_BLOCK]), self._pending,
            )  # fmt: skip

    @staticmethod
    def _rule_column_source(
        columns: Callable[[str], NDArray[np.float64]],
    ) -> Callable[[str], NDArray[np.float64]]:
        """Feed columns by name, plus the ATR of any window the rules ask for."""

        def source(name: str) -> NDArray[np.float64]:
            if name.startswith(ATR_PREFIX):
                window = int(name[len(ATR_PREFIX) :])
                return average_true_range(columns("high"), columns("low"), columns("close"), window)
            return columns(name)

        return source

    def _order_towards(
        self,
        a: int,
        target: float,
        origin: int,
        *,
        value: float = math.nan,
        target_value: float = math.nan,
        target_weight: float = math.nan,
    ) -> int | None:
        """Order the difference to ``target`` shares (``value`` at the last mark when
        ``target`` is NaN), net of waiting orders; an all-in order (``target_value`` of +-inf)
        is ``target`` itself, whatever is held (its size is set at the fill). The compiled
        driver's rule, in one compiled call (``kernels.driver.broker_target``): market orders
        still working the other way are replaced, not traded against."""
        o = self.orders
        o.reserve(1)
        keep = self._size_at_fill or math.isinf(target_value)
        # Floats as floats: the compiled function is typed by the first call's arguments.
        args = (
            a, float(target), float(value), origin, float(target_value) if keep else math.nan,
            float(target_weight), self._bar, self._settings, self._book_record(), self._acc,
        )  # fmt: skip
        if self._target_call is None:
            oid, self._target_call = kept_call(broker_target, args)
        else:
            oid = self._target_call(*args)
        if oid < 0:
            return None
        if math.isinf(target_value):
            o.needs_full_fills = True  # an all-in order: sized at its fill
        if self._halt[H_BLOCK]:
            self._screen(np.array([oid], dtype=np.int64))
        return int(oid)

    def _all_in_side(self, asset: str, quantity: float, side: str | None) -> float:
        """+1.0 or -1.0: the side of an all-in order (``quantity`` of +-inf); a cash account
        cannot sell short all-in."""
        sign = 1.0 if quantity > 0 else -1.0
        if side is not None:
            if side not in ("buy", "sell"):
                raise OrderError(f"side must be 'buy' or 'sell', got {side!r} for asset {asset}")
            if quantity < 0:
                raise OrderError(
                    f"quantity must be positive when side is given, got {quantity} for asset "
                    f"{asset}"
                )
            sign = 1.0 if side == "buy" else -1.0
        if sign < 0 and self._cash_account:
            raise OrderError(
                f"an all-in sell of asset {asset} would sell short, which a cash account cannot; "
                "use close_position to sell what is held, or BacktestConfig(account='margin')"
            )
        return sign

    def _decision_price(self, a: int) -> float:
        price = float(self._last_price[a])
        if math.isnan(price):
            raise OrderError(
                f"cannot size an order for asset {self._assets[a]}: it has no price yet at bar "
                f"{self._bar} (no bar so far); use submit_order with a quantity instead"
            )
        return price

    def _asset_id(self, asset: str) -> int:
        try:
            return self._index[asset]
        except (KeyError, TypeError):
            raise OrderError(
                f"unknown asset {asset!r}; the feed has {len(self._assets)} assets, "
                f"e.g. {', '.join(map(str, self._assets[:5]))}"
            ) from None

    def _check_quantity(self, asset: str, quantity: float) -> float:
        try:
            qty = float(quantity)
        except (TypeError, ValueError):
            raise OrderError(
                f"quantity for asset {asset} must be a number, got {quantity!r}"
            ) from None
        if not math.isfinite(qty) or qty == 0.0:
            raise OrderError(f"quantity for asset {asset} must be finite and non-zero, got {qty}")
        if not self._fractional and qty != int(qty):
            raise OrderError(
                f"quantity {qty} for asset {asset} is fractional but fractional_shares is off; "
                "pass a whole number or set BacktestConfig(fractional_shares=True)"
            )
        return qty

    def _weights_array(self, weights: Mapping[str, float] | ArrayLike) -> NDArray[np.float64]:
        n = len(self._assets)
        if isinstance(weights, Mapping):
            w = np.zeros(n, dtype=np.float64)
            for asset, weight in weights.items():
                w[self._asset_id(asset)] = weight
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (n,):
                raise OrderError(
                    f"weights array must have one entry per asset, shape ({n},), got {w.shape}"
                )
        return w


class _OpenCall(NamedTuple):
    """An open phase kept for the next bars (``Broker._keep_open_call``): the compiled call
    and its arguments after the bar, the room its books had, the steps and whether the full
    fill step was asked for."""

    call: Callable[..., None]
    args: tuple[object, ...]
    book: Book
    rules: RuleState
    orders_room: int
    open_room: int
    fills_room: int
    steps: tuple[Callable[..., None], ...] | None
    need_full: bool


# The empty decision arrays of a call that makes signals only (``Broker.order_signals``).
_NO_ROW = np.zeros(0, dtype=np.bool_)  # no short signals: an empty row
_NO_FLOATS = np.zeros((0, 0))
_NO_BARS = np.zeros(0, dtype=np.bool_)
_BOOL = np.dtype(np.bool_)


# ``room_for_bar``'s Python function: the same bound, without a compiled call's unboxing.
_room_for_bar: Callable[[int, int], tuple[int, int]]
_room_for_bar = room_for_bar.py_func  # type: ignore[attr-defined]


def signal_sizing(
    size: float, size_type: str, upon_opposite_entry: str, *, fractional: bool
) -> tuple[float, int, int]:
    """The sizing of entry signals (``run_signals``, ``Broker.order_signals``), checked:
    ``(size, size_type code, upon_opposite_entry code)`` for ``kernels.driver.Decisions``.

    Example:
        >>> signal_sizing(0.1, "percent", "reverse", fractional=False)
        (0.1, 0, 0)
    """
    if size_type not in _SIZE_TYPES:
        raise ConfigError(f"size_type must be one of {_SIZE_TYPES}, got {size_type!r}")
    if upon_opposite_entry not in _OPPOSITE_ENTRIES:
        near = difflib.get_close_matches(str(upon_opposite_entry), _OPPOSITE_ENTRIES, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"upon_opposite_entry must be one of {_OPPOSITE_ENTRIES}, got "
            f"{upon_opposite_entry!r}{hint}"
        )
    if not isinstance(size, int | float) or math.isnan(size) or size <= 0:
        raise ConfigError(f"size must be a number > 0 (np.inf: all-in), got {size!r}")
    if math.isinf(size) and size_type == "percent":
        raise ConfigError(
            "size=np.inf is all-in, an amount: use size_type='value' (or 'shares'), as "
            "VectorBT's size=np.inf with size_type='amount' or 'value'"
        )
    code = _SIZE_TYPES.index(size_type)
    if code == SIZE_SHARES and not fractional and math.isfinite(size) and size != int(size):
        # As Broker.order_target_quantity refuses it: an order for a fraction of a share.
        raise ConfigError(
            f"size {size} with size_type='shares' is fractional but fractional_shares is off; "
            "pass a whole number or set BacktestConfig(fractional_shares=True)"
        )
    return float(size), code, _OPPOSITE_ENTRIES.index(upon_opposite_entry)


def _weight_problem(problem: int, asset: str, weight: float, bar: int) -> str:
    if problem == sizing.NOT_FINITE:
        return (
            f"weight for asset {asset} is {weight}; weights must be finite "
            "(use 0 for assets to hold nothing of)"
        )
    if problem == sizing.NEGATIVE_IN_CASH_ACCOUNT:
        return (
            f"weight {weight} for asset {asset} is negative, but a cash account cannot short; "
            "use weights >= 0 or BacktestConfig(account='margin')"
        )
    return (
        f"cannot size a weight for asset {asset}: it has no price yet at bar {bar} "
        "(no bar so far); give it weight 0 until it trades"
    )


def _is_infinite(value: object) -> bool:
    """Whether ``value`` is +-inf: an all-in quantity or target value."""
    return isinstance(value, int | float | np.floating) and math.isinf(value)


def _check_tif(asset: str, tif: str) -> None:
    if tif not in ("gtc", "day"):
        raise OrderError(
            f"tif must be 'gtc' (good till cancelled) or 'day', got {tif!r} for asset {asset}"
        )


def _check_price(asset: str, name: str, value: float) -> float:
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise OrderError(f"{name} for asset {asset} must be a number, got {value!r}") from None
    if not math.isfinite(price) or price <= 0.0:
        raise OrderError(f"{name} for asset {asset} must be a finite number > 0, got {value!r}")
    return price


def _price_or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _bracket_offset(asset: str, name: str, price: float | None, pct: float | None) -> float:
    """The fractional distance of a bracket level (NaN when given as a price); checks one of
    the two was given."""
    if (price is None) == (pct is None):
        raise OrderError(
            f"bracket on asset {asset} needs exactly one of {name} (a price) or {name}_pct "
            "(a fraction of the anchor price)"
        )
    if pct is None:
        return math.nan
    if not (isinstance(pct, int | float) and 0.0 < pct < 1.0):
        raise OrderError(f"{name}_pct for asset {asset} must be a fraction in (0, 1), got {pct!r}")
    return float(pct)


def _status_name(order: np.void) -> str:
    return STATUS_NAMES[int(order["status"])]
