"""The README's self-contained Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codeblocks import run_block
from ml4t.backtest.datasets import synthetic_universe

README = Path(__file__).parents[2] / "README.md"


def runnable_blocks() -> list[str]:
    """Fenced Python blocks that stand alone: they import what they use and need no broker."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if "import" in b and "broker." not in b.split("def ")[0]]


def test_the_readme_has_standalone_examples():
    assert len(runnable_blocks()) >= 3


@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda b: b.splitlines()[0][:40])
def test_readme_example_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The first-backtest example reads prices.parquet: give it the bundled synthetic data.
    synthetic_universe(n_assets=20, n_bars=120, seed=3).write_parquet("prices.parquet")
    run_block(block, str(README), tmp_path)
