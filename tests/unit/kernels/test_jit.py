"""The kernel cache is keyed on every kernel source: an edit anywhere recompiles its callers.

Numba checks a cached function against its own file only. ``rules._hit`` calls
``levels.level_touch``; after an edit to ``levels.py`` alone, a process must run the new
``level_touch`` inside ``_hit``, not the copy cached with it. Each test copies the package to a
temporary folder, runs a child process on it, edits the copy, and runs a new child process.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ml4t.backtest
from ml4t.backtest import Engine, Strategy, engine
from ml4t.backtest.kernels import jit

PACKAGE = Path(ml4t.backtest.__file__).resolve().parent

# A long's stop at 95 on a bar that opens at 100 and trades down to 94: touched inside the bar,
# on the adverse leg (key 1) at (100 - 95) / (101 - 94) / 2 of the way down it.
CHILD = """
from ml4t.backtest.kernels.rules import _hit
hit, when = _hit(True, True, 95.0, 100.0, 101.0, 94.0, 1.0, 2.0)
print(hit, round(when, 6))
"""
TOUCHED = f"True {round(1.0 + 0.5 * 5.0 / 7.0, 6)}"
# The edit: a bar's range never meets a level (only a gap at the open would).
ORIGINAL = "        return LEVEL_TOUCHED if lo <= level else LEVEL_MISSED\n"
EDITED = "        return LEVEL_MISSED\n"


def _copy_package(root: Path) -> Path:
    target = root / "src" / "ml4t" / "backtest"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _run_child(src: Path, cache_dir: Path | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(src)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _edit_levels(package: Path) -> None:
    levels = package / "kernels" / "levels.py"
    text = levels.read_text()
    assert text.count(ORIGINAL) == 1
    levels.write_text(text.replace(ORIGINAL, EDITED))


def test_an_edit_to_a_callee_recompiles_its_cached_caller_under_numba_cache_dir(tmp_path):
    package = _copy_package(tmp_path)
    cache = tmp_path / "cache"
    assert _run_child(tmp_path / "src", cache) == TOUCHED
    assert _run_child(tmp_path / "src", cache) == TOUCHED  # now from the cache
    _edit_levels(package)
    assert _run_child(tmp_path / "src", cache) == "False inf"


def test_a_new_source_hash_prunes_the_caches_of_older_ones(tmp_path):
    package = _copy_package(tmp_path)
    cache = tmp_path / "cache"
    _run_child(tmp_path / "src", cache)
    (root,) = (cache / "ml4t-backtest").iterdir()  # one folder per package location
    (before,) = root.iterdir()
    _edit_levels(package)
    _run_child(tmp_path / "src", cache)
    (after,) = root.iterdir()
    assert after.name != before.name


def test_every_kernel_of_the_package_is_compiled_through_kernels_jit():
    bypass = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "jit.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "njit" in line or "cache=True" in line or "numba import jit" in line
    ]
    assert bypass == []


def test_an_edit_to_a_callee_recompiles_its_cached_caller_in_the_package_tree(tmp_path):
    package = _copy_package(tmp_path)
    assert _run_child(tmp_path / "src", None) == TOUCHED
    _edit_levels(package)
    assert _run_child(tmp_path / "src", None) == "False inf"


NEEDS_COMPILE = """
from ml4t.backtest.kernels.jit import needs_compile
from ml4t.backtest.kernels.levels import level_touch
before = needs_compile(level_touch)
level_touch(True, 95.0, 100.0, 101.0, 94.0)
print(before, needs_compile(level_touch))
"""


def test_needs_compile_until_a_kernel_is_compiled_or_cached(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")

    def child() -> str:
        return subprocess.run(
            [sys.executable, "-c", NEEDS_COMPILE], env=env, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip

    assert child() == "True False"  # empty cache: compiles, then compiled
    assert child() == "False False"  # a new process finds it in the cache


WRAPPERS = """
from ml4t.backtest.kernels.jit import from_python
from ml4t.backtest.kernels.levels import LEVEL_TOUCHED, level_touch
from ml4t.backtest.kernels.rules import _hit
_hit(True, True, 95.0, 100.0, 101.0, 94.0, 1.0, 2.0)
twin = from_python(level_touch)
# ``_hit`` compiled ``level_touch`` for kernels: without the CPython wrapper, no twin yet.
print(len(level_touch.signatures), len(twin.signatures))
wrapperless = "no_cpython_wrapper"
print(level_touch.targetoptions.get(wrapperless), twin.targetoptions.get(wrapperless))
touched = level_touch(True, 95.0, 100.0, 101.0, 94.0) == LEVEL_TOUCHED
print(touched, len(twin.signatures), len(level_touch.signatures))
"""


def test_kernels_call_a_kernel_without_wrapper_and_python_calls_its_twin(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    # Compiled, then loaded from the cache, where ``_hit`` holds ``level_touch``'s code: the
    # second process compiles neither.
    for kernels in (1, 0):
        out = subprocess.run(
            [sys.executable, "-c", WRAPPERS], env=env, capture_output=True, text=True, check=True
        ).stdout.split("\n")
        assert out[:3] == [f"{kernels} 0", "True None", f"True 1 {kernels}"]
    names = {p.name.split("-")[0] for p in (tmp_path / "cache").rglob("levels.level_touch*")}
    assert names == {"levels.level_touch", "levels.level_touch.from_python"}


class Idle(Strategy):
    def on_data(self, timestamp, data, broker):  # type: ignore[no-untyped-def]
        pass


def _tiny_run(make_feed, monkeypatch, compiling: bool) -> None:
    monkeypatch.setattr(engine, "needs_compile", lambda *kernels: compiling)
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 11.0)]})
    Engine(feed, Idle()).run(progress=True)


def test_progress_says_compiling_on_a_first_run(make_feed, monkeypatch, capsys):
    from ml4t.backtest.kernels.jit import COMPILING_NOTICE

    _tiny_run(make_feed, monkeypatch, compiling=True)
    assert COMPILING_NOTICE in capsys.readouterr().err


def test_progress_says_nothing_of_compiling_once_kernels_are_cached(make_feed, monkeypatch, capsys):
    from ml4t.backtest.kernels.jit import COMPILING_NOTICE

    _tiny_run(make_feed, monkeypatch, compiling=False)
    assert COMPILING_NOTICE not in capsys.readouterr().err


def test_a_kernel_called_with_different_constants_is_compiled_once():
    from numba import njit

    from ml4t.backtest.kernels.jit import _one_specialisation

    @_one_specialisation
    @njit
    def add(x, code):
        return x + code

    @njit
    def twice(x):
        # Two constants: numba would type them Literal[int](1) and Literal[int](2) and compile
        # ``add`` once for each.
        return add(x, 1) + add(x, 2)

    assert twice(1.0) == 5.0
    assert len(add.signatures) == 1


def test_a_folded_kernel_called_from_a_kernel_compiles_no_kernel_of_its_own():
    import numpy as np
    from numba import njit

    from ml4t.backtest.kernels.jit import folded

    @folded
    def bump(a, by):
        a[0] += by

    @njit
    def phase(a):
        bump(a, 2.0)
        bump(a, 3.0)

    a = np.zeros(1)
    phase(a)
    # Inlined into ``phase``: 0 + 2 + 3, and no compiled ``bump`` of its own.
    assert a[0] == 5.0
    assert bump.signatures == []
    bump(a, 1.0)  # from Python it compiles alone
    assert a[0] == 6.0
    assert len(bump.signatures) == 1


def test_the_compile_notice_looks_at_every_step_the_run_calls(make_feed, monkeypatch):
    from ml4t.backtest.kernels import clock
    from ml4t.backtest.risk import StopLoss

    asked: list[object] = []
    monkeypatch.setattr(engine, "needs_compile", lambda *kernels: asked.extend(kernels) or False)
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 11.0)]})
    Engine(feed, Idle(), position_rules=StopLoss(0.05)).run(progress=True)
    # A run with position rules calls the open phase with the rules (not the plain one): a
    # first run compiles it too.
    assert clock.open_rules in asked
    assert clock.open_plain not in asked
    assert clock.close_phase in asked


def test_the_compile_notice_looks_at_each_step_when_the_strategy_hears_fills(
    make_feed, monkeypatch
):
    from ml4t.backtest.kernels import clock
    from ml4t.backtest.risk import StopLoss

    class Hears(Idle):
        def on_fill(self, fill, broker):  # type: ignore[no-untyped-def]
            pass

    asked: list[object] = []
    monkeypatch.setattr(engine, "needs_compile", lambda *kernels: asked.extend(kernels) or False)
    feed = make_feed({"A": [(10.0, 10.0), (10.0, 11.0)]})
    Engine(feed, Hears(), position_rules=StopLoss(0.05)).run(progress=True)
    assert clock.apply_rules in asked
    assert clock.close_phase in asked


def test_a_compile_from_python_starts_on_a_stack_chunk_of_its_own(monkeypatch):
    """CPython 3.11/3.12 thrash a stack chunk boundary that falls inside a compile's
    recursion (gh-142183); compiles called from Python go through ``_with_room``."""
    from ml4t.backtest.kernels import jit

    seen: list[object] = []
    real = jit._with_room
    monkeypatch.setattr(jit, "_with_room", lambda fn, a, k: seen.append(fn) or real(fn, a, k))

    @jit.leaf
    def plus_one(x):  # type: ignore[no-untyped-def]
        return x + 1.0

    assert plus_one(1.0) == 2.0  # compiles (its twin, from Python) through _with_room
    assert len(seen) == 1
    assert plus_one(2.0) == 3.0  # compiled already: no compile
    assert len(seen) == 1


def test_with_room_returns_and_raises_what_the_call_does():
    import pytest

    from ml4t.backtest.kernels import jit

    assert jit._with_room(divmod, (7, 2), {}) == (3, 1)
    assert jit._with_room(int, ("ff",), {"base": 16}) == 255
    with pytest.raises(ZeroDivisionError):
        jit._with_room(divmod, (1, 0), {})
    # The frame it calls from is big enough for a chunk of its own with room to spare.
    assert jit._roomy_call().__code__.co_nlocals >= jit._ROOM_SLOTS


def test_kernels_compiled_from_python_fold_their_callees_without_copying_them(monkeypatch):
    """The package's compiles inline with ``_FoldingWorker``, which splices each callee's
    freshly built IR in without numba's two deep copies; numba's own inliner is back after."""
    import numpy as np
    from numba.core import inline_closurecall, ir

    from ml4t.backtest.kernels import jit

    numbas = inline_closurecall.InlineWorker
    spliced: list[str] = []
    copied: list[object] = []
    fold = jit._FoldingWorker.inline_function

    def spy(self, caller_ir, block, i, function, arg_typs=None):  # type: ignore[no-untyped-def]
        spliced.append(function.__name__)
        return fold(self, caller_ir, block, i, function, arg_typs)

    monkeypatch.setattr(jit._FoldingWorker, "inline_function", spy)
    real_copy = ir.Var.__deepcopy__
    monkeypatch.setattr(
        ir.Var, "__deepcopy__", lambda v, memo: copied.append(v) or real_copy(v, memo)
    )

    @jit.folded
    def clipped(x, lo, hi):  # type: ignore[no-untyped-def]
        # Branches and a loop: several blocks, and names the caller uses too.
        total = 0.0
        for k in range(3):
            total += x if k < 2 else -x
        if total < lo:
            return lo
        if total > hi:
            return hi
        return total

    @jit.folded
    def spread(a, lo, hi):  # type: ignore[no-untyped-def]
        return clipped(a[0], lo, hi) - clipped(a[1], lo, hi)

    @jit.leaf
    def run(a, lo, hi):  # type: ignore[no-untyped-def]
        total = spread(a, lo, hi)
        return total + clipped(a[2], lo, hi)

    def by_hand(x: float, lo: float, hi: float) -> float:
        return min(max(x, lo), hi)

    a = np.array([2.0, -5.0, 30.0])
    expected = by_hand(2.0, -4.0, 4.0) - by_hand(-5.0, -4.0, 4.0) + by_hand(30.0, -4.0, 4.0)
    assert run(a, -4.0, 4.0) == expected == 10.0
    # ``spread`` and ``clipped`` into ``run``, and ``clipped`` twice into ``spread``.
    assert sorted(spliced) == ["clipped", "clipped", "clipped", "spread"]
    assert copied == []  # no variable of any inlined IR was copied
    assert inline_closurecall.InlineWorker is numbas


def test_the_folding_worker_is_only_in_place_during_the_package_compiles():
    from numba import njit
    from numba.core import inline_closurecall, types

    from ml4t.backtest.kernels import jit

    numbas = inline_closurecall.InlineWorker
    seen: list[object] = []

    @njit(inline="always")
    def one() -> float:
        return 1.0

    @njit
    def user_kernel() -> float:
        # A user's own kernel: compiled outside the package's compiles.
        return one() + 1.0

    numba_typing = types.Function.get_call_type
    assert user_kernel() == 2.0
    with jit._folding():
        seen.append(inline_closurecall.InlineWorker)
        seen.append(types.Function.get_call_type)
        with jit._folding():  # nested compiles leave the worker in place
            seen.append(inline_closurecall.InlineWorker)
            seen.append(types.Function.get_call_type)
        seen.append(inline_closurecall.InlineWorker)
        seen.append(types.Function.get_call_type)
    assert seen == [jit._FoldingWorker, jit._typed_once] * 3
    assert inline_closurecall.InlineWorker is numbas
    assert types.Function.get_call_type is numba_typing


def test_built_in_calls_are_typed_once_per_argument_types_as_numba_types_them(monkeypatch):
    """``_typed_once``: numba types each distinct built-in call once; every other call site
    with the same argument types gets numba's own signature back."""
    import gc
    import operator

    from numba.core.errors import TypingError

    from ml4t.backtest.kernels import jit

    kept: dict[tuple[object, ...], object] = {}
    monkeypatch.setattr(jit, "_CALL_TYPES", kept)
    asked: list[tuple[object, ...]] = []
    numba_typing = jit._NUMBA_CALL_TYPE

    def spy(function, context, args, kws):  # type: ignore[no-untyped-def]
        asked.append((function, tuple(args)))
        return numba_typing(function, context, args, kws)

    monkeypatch.setattr(jit, "_NUMBA_CALL_TYPE", spy)

    # Compiled from a string: no cache to load it from, so it is typed in every run.
    source = (
        "def weighted(a, w, n):\n"
        "    total = 0.0\n"
        "    for i in range(n):\n"  # three reads a[i] of one typing, two w[i] of another
        "        total += a[i] * w[i] + a[i + 1] - a[i + 2] * w[i + 1]\n"
        "    return total\n"
    )
    space: dict[str, object] = {}
    exec(source, space)
    weighted = jit.leaf(space["weighted"])

    a = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([1, 2, 3], dtype=np.int64)
    by_hand = (1.0 * 1 + 2.0 - 3.0 * 2) + (2.0 * 2 + 3.0 - 4.0 * 3)
    assert weighted(a, w, 2) == by_hand
    assert len(asked) == len(set(asked))  # numba typed no call twice
    reads = [args for function, args in asked if function.typing_key is operator.getitem]
    assert sorted(map(str, reads)) == [
        "(Array(float64, 1, 'C', False, aligned=True), int64)",
        "(Array(int64, 1, 'C', False, aligned=True), int64)",
    ]  # each typed once for its call sites
    gc.collect()  # numba interns types weakly: the kept ones must be those lowering reads
    for (function, context, _, args, kws), signature in kept.items():
        assert numba_typing(function, context, args, dict(kws)) == signature
        assert function.get_impl_key(signature) is not None

    exec("def wrong(a):\n    return a['price']\n", space)  # no field in a float array
    wrong = jit.leaf(space["wrong"])

    with pytest.raises(TypingError, match="getitem"):
        wrong(a)
    assert None not in kept.values()  # a call that fails to type is not kept


