"""The buffer layer: a lazy graph of primitives, realised on demand.

A Buffer is a node: the op that makes it (from :mod:`fusion.core.ops`), its sources, the op's
arguments, its shape and dtype, its backend and, once realised, the backend array holding its
values. Shape and dtype are known when a node is made, so every shape or dtype error is raised
at the user's line; the work itself runs when values are needed (:func:`realize`).

On a backend that declares ``lazy = False`` (the numpy backend: its primitives run one by one
and its movement ops are free views anyway), and under ``fusion.eager()`` / ``FUSION_LAZY=0``,
each node is realised as it is made, and a realised node keeps no sources.

Autograd Functions are written against Buffers, so this is the one seam between the
differentiable frontend and the backends. There is one generic path per group of primitives
(elementwise, reduce, movement); the named methods (``add``, ``sum``, ``reshape``, ...) are
generated from the ops.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable

import numpy as np

from . import lazy as _lazy_mode
from .backend import Backend
from .capture import HostScalar
from .dtypes import DType, bool_
from .ops import (
    ARITY,
    COMPARISONS,
    ELEMENTWISE,
    PRIMITIVES,
    ContractOp,
    LoadOp,
    MovementOp,
    ReduceOp,
    UnaryOp,
)

#: Broadcast a constant from one element rather than fill every element above this size.
_FILL_LIMIT = 1 << 14
#: Small constants the frontend makes again and again (the 2 of ``x * 2``, relu's 0) are kept,
#: read-only, on backends that run eagerly. They are internal operands only, never a result
#: handed to a user (who could write into it), and no primitive writes into its inputs. A lazy
#: backend makes a scalar node instead, which costs no memory and is never shared.
_CONSTANTS: dict = {}
_CONSTANTS_MAX = 512

_new = object.__new__
#: Marks the FULL nodes of :meth:`Buffer.constant` (internal operands, read-only once realised).
_READ_ONLY = "read-only"
#: The backend method of each op (an enum's ``.value`` is slow on a hot path).
_METHOD = {op: op.value for group in (*PRIMITIVES, ContractOp) for op in group}
_lazy_var = _lazy_mode._lazy
_stats = _lazy_mode.stats


class Buffer:
    """A node of the lazy graph (see the module docstring)."""

    __slots__ = ("backend", "op", "srcs", "arg", "shape", "dtype", "_data")

    def __init__(self, backend: Backend, data, shape: tuple[int, ...], dtype: DType):
        """A realised buffer holding ``data``, an array of ``backend``."""
        self.backend = backend
        self.op = LoadOp.FROM_NUMPY
        self.srcs = ()
        self.arg = ()
        self.shape = shape
        self.dtype = dtype
        self._data = data

    def __repr__(self) -> str:
        state = "realised" if self._data is not None else f"lazy {self.op.value}"
        return (f"Buffer(shape={self.shape}, dtype={self.dtype.name}, "
                f"backend={self.backend.name}, {state})")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def realized(self) -> bool:
        """Whether the values have been computed."""
        return self._data is not None

    @property
    def data(self):
        """The backend array (computed now if it was not yet)."""
        data = self._data
        if data is None:
            realize((self,))
            data = self._data
        return data

    def realize(self) -> Buffer:
        """Compute the values now (see :func:`realize`); returns self."""
        if self._data is None:
            realize((self,))
        return self

    # --- creation and transfer -----------------------------------------------------------
    @staticmethod
    def from_numpy(backend: Backend, array, dtype: DType) -> Buffer:
        return Buffer(backend, backend.from_numpy(array), tuple(array.shape), dtype)

    @staticmethod
    def full(backend: Backend, shape: tuple[int, ...], value, dtype: DType) -> Buffer:
        """``shape`` filled with ``value``: a scalar node on a lazy backend."""
        if backend.lazy:
            return _lazy(backend, LoadOp.FULL, (), (value,), shape, dtype)
        return _node(backend, LoadOp.FULL, (), (value,), shape, dtype,
                     _filled(backend, shape, value, dtype))

    @staticmethod
    def constant(backend: Backend, shape: tuple[int, ...], value, dtype: DType) -> Buffer:
        """Like :meth:`full`, but small results are cached and read-only: for internal
        operands only. (On a lazy backend, a scalar node of its own each time, read-only
        once realised, unless the work it takes part in runs at once: see :func:`_at_once`.)"""
        if backend.lazy and not _at_once(backend, shape):
            return _lazy(backend, LoadOp.FULL, (), (value, _READ_ONLY), shape, dtype)
        if type(value) is HostScalar:  # recomputed by each replay of a captured step
            return _node(backend, LoadOp.FULL, (), (value,), shape, dtype,
                         _filled(backend, shape, value, dtype))
        key = (backend, shape, dtype, value, type(value), str(value))
        found = _CONSTANTS.get(key)
        if found is None:
            found = _node(backend, LoadOp.FULL, (), (value,), shape, dtype,
                          _filled(backend, shape, value, dtype))
            if found.numel <= _FILL_LIMIT:
                if isinstance(found._data, np.ndarray):
                    found._data.flags.writeable = False
                if len(_CONSTANTS) >= _CONSTANTS_MAX:
                    _CONSTANTS.clear()
                _CONSTANTS[key] = found
        return found

    def const(self, value) -> Buffer:
        """A buffer of this one's shape, dtype and backend, every element ``value``."""
        backend = self.backend
        if not backend.lazy or (math.prod(self.shape) < backend.fuse_min
                                and not _stats.tracking):
            # the cache lookup of :meth:`constant`, without a call (see :func:`_at_once`)
            found = _CONSTANTS.get((backend, self.shape, self.dtype, value, type(value),
                                    str(value)))
            if found is not None:
                return found
        return Buffer.constant(backend, self.shape, value, self.dtype)

    def writable(self) -> bool:
        """Whether :meth:`assign` can write into this buffer's storage: it is realised, its
        backend declares the capability ``"assign"``, and (for numpy arrays) the storage is
        writable memory of its own (in any order), not a view into other memory. Whether anyone
        else holds the buffer is the caller's question (see ``Tensor.assign``)."""
        data = self._data
        if data is None or "assign" not in self.backend.capabilities:
            return False
        if not isinstance(data, np.ndarray):
            return True
        if not data.flags.writeable:
            return False
        base = data.base  # a reshaped result keeps the flat array it was computed in
        return base is None or (type(base) is np.ndarray and base.base is None
                                and base.nbytes == data.nbytes)

    def assign(self, src: Buffer) -> Buffer:
        """Write ``src``'s values (same shape, dtype and backend; realised now) into this
        buffer's own storage, in place: whatever holds this buffer sees the new values.
        Needs :meth:`writable`. This is how a parameter keeps its storage from step to step,
        which lets a captured step (:func:`fusion.jit`) be replayed on the same memory."""
        data = src.data
        if data is not self._data:
            self.backend.assign(self._data, data)
        return self

    def numpy(self) -> np.ndarray:
        """The values as a numpy array that may share memory with this buffer (and so with
        others): read it, never write it or hand it to a user. Realises the buffer."""
        # numpy's ufuncs give 0-d results as numpy scalars
        return np.asarray(self.backend.to_numpy(self.data))

    def copy(self) -> Buffer:
        """The same values in memory of their own (multiplied by one: exact for every value,
        -0.0 and nan included, and a new array on every backend)."""
        return self.mul(self.const(1))

    def cast(self, dtype: DType) -> Buffer:
        if dtype is self.dtype:
            return self
        backend = self.backend
        if backend.lazy and (self._data is None or not _at_once(backend, self.shape)):
            return _lazy(backend, UnaryOp.CAST, (self,), (dtype,), self.shape, dtype)
        return _node(backend, UnaryOp.CAST, (), (dtype,), self.shape, dtype,
                     backend.cast(self._data, dtype))

    # --- movement: the shape is worked out here, the rest is one generic path ---------------
    def reshape(self, shape: tuple[int, ...]) -> Buffer:
        return self if shape == self.shape else self._move(MovementOp.RESHAPE, (shape,), shape)

    def expand(self, shape: tuple[int, ...]) -> Buffer:
        return self if shape == self.shape else self._move(MovementOp.EXPAND, (shape,), shape)

    def permute(self, order: tuple[int, ...]) -> Buffer:
        if self.op is MovementOp.PERMUTE and self.srcs:  # a pending permute: compose the two
            inner = self.arg[0]
            composed = tuple(inner[i] for i in order)
            if composed == tuple(range(len(order))):
                return self.srcs[0]
        return self._move(MovementOp.PERMUTE, (order,), tuple(self.shape[i] for i in order))

    def pad(self, widths: tuple[tuple[int, int], ...], value=0) -> Buffer:
        shape = tuple(n + b + a for n, (b, a) in zip(self.shape, widths, strict=True))
        return self._move(MovementOp.PAD, (widths, value), shape)

    def shrink(self, bounds: tuple[tuple[int, int], ...]) -> Buffer:
        shape = tuple(stop - start for start, stop in bounds)
        return self if shape == self.shape else self._move(MovementOp.SHRINK, (bounds,), shape)

    def flip(self, axes: tuple[int, ...]) -> Buffer:
        return self._move(MovementOp.FLIP, (axes,), self.shape)

    def _move(self, op: MovementOp, args: tuple, shape: tuple[int, ...]) -> Buffer:
        backend = self.backend
        if backend.lazy and (self._data is None or _stats.tracking
                             or math.prod(shape) >= backend.fuse_min):  # see _at_once
            return _lazy(backend, op, (self,), args, shape, self.dtype)
        out = _new(Buffer)
        out.backend, out.op, out.srcs, out.arg = backend, op, (), args
        out.shape, out.dtype = shape, self.dtype
        out._data = getattr(backend, _METHOD[op])(self._data, *args)
        return out

    # --- contraction ---------------------------------------------------------------------
    def contract(self, other: Buffer) -> Buffer:
        """Batched matmul: (..., m, k) with (..., k, n), batch axes equal, to (..., m, n)."""
        *batch, m, k = self.shape
        n = other.shape[-1]
        shape = (*batch, m, n)
        backend = self.backend
        contract = getattr(backend, "contract", None)
        if contract is not None:
            if backend.lazy and (self._data is None or other._data is None
                                 or not _at_once(backend, ())):  # never fused: any size
                return _lazy(backend, ContractOp.CONTRACT, (self, other), (), shape, self.dtype)
            return _node(backend, ContractOp.CONTRACT, (), (), shape, self.dtype,
                         contract(self._data, other._data))
        # SUM over k of MUL of (..., m, k, 1) and (..., 1, k, n) expanded to (..., m, k, n).
        full = (*batch, m, k, n)
        x = self.reshape((*batch, m, k, 1)).expand(full)
        y = other.reshape((*batch, 1, k, n)).expand(full)
        return x.mul(y).sum((len(full) - 2,)).reshape(shape)


