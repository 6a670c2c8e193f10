"""Market data: the DataFeed that aligns prices and signals into dense arrays, and the
point-in-time view strategies read it through."""

from .feed import DataFeed
from .view import Bar, BarView

__all__ = ["Bar", "BarView", "DataFeed"]
