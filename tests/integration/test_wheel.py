"""The release artefacts: ``python -m build`` makes a wheel and an sdist, and the wheel,
installed in a fresh virtual environment, runs the demo (a file missing from it shows here)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import ml4t.backtest

ROOT = Path(__file__).parents[2]


def _run(args: list[str], cwd: Path, timeout: int = 900) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_installs_in_a_fresh_environment_and_runs_the_demo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=tmp_path)
    version = ml4t.backtest.__version__
    wheel = dist / f"ml4t_backtest-{version}-py3-none-any.whl"
    sdist = dist / f"ml4t_backtest-{version}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())

    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert "ml4t/backtest/py.typed" in names
    assert "ml4t/backtest/kernels/driver.py" in names
    assert not any(n.endswith((".nbi", ".nbc")) for n in names), "numba caches in the wheel"
    with tarfile.open(sdist) as t:
        members = {m.split("/", 1)[1] for m in t.getnames() if "/" in m}
    assert {"CHANGELOG.md", "README.md", "pyproject.toml", "mkdocs.yml"} <= members

    # A fresh environment, outside the repository: only the wheel can provide ml4t.backtest.
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path)
    where = _run(
        [str(python), "-c", "import ml4t.backtest as m; print(m.__file__, m.__version__)"],
        cwd=tmp_path,
    )
    assert str(env_dir) in where and version in where, where

    out = tmp_path / "demo"
    text = _run(
        [str(env_dir / "bin" / "ml4t-backtest"), "demo", "--assets", "30", "--bars", "300",
         "--out", str(out)],
        cwd=tmp_path,
    )  # fmt: skip
    assert "Sharpe" in text or "sharpe" in text, text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_trades"] > 0
    assert (out / "report.html").stat().st_size > 100_000  # plotly inlined: opens offline