def test_the_garbage_collector_is_paused_during_a_compile_and_left_as_it_was(monkeypatch):
    import gc

    from ml4t.backtest.kernels import jit

    during: list[bool] = []
    real = jit._with_room
    monkeypatch.setattr(
        jit, "_with_room", lambda fn, a, k: during.append(gc.isenabled()) or real(fn, a, k)
    )

    @jit.leaf
    def plus_two(x):  # type: ignore[no-untyped-def]
        return x + 2.0

    was_enabled = gc.isenabled()
    try:
        gc.enable()
        assert plus_two(1.0) == 3.0  # compiles, collector paused
        assert gc.isenabled()
        gc.disable()
        assert plus_two(1) == 3.0  # an int: a second compile
        assert not gc.isenabled()  # a user's disabled collector stays disabled
    finally:
        if was_enabled:
            gc.enable()
    assert during == [False, False]


# A user's commission model, in Python: the event driver's fill step calls it through an
# object-mode callback (a kernel numba compiles into a library of its own). The compiled
# driver takes the built-in model of the same fees.
LINKED = """
import sys
import numpy as np
import pytest
from ml4t.backtest import BacktestConfig, DataFeed, Engine, Strategy, run_signals
from ml4t.backtest.execution.commission import CommissionModel, PerShareCommission

class HalfPenny(CommissionModel):
    def commission(self, quantity, price, *, monthly_volume=0.0):
        return 0.005 * abs(quantity)

close = np.array([10.0, 10.0, 12.0, 12.0, 11.0, 11.0, 13.0])
times = np.datetime64("2024-01-01") + np.arange(7).astype("timedelta64[D]")
fields = {k: close[:, None] for k in ("open", "high", "low", "close")}
fields["volume"] = np.full((7, 1), 1e6)
feed = DataFeed.from_arrays(times, ["A"], fields)
entries = np.array([True, False, False, True, False, False, False])[:, None]
exits = np.array([False, False, True, False, False, True, False])[:, None]

class Signals(Strategy):
    def on_data(self, timestamp, data, broker):
        broker.order_signals(entries[data.index], exits[data.index], size=0.5)

for driver in sys.argv[1:]:
    if driver == "compiled":
        config = BacktestConfig(initial_cash=1_000.0, commission=PerShareCommission(0.005))
        result = run_signals(feed, entries, exits, size=0.5, config=config)
    else:
        config = BacktestConfig(initial_cash=1_000.0, commission=HalfPenny())
        result = Engine(feed, Signals(), config).run()
    print(driver, result.fills["commission"].to_list(), round(result.final_value, 6))
"""