def _node(backend, op, srcs, arg, shape, dtype, data) -> Buffer:
    node = _new(Buffer)
    node.backend = backend
    node.op = op
    node.srcs = srcs
    node.arg = arg
    node.shape = shape
    node.dtype = dtype
    node._data = data
    return node


def _lazy(backend, op, srcs, arg, shape, dtype) -> Buffer:
    """A new unrealised node, realised at once when laziness is off, or when it is work that
    its backend would not fuse anyway (see :func:`_runs_now`)."""
    node = _node(backend, op, srcs, arg, shape, dtype, None)
    if not _lazy_var.get():  # eager: this primitive alone, now (its sources first if lazy)
        if any(s._data is None for s in srcs):
            realize(srcs)
        _run_primitive(node)
    elif _runs_now(node):
        _run_primitive(node)
    return node


def _at_once(backend, shape: tuple[int, ...]) -> bool:
    """Whether a lazy backend computes a primitive over ``shape`` (its sources computed) when
    it is made, as an eager backend does: the backend fuses kernels only from ``fuse_min``
    elements on and ``shape`` has fewer, so that a lazy graph would only add bookkeeping.
    Any kernel such a node could be part of has as few elements and would run primitive by
    primitive anyway: a node read through a view that makes it larger (an expand) is stored
    by the scheduler before a kernel reads it. (A contraction, never fused, passes ``()``.)
    Not while :data:`fusion.core.lazy.stats` is tracking: it counts the kernels of a graph."""
    return math.prod(shape) < backend.fuse_min and not _stats.tracking


