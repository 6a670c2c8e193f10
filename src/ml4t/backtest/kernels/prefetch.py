"""A cache hint for kernels: ask the CPU to start loading an array element now.

A fill step reads, per order, its asset's close and open at the bar: one row per field and bar,
so on a wide universe each read is a cache miss, and the step takes them one after the other
(each order's checks wait for its prices). Prefetching them all first lets the misses overlap.
A hint changes no value: the kernels read the same elements afterwards as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from llvmlite import ir  # type: ignore[import-untyped]
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

from .jit import folded

# numba's own functions, typed loosely: its stubs leave them untyped.
_item_pointer: Callable[..., Any] = cgutils.get_item_pointer
_function: Callable[..., Any] = cgutils.get_or_insert_function


def _prefetch(typingctx: Any, array: Any, index: Any) -> Any:
    """Hint that ``array[index]`` (a 1-D array, ``index`` within it) is about to be read:
    LLVM's ``llvm.prefetch`` (read, keep in all cache levels). Kernels only.

    Example:
        >>> import numpy as np
        >>> from ml4t.backtest.kernels.jit import leaf
        >>> @leaf
        ... def first(a):
        ...     prefetch(a, 0)
        ...     return a[0]
        >>> float(first(np.array([5.0, 6.0])))
        5.0
    """
    sig = types.void(array, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type = signature.args[0]
        made = context.make_array(array_type)(context, builder, args[0])
        pointer = _item_pointer(context, builder, array_type, made, [args[1]], wraparound=False)
        i32 = ir.IntType(32)
        hint_type = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32])
        hint = _function(builder.module, hint_type, "llvm.prefetch.p0")
        read, keep_everywhere, data = ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)
        builder.call(
            hint, [builder.bitcast(pointer, cgutils.voidptr_t), read, keep_everywhere, data]
        )
        return context.get_dummy_value()

    return sig, codegen


# Called from kernels as ``prefetch(array, index)``: numba passes the typing context itself.
prefetch = cast("Callable[[Any, int], None]", intrinsic(_prefetch))


@folded
def prefetch_row(row: Any) -> None:
    """Hint that all of 1-D ``row`` is about to be read: one hint per 64-byte cache line (a
    bar's row of a wide market array, read the next bar: the hardware's prefetcher does not
    follow a stream into a new page, and each row is about a page).

    Example:
        >>> import numpy as np
        >>> from ml4t.backtest.kernels.jit import leaf
        >>> @leaf
        ... def first_of_next(a, t):
        ...     prefetch_row(a[t + 1])
        ...     return a[t, 0]
        >>> float(first_of_next(np.arange(6.0).reshape(3, 2), 1))
        2.0
    """
    step = max(1, 64 // row.itemsize)
    for i in range(0, row.shape[0], step):
        prefetch(row, i)
    if row.shape[0]:
        prefetch(row, row.shape[0] - 1)
