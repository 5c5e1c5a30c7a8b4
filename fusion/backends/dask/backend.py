"""The dask backend class: every primitive of the contract on ``dask.array``.

``data`` is a ``dask.array.Array``: a graph of numpy blocks (chunks), computed only when a
result is asked for (:meth:`to_numpy`) or kept (:meth:`persist`). Arrays entering the backend
are cut along their first axis, the batch, into chunks of the configured size; other axes are
whole. Elementwise primitives map numpy over the blocks (:mod:`.blocks`, with floating-point
warnings off, as on the numpy backend); reductions are dask tree reductions whose block
functions keep the input's dtype; the contraction is dask's blocked matmul.

Importing this module does not import dask: :class:`DaskBackend` does, when the registry
starts it on first selection.
"""

from __future__ import annotations

import math
import weakref
from functools import partial
from uuid import uuid4

import numpy as np

from fusion.core.backend import Backend

from . import blocks
from .cluster import Runner
from .config import Settings, from_environment, updated

INSTALL_HINT = "install the extra: pip install 'fusion[dask]' (dask[array] and distributed)"
#: An operand whose graph has more layers (about one per primitive since the last computed
#: value) is persisted before it is used, once, and its persisted form used from then on:
#: building a dask graph costs time that grows with its depth, so a program that never asks
#: for a value (a long chain, a training loop that updates weights by hand) would otherwise
#: take quadratic time, and compute the same history again at every result it asks for.
MAX_LAYERS = 64


def _import_dask():
    try:
        import dask
        import dask.array
    except ImportError as exc:
        raise ImportError(f"the dask backend needs dask, which could not be imported "
                          f"({exc}); {INSTALL_HINT}") from exc
    return dask, dask.array