def _runs_now(node: Buffer) -> bool:
    """Whether a new ``node`` whose sources are not all computed runs at once anyway (see
    :func:`_at_once`): those sources are views of computed buffers or of constants, realised
    here. A constant or a view of one stays lazy itself, so that a kernel that reads it
    expanded to a large shape takes it as a scalar; a node over pending work stays lazy and is
    realised with it. A contraction is the exception: what it reads is stored in any schedule,
    so its pending sources are realised here, and the small work after it need not wait."""
    op = node.op
    if op is LoadOp.FULL:
        return False
    if op is ContractOp.CONTRACT:
        if not _at_once(node.backend, ()):
            return False
        realize(node.srcs)
        return True
    work = node.srcs[0].shape if type(op) is ReduceOp else node.shape
    if not _at_once(node.backend, work):
        return False
    movement = type(op) is MovementOp
    chains = []
    for src in node.srcs:
        if src._data is not None:
            continue
        chain = [src]
        while type(chain[-1].op) is MovementOp and chain[-1]._data is None:
            chain.append(chain[-1].srcs[0])
        base = chain[-1]
        if base._data is None and (movement or base.op is not LoadOp.FULL):
            return False  # pending work, or a view of a constant: both stay lazy
        chains.append(chain)
    for chain in chains:
        for step in reversed(chain):
            if step._data is None:
                _run_primitive(step)
    return True


