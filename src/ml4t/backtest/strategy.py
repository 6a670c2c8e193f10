"""The Strategy base class: four callbacks, all optional but ``on_data``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
