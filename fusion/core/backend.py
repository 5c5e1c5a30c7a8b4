"""The backend contract, the plugin registry and backend selection.

A backend implements the primitives of :mod:`fusion.core.ops`, one method each, on its own
array type (``data`` below). The frontend guarantees what every method receives: operands of
binary and ternary primitives share one shape and one dtype, axes are non-negative and sorted,
shapes are tuples of ints. A backend never sees a Tensor.

Selection order: an explicit ``backend=`` argument, then :func:`use_backend` (a context
variable), then :func:`set_backend`, then the environment variable ``FUSION_BACKEND`` (read at
first use), then ``"numpy"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from . import hookspecs
from .dtypes import DType
from .markers import PROJECT
from .ops import OPTIONAL_METHODS, REQUIRED_METHODS

ENTRY_POINT_GROUP = "fusion.backends"
#: Plugins that ship with Fusion; found through the entry points, or imported directly when
#: Fusion runs from a source tree that was never installed.
BUILTIN_PLUGINS = {"numpy": "fusion.backends.numpy", "numba": "fusion.backends.numba",
                   "dask": "fusion.backends.dask"}
DEFAULT_BACKEND = "numpy"
STRICT_ENV = "FUSION_STRICT_PLUGINS"


class BackendError(RuntimeError):
    """A backend could not be found, registered or started."""


class BackendNotFoundError(BackendError, LookupError):
    """No backend of that name is installed."""


class BackendRegistrationError(BackendError):
    """A plugin tried to register a backend that breaks the contract."""


def _abstract(method):
    method.__fusion_abstract__ = True
    return method


class Backend:
    """The contract. Subclass it and implement every primitive.

    ``data`` is the backend's own array type. Results must be fresh arrays or views that the
    frontend will not write to; inputs must never be modified.

    Class attributes a backend may set:

    * ``capabilities``: the features it supports, a subset of :data:`CAPABILITIES`; the
      conformance suite skips the tests of anything missing, with the reason shown.
    * ``version``: shown by :func:`fusion.backend_info`.
    """

    name: str = "?"
    version: str | None = None
    capabilities: frozenset[str] = frozenset({"float64", "int64", "views"})
    #: Whether Fusion records work on this backend as a lazy graph and runs it when values
    #: are needed (see :mod:`fusion.core.buffer`). A backend that gains nothing from it (one
    #: that runs primitives one by one on arrays whose movement ops are free views anyway)
    #: sets False, and every primitive then runs the moment it is called.
    lazy: bool = True
    #: On a lazy backend that fuses (see ``fuse`` below), the number of elements from which a
    #: kernel is worth running whole. Work on fewer elements, whose sources are computed,
    #: runs the moment it is called, as on an eager backend: a lazy graph of it would only
    #: add bookkeeping. 0: everything is lazy.
    fuse_min: int = 0

    # A backend is a process-wide service that tensors point to, never part of their value:
    # copy.deepcopy of a tensor or a model must keep pointing to the same one (tensors of
    # two backend objects do not mix).
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    # --- creation and transfer -------------------------------------------------------------
    @_abstract
    def from_numpy(self, array):
        """Copy or wrap a numpy array (any of the five dtypes, any strides) as ``data``."""

    @_abstract
    def to_numpy(self, x):
        """Return ``x`` as a numpy array of the same shape and dtype (it may share memory)."""

    @_abstract
    def full(self, shape: tuple[int, ...], value, dtype: DType):
        """A new array of ``shape`` filled with ``value`` (a Python number) as ``dtype``."""

    # --- unary: same shape; same dtype (cast: the given dtype) --------------------------------
    @_abstract
    def neg(self, x):
        """``-x`` (int and float dtypes)."""

    @_abstract
    def exp(self, x):
        """``e**x``; float dtypes only; overflow gives inf."""

    @_abstract
    def log(self, x):
        """Natural log; float dtypes only; ``log(0) = -inf``, ``log(x<0) = nan``."""

    @_abstract
    def sqrt(self, x):
        """Square root; float dtypes only; ``sqrt(x<0) = nan``."""

    @_abstract
    def recip(self, x):
        """``1/x``; float dtypes only; ``1/0 = inf``."""

    @_abstract
    def sin(self, x):
        """Sine; float dtypes only."""

    @_abstract
    def cast(self, x, dtype: DType):
        """Convert to ``dtype`` as numpy's ``astype`` does (float to int truncates toward 0,
        anything to bool is ``x != 0``)."""

    # --- binary: x and y share shape and dtype ------------------------------------------------
    @_abstract
    def add(self, x, y):
        """``x + y``; integers wrap around on overflow."""

    @_abstract
    def sub(self, x, y):
        """``x - y`` (never called on bool)."""

    @_abstract
    def mul(self, x, y):
        """``x * y``."""

    @_abstract
    def div(self, x, y):
        """Floats: true division (``x/0`` is ``±inf`` or ``nan``). Integers: floor division,
        as Python's ``//``, with ``x // 0 = 0``. Never called on bool."""

    @_abstract
    def pow(self, x, y):
        """``x ** y``. For integers only non-negative exponents are defined."""

    @_abstract
    def maximum(self, x, y):
        """Elementwise maximum; a NaN in either operand gives NaN."""

    @_abstract
    def cmpeq(self, x, y):
        """``x == y`` as bool."""

    @_abstract
    def cmplt(self, x, y):
        """``x < y`` as bool."""

    # --- ternary -------------------------------------------------------------------------
    @_abstract
    def where(self, cond, x, y):
        """``cond ? x : y``; ``cond`` is bool, ``x`` and ``y`` share a dtype; all one shape."""

    # --- reduce: axes are sorted, unique, non-negative; reduced axes are kept with size 1 ---
    @_abstract
    def reduce_sum(self, x, axes: tuple[int, ...]):
        """Sum over ``axes``, same dtype (the frontend widens ints first). Empty sums are 0."""

    @_abstract
    def reduce_max(self, x, axes: tuple[int, ...]):
        """Maximum over ``axes``, same dtype; NaN propagates. Never called on empty axes."""

    # --- movement ------------------------------------------------------------------------
    @_abstract
    def reshape(self, x, shape: tuple[int, ...]):
        """Row-major reshape to ``shape`` (same number of elements)."""

    @_abstract
    def expand(self, x, shape: tuple[int, ...]):
        """Broadcast size-1 axes of ``x`` to ``shape`` (same number of dimensions)."""

    @_abstract
    def permute(self, x, order: tuple[int, ...]):
        """Reorder axes: result axis ``i`` is input axis ``order[i]``."""

    @_abstract
    def pad(self, x, widths: tuple[tuple[int, int], ...], value):
        """Pad each axis with ``(before, after)`` elements equal to ``value``."""

    @_abstract
    def shrink(self, x, bounds: tuple[tuple[int, int], ...]):
        """Keep ``start <= i < stop`` along each axis, ``bounds`` one ``(start, stop)`` per axis."""

    @_abstract
    def flip(self, x, axes: tuple[int, ...]):
        """Reverse the order of elements along ``axes``."""

    # --- optional fast paths -------------------------------------------------------------
    # contract(self, x, y): batched matmul. x is (..., m, k), y is (..., k, n), the batch axes
    # equal; result (..., m, n) of the same dtype. Without it, Fusion composes matmul from
    # EXPAND, MUL and SUM.
    #
    # fuse(self, kernel, inputs, views, constants, shape), with the capability "fuse": run a
    # whole kernel of the schedule (a fusion.core.kernel.Kernel: elementwise ops over inputs
    # read through views, at most one reduction last) and return its output. Its reference is
    # fusion.core.kernel.evaluate. Without it, the backend receives the kernel's primitives
    # one by one. With it, a backend may also define fusable(self, kernel, shape): where it
    # returns False (a kernel it does not compile, a size too small to gain), that kernel's
    # primitives are sent one by one (and no shared node is recomputed); and the int attribute
    # fuse_min (above): a realisation whose nodes all have fewer elements is not scheduled at
    # all, its primitives go one by one, and such work is not even recorded lazily.

    # --- optional: state that outlives a step -----------------------------------------------
    # persist(self, arrays): a list of arrays back, of the same values, computed now and kept
    # where the backend keeps data, so that later work starts from them instead of from the
    # operations that made them. Fusion calls it (fusion.persist) for what lives across steps:
    # parameters, their gradients and optimizer state at the end of an optimizer step. A
    # backend whose arrays are computed when made (numpy, numba) has no need of it; one that
    # builds graphs (dask) would otherwise see a training loop's graph grow with every step.

    # --- optional: writing in place ----------------------------------------------------------
    # assign(self, dst, src), with the capability "assign": write the values of src into dst
    # (same shape and dtype), in place. dst is always an array this backend returned, that
    # Fusion holds alone and that no numpy view refers to. It lets a parameter keep its
    # storage from step to step, which fusion.jit needs to replay a captured step; a backend
    # whose arrays are numpy arrays may also name, in ``writes_into``, the methods that take
    # a keyword ``out=`` (an array of the result's shape and dtype to write the result into),
    # and a replay then computes into memory allocated once.


