"""The documentation site builds with --strict, and its API reference covers every public name."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
# The modules whose ``__all__`` is the public API; each name must have a reference entry.
PUBLIC_MODULES = [
    "ml4t.backtest",
    "ml4t.backtest.risk",
    "ml4t.backtest.research",
    "ml4t.backtest.results",
    "ml4t.backtest.data",
    "ml4t.backtest.datasets",
    "ml4t.backtest.validation",
]
UNDOCUMENTED = {"__version__"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def inventory(site: Path) -> set[str]:
    """Object names in the site's objects.inv (Sphinx inventory v2: 4 header lines, zlib)."""
    raw = (site / "objects.inv").read_bytes()
    body = raw.split(b"\n", 4)[4]
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


def test_site_builds_strictly_with_every_page(site: Path) -> None:
    for page in ("index.html", "getting-started/index.html", "guides/ml/index.html",
                 "migration/backtrader/index.html", "reference/backtest/index.html"):  # fmt: skip
        assert (site / page).is_file(), page


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_name_is_in_the_reference(site: Path, module: str) -> None:
    mod = importlib.import_module(module)
    documented = inventory(site)
    missing = []
    for name in sorted(set(mod.__all__) - UNDOCUMENTED):
        obj = getattr(mod, name)
        # Documented under the name users import, or where it is defined.
        defined = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', name)}"
        if f"{module}.{name}" not in documented and defined not in documented:
            missing.append(name)
    assert not missing, f"{module}: no API reference entry for {missing}"