class DaskBackend(Backend):
    """Fusion's primitives as dask array operations (see :mod:`fusion.backends.dask`)."""

    # no "views": movement primitives give new lazy arrays, never numpy views of the input
    capabilities = frozenset({"float64", "int64"})
    # dask records a graph of its own and computes it when asked (persist, to_numpy): a second
    # lazy graph in Fusion's buffer layer would only add bookkeeping, so primitives reach
    # dask when they are called
    lazy = False

    def __init__(self, settings: Settings | None = None) -> None:
        dask, da = _import_dask()
        self.version = dask.__version__
        self._dask = dask
        self._da = da
        self.settings = settings if settings is not None else from_environment()
        self.runner = Runner(self.settings)
        # id of a deep array -> (weak reference to it, its persisted form)
        self._kept: dict[int, tuple[weakref.ref, object]] = {}

    # --- settings --------------------------------------------------------------------------
    def configure(self, **changes) -> Settings:
        """Change settings (``scheduler``, ``chunks``, ``timeout``, ``no_workers``) from now
        on; returns the previous ones, so that ``configure(**vars(old))`` restores them."""
        previous = self.settings
        self.settings = updated(previous, **changes)
        if self.settings.scheduler != previous.scheduler:
            self.runner.close()
        self.runner = Runner(self.settings)
        return previous

    def _rows(self, shape: tuple[int, ...], itemsize: int) -> int:
        """Rows per chunk for an array of ``shape`` cut along its first axis."""
        chunks = self.settings.chunks
        if isinstance(chunks, int):
            return chunks
        from dask.utils import parse_bytes

        size = self._dask.config.get("array.chunk-size") if chunks == "auto" else chunks
        row_bytes = max(1, math.prod(shape[1:]) * itemsize)
        return max(1, parse_bytes(size) // row_bytes)

    def _chunks(self, shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
        if not shape:
            return ()
        return (self._rows(shape, itemsize), *shape[1:])

    # --- creation and transfer -------------------------------------------------------------
    def from_numpy(self, array):
        array = np.asarray(array)
        # name=False: a random name instead of hashing the values (costly for large arrays)
        return self._da.from_array(array, chunks=self._chunks(array.shape, array.itemsize),
                                   name=False, asarray=True)

    def to_numpy(self, x):
        return np.asarray(self.runner.compute([x])[0])

    def full(self, shape, value, dtype):
        return self._da.full(shape, value, dtype=dtype.np,
                             chunks=self._chunks(shape, dtype.np.itemsize))

    def persist(self, arrays):
        """Compute ``arrays`` together and keep the results where the backend runs (on the
        workers of a cluster), so that later work starts from them (see the contract)."""
        return self.runner.persist(list(arrays))

    # --- elementwise -----------------------------------------------------------------------
    def _map(self, function, dtype, *operands):
        """``function`` over the blocks of operands of one shape, giving ``dtype``."""
        operands = [self._shallow(x) for x in operands]
        first = operands[0]
        meta = np.empty((0,) * first.ndim, dtype=dtype)
        index = tuple(range(first.ndim))
        pairs = [item for x in operands for item in (x, index)]
        # a fresh name rather than dask's hash of the arguments: hashing costs more than the
        # rest of the call, and every primitive call is a new value anyway
        out = self._da.blockwise(blocks.elementwise, index, function, None, dtype, None,
                                 *pairs, dtype=dtype, meta=meta,
                                 name=f"{getattr(function, '__name__', 'map')}-{uuid4().hex}")
        return out

    def _shallow(self, x):
        """``x``, or its persisted form if its graph is deeper than :data:`MAX_LAYERS`."""
        key = id(x)
        entry = self._kept.get(key)
        if entry is not None and entry[0]() is x:
            return entry[1]
        if len(x.dask.layers) <= MAX_LAYERS:
            return x
        kept = self.runner.persist([x])[0]
        forget = self._kept.pop
        self._kept[key] = (weakref.ref(x, lambda _: forget(key, None)), kept)
        return kept

    def neg(self, x):
        return self._map(np.negative, x.dtype, x)

    def exp(self, x):
        return self._map(np.exp, x.dtype, x)

    def log(self, x):
        return self._map(np.log, x.dtype, x)

    def sqrt(self, x):
        return self._map(np.sqrt, x.dtype, x)

    def recip(self, x):
        return self._map(np.reciprocal, x.dtype, x)

    def sin(self, x):
        return self._map(np.sin, x.dtype, x)

    def cast(self, x, dtype):
        return self._map(partial(blocks.cast, dtype=dtype.np), dtype.np, x)

    def add(self, x, y):
        return self._map(np.add, x.dtype, x, y)

    def sub(self, x, y):
        return self._map(np.subtract, x.dtype, x, y)

    def mul(self, x, y):
        return self._map(np.multiply, x.dtype, x, y)

    def div(self, x, y):
        return self._map(blocks.divide, x.dtype, x, y)

    def pow(self, x, y):
        return self._map(np.power, x.dtype, x, y)

    def maximum(self, x, y):
        return self._map(np.maximum, x.dtype, x, y)

    def cmpeq(self, x, y):
        return self._map(np.equal, np.dtype(bool), x, y)

    def cmplt(self, x, y):
        return self._map(np.less, np.dtype(bool), x, y)

    def where(self, cond, x, y):
        return self._map(blocks.where, x.dtype, cond, x, y)

    # --- reductions ------------------------------------------------------------------------
    def _reduce(self, function, x, axes):
        if not axes:
            return x
        x = self._shallow(x)
        return (self._da.reduction(
            x, function, function, axis=axes, keepdims=True, dtype=x.dtype,
            meta=np.empty((0,) * x.ndim, x.dtype)))

    def reduce_sum(self, x, axes):
        if any(x.shape[a] == 0 for a in axes):  # an empty sum: zeros, nothing to reduce
            shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
            return self._da.zeros(shape, dtype=x.dtype, chunks=self._chunks(shape, 1))
        return self._reduce(blocks.block_sum, x, axes)

    def reduce_max(self, x, axes):
        return self._reduce(blocks.block_max, x, axes)

    # --- movement --------------------------------------------------------------------------
    def reshape(self, x, shape):
        return self._shallow(x).reshape(shape)

    def expand(self, x, shape):
        x = self._shallow(x)
        # the new extent of a broadcast axis is cut as an array entering the backend would be
        # (one chunk of a large broadcast would not fit a worker); other axes keep their chunks
        rows = self._rows(shape, x.dtype.itemsize)
        chunks = tuple(
            (rows if i == 0 else n) if x.shape[i] == 1 and n != 1 else x.chunks[i]
            for i, n in enumerate(shape))
        return self._da.broadcast_to(x, shape, chunks=chunks)

    def permute(self, x, order):
        return self._shallow(x).transpose(order)

    def pad(self, x, widths, value):
        if not any(b or a for b, a in widths):
            return x
        if x.size == 0:  # nothing to pad but the value itself (dask's pad fails on size 0)
            shape = tuple(n + b + a for n, (b, a) in zip(x.shape, widths, strict=True))
            return self._da.full(shape, value, dtype=x.dtype,
                                 chunks=self._chunks(shape, x.dtype.itemsize))
        return self._da.pad(self._shallow(x), widths, mode="constant", constant_values=value)

    def shrink(self, x, bounds):
        return self._shallow(x)[tuple(slice(start, stop) for start, stop in bounds)]

    def flip(self, x, axes):
        return self._da.flip(self._shallow(x), axes) if axes else x

    # --- the optional contraction ----------------------------------------------------------
    def contract(self, x, y):
        # dask sums an integer product's blocks as int64; the final cast wraps it back to the
        # operands' dtype, which is the same result modulo 2**32 as numpy's int32 arithmetic
        out = self._da.matmul(self._shallow(x), self._shallow(y))
        return out if out.dtype == x.dtype else out.astype(x.dtype)
