"""How the kernels are compiled and cached: every kernel of the package goes through here.

Numba's ``cache=True`` checks a cached kernel against its own source file only: after an edit to
``step.py``, the cached ``driver.py`` kernels that call into it would keep running the old code,
in scripts, notebooks and the CLI alike. So the package's kernels are cached under a folder named
by a hash of every kernel source (``kernel_sources``): any edit to any of them starts a fresh
cache, in every process. The folder is ``$NUMBA_CACHE_DIR/ml4t-backtest/<package>/<hash>`` when
``NUMBA_CACHE_DIR`` is set, else ``__pycache__/numba/<hash>`` inside the package (or, where that
is not writable, the user's cache folder). When a new hash folder is made, the folders of other
hashes of the same package are deleted, so old caches do not pile up.
"""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import threading
import time
import types as pytypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numba import njit
from numba.core import caching, inline_closurecall, ir, types
from numba.core import config as numba_config
from numba.core.caching import _CacheLocator, _SourceFileBackedLocatorMixin
from numba.core.codegen import JITCodeLibrary as _NumbaLibrary
from numba.core.compiler import Compiler as _NumbaCompiler
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher
from numba.core.target_extension import get_local_target

F = TypeVar("F", bound=Callable[..., Any])

PACKAGE: Path = Path(__file__).resolve().parent.parent
# Besides kernels/ (kernels and the codes they read), a module defines kernels if it says so.
_KERNEL_MARKERS = ("numba", "@kernel", "@leaf")

# ``_nrt`` is a numba option its type stubs do not list.
_LEAF_OPTIONS: dict[str, Any] = {"cache": True, "_nrt": False, "no_cfunc_wrapper": True}
# No kernel is used as a first-class function (a C callback), so none needs the C wrapper
# numba would otherwise build for each (about a twentieth of a first run's compile).
_KERNEL_OPTIONS: dict[str, Any] = {"cache": True, "no_cfunc_wrapper": True}
_COUNTED_OPTIONS: dict[str, Any] = {**_KERNEL_OPTIONS, "_nrt": True}
_INLINED_OPTIONS: dict[str, Any] = {"inline": "always", "no_cfunc_wrapper": True}
_FOLDED_OPTIONS: dict[str, Any] = {**_LEAF_OPTIONS, "inline": "always"}
# A kernel Python calls for a long stretch of work (a run's loop, a result's trades): its
# twin called from Python releases the GIL while it runs.
_RELEASED_OPTIONS: dict[str, Any] = {**_LEAF_OPTIONS, "nogil": True}
_RELEASED_COUNTED_OPTIONS: dict[str, Any] = {**_COUNTED_OPTIONS, "nogil": True}


def kernel_sources(package: Path = PACKAGE) -> list[Path]:
    """The source files whose content keys the kernel cache, sorted: everything in
    ``kernels/`` and every other module of the package that defines or compiles kernels.

    Example:
        >>> any(p.name == "step.py" for p in kernel_sources())
        True
    """
    found = []
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        in_kernels = path.parent == package / "kernels"
        if in_kernels or any(m in path.read_text(errors="ignore") for m in _KERNEL_MARKERS):
            found.append(path)
    return found


@cache
def source_hash(package: Path = PACKAGE) -> str:
    """A hash of the package's kernel sources (names and contents), computed once per process.

    Example:
        >>> len(source_hash())
        16
    """
    digest = hashlib.sha256()
    for path in kernel_sources(package):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _cache_roots(package: Path) -> list[Path]:
    """Where the hash folders of ``package`` go, in order of preference."""
    user_dir = str(getattr(numba_config, "CACHE_DIR", "") or "")
    if user_dir:
        # One folder per package location: two checkouts sharing a cache dir do not prune
        # each other's caches.
        where = hashlib.sha1(str(package).encode()).hexdigest()[:12]
        return [Path(user_dir) / "ml4t-backtest" / where]
    user = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    where = hashlib.sha1(str(package).encode()).hexdigest()[:12]
    return [package / "__pycache__" / "numba", user / "ml4t-backtest" / "numba" / where]