def test_kernels_only_kernels_call_are_linked_into_their_callers_in_every_process(tmp_path):
    # Such a kernel's module is linked into its callers, never compiled on its own
    # (``_LinkedLibrary``); its cached copy is bitcode that a later process links into a caller
    # it compiles then. Each order of first compiles, in fresh processes sharing a cache, gives
    # the same fills.
    # Fills at the next open: buys 1,000 x 0.5 / 10 = 50 at 10, sells them at 12; buys
    # 1,099.5 x 0.5 / 12 = 45.8 -> 45 at 11, sells them at 13. Half a cent a share.
    fees = [0.25, 0.25, 0.225, 0.225]
    final = round(1_000.0 + 50 * 2.0 + 45 * 2.0 - sum(fees), 6)
    for order in (("event", "compiled"), ("compiled", "event")):
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "-".join(order))
        for first in (order[0], order[1], order[0]):
            out = subprocess.run(
                [sys.executable, "-c", LINKED, first], env=env, capture_output=True, text=True
            )
            assert out.returncode == 0, out.stderr[-2000:]
            assert out.stdout.split() == [first, *str(fees).split(), str(final)]


def test_a_linked_kernel_is_not_compiled_alone_and_its_environment_comes_with_its_caller():
    namespace: dict[str, object] = {}
    # Defined where numba has no file to cache them in: each run compiles them afresh.
    exec("def inner(x):\n    return x + 1.0\n", namespace)
    exec("def outer(x):\n    return inner(x) * 2.0\n", namespace)
    inner = namespace["inner"] = jit.kernel(namespace["inner"])
    outer = jit.kernel(namespace["outer"])
    assert jit.from_python(outer)(1.0) == 4.0
    (linked,) = inner.overloads.values()
    (entry,) = jit.from_python(outer).overloads.values()
    assert isinstance(linked.library, jit._LinkedLibrary)
    assert isinstance(entry.library, jit._EntryLibrary)
    # No machine code of its own: its caller's module holds its code and its environment.
    assert linked.library._compiled_object is None
    assert entry.library._compiled_object is not None
    engine = entry.library._codegen._engine
    where = engine.get_global_value_address(linked.fndesc.env_name)
    assert ctypes.c_void_p.from_address(where).value == id(linked.environment)


