"""Fill-by-fill comparison of two runs, with the suite's tolerances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Fill prices, quantities and commissions must agree to this relative difference; final values
# to FINAL_RTOL. Not loosened per scenario: a peer that cannot express one is a stated gap.
FILL_RTOL = 1e-9
FINAL_RTOL = 1e-9


@dataclass(frozen=True)
class Comparison:
    """What one scenario gave in both frameworks."""

    fills_ours: int
    fills_theirs: int
    fills_matched: int
    max_rel_diff: float
    final_ours: float
    final_theirs: float

    @property
    def final_rel_diff(self) -> float:
        return abs(self.final_ours - self.final_theirs) / max(abs(self.final_theirs), 1e-12)

    @property
    def fills_differing(self) -> int:
        """Fills of either run without an equal fill in the other."""
        return max(self.fills_ours, self.fills_theirs) - self.fills_matched

    @property
    def ok(self) -> bool:
        """Same fills on the same bars within ``FILL_RTOL``, final value within ``FINAL_RTOL``."""
        return (
            self.fills_ours == self.fills_theirs == self.fills_matched
            and self.max_rel_diff <= FILL_RTOL
            and self.final_rel_diff <= FINAL_RTOL
        )


def compare_fills(
    ours: NDArray[np.float64],
    theirs: NDArray[np.float64],
    final_ours: float,
    final_theirs: float,
) -> Comparison:
    """Compare fill tables with rows ``(bar, asset, signed quantity, price, commission)``.

    Rows are matched in order after sorting each table by (bar, asset, signed quantity); a fill
    matches when bar and asset are equal and quantity, price and commission are within
    ``FILL_RTOL`` (relative, with an absolute floor of 1e-12 for zero commissions).
    """
    a, b = _sorted(ours), _sorted(theirs)
    n = min(len(a), len(b))
    matched = 0
    worst = 0.0
    for i in range(n):
        if a[i, 0] != b[i, 0] or a[i, 1] != b[i, 1]:
            worst = np.inf
            continue
        rel = np.abs(a[i, 2:] - b[i, 2:]) / np.maximum(np.abs(b[i, 2:]), 1e-12)
        rel[np.abs(a[i, 2:] - b[i, 2:]) <= 1e-12] = 0.0
        worst = max(worst, float(rel.max()))
        matched += int(rel.max() <= FILL_RTOL)
    if len(a) != len(b):
        worst = np.inf
    return Comparison(len(a), len(b), matched, worst, final_ours, final_theirs)


def _sorted(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))]
