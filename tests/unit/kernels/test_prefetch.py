"""``kernels.prefetch``: a cache hint that changes no value."""

from __future__ import annotations

import numpy as np

from ml4t.backtest.kernels.jit import leaf
from ml4t.backtest.kernels.prefetch import prefetch


@leaf
def _hinted_sum(values: np.ndarray) -> float:
    for i in range(values.shape[0]):
        prefetch(values, i)
    total = 0.0
    for i in range(values.shape[0]):
        total += values[i]
    return total


def test_prefetching_a_read_only_row_leaves_what_is_read_unchanged():
    # A Market row is read-only, as the fill step's are; 1.5 + 2.25 + 4.0 = 7.75.
    row = np.array([1.5, 2.25, 4.0])
    row.setflags(write=False)
    assert _hinted_sum(row) == 7.75
    assert row.tolist() == [1.5, 2.25, 4.0]
