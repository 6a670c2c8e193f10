"""Numba kernels: the core both drivers share, as array code.

``state`` (the named records and the one translation of a config into settings), ``clock`` (the
phases of a bar), ``step`` (the fill step), ``accounts`` (cash, margin, limits, marks,
financing), ``costs`` (commission and slippage of a fill), ``book`` (the order book and the
orders the engine submits), ``rules`` (position rules), ``sizing``, ``levels``, ``records``
(dtypes and code tables) and ``driver`` (the compiled loop). Import what you need from the
module directly: this package re-exports nothing, so that ``records`` can be imported by the
cost models the step uses without importing the step itself.
"""