CAPABILITIES = frozenset({"float64", "int64", "views", "fuse", "assign"})
#: What a backend that declares nothing is taken to support (everything but ``fuse`` and
#: ``assign``, which need methods of their own).
DEFAULT_CAPABILITIES = CAPABILITIES - {"fuse", "assign"}


def missing_primitives(backend) -> list[str]:
    """The names of the required primitive methods that ``backend`` (class or instance) lacks."""
    missing = []
    for name in REQUIRED_METHODS:
        method = getattr(backend, name, None)
        if not callable(method) or getattr(method, "__fusion_abstract__", False):
            missing.append(name)
    return missing


@dataclass
class BackendEntry:
    name: str
    factory: object  # a Backend subclass or an instance
    plugin: str
    version: str | None
    aliases: tuple[str, ...] = ()
    package: str | None = None  # the distribution that installed the plugin, "name version"
    dist_version: str | None = None  # its version: shown when the backend gives none
    instance: Backend | None = None
    error: str | None = None  # why it could not start, once tried
    builtin: bool = False  # shipped with Fusion: no plugin may take its names

    @property
    def status(self) -> str:
        if self.error:
            return f"unavailable: {self.error}"
        return "ready" if self.instance is not None else "not started"


@dataclass
class PluginFailure:
    """A plugin that could not be loaded, or a backend name two plugins claim."""

    plugin: str
    error: str
    package: str | None = None
    #: the backend names the plugin tried to register before it failed
    names: tuple[str, ...] = ()
    #: the failure is a name that this plugin and another both register
    conflict: bool = False
    #: what was raised, for the traceback of strict mode
    exception: BaseException | None = field(default=None, repr=False, compare=False)


