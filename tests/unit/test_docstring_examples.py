"""The examples in the package's docstrings run as written, except lines marked ``+SKIP``
(those that need a running strategy's ``broker`` or a user's own data)."""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

import ml4t.backtest

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(ml4t.backtest.__path__, "ml4t.backtest.")
)


def test_every_module_of_the_package_is_listed_and_its_examples_found():
    assert "ml4t.backtest.kernels.jit" in MODULES
    assert "ml4t.backtest.broker" in MODULES
    assert len(MODULES) > 40
    jit = importlib.import_module("ml4t.backtest.kernels.jit")
    found = doctest.DocTestFinder().find(jit, jit.__name__)
    assert sum(len(test.examples) for test in found) >= 30


def test_a_wrong_example_fails():
    broken = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "broken", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(broken, out=io.StringIO().write)
    assert runner.failures == 1


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_of_a_module_run_as_written(name: str) -> None:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()
