"""``ml4t-backtest``: every mistake is one ``error:`` line and exit status 2, never a traceback."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import yaml

from ml4t.backtest.cli import main

SMALL = {
    "data": {"synthetic": {"n_assets": 6, "n_bars": 60, "seed": 3}},
    "strategy": {"name": "TopNStrategy", "params": {"column": "score", "n": 2}},
}


def write_spec(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "bt.yaml"
    path.write_text(yaml.safe_dump(SMALL | extra, sort_keys=False))
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_run_refuses_a_non_empty_folder_that_holds_no_earlier_results(tmp_path, capsys):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "report.html").write_text("my own page")
    assert main(["run", str(write_spec(tmp_path)), "--out", str(out), "--quiet"]) == 2
    assert "not empty and holds no earlier results" in one_error_line(capsys)
    assert (out / "report.html").read_text() == "my own page"


def test_run_with_overwrite_writes_into_a_non_empty_folder(tmp_path):
    out = tmp_path / "mixed"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    config = str(write_spec(tmp_path))
    assert main(["run", config, "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert (out / "records" / "meta.json").is_file()
    assert (out / "notes.txt").read_text() == "keep me"


def test_run_rewrites_a_folder_of_its_own_earlier_results(tmp_path):
    config, out = str(write_spec(tmp_path)), str(tmp_path / "out")
    assert main(["run", config, "--out", out, "--quiet"]) == 0
    assert main(["run", config, "--out", out, "--quiet"]) == 0


@pytest.mark.parametrize("where", ["a_file", "a_file/below", "/dev/null/x"])
def test_an_output_path_under_a_file_is_an_error_line(tmp_path, capsys, where):
    (tmp_path / "a_file").write_text("")
    out = where if where.startswith("/") else str(tmp_path / where)
    assert main(["run", str(write_spec(tmp_path)), "--out", out, "--quiet"]) == 2
    assert "cannot write results to" in one_error_line(capsys)


def test_demo_refuses_a_non_empty_folder_too(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("")
    assert main(["demo", "--assets", "3", "--bars", "30", "--out", str(tmp_path), "--quiet"]) == 2
    assert "--overwrite" in one_error_line(capsys)


def test_a_store_that_is_not_a_duckdb_file_fails_before_the_run(tmp_path, capsys):
    store = tmp_path / "runs.duckdb"
    store.write_text("not a database " * 100)
    out = tmp_path / "out"
    args = ["run", str(write_spec(tmp_path)), "--out", str(out), "--quiet", "--store", str(store)]
    assert main(args) == 2
    assert "not a valid DuckDB database file" in one_error_line(capsys)
    assert not out.exists()  # nothing ran


def test_runs_list_on_a_file_that_is_not_a_store_is_an_error_line(tmp_path, capsys):
    store = tmp_path / "runs.duckdb"
    store.write_text("not a database " * 100)
    assert main(["runs", "list", "--store", str(store)]) == 2
    assert "run store" in one_error_line(capsys)


def test_a_store_in_a_missing_folder_fails_before_the_run(tmp_path, capsys):
    store = tmp_path / "no_such_folder" / "runs.duckdb"
    out = tmp_path / "out"
    args = ["run", str(write_spec(tmp_path)), "--out", str(out), "--quiet", "--store", str(store)]
    assert main(args) == 2
    assert f"the folder {store.parent} does not exist" in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("benchmark", ["A0002", "equal_weight"])
def test_run_benchmark_gives_alpha_and_beta(tmp_path, capsys, benchmark):
    config, out = str(write_spec(tmp_path)), str(tmp_path / "out")
    assert main(["run", config, "--out", out, "--json", "--benchmark", benchmark]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert math.isfinite(metrics["alpha"]) and math.isfinite(metrics["beta"])
    saved = yaml.safe_load((tmp_path / "out" / "backtest.yaml").read_text())
    assert saved["benchmark"] == benchmark  # the resolved file reruns the same backtest


def test_run_takes_the_benchmark_from_the_file(tmp_path, capsys):
    config, out = str(write_spec(tmp_path, benchmark="equal_weight")), str(tmp_path / "out")
    assert main(["run", config, "--out", out, "--json"]) == 0
    assert math.isfinite(json.loads(capsys.readouterr().out)["metrics"]["beta"])


def test_run_finds_a_strategy_module_in_the_working_directory(tmp_path, monkeypatch, capsys):
    # As the installed script runs: its own folder, not the working directory, on sys.path.
    (tmp_path / "cwd_strategies.py").write_text(
        "from ml4t.backtest import Strategy\n\n"
        "class BuyFirst(Strategy):\n"
        "    def on_data(self, timestamp, data, broker):\n"
        "        if data.index == 0:\n"
        "            broker.submit_order(str(data.assets[0]), 5)\n"
    )
    spec = SMALL | {"strategy": {"name": "cwd_strategies:BuyFirst"}}
    (tmp_path / "bt.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    outside = [p for p in sys.path if p and Path(p).resolve() != tmp_path.resolve()]
    monkeypatch.setattr(sys, "path", [str(Path(sys.executable).parent), *outside])
    monkeypatch.delitem(sys.modules, "cwd_strategies", raising=False)
    assert main(["run", "bt.yaml", "--out", "out", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["n_fills"] == 1


def test_validate_without_a_peer_names_the_extra_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "vectorbt", None)  # import vectorbt now fails
    assert main(["validate", "--framework", "vectorbt"]) == 2
    err = one_error_line(capsys)
    assert "needs vectorbt" in err and 'pip install -e ".[validation]"' in err


def test_validate_an_unknown_scenario_lists_the_known_ones(capsys):
    assert main(["validate", "--scenario", "ma_crosover"]) == 2
    err = one_error_line(capsys)
    assert "did you mean 'ma_crossover'" in err and "stop_loss" in err