def _read_only_fill(backend: Backend, shape, value, dtype: DType):
    """The values of an internal constant, read-only; small ones are kept and shared (as
    :meth:`Buffer.constant` keeps them on an eager backend)."""
    small = math.prod(shape) <= _FILL_LIMIT and type(value) is not HostScalar
    key = (backend, shape, dtype, value, type(value), str(value))
    if small:
        found = _CONSTANTS.get(key)
        if found is not None:
            return found._data
    data = _filled(backend, shape, value, dtype)
    if isinstance(data, np.ndarray):
        data.flags.writeable = False
        if small:
            if len(_CONSTANTS) >= _CONSTANTS_MAX:
                _CONSTANTS.clear()
            _CONSTANTS[key] = Buffer(backend, data, shape, dtype)
    return data


def _filled(backend: Backend, shape, value, dtype: DType):
    if math.prod(shape) <= _FILL_LIMIT:
        return backend.full(shape, value, dtype)
    ones = (1,) * len(shape)
    return backend.expand(backend.full(ones, value, dtype), shape)


# --- the named methods, one generic path per group ----------------------------------------------
# Binary and ternary operands share one shape and dtype: the frontend broadcasts and promotes
# before it gets here (Tensor._broadcasted), so the hot path checks nothing; tests check it.
# A lazy backend takes the eager path too for work that runs at once (:func:`_at_once`, written
# out inline in the unary and binary methods, the hottest path).

