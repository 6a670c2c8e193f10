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


def test_a_growing_book_keeps_every_order_and_open_id_and_fill():
    book = OrderBook()
    log = orders_module.FillLog(book.counts)
    n = 3000  # past the first capacity, so the arrays grow (and are copied) twice
    rng = np.random.default_rng(5)
    quantities = rng.normal(size=n)
    limits = rng.uniform(90.0, 110.0, size=n)
    for start in range(0, n, 250):
        stop = start + 250
        book.reserve(250)
        book.add(
            np.arange(start, stop, dtype=np.int64) % 7, quantities[start:stop], bar=start,
            origin=O_ORDER, order_type=LIMIT, limit_price=float(limits[start]),
            target_value=limits[start:stop],
        )  # fmt: skip
        log.reserve(250)
        log.records["price"][start:stop] = limits[start:stop]
        log.records["order_id"][start:stop] = np.arange(start, stop)
        log.n = stop
    assert book.records.shape[0] > 1024 and log.records.shape[0] > 1024
    assert book.records["quantity"][:n].tolist() == quantities.tolist()
    assert book.records["limit_price"][:n].tolist() == np.repeat(limits[::250], 250).tolist()
    assert book.records["target_value"][:n].tolist() == limits.tolist()
    assert book.records["asset"][:n].tolist() == (np.arange(n) % 7).tolist()
    assert book.records["submit_bar"][:n].tolist() == np.repeat(np.arange(0, n, 250), 250).tolist()
    assert book.open_ids[: book.n_open].tolist() == list(range(n))
    assert log.view()["order_id"].tolist() == list(range(n))
    assert log.view()["price"].tolist() == limits.tolist()