def _prune(root: Path, keep: str) -> None:
    """Delete the cache folders of other source hashes under ``root``."""
    for other in root.iterdir():
        if other.is_dir() and other.name != keep:
            shutil.rmtree(other, ignore_errors=True)


@cache
def cache_dir(package: Path = PACKAGE) -> Path | None:
    """The writable folder the package's kernels are cached in (made, and older hash folders
    pruned, on first use), or None when no candidate is writable (then nothing is cached).

    Example:
        >>> cache_dir().name == source_hash()  # doctest: +SKIP
        True
    """
    stamp = source_hash(package)
    for root in _cache_roots(package):
        folder = root / stamp
        try:
            fresh = not folder.is_dir()
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError:
            continue
        if fresh:
            _prune(root, stamp)
        return folder
    return None


class SourceHashLocator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """Numba cache locator for this package's kernels: the cache folder and the freshness
    stamp both come from the hash of all kernel sources, not from the kernel's own file."""

    def __init__(self, py_func: Callable[..., Any], py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        cache_path = _cache_path_of(py_file)
        assert cache_path is not None  # from_function made sure of it
        self._cache_path = cache_path

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> str:
        return source_hash(PACKAGE)

    @classmethod
    def from_function(cls, py_func: Callable[..., Any], py_file: str) -> Any:
        if _cache_path_of(py_file) is None:
            return None  # not ours: numba's own locators decide
        return super().from_function(py_func, py_file)  # type: ignore[no-untyped-call]


@cache
def _cache_path_of(py_file: str) -> str | None:
    """The cache folder of the kernels of ``py_file`` (one per source file, and every kernel
    of a file asks: an import makes a hundred kernels), or None when the file is not the
    package's or nothing can be cached."""
    path = Path(py_file).resolve()
    folder = cache_dir(PACKAGE)
    if PACKAGE not in path.parents or folder is None:
        return None
    # Kernels of different folders of the package may share a module name.
    relative = path.parent.relative_to(PACKAGE)
    return str(folder / (relative.as_posix().replace("/", "_") or "root"))


def _register() -> None:
    """Put the locator first in numba's list (once, even if this module is loaded twice).

    The list is ``CacheImpl._locator_classes`` (``_CacheImpl`` before numba 0.61). A user who
    sets ``NUMBA_CACHE_LOCATOR_CLASSES`` replaces the list, and with it this locator.
    """
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")  # noqa: B009
    classes: list[Any] = impl._locator_classes
    if not any(getattr(c, "__name__", "") == SourceHashLocator.__name__ for c in classes):
        classes.insert(0, SourceHashLocator)


_register()


# numba's own function, typed loosely: its stubs leave it untyped.
_unliteral: Callable[[Any], Any] = types.unliteral


def _one_specialisation(dispatcher: Any) -> Any:
    """Make calls from other kernels type their arguments without literal values.

    Numba types a constant argument (``_end(order, CANCELLED, R_OCO, ...)``) as
    ``Literal[int](3)`` and compiles the callee again for each distinct constant: ``_end`` was
    compiled 13 times and ``fill_orders`` 3 times on a first run, a quarter of the compile.
    Widening literals to their plain types at the call gives each kernel one specialisation
    per argument layout; no kernel of the package relies on literal dispatch.
    """
    typed = dispatcher.get_call_template

    def get_call_template(args: tuple[Any, ...], kws: dict[str, Any]) -> Any:
        args = tuple(_unliteral(a) for a in args)
        kws = {k: _unliteral(v) for k, v in kws.items()}
        return typed(args, kws)

    dispatcher.get_call_template = get_call_template
    return dispatcher


class _FreshStack(CPUDispatcher):
    """A kernel whose compiles, when a call from Python needs one, start on a stack chunk of
    their own with room for the whole compile (``_with_room``).

    CPython 3.11 and 3.12 keep a thread's Python frames in chunks (16 KB by default) and free a
    chunk as soon as the stack falls back below it (CPython gh-142183, fixed for 3.13 and
    3.14). Numba's compile recurses deeply and oscillates (``copy.deepcopy`` of each inlined
    kernel's IR): when a chunk boundary falls inside that oscillation, every crossing maps and
    unmaps a chunk, hundreds of thousands of times. Where the boundaries fall depends on how
    deep the caller's stack is (a script, a notebook, a test runner): a first run took 5-8 s
    more (system time) at some depths than at others."""

    def _compile_for_args(self, *args: Any, **kws: Any) -> Any:
        compile_for_args = super()._compile_for_args  # type: ignore[misc]
        with _folding(), _collector_paused():
            return _with_room(compile_for_args, args, kws)


class _UsedOnce(ir.Block):
    """A block of IR built for one inline only: numba's copy of it is the block itself."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _UsedOnce:
        return self


class _FoldingWorker(inline_closurecall.InlineWorker):
    """Numba's inliner, folding a kernel into a caller without copying the kernel's IR.

    For each call it inlines, numba builds the callee's IR afresh (``run_untyped_passes``),
    then deep-copies it twice before splicing it in, block by block, each block's copy taking
    the whole variable scope with it: a cost of blocks x variables per call, a sixth of a
    first run's compile here (numba issues 8989 and 9204). The IR built for one call serves
    that call only, and neither copy is read after the splice, so the blocks are spliced in as
    they are. Inlines of IR that numba keeps (``inline_ir`` called directly, as for
    ``@overload(inline=...)``) still copy it."""

    def inline_function(
        self, caller_ir: Any, block: Any, i: int, function: Any, arg_typs: Any = None
    ) -> Any:
        callee_ir = self.run_untyped_passes(function)  # type: ignore[no-untyped-call]
        built = list(callee_ir.blocks.values())
        for each in built:
            each.__class__ = _UsedOnce
        try:
            freevars = function.__code__.co_freevars
            return self.inline_ir(  # type: ignore[no-untyped-call]
                caller_ir, block, i, callee_ir, freevars, arg_typs=arg_typs
            )
        finally:
            for each in built:
                each.__class__ = ir.Block  # spliced into the caller: an ordinary block again


@contextmanager
def _folding() -> Iterator[None]:
    """Inline with ``_FoldingWorker``, and type built-in calls through ``_typed_once``, for
    the compiles inside (the package's kernels only: numba's own inliner and typing are put
    back after, under numba's compiler lock, so no compile of another thread sees the swap)."""
    with global_compiler_lock:
        saved = _NUMBA_INLINE.InlineWorker, _NUMBA_FUNCTION.get_call_type
        _NUMBA_INLINE.InlineWorker = _FoldingWorker
        _NUMBA_FUNCTION.get_call_type = _typed_once
        try:
            yield
        finally:
            _NUMBA_INLINE.InlineWorker, _NUMBA_FUNCTION.get_call_type = saved


def _typed_once(function: Any, context: Any, args: tuple[Any, ...], kws: dict[str, Any]) -> Any:
    """Numba's typing of a call to a built-in function (``a[i]``, ``x == y``, ``min``, ``bool``),
    kept by argument types (``_CALL_TYPES``) for the process.

    Numba types each call site afresh: it tries the function's templates in order (for
    ``getitem``, dozens) until one matches, formatting an error for each that does not. A
    compiled driver's first run made about 3,700 such calls over 180 distinct typings and
    spent 0.6 s of its compile on them (34,000 failed templates). The answer depends only on
    the function (whose type holds its templates), the typing context, its target and the
    argument types: the same typing, the same signature. A call that fails to type is not
    kept (typing may try it again with other types)."""
    try:
        target = get_local_target(context)  # type: ignore[no-untyped-call]
        key = (function, context, target, args, tuple(sorted(kws.items())))
        found = _CALL_TYPES.get(key)
    except TypeError:  # a type numba cannot hash: typed as numba types it
        return _NUMBA_CALL_TYPE(function, context, args, kws)
    if found is None:
        found = _NUMBA_CALL_TYPE(function, context, args, kws)
        if found is not None:
            _CALL_TYPES[key] = found
    return found


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the compile inside, then left as it was.

    A compile makes hundreds of thousands of objects (numba's IR, types, LLVM wrappers), so
    the collector ran six full passes over the whole heap during a first run, about 0.1 s
    each: 0.6 s of a 5 s first run. Paused, the compile's cycles wait for the collector's next
    pass after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Numba's inliner module, typed loosely: the passes look its ``InlineWorker`` up per compile.
_NUMBA_INLINE: Any = inline_closurecall
# Numba's type of built-in functions and its own typing of their calls (``_typed_once``).
_NUMBA_FUNCTION: Any = types.Function
_NUMBA_CALL_TYPE = _NUMBA_FUNCTION.get_call_type
# Kept signatures, by function type, context, target and argument types. A key holds its
# function type: numba interns types weakly, and lowering reads the implementation numba's
# typing recorded on that very type object, which must not be dropped and made anew.
_CALL_TYPES: dict[tuple[Any, ...], Any] = {}


def _with_room(fn: Callable[..., Any], args: tuple[Any, ...], kws: dict[str, Any]) -> Any:
    """``fn(*args, **kws)``, called from a frame of ``_ROOM_SLOTS`` unused local slots.

    CPython gives a frame too big for the current chunk a chunk of its own, the next power of
    two of at least its size plus 1,000 slots: 65,536 slots (512 KB) get a 1 MB chunk, whose
    other 512 KB hold the frames of ``fn`` and everything it calls (a compile is a few
    hundred frames of a few hundred bytes), so they cross no chunk boundary. Costs one 1 MB
    map and unmap a call, about 0.2 ms."""
    return _roomy_call()(fn, args, kws)


_ROOM_SLOTS = 65_536


@cache
def _roomy_call() -> Callable[..., Any]:
    def call(fn: Callable[..., Any], args: tuple[Any, ...], kws: dict[str, Any]) -> Any:
        return fn(*args, **kws)

    names = call.__code__.co_varnames + tuple(f"_room{i}" for i in range(_ROOM_SLOTS))
    call.__code__ = call.__code__.replace(co_varnames=names, co_nlocals=len(names))
    return call


class _CalledFromKernels(_FreshStack):
    """A kernel as other kernels call it: compiled without numba's CPython wrapper.

    Numba gives every compiled function a wrapper that unboxes its arguments from Python
    objects, field by field of each record, and compiles it with the function (into its
    library, through LLVM, into machine code) even when only other kernels ever call it: a
    fifth of a first run's compile went to wrappers no Python code could reach. Kernels call
    this dispatcher (numba types the call against it); a call from Python goes to its twin
    (``from_python``), the same function compiled with the wrapper, under a name of its own
    in the cache."""

    _twin: Any = None

    def __call__(self, *args: Any, **kws: Any) -> Any:
        return self.python_twin()(*args, **kws)

    def python_twin(self) -> Any:
        """This kernel compiled with numba's CPython wrapper, for calls from Python (made on
        first use): the same function under a name of its own in the cache."""
        if self._twin is None:
            fn = self.py_func
            copy = pytypes.FunctionType(
                fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
            )
            copy.__kwdefaults__ = fn.__kwdefaults__
            copy.__module__ = fn.__module__
            copy.__doc__ = fn.__doc__
            # Numba names a kernel's cache files by its qualified name.
            copy.__qualname__ = f"{fn.__qualname__}.from_python"
            options = {k: v for k, v in self.targetoptions.items() if k != "nopython"}
            options.pop("no_cpython_wrapper", None)
            cached = getattr(self, "_cache", None) is not None
            self._twin = _as(_FreshStack, _njit(copy, {**options, "cache": cached}))
        return self._twin


def from_python(dispatcher: Any) -> Any:
    """The dispatcher Python calls for ``dispatcher``: its twin with numba's CPython wrapper
    when kernels call it without one (``_CalledFromKernels``), else itself.

    Example:
        >>> from ml4t.backtest.kernels.sizing import order_toward
        >>> from_python(order_toward)(10.0, 4.0, 0)
        6.0
    """
    if isinstance(dispatcher, _CalledFromKernels):
        return dispatcher.python_twin()
    return dispatcher


class _Released(_CalledFromKernels):
    """A ``released`` kernel: calls from Python release the GIL, and their time is counted
    per thread (``released_seconds``)."""

    def __call__(self, *args: Any, **kws: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.python_twin()(*args, **kws)
        finally:
            _RELEASED.seconds += time.perf_counter() - started


class _ReleasedTime(threading.local):
    seconds = 0.0


_RELEASED = _ReleasedTime()


def released_seconds() -> float:
    """Seconds this thread has spent so far in calls from Python to ``released`` kernels (the
    compiled driver's loops, a result's trade matching), which run without the GIL: what part
    of a run threads of one process can run side by side (``research.sweep`` reads it).

    Example:
        >>> before = released_seconds()
        >>> # ... run_signals(...) ...
        >>> released_seconds() - before >= 0.0
        True
    """
    return float(_RELEASED.seconds)


def _as(cls: type[_FreshStack], dispatcher: Any) -> Any:
    """``dispatcher`` (numba's ``CPUDispatcher``) as one of its subclasses here."""
    dispatcher.__class__ = cls
    return dispatcher


# Numba's library and pipeline classes, typed loosely: their stubs leave them mostly untyped.
JITCodeLibrary: Any = _NumbaLibrary
Compiler: Any = _NumbaCompiler


class _LinkedLibrary(JITCodeLibrary):  # type: ignore[misc]
    """The code of a kernel only other kernels call: linked into each caller's library, whose
    whole module LLVM optimises (inlining across kernels) and compiles to machine code.

    Numba would also optimise this library's own module on its own, then compile it to
    machine code no one runs: the kernel has no CPython wrapper, and each caller runs its own
    copy. Here its functions are optimised one by one (which keeps its module small for the
    callers), and its module is linked, never compiled: a third of the LLVM time of a first
    run went to modules their callers optimise and compile again.

    Its environment (a pointer to the Python objects numba's lowering may keep for it) lives
    in each caller's module, so it is set once a caller's module is in numba's engine
    (``_EntryLibrary``). A kernel with an object-mode block compiles as numba compiles it.
    The cache keeps its module as bitcode; a later process that links it compiles it then."""

    def enable_object_caching(self) -> None:
        super().enable_object_caching()
        self._environments: list[tuple[str, Any]] = []

    def finalize(self) -> None:
        self._raise_if_finalized()
        for library in dict.fromkeys(self._linking_libraries):
            self._reload_init.update(library._reload_init)
            self._final_module.link_in(library._get_module_for_linking(), preserve=True)
        self._finalize_dynamic_globals()
        self._verify_declare_only_symbols()
        self._finalized = True

    @property
    def codegen(self) -> Any:
        return _EnvironmentsLater(self._codegen, self._environments)

    def serialize_using_object_code(self) -> tuple[str, str, bytes]:
        self._ensure_finalized()
        return (self.name, "bitcode", self._final_module.as_bitcode())

    def set_environments(self) -> None:
        """Point the environments of this library and the ones it links at their objects,
        once a caller's module (which holds them) is in the engine."""
        for library in dict.fromkeys(self._linking_libraries):
            if isinstance(library, _LinkedLibrary):
                library.set_environments()
        engine, waiting = self._codegen._engine, self._environments[:]
        self._environments.clear()  # the same list the lowering's codegen appends to
        for name, environment in waiting:
            if engine.get_global_value_address(name):
                self._codegen.set_env(name, environment)
            else:
                self._environments.append((name, environment))


class _EnvironmentsLater:
    """A ``_LinkedLibrary``'s codegen as numba's lowering sees it: numba's own, except that
    environments are set once a caller's module is in the engine."""

    def __init__(self, codegen: Any, waiting: list[tuple[str, Any]]) -> None:
        self._codegen = codegen
        self._waiting = waiting  # the library's list of environments to set

    def __getattr__(self, name: str) -> Any:
        return getattr(self._codegen, name)

    def set_env(self, name: str, environment: Any) -> None:
        self._waiting.append((name, environment))


class _EntryLibrary(JITCodeLibrary):  # type: ignore[misc]
    """The library of a kernel Python calls: compiled to machine code as numba does, then the
    environments of the ``_LinkedLibrary`` kernels it links are set."""

    def _finalize_specific(self) -> None:
        super()._finalize_specific()
        for library in dict.fromkeys(self._linking_libraries):
            if isinstance(library, _LinkedLibrary):
                library.set_environments()


def _pipeline(library_class: type) -> Any:
    """Numba's pipeline, lowering into a library of ``library_class``."""

    class Pipeline(Compiler):  # type: ignore[misc]
        def compile_extra(self, func: Any) -> Any:
            if self.state.library is None:
                library = self.state.targetctx.codegen().create_library(func.__qualname__)
                library.__class__ = library_class
                library.enable_object_caching()  # as numba does: the cache serialises it
                self.state.library = library
            return super().compile_extra(func)

    Pipeline.__name__ = Pipeline.__qualname__ = f"{library_class.__name__}Pipeline"
    return Pipeline


_EntryPipeline = _pipeline(_EntryLibrary)
# Numba's library internals the two classes build on; without them, kernels are compiled as
# numba compiles them.
_LINKS = all(
    hasattr(JITCodeLibrary, name)
    for name in ("_finalize_dynamic_globals", "_verify_declare_only_symbols", "_finalize_specific")
)
_LinkedPipeline = _pipeline(_LinkedLibrary) if _LINKS else _EntryPipeline


def _called_from_kernels(
    fn: Callable[..., Any], options: dict[str, Any], cls: type[_CalledFromKernels] | None = None
) -> Any:
    """``fn`` compiled with ``options`` for calls from kernels (``_CalledFromKernels``, or
    ``cls``)."""
    dispatcher = _njit(fn, {**options, "no_cpython_wrapper": True}, _LinkedPipeline)
    return _one_specialisation(_as(cls or _CalledFromKernels, dispatcher))


def _njit(fn: Callable[..., Any], options: dict[str, Any], pipeline: type = _EntryPipeline) -> Any:
    """numba's ``njit(**options)(fn)``; a kernel whose source is not a file (a doctest, an
    interpreter session) compiles without the cache: numba has no file to key it on."""
    if options.get("cache") and not os.path.isfile(fn.__code__.co_filename):
        options = {**options, "cache": False}
    return njit(**options, pipeline_class=pipeline)(fn)


def kernel(fn: F) -> F:
    """Compile a kernel with the package's cache (see the module docstring).

    Example:
        >>> @kernel
        ... def twice(x):
        ...     return 2 * x
        >>> twice(21)
        42
    """
    compiled: F = _called_from_kernels(fn, _KERNEL_OPTIONS)
    return compiled


def leaf(fn: F) -> F:
    """Compile a small kernel called per order or per fill, without reference counting.

    Numba counts references to each array a compiled function receives (an atomic increment
    and decrement per array per call), and LLVM cannot inline a call wrapped in them: a fee
    lookup then costs tens of nanoseconds instead of one. ``_nrt=False`` drops the counting.
    The kernel must not create arrays, nor return or keep the arrays (or views of them) it is
    given: its callers own them for the whole call.

    Example:
        >>> import numpy as np
        >>> @leaf
        ... def first(a):
        ...     return a[0]
        >>> float(first(np.array([3.0, 4.0])))
        3.0
    """
    compiled: F = _called_from_kernels(fn, _LEAF_OPTIONS)
    return compiled


def released(fn: F) -> F:
    """A ``leaf`` that Python calls for a long stretch of work (the compiled driver's loops,
    the MAE and MFE of a result's trades): the call releases the GIL, so runs on threads of
    one process go in parallel (a sweep on a ``ThreadPoolExecutor``), and its time is counted
    (``released_seconds``). Only for kernels that never call back into Python.

    Example:
        >>> import numpy as np
        >>> @released
        ... def total(a):
        ...     s = 0.0
        ...     for x in a:
        ...         s += x
        ...     return s
        >>> total(np.array([1.0, 2.0]))
        3.0
    """
    compiled: F = _called_from_kernels(fn, _RELEASED_OPTIONS, _Released)
    return compiled


def released_counted(fn: F) -> F:
    """A ``released`` kernel that makes arrays, so compiled with reference counting (the
    matching of a result's fills into trades).

    Example:
        >>> import numpy as np
        >>> @released_counted
        ... def total(n):
        ...     return np.ones(n).sum()
        >>> total(3)
        3.0
    """
    compiled: F = _called_from_kernels(fn, _RELEASED_COUNTED_OPTIONS, _Released)
    return compiled


def counted(fn: F) -> F:
    """A ``kernel`` that makes arrays and is called from ``leaf`` kernels.

    Numba compiles a kernel called from another kernel with the caller's options where the
    callee sets none; ``kernel`` sets none for reference counting, so a kernel first called
    from a ``leaf`` would be compiled without it, and numba refuses the arrays it makes.
    ``counted`` asks for reference counting whoever calls it. It returns no array to a leaf.

    Example:
        >>> import numpy as np
        >>> @counted
        ... def total(n):
        ...     return np.ones(n).sum()
        >>> total(2)
        2.0
    """
    compiled: F = _called_from_kernels(fn, _COUNTED_OPTIONS)
    return compiled


def inlined(fn: F) -> F:
    """Compile a tiny kernel into each kernel that calls it (numba IR inlining).

    For a helper that returns views of its arguments (``clock.bar_rows``) to kernels compiled
    without reference counting (``leaf``): a ``leaf`` may not return arrays, but the inlined
    body makes its views inside the caller, which owns them. Not for calls from Python.

    Example:
        >>> @inlined
        ... def row(a, t):
        ...     return a[t]
    """
    compiled: F = _as(_FreshStack, _njit(fn, _INLINED_OPTIONS))
    return compiled


def folded(fn: F) -> F:
    """A ``leaf`` that numba inlines (IR inlining) into the kernels that call it.

    For a kernel with one caller, or a thin step of a bar's phase (``kernels.clock``): compiled
    as a kernel of its own, it would cost a first run a library (optimised and compiled to
    machine code again inside each caller's) and a CPython wrapper unboxing every record, often
    for a body of a few lines. Called from Python, it compiles alone, as a ``leaf``. Not for
    kernels with many callers: each call site types the body again.

    Example:
        >>> import numpy as np
        >>> @folded
        ... def clear(a):
        ...     a[:] = 0.0
        >>> a = np.ones(2)
        >>> clear(a)  # from Python it compiles alone
        >>> a.tolist()
        [0.0, 0.0]
    """
    compiled: F = _as(_FreshStack, _njit(fn, _FOLDED_OPTIONS))
    return compiled


COMPILING_NOTICE = "compiling, first run only: kernels are cached for later runs"


def needs_compile(*dispatchers: Any) -> bool:
    """Whether calling these kernels will compile them: a kernel neither compiled in this
    process nor in the cache. Decides whether a progress display says it is compiling (a rate
    measured over the compile would promise hours).

    Example:
        >>> from ml4t.backtest.kernels.step import fill_orders
        >>> needs_compile(fill_orders)  # doctest: +SKIP
        True
    """
    for dispatcher in map(from_python, dispatchers):
        if dispatcher.signatures:
            continue
        cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
        index = getattr(cache_file, "_index_path", None)
        if index is None or not os.path.exists(index):
            return True
    return False


def compiled_entry(dispatcher: Any, args: tuple[object, ...]) -> Callable[..., Any]:
    """The compiled function ``dispatcher`` runs for ``args`` (compiled already), to call
    without the dispatcher: numba types every argument on each dispatcher call (a few
    microseconds for a phase's records, more than the phase itself). Only for later calls
    with arguments of the same types; the dispatcher itself when no such compiled function is
    found. Finding it types the arguments in Python, record by record (about 0.25 ms for an
    open phase's records), so it is kept for the process by their types' fingerprint
    (``_fingerprint``): the next run's brokers find it without typing.

    Example:
        >>> from ml4t.backtest.kernels.sizing import order_toward
        >>> call = compiled_entry(order_toward, (10.0, 4.0, 0))
        >>> order_toward(10.0, 4.0, 0), call(10.0, 4.0, 0)
        (6.0, 6.0)
    """
    dispatcher = from_python(dispatcher)
    key = (dispatcher, _fingerprint(args))
    return _KEPT.get(key) or _typed_entry(key, args)


def _typed_entry(key: tuple[Any, Any], args: tuple[object, ...]) -> Callable[..., Any]:
    """``compiled_entry`` for arguments not seen before: typed by numba, then kept under
    ``key`` (the dispatcher and the arguments' fingerprint) when the fingerprint is one."""
    dispatcher = key[0]
    types = tuple(dispatcher.typeof_pyval(a) for a in args)
    compiled = dispatcher.overloads.get(types)
    if compiled is None:
        return dispatcher  # type: ignore[no-any-return]
    if key[1] is not None:
        _KEPT[key] = compiled.entry_point
    return compiled.entry_point  # type: ignore[no-any-return]


def kept_call(dispatcher: Any, args: tuple[object, ...]) -> tuple[Any, Callable[..., Any]]:
    """``dispatcher(*args)`` and the compiled function it ran (``compiled_entry``), for later
    calls with arguments of the same types. Arguments whose types were seen before in this
    process go straight to their compiled function: a run's first call of each phase, and its
    calls after the books grow, type no record.

    Example:
        >>> from ml4t.backtest.kernels.sizing import order_toward
        >>> result, call = kept_call(order_toward, (10.0, 4.0, 0))
        >>> result, call(12.0, 4.0, 0)
        (6.0, 8.0)
    """
    key = (from_python(dispatcher), _fingerprint(args))
    kept = _KEPT.get(key)
    if kept is not None:
        return kept(*args), kept
    result = dispatcher(*args)
    return result, _typed_entry(key, args)


# Compiled functions by dispatcher and argument fingerprint (``_fingerprint``).
_KEPT: dict[tuple[Any, Any], Callable[..., Any]] = {}
_SCALARS = frozenset({float, bool, type(None), np.float64, np.int64, np.bool_})
_UINT64 = 2**63


def _fingerprint(value: object) -> Any:
    """What numba's type of ``value`` as an argument depends on, or finer: an array's dtype,
    dimensions, contiguity, write and alignment flags; the class of a tuple (a record) and its
    fields'; a scalar's class (and, for an int, whether numba takes it as unsigned). None for
    anything else (not kept)."""
    kind = type(value)
    if kind is np.ndarray:
        a: Any = value
        flags = a.flags
        return (a.dtype, a.ndim, flags.c_contiguous, flags.f_contiguous, flags.writeable,
                flags.aligned)  # fmt: skip
    if kind is int:
        return (int, value >= _UINT64)  # type: ignore[operator]
    if kind in _SCALARS:
        return kind
    if isinstance(value, tuple):
        fields = tuple(_fingerprint(v) for v in value)
        return None if None in fields else (kind, fields)
    return None