def _elementwise_method(op):
    name = op.value
    if ARITY[op] == 1:
        def method(self):
            backend = self.backend
            if backend.lazy and (self._data is None or _stats.tracking
                                 or math.prod(self.shape) >= backend.fuse_min):
                return _lazy(backend, op, (self,), (), self.shape, self.dtype)
            out = _new(Buffer)  # an eager node, built inline: this is every op's hot path
            out.backend, out.op, out.srcs, out.arg = backend, op, (), ()
            out.shape, out.dtype = self.shape, self.dtype
            out._data = getattr(backend, name)(self._data)
            return out
    elif ARITY[op] == 2:
        comparison = op in COMPARISONS

        def method(self, other):
            backend = self.backend
            dtype = bool_ if comparison else self.dtype
            if backend.lazy and (self._data is None or other._data is None or _stats.tracking
                                 or math.prod(self.shape) >= backend.fuse_min):
                return _lazy(backend, op, (self, other), (), self.shape, dtype)
            out = _new(Buffer)
            out.backend, out.op, out.srcs, out.arg = backend, op, (), ()
            out.shape, out.dtype = self.shape, dtype
            out._data = getattr(backend, name)(self._data, other._data)
            return out
    else:
        def method(self, x, y):
            """``self ? x : y`` with ``self`` a bool buffer."""
            backend = self.backend
            if backend.lazy and (self._data is None or x._data is None or y._data is None
                                 or not _at_once(backend, x.shape)):
                return _lazy(backend, op, (self, x, y), (), x.shape, x.dtype)
            out = _new(Buffer)
            out.backend, out.op, out.srcs, out.arg = backend, op, (), ()
            out.shape, out.dtype = x.shape, x.dtype
            out._data = getattr(backend, name)(self._data, x._data, y._data)
            return out
    method.__name__ = name
    method.__doc__ = method.__doc__ or f"The primitive {op.name}."
    return method


def _reduce_method(op):
    name = op.value

    def method(self, axes: tuple[int, ...]) -> Buffer:
        """Reduce over ``axes`` (sorted, non-negative), keeping them with size 1."""
        shape = tuple(1 if i in axes else n for i, n in enumerate(self.shape))
        backend = self.backend
        if backend.lazy and (self._data is None or not _at_once(backend, self.shape)):
            return _lazy(backend, op, (self,), (axes,), shape, self.dtype)
        return _node(backend, op, (), (axes,), shape, self.dtype,
                     getattr(backend, name)(self._data, axes))
    return method


for _op in ELEMENTWISE:
    if _op is not UnaryOp.CAST:
        setattr(Buffer, _op.value, _elementwise_method(_op))
for _op in ReduceOp:
    setattr(Buffer, _op.value.replace("reduce_", ""), _reduce_method(_op))
del _op


# --- realisation -------------------------------------------------------------------------------
def realize(buffers: Iterable[Buffer]) -> None:
    """Compute every unrealised buffer of ``buffers`` together, sharing their common work.

    A backend that declares the capability ``"fuse"`` runs each kernel of the schedule whole
    (:mod:`fusion.core.schedule`); any other backend runs the primitives one by one. Realised
    nodes drop their sources, so what they were computed from can be freed.
    """
    pending: dict[Backend, list[Buffer]] = {}
    for b in buffers:
        if b._data is None:
            pending.setdefault(b.backend, []).append(b)
    for backend, targets in pending.items():
        fuse = "fuse" in backend.capabilities and callable(getattr(backend, "fuse", None))
        debug = _lazy_mode.debug_level()
        if not (fuse or debug or _lazy_mode.stats.tracking):
            _run_in_order(_toposort(targets))
            continue
        _run_schedule(backend, targets, fuse, debug)