class _NameClash(BackendRegistrationError):
    """A plugin registers a name another plugin holds (resolved by the loader)."""

    def __init__(self, message: str, name: str, owner: BackendEntry):
        super().__init__(message)
        self.name = name
        self.owner = owner


@dataclass
class Registry:
    """Every installed backend, found lazily through the entry-point group."""

    entries: dict[str, BackendEntry] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    #: backend names that two plugins register: name -> the error naming both
    conflicts: dict[str, str] = field(default_factory=dict)
    loaded: bool = False
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # --- discovery -----------------------------------------------------------------------
    def load(self, eps: list[EntryPoint] | None = None) -> None:
        """Import every plugin of the entry-point group once; later calls do nothing.

        Every plugin is tried before anything is reported, so that a failure, whatever the
        warnings filter makes of its warning, never costs the plugins after it.
        """
        with self._lock:
            if self.loaded:
                return
            self.loaded = True
            if eps is None:
                eps = list(entry_points(group=ENTRY_POINT_GROUP))
            found = {ep.value for ep in eps}
            plugins = [(name, _importer(module), None, "fusion (source tree)")
                       for name, module in BUILTIN_PLUGINS.items()
                       if module not in found]  # a source tree that was never pip-installed
            # the built-in backends first, so that their names and aliases are taken when a
            # third-party plugin tries to register one of them
            ordered = sorted(eps, key=lambda ep: ep.value not in BUILTIN_PLUGINS.values())
            plugins += [(ep.name, ep.load, _dist_version(ep), _dist_label(ep)) for ep in ordered]
            for name, loader, version, package in plugins:
                self._load_plugin(name, loader, version, package)
            self._report(self.failures)

    def _load_plugin(self, plugin_name: str, loader, version: str | None,
                     package: str | None = None) -> None:
        attempted: list[str] = []
        try:
            plugin = loader()
            manager = pluggy.PluginManager(PROJECT)
            manager.add_hookspecs(hookspecs)
            manager.register(plugin, name=plugin_name)
            for impl in manager.hook.fusion_register_backends.get_hookimpls():
                impl.function(register=self._register_callback(plugin, plugin_name, version,
                                                               package, attempted))
        except _NameClash as clash:
            if clash.owner.plugin != plugin_name:
                self._clash(clash, plugin_name, package, tuple(attempted))
            else:  # a plugin that registers one name twice is simply broken
                self.failures.append(PluginFailure(plugin_name, "BackendRegistrationError: "
                                                   f"{clash}", package, tuple(attempted),
                                                   exception=clash))
        except Exception as exc:
            self.failures.append(PluginFailure(plugin_name, f"{type(exc).__name__}: {exc}",
                                               package, tuple(attempted), exception=exc))

    def _clash(self, clash: _NameClash, plugin_name: str, package: str | None,
               attempted: tuple[str, ...]) -> None:
        """Two plugins register one name: neither gets it, and both are reported."""
        owner = clash.owner
        message = (f"backend name {clash.name!r} is registered by two plugins, "
                   f"{_plugin_label(owner.plugin, owner.package)} and "
                   f"{_plugin_label(plugin_name, package)}; uninstall one of them")
        for name in (owner.name, *owner.aliases):
            self.conflicts[name] = message
        self.unregister(owner.name)
        self.failures.append(PluginFailure(owner.plugin, message, owner.package,
                                           (owner.name, *owner.aliases), conflict=True))
        self.conflicts[clash.name] = message
        self.failures.append(PluginFailure(plugin_name, message, package, attempted,
                                           conflict=True))

    def _report(self, failures: list[PluginFailure]) -> None:
        """Warn once per failed plugin, or raise in strict mode, after every plugin loaded."""
        if not failures:
            return
        if os.environ.get(STRICT_ENV, "") not in ("", "0"):
            # the traceback shown is the first failure's
            raise BackendError("; ".join(f"backend plugin {f.plugin!r} failed: {f.error}"
                                         for f in failures)) from failures[0].exception
        messages = []
        for failure in failures:
            if failure.conflict:  # one warning for both plugins
                message = f"fusion: {failure.error}; neither plugin's backend was loaded"
            else:
                message = (f"fusion: backend plugin {failure.plugin!r} failed and was "
                           f"skipped: {failure.error}")
            if message not in messages:
                messages.append(message)
        for message in messages:
            try:
                warnings.warn(message, RuntimeWarning, stacklevel=5)
            except Warning:
                # A filter that turns warnings into errors must not make a broken plugin cost
                # the working backends: the warning is shown instead of raised.
                warnings.showwarning(message, RuntimeWarning, __file__, 0)

    def _register_callback(self, plugin, plugin_name: str, dist_version: str | None,
                           package: str | None = None, attempted: list[str] | None = None):
        module = getattr(plugin, "__name__", type(plugin).__module__)
        builtin = module in BUILTIN_PLUGINS.values()

        def register(name, backend, *, aliases=(), version=None):
            if attempted is not None:
                attempted.extend(n for n in (name, *aliases) if isinstance(n, str))
            # the plugin's word, else the backend's own `version` (which an instance may only
            # know once started), else its distribution's
            own = getattr(backend, "version", None)
            version = version or (own if isinstance(own, str) else None)
            self.register(name, backend, aliases=aliases, version=version,
                          plugin=plugin_name, builtin=builtin, package=package,
                          dist_version=dist_version)

        return register

    # --- registration --------------------------------------------------------------------
    def register(self, name, backend, *, aliases=(), version=None, plugin="<direct>",
                 builtin=False, package=None, dist_version=None) -> None:
        """Validate and add one backend. Raises BackendRegistrationError naming the plugin."""
        with self._lock:
            names = (name, *aliases)
            for n in names:
                if not isinstance(n, str) or not n.isidentifier():
                    raise BackendRegistrationError(
                        f"plugin {plugin!r}: backend name {n!r} is not a valid identifier")
                if n in BUILTIN_PLUGINS and not builtin:
                    raise BackendRegistrationError(
                        f"plugin {plugin!r}: {n!r} is the name of a built-in backend")
                if n in self.conflicts:
                    raise BackendRegistrationError(f"plugin {plugin!r}: {self.conflicts[n]}")
                owner = self.entries.get(self.aliases.get(n, n))
                if owner is not None and owner.builtin:
                    raise BackendRegistrationError(
                        f"plugin {plugin!r}: {n!r} is a name of the built-in backend "
                        f"{owner.name!r}")
                if owner is not None:
                    raise _NameClash(
                        f"plugin {plugin!r}: backend name {n!r} is taken by "
                        f"{_plugin_label(owner.plugin, owner.package)}", n, owner)
            missing = missing_primitives(backend)
            if missing:
                raise BackendRegistrationError(
                    f"plugin {plugin!r}: backend {name!r} lacks the primitives "
                    f"{', '.join(missing)}")
            self.entries[name] = BackendEntry(name, backend, plugin, version, tuple(aliases),
                                              package, dist_version, builtin=builtin)
            for alias in aliases:
                self.aliases[alias] = name

    def unregister(self, name: str) -> None:
        with self._lock:
            entry = self.entries.pop(self.aliases.get(name, name))
            for alias in entry.aliases:
                self.aliases.pop(alias, None)

    # --- lookup --------------------------------------------------------------------------
    def names(self) -> list[str]:
        self.load()
        return sorted(self.entries)

    def get(self, name: str) -> Backend:
        self.load()
        entry = self.entries.get(self.aliases.get(name, name))
        if entry is None:
            raise BackendNotFoundError(self.not_found_message(name))
        if entry.instance is None:
            with self._lock:
                if entry.instance is None:
                    entry.instance = self._start(entry)
        return entry.instance

    def not_found_message(self, name: str) -> str:
        """Why ``name`` is not a backend: the plugin of that name that failed and its error,
        or the two plugins that claim it; and which backends are installed."""
        self.load()
        installed = ", ".join(self.names()) or "none"
        if name in self.conflicts:
            return f"backend {name!r} cannot be used: {self.conflicts[name]}"
        failed = [f for f in self.failures if name == f.plugin or name in f.names]
        if failed:
            why = "; ".join(f"{_plugin_label(f.plugin, f.package)} failed to load: {f.error}"
                            for f in failed)
            return f"unknown backend {name!r}: {why}; installed backends: {installed}"
        return f"unknown backend {name!r}; installed backends: {installed}"

    def _start(self, entry: BackendEntry) -> Backend:
        try:
            instance = entry.factory() if isinstance(entry.factory, type) else entry.factory
        except Exception as exc:
            entry.error = f"{type(exc).__name__}: {exc}"
            raise BackendError(
                f"backend {entry.name!r} (plugin {entry.plugin!r}) is installed but could "
                f"not start: {entry.error}") from exc
        instance.name = entry.name
        own = getattr(instance, "version", None)
        if entry.version is None and isinstance(own, str):
            entry.version = own
        return instance


