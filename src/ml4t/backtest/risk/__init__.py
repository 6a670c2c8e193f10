"""Position rules (exits inside the bar) and portfolio rules (limits on the whole book)."""

from .portfolio import (
    DailyLossLimit,
    MaxDrawdownHalt,
    MaxGrossExposure,
    MaxNetExposure,
    MaxPositions,
    MaxPositionWeight,
    PortfolioRule,
)
from .position import (
    AllOf,
    AnyOf,
    PositionRule,
    RegimeDependent,
    RuleChain,
    SignalExit,
    StopLoss,
    TakeProfit,
    TimeExit,
    TrailingStop,
    VolatilityScaledStop,
)
from .volatility import average_true_range

__all__ = [
    "AllOf",
    "AnyOf",
    "DailyLossLimit",
    "MaxDrawdownHalt",
    "MaxGrossExposure",
    "MaxNetExposure",
    "MaxPositionWeight",
    "MaxPositions",
    "PortfolioRule",
    "PositionRule",
    "RegimeDependent",
    "RuleChain",
    "SignalExit",
    "StopLoss",
    "TakeProfit",
    "TimeExit",
    "TrailingStop",
    "VolatilityScaledStop",
    "average_true_range",
]
