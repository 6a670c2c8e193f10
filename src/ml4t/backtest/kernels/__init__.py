"""Numba kernels: the broker step as array code, shared by both drivers."""

from .step import cancel_order, fill_orders, mark_to_market

__all__ = ["cancel_order", "fill_orders", "mark_to_market"]