def _plugin_label(plugin: str, package: str | None) -> str:
    """``plugin 'mine' (fusion-mine 0.1)``: a plugin and the package that installed it."""
    return f"plugin {plugin!r}" + (f" ({package})" if package else "")


def _importer(module: str):
    return lambda: importlib.import_module(module)


def _dist_version(ep: EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "version", None)


def _dist_label(ep: EntryPoint) -> str | None:
    """``"name version"`` of the distribution that declares ``ep``, if it is known."""
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None)
    return None if name is None else f"{name} {dist.version}"


registry = Registry()

_context_backend: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fusion_backend", default=None)
_global_backend: str | None = None
_env_backend: str | None = None
_env_read = False


def _default_name() -> str:
    global _env_backend, _env_read
    if not _env_read:
        _env_backend = os.environ.get("FUSION_BACKEND") or None
        _env_read = True
    return _env_backend or DEFAULT_BACKEND


def get_backend(name: str | Backend | None = None) -> Backend:
    """The backend that an operation without an explicit backend would use (see module doc)."""
    if isinstance(name, Backend):
        return name
    if name is None:
        name = _context_backend.get() or _global_backend or _default_name()
    return registry.get(name)


def set_backend(name: str) -> None:
    """Make ``name`` the default backend of this process (checked now)."""
    global _global_backend
    registry.get(name)
    _global_backend = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Within the block, tensors are created on backend ``name``::

        with fusion.use_backend("numba"):
            x = fusion.ones(3)
    """
    backend = registry.get(name)
    token = _context_backend.set(name)
    try:
        yield backend
    finally:
        _context_backend.reset(token)


def available_backends() -> list[str]:
    """The names of the installed backends (a broken plugin is not among them)."""
    return registry.names()


def backend_info() -> list[dict]:
    """One row per installed backend and per plugin that failed: name, version, plugin,
    package (the distribution that installed it), aliases and status."""
    registry.load()
    rows = [dict(name=e.name, version=e.version or e.dist_version, plugin=e.plugin,
                 package=e.package, aliases=list(e.aliases), status=e.status)
            for e in registry.entries.values()]
    rows += [dict(name=None, version=None, plugin=f.plugin, package=f.package, aliases=[],
                  status=f"failed: {f.error}") for f in registry.failures]
    return rows


__all__ = [
    "OPTIONAL_METHODS", "Backend", "BackendError", "BackendNotFoundError",
    "BackendRegistrationError", "available_backends", "backend_info", "get_backend",
    "registry", "set_backend", "use_backend",
]