def test_the_fingerprint_of_arguments_tells_apart_what_numba_types_apart():
    from typing import NamedTuple

    class Pair(NamedTuple):
        left: np.ndarray
        right: float

    a = np.zeros((3, 2))
    fp = jit._fingerprint
    assert fp((a, 1.0)) == fp((np.ones((3, 2)), 2.0))  # same types, other values
    readonly = a.copy()
    readonly.flags.writeable = False
    for other in (a.astype(np.float32), a[:, 0], np.asfortranarray(a), a[::2], readonly):
        assert fp((other, 1.0)) != fp((a, 1.0))
    assert fp((a, 1)) != fp((a, 1.0))
    assert fp((a, 2**63)) != fp((a, 1))  # numba takes it as uint64
    assert fp(Pair(a, 1.0)) != fp((a, 1.0))
    assert fp(Pair(a, 1.0)) == fp(Pair(np.ones((3, 2)), 3.0))
    assert fp((a, None)) != fp((a, 1.0))
    assert fp((a, "text")) is None  # not kept
    assert fp((np.float32(1.0),)) is None


def test_kept_call_runs_the_compiled_function_of_the_arguments_types():
    namespace: dict[str, object] = {}
    exec("def first(a, k):\n    return a[0, 0] * k\n", namespace)  # no file: compiled afresh
    first = jit.leaf(namespace["first"])
    c = np.arange(6.0).reshape(3, 2) + 1.0
    f = np.asfortranarray(c) * 2.0
    result, call_c = jit.kept_call(first, (c, 2.0))
    assert result == 2.0
    result, call_f = jit.kept_call(first, (f, 2.0))
    assert result == 4.0
    assert call_c is not call_f  # C and Fortran layouts: two compiled functions
    assert jit.from_python(first).signatures and len(jit.from_python(first).signatures) == 2
    # Seen before: the kept function, without the dispatcher.
    again, call = jit.kept_call(first, (c * 3.0, 1.0))
    assert (again, call) == (3.0, call_c)
    assert jit.compiled_entry(first, (f, 5.0)) is call_f
