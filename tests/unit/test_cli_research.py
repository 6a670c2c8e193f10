"""``ml4t-backtest sweep`` and ``ml4t-backtest runs``: YAML grids and the run store."""

from __future__ import annotations

import importlib
import json

import yaml

from ml4t.backtest.cli import main

SMALL = {
    "data": {"synthetic": {"n_assets": 8, "n_bars": 80, "seed": 2}},
    "strategy": {"name": "TopNStrategy", "params": {"column": "score", "n": 2}},
    "position_rules": {"AnyOf": [{"StopLoss": 0.05}, {"TimeExit": 10}]},
}


def write(tmp_path, grid):  # type: ignore[no-untyped-def]
    path = tmp_path / "bt.yaml"
    path.write_text(yaml.safe_dump(SMALL | {"grid": grid}, sort_keys=False))
    return path


def test_sweep_runs_the_grid_and_the_store_lists_shows_and_compares(tmp_path, capsys):
    config = write(
        tmp_path,
        {"strategy.params.n": [1, 3], "position_rules.AnyOf.1.TimeExit": [5, 20]},
    )
    store = str(tmp_path / "runs.duckdb")
    assert main(["sweep", str(config), "--json", "--store", store]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["strategy.params.n"], r["position_rules.AnyOf.1.TimeExit"]) for r in rows] == [
        (1, 5),
        (1, 20),
        (3, 5),
        (3, 20),
    ]
    assert all(r["error"] is None for r in rows)

    assert main(["runs", "list", "--store", store, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 5 and listed[-1]["kind"] == "sweep"  # the group row is the oldest
    assert main(["runs", "show", str(listed[0]["id"]), "--store", store, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    combos = [{"strategy.params.n": r[0], "position_rules.AnyOf.1.TimeExit": r[1]} for r in [
        (1, 5), (1, 20), (3, 5), (3, 20)]]  # fmt: skip
    assert shown["params"] in combos  # runs are stored as they finish, in any order
    assert main(["runs", "compare", "2", "3", "--store", store]) == 0
    assert "run 2" in capsys.readouterr().out


def test_a_wrong_grid_path_fails_before_anything_runs(tmp_path, capsys):
    config = write(tmp_path, {"position_rules.AnyOf.5.TimeExit": [5]})
    assert main(["sweep", str(config), "--quiet"]) == 2
    assert "not an index of its list" in capsys.readouterr().err
    config = write(tmp_path, {"config.comission": [0.1]})
    assert main(["sweep", str(config), "--quiet"]) == 2
    assert "did you mean 'commission'" in capsys.readouterr().err


def test_run_records_into_the_store(tmp_path, capsys):
    path = tmp_path / "bt.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    store = str(tmp_path / "runs.duckdb")
    out = str(tmp_path / "out")
    assert main(["run", str(path), "--out", out, "--quiet", "--store", store]) == 0
    assert main(["runs", "show", "1", "--store", store, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["results"].endswith("out")
    assert shown["config"]["strategy"]["name"] == "TopNStrategy"
    assert len(shown["data_fingerprint"]) == 24


def test_runs_without_a_store_says_so(tmp_path, capsys):
    assert main(["runs", "show", "1", "--store", str(tmp_path / "none.duckdb")]) == 2
    assert "no run store" in capsys.readouterr().err


def test_sweep_json_writes_null_for_metrics_without_a_value(tmp_path, capsys):
    # Alpha and beta need a benchmark: without one they are NaN, which JSON cannot hold.
    config = write(tmp_path, {"strategy.params.n": [1, 2]})
    assert main(["sweep", str(config), "--json"]) == 0

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    rows = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert [(r["alpha"], r["beta"]) for r in rows] == [(None, None), (None, None)]


def test_sweep_interrupted_says_what_ran_and_exits_130(tmp_path, capsys, monkeypatch):
    import polars as pl

    from ml4t.backtest.research import SweepInterrupted

    sweep_module = importlib.import_module("ml4t.backtest.research.sweep")
    store = tmp_path / "runs.duckdb"

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise SweepInterrupted(pl.DataFrame({"run": [0, 1, 2]}), 8, store)

    monkeypatch.setattr(sweep_module, "sweep_spec", interrupted)
    config = write(tmp_path, {"strategy.params.n": [1, 2]})
    assert main(["sweep", str(config), "--store", str(store)]) == 130
    expected = f"interrupted: 3 of 8 runs finished, recorded in {store}"
    assert capsys.readouterr().err.strip() == expected