def _toposort(targets: list[Buffer]) -> list[Buffer]:
    """The unrealised nodes that ``targets`` need, sources before their consumers."""
    order: list[Buffer] = []
    seen: set[int] = set()
    stack: list[tuple[Buffer, bool]] = [(t, False) for t in reversed(targets)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen or node._data is not None:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for src in reversed(node.srcs):
            if id(src) not in seen and src._data is None:
                stack.append((src, False))
    return order


def _run_primitive(node: Buffer) -> None:
    """Compute one node from its realised sources with the backend's primitive."""
    op = node.op
    backend = node.backend
    if op is LoadOp.FULL:
        if node.arg[-1] is _READ_ONLY:  # an internal constant: shared, and no one writes it
            data = _read_only_fill(backend, node.shape, node.arg[0], node.dtype)
        else:
            data = _filled(backend, node.shape, node.arg[0], node.dtype)
    else:
        data = getattr(backend, _METHOD[op])(*[s._data for s in node.srcs], *node.arg)
        if not isinstance(op, MovementOp):
            _lazy_mode.stats.primitives += 1
    node._data = data
    node.srcs = ()


def _run_in_order(order: list[Buffer]) -> None:
    for i, node in enumerate(order):
        order[i] = None  # a node's sources may be freed once its last consumer has run
        if node._data is None:
            _run_primitive(node)


def _run_schedule(backend: Backend, targets: list[Buffer], fuse: bool, debug: int) -> None:
    from .schedule import schedule

    order = _toposort(targets)
    if fuse and not debug and not _lazy_mode.stats.tracking:
        # a backend that fuses only from some size on: small work runs primitive by
        # primitive without the cost of a schedule
        limit = getattr(backend, "fuse_min", 0)
        if limit and all(math.prod(n.shape) < limit for n in order):
            _run_in_order(order)
            return
    fusable = getattr(backend, "fusable", None) if fuse else None
    # a backend that may run some kernels primitive by primitive stores what those compute:
    # recomputing a shared node in another kernel would then only repeat work
    items = schedule(targets, recompute=fuse and fusable is None,
                     rows=fuse and getattr(backend, "row_reductions", False), order=order)
    del order  # a node is freed once no item needs it
    stats = _lazy_mode.stats
    for i, item in enumerate(items):
        items[i] = None
        start = time.perf_counter() if debug else 0.0
        if fuse and item.fusable and (fusable is None or fusable(item.kernel, item.shape)):
            out = item.output
            out._data = backend.fuse(item.kernel, [b._data for b in item.inputs], item.views,
                                     item.constants, item.shape)
            out.srcs = ()
        else:
            _run_in_order(item.nodes)
        if item.kernel is not None:
            stats.kernels += 1
            stats.bytes += item.bytes
        if debug and item.kernel is not None:
            _print_kernel(item, time.perf_counter() - start, debug)


def _print_kernel(item, seconds: float, debug: int) -> None:
    rate = item.bytes / seconds / 1e9 if seconds > 0 else 0.0
    shape = "x".join(map(str, item.shape)) or "scalar"
    print(f"fusion: {item.kernel.name:<36} {shape:<16} {seconds * 1e3:8.3f} ms "
          f"{rate:7.2f} GB/s", file=sys.stderr)
    if debug >= 2:
        print(str(item.kernel), file=sys.stderr)


__all__ = ["Buffer", "persist", "realize"]


def persist(buffers: Iterable[Buffer]) -> None:
    """Have each buffer's backend compute it now and keep it (the optional ``persist`` of the
    contract), all the buffers of one backend together, so that shared work is done once.
    Values do not change; a buffer of a backend without ``persist`` is left as it is."""
    groups: dict[int, tuple[Backend, dict[int, Buffer]]] = {}
    for buffer in buffers:
        if getattr(buffer.backend, "persist", None) is None:
            continue
        group = groups.setdefault(id(buffer.backend), (buffer.backend, {}))[1]
        group[id(buffer)] = buffer
    for backend, group in groups.values():
        realize(group.values())
        kept = backend.persist([b._data for b in group.values()])
        for buffer, data in zip(group.values(), kept, strict=True):
            buffer._data = data
