"""The ``ml4t-backtest`` command line.

Every error the package raises on purpose, and every error of the file system or the run store
around the paths given, prints one ``error: ...`` line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .errors import BacktestError, ConfigError

# What a results folder written by result.save always holds: a folder with it is ours to rewrite.
_RESULTS_MARKER = Path("records") / "meta.json"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ml4t-backtest``; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="ml4t-backtest",
        description="Event-driven backtesting for machine-learning trading strategies.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo_command(sub)
    _add_run_command(sub)
    _add_sweep_command(sub)
    _add_runs_command(sub)
    _add_report_command(sub)
    _add_validate_command(sub)
    args = parser.parse_args(argv)

    try:
        if args.command in ("run", "sweep") and args.store:
            _check_store(args.store)
        if args.command == "demo":
            return _demo(args)
        if args.command == "run":
            return _run(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "runs":
            return _runs(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "report":
            return _report(args)
    except (BacktestError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        duckdb = sys.modules.get("duckdb")
        if duckdb is not None and isinstance(exc, duckdb.Error):
            print(f"error: run store: {exc}", file=sys.stderr)
            return 2
        raise
    return 1


def _add_demo_command(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="run a top-N model-score strategy on the bundled synthetic universe",
        description=(
            "Run a top-N strategy on a synthetic universe with a noisy predictive score, print "
            "the summary and save the results.\n\nexample:\n"
            "  ml4t-backtest demo --assets 200 --bars 2520 --out results/demo"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--assets", type=int, default=100, help="number of assets (default 100)")
    demo.add_argument("--bars", type=int, default=1260, help="number of daily bars (default 1260)")
    demo.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    demo.add_argument("--top", type=int, default=10, help="assets held (default 10)")
    demo.add_argument("--every", type=int, default=5, help="rebalance every N bars (default 5)")
    demo.add_argument(
        "--out", default="results/demo", help="folder for the results (default results/demo)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)


def _add_run_command(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run a backtest described by a YAML file",
        description=(
            "Run the backtest a YAML file describes (data, strategy, config, rules, output), "
            "print its summary and write Parquet results, the resolved config and report.html "
            "to its output folder.\n\nexample:\n"
            "  ml4t-backtest run examples/configs/ml_topn.yaml --out results/topn"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("config", help="the backtest's YAML file")
    run.add_argument("--out", help="results folder (default: the file's 'output' key)")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    run.add_argument("--json", action="store_true", help="print the metrics as JSON")
    run.add_argument("--store", help="also record the run in this run store (a DuckDB file)")
    run.add_argument(
        "--benchmark",
        metavar="ASSET",
        help="an asset of the data, or equal_weight (a buy-and-hold of every asset, 1/N each): "
        "the metrics get alpha and beta, the report draws it (default: the file's 'benchmark')",
    )
    run.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)


def _add_sweep_command(sub: Any) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="run a YAML backtest once per combination of its grid section",
        description=(
            "Run the backtest a YAML file describes once per combination of its 'grid' section "
            "(dotted paths into the file, each with a list of values), on local processes or a "
            "Dask cluster, and print one row per run with its parameters and metrics.\n\n"
            "example grid section:\n"
            "  grid:\n"
            "    strategy.params.n: [5, 10, 20]\n"
            "    config.commission: [0.0005, 0.001]\n\n"
            "example:\n"
            "  ml4t-backtest sweep examples/configs/ml_topn_sweep.yaml --store runs.duckdb"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("config", help="the backtest's YAML file, with a grid section")
    sweep.add_argument("--dask", help="a Dask scheduler address, host:port (default: local)")
    sweep.add_argument("--store", help="record every run in this run store (a DuckDB file)")
    sweep.add_argument("--out", help="also write the table to this Parquet file")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    sweep.add_argument("--json", action="store_true", help="print the table as JSON rows")


def _add_runs_command(sub: Any) -> None:
    runs = sub.add_parser(
        "runs",
        help="list, show and compare runs in a run store",
        description=(
            "Read the run store (a DuckDB file written by run --store, sweep --store, or the "
            "Python API).\n\nexamples:\n"
            "  ml4t-backtest runs list\n"
            "  ml4t-backtest runs show 12\n"
            "  ml4t-backtest runs compare 12 15 --store research/runs.duckdb"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    runs.add_argument("action", choices=["list", "show", "compare"], help="what to print")
    runs.add_argument("ids", nargs="*", type=int, help="run ids (show: one; compare: two or more)")
    runs.add_argument(
        "--store", default="runs.duckdb", help="the DuckDB file (default runs.duckdb)"
    )
    runs.add_argument("--json", action="store_true", help="print JSON")


def _add_report_command(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="rebuild the HTML report of saved results",
        description=(
            "Rebuild report.html from a results folder written by `run` (or result.save).\n\n"
            "example:\n  ml4t-backtest report results/ml_topn"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("results", help="the results folder")
    report.add_argument("--out", help="where to write it (default RESULTS/report.html)")


def _add_validate_command(sub: Any) -> None:
    validate = sub.add_parser(
        "validate",
        help="run the parity suite against VectorBT, Backtrader, Zipline and backtesting.py",
        description=(
            "Run every parity scenario in the peer frameworks and here (with the matching "
            "preset) and print: scenario, framework, our final value, theirs, the difference, "
            "and how many fills matched. The peers run at their default set-ups and at the "
            "look-ahead-free next-open ones (VectorBT signals shifted to the open, Backtrader "
            "cheat-on-open, backtesting.py). Needs the 'validation' extra (vectorbt, "
            "backtrader, zipline-reloaded, backtesting)."
            "\n\nexample:\n  ml4t-backtest validate --framework backtesting"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("--framework", action="append", help="only this peer (repeatable)")
    validate.add_argument("--scenario", action="append", help="only this scenario (repeatable)")
    validate.add_argument("--json", action="store_true", help="print JSON rows")


_OVERWRITE_HELP = (
    "write into the output folder even if it holds files other than earlier results "
    "(files of the same names are replaced)"
)


def _check_output(out: Path, *, overwrite: bool) -> None:
    """Refuse an output path we cannot or should not write results into, before any run."""
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"cannot write results to {out}: {parent} is not a folder")
            break
    if out.exists() and not out.is_dir():
        raise ConfigError(f"cannot write results to {out}: it is a file, not a folder")
    if overwrite or not out.is_dir() or (out / _RESULTS_MARKER).is_file():
        return
    if any(out.iterdir()):
        raise ConfigError(
            f"the output folder {out} is not empty and holds no earlier results "
            f"({_RESULTS_MARKER} is missing): choose a new folder, or pass --overwrite to "
            "write the result files (equity.parquet, fills.parquet, ..., report.html) into it"
        )


def _check_store(path: str) -> None:
    """Check a --store path before a run, so a bad one fails before the work, not after."""
    store = Path(path)
    if store.is_dir():
        raise ConfigError(
            f"--store {path} is a folder; give a DuckDB file, e.g. {store / 'runs.duckdb'}"
        )
    if not store.parent.is_dir():
        raise ConfigError(f"--store {path}: the folder {store.parent} does not exist")
    if store.exists():
        from .research.store import RunStore

        RunStore(store).runs()  # opens it: a file that is not a DuckDB database fails here


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    _check_output(Path(args.out), overwrite=args.overwrite)
    start = time.perf_counter()
    result = run_demo(
        n_assets=args.assets,
        n_bars=args.bars,
        seed=args.seed,
        top_n=args.top,
        every=args.every,
        out=args.out,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    elapsed = time.perf_counter() - start
    print(result.summary())
    result.report(Path(args.out) / "report.html")
    print(
        f"\nResults written to {args.out}/ (equity, fills, trades, orders as Parquet; "
        f"metrics.json; config.yaml; report.html) in {elapsed:.2f} s"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    import json

    from .spec import BacktestSpec

    start = time.perf_counter()
    spec = BacktestSpec.from_yaml(args.config)
    if args.benchmark is not None:
        spec.benchmark = args.benchmark
    out = Path(args.out if args.out is not None else str(spec.output))
    _check_output(out, overwrite=args.overwrite)
    result = spec.run(progress=not (args.quiet or args.json))
    elapsed = time.perf_counter() - start
    result.save(out, overwrite=args.overwrite)
    (out / "backtest.yaml").write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    result.report(out / "report.html")
    if args.store:
        from .research.store import RunStore, data_fingerprint

        RunStore(args.store).record(
            result,
            name=Path(args.config).stem,
            config=spec.to_dict(),
            data_fingerprint=data_fingerprint(spec.feed()),
            results_path=out.resolve(),
        )
    if args.json:
        metrics = {
            k: (None if isinstance(v, float) and v != v else v) for k, v in result.metrics.items()
        }
        print(json.dumps({"output": str(out), "seconds": round(elapsed, 3), "metrics": metrics}))
    elif not args.quiet:
        print(result.summary())
        print(f"\nResults written to {out}/ in {elapsed:.2f} s")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    import json
    import math

    import polars as pl

    from .research.sweep import SweepInterrupted, sweep_spec
    from .spec import BacktestSpec

    spec = BacktestSpec.from_yaml(args.config)
    executor = None if args.dask is None else f"dask://{args.dask.removeprefix('tcp://')}"
    try:
        table = sweep_spec(
            spec,
            executor,
            progress=not (args.quiet or args.json),
            store=args.store,
            name=Path(args.config).stem,
        )
    except SweepInterrupted as stop:
        where = "not recorded (no --store)" if stop.store is None else f"recorded in {stop.store}"
        print(f"interrupted: {stop.finished} of {stop.total} runs finished, {where}",
              file=sys.stderr)  # fmt: skip
        return 130  # the shell's code for a process stopped by SIGINT
    if args.out:
        table.write_parquet(args.out)
    if args.json:
        # NaN is not JSON: a metric without a value (alpha with no benchmark) is null.
        rows = [
            {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in r.items()}
            for r in table.to_dicts()
        ]
        print(json.dumps(rows, default=str, allow_nan=False))
    elif not args.quiet:
        with pl.Config(tbl_rows=-1, tbl_cols=12, tbl_width_chars=160):
            print(table)
    return 0


def _runs(args: argparse.Namespace) -> int:
    import json

    import polars as pl

    from .research.store import RunStore

    store = RunStore(args.store)
    if args.action != "list" and not Path(args.store).exists():
        print(f"error: no run store at {args.store}", file=sys.stderr)
        return 2
    if args.action == "list":
        frame = store.runs() if Path(args.store).exists() else pl.DataFrame()
    elif args.action == "show":
        if len(args.ids) != 1:
            print("error: runs show takes one run id", file=sys.stderr)
            return 2
        row = store.run(args.ids[0])
        print(json.dumps(row, default=str, indent=None if args.json else 2))
        return 0
    else:
        if len(args.ids) < 2:
            print("error: runs compare takes two or more run ids", file=sys.stderr)
            return 2
        frame = store.compare(args.ids)
    if args.json:
        print(json.dumps(frame.to_dicts(), default=str))
    else:
        with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=160):
            print(frame)
    return 0


def _report(args: argparse.Namespace) -> int:
    from .results.result import BacktestResult

    result = BacktestResult.load(args.results)
    out = Path(args.out) if args.out else Path(args.results) / "report.html"
    print(result.report(out, title=f"Backtest report: {Path(args.results).name}"))
    return 0


def _validate(args: argparse.Namespace) -> int:
    import json

    import polars as pl

    from .validation import run_validation

    table = run_validation(frameworks=args.framework, scenarios=args.scenario)
    if args.json:
        print(json.dumps(table.to_dicts(), default=str))
    else:
        shown = table.select(
            "scenario", "framework", "status", "ours_final", "theirs_final", "final_rel_diff",
            "fills", "note",
        )  # fmt: skip
        with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=90):
            print(shown)
    return 0 if (table["status"] != "MISMATCH").all() else 1


if __name__ == "__main__":
    sys.exit(main())
