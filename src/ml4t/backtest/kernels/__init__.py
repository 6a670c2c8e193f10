"""Numba kernels: the broker step as array code, shared by both drivers.

Import what you need from ``kernels.step`` and ``kernels.records`` directly: this package
re-exports nothing so that ``records`` can be imported by the cost models the step uses
without importing the step itself.
"""
