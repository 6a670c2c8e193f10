"""How the kernels are compiled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from numba import njit

F = TypeVar("F", bound=Callable[..., Any])

# ``_nrt`` is a numba option its type stubs do not list.
_LEAF_OPTIONS: dict[str, Any] = {"cache": True, "_nrt": False}


def leaf(fn: F) -> F:
    """Compile a small kernel called per order or per fill, without reference counting.

    Numba counts references to each array a compiled function receives (an atomic increment
    and decrement per array per call), and LLVM cannot inline a call wrapped in them: a fee
    lookup then costs tens of nanoseconds instead of one. ``_nrt=False`` drops the counting.
    The kernel must not create arrays, nor return or keep the arrays (or views of them) it is
    given: its callers own them for the whole call.

    Example:
        >>> @leaf
        ... def first(a):
        ...     return a[0]
    """
    compiled: F = njit(**_LEAF_OPTIONS)(fn)
    return compiled
