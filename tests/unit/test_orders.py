"""``OrderBook.add``: the records it writes, through a compiled function typed once."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest import orders as orders_module
from ml4t.backtest.kernels.records import LIMIT, O_ORDER
from ml4t.backtest.orders import OrderBook


@pytest.fixture
def fresh_typing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next ``add`` types the compiled function again, as the first of a process does."""
    monkeypatch.setattr(orders_module, "_write_orders_call", None)


def test_add_keeps_float_prices_after_a_first_call_with_int_ones(fresh_typing):
    book = OrderBook()
    one = np.array([0], dtype=np.int64)
    # The first call gives ints where the kernel takes floats: the function must still be
    # typed for floats, or 100.5 would be stored as 100.
    book.add(one, np.array([1.0]), bar=0, origin=O_ORDER, order_type=LIMIT, limit_price=100)
    book.add(one, np.array([2.0]), bar=1, origin=O_ORDER, order_type=LIMIT, limit_price=100.5)
    assert book.records["limit_price"][:2].tolist() == [100.0, 100.5]
    assert book.records["submit_bar"][:2].tolist() == [0, 1]
    assert (book.n, book.n_open) == (2, 2)


def test_add_reads_strided_and_read_only_arrays_by_value(fresh_typing):
    book = OrderBook()
    book.add(np.array([0], dtype=np.int64), np.array([1.0]), bar=0, origin=O_ORDER)
    # Every other element of [3, -9, 4, -9]: 3 and 4 (a strided view); assets read-only.
    quantities = np.array([3.0, -9.0, 4.0, -9.0])[::2]
    assets = np.array([1, 2], dtype=np.int64)
    assets.flags.writeable = False
    ids = book.add(assets, quantities, bar=1, origin=O_ORDER, target_weight=np.array([0.1, 0.2]))
    assert ids.tolist() == [1, 2]
    assert book.records["quantity"][1:3].tolist() == [3.0, 4.0]
    assert book.records["asset"][1:3].tolist() == [1, 2]
    assert book.records["target_weight"][1:3].tolist() == [0.1, 0.2]
    assert np.isnan(book.records["target_weight"][0])
    assert book.open_ids[:3].tolist() == [0, 1, 2]
