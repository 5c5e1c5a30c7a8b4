"""The buffer layer: shape and dtype inference and dispatch of primitives to a backend.

A Buffer is a backend array with the shape and dtype the frontend expects of it. Autograd
Functions are written against Buffers, so this is the one seam between the differentiable
frontend and the backends (and where a lazy, fusing executor would live).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .backend import Backend
from .dtypes import DType, bool_

#: Broadcast a constant from one element rather than fill every element above this size.
_FILL_LIMIT = 1 << 14
#: Small constants the frontend makes again and again (the 2 of ``x * 2``, relu's 0) are kept,
#: read-only. They are internal operands only, never a result handed to a user (who could
#: write into it), and no primitive writes into its inputs.
_CONSTANTS: dict = {}
_CONSTANTS_MAX = 512


class Buffer:
    __slots__ = ("backend", "data", "shape", "dtype")

    def __init__(self, backend: Backend, data, shape: tuple[int, ...], dtype: DType):
        self.backend = backend
        self.data = data
        self.shape = shape
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"Buffer(shape={self.shape}, dtype={self.dtype.name}, backend={self.backend.name})"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    # --- creation and transfer -----------------------------------------------------------
    @staticmethod
    def from_numpy(backend: Backend, array, dtype: DType) -> Buffer:
        return Buffer(backend, backend.from_numpy(array), tuple(array.shape), dtype)

    @staticmethod
    def full(backend: Backend, shape: tuple[int, ...], value, dtype: DType) -> Buffer:
        if math.prod(shape) <= _FILL_LIMIT:
            return Buffer(backend, backend.full(shape, value, dtype), shape, dtype)
        one = Buffer(backend, backend.full((1,) * len(shape), value, dtype), (1,) * len(shape), dtype)
        return one.expand(shape)

    @staticmethod
    def constant(backend: Backend, shape: tuple[int, ...], value, dtype: DType) -> Buffer:
        """Like :meth:`full`, but small results are cached and read-only: for internal
        operands only."""
        key = (backend, shape, dtype, value, type(value), str(value))
        found = _CONSTANTS.get(key)
        if found is None:
            found = Buffer.full(backend, shape, value, dtype)
            if found.numel <= _FILL_LIMIT:
                if isinstance(found.data, np.ndarray):
                    found.data.flags.writeable = False
                if len(_CONSTANTS) >= _CONSTANTS_MAX:
                    _CONSTANTS.clear()
                _CONSTANTS[key] = found
        return found

    def const(self, value) -> Buffer:
        """A buffer of this one's shape, dtype and backend, every element ``value``."""
        return Buffer.constant(self.backend, self.shape, value, self.dtype)

    def numpy(self) -> np.ndarray:
        """The values as a numpy array that may share memory with this buffer (and so with
        others): read it, never write it or hand it to a user."""
        # numpy's ufuncs give 0-d results as numpy scalars
        return np.asarray(self.backend.to_numpy(self.data))

    def copy(self) -> Buffer:
        """The same values in memory of their own (multiplied by one: exact for every value,
        -0.0 and nan included, and a new array on every backend)."""
        return self.mul(self.const(1))

    # --- unary ---------------------------------------------------------------------------
    def neg(self) -> Buffer:
        return Buffer(self.backend, self.backend.neg(self.data), self.shape, self.dtype)

    def exp(self) -> Buffer:
        return Buffer(self.backend, self.backend.exp(self.data), self.shape, self.dtype)

    def log(self) -> Buffer:
        return Buffer(self.backend, self.backend.log(self.data), self.shape, self.dtype)

    def sqrt(self) -> Buffer:
        return Buffer(self.backend, self.backend.sqrt(self.data), self.shape, self.dtype)

    def recip(self) -> Buffer:
        return Buffer(self.backend, self.backend.recip(self.data), self.shape, self.dtype)

    def sin(self) -> Buffer:
        return Buffer(self.backend, self.backend.sin(self.data), self.shape, self.dtype)

    def cast(self, dtype: DType) -> Buffer:
        if dtype is self.dtype:
            return self
        return Buffer(self.backend, self.backend.cast(self.data, dtype), self.shape, dtype)

    # --- binary and ternary: operands of one shape and dtype -----------------------------
    # The frontend broadcasts and promotes before it gets here (Tensor._broadcasted), so the
    # hot path checks nothing; tests check the guarantee.

    def add(self, other: Buffer) -> Buffer:
        return Buffer(self.backend, self.backend.add(self.data, other.data), self.shape,
                      self.dtype)

    def sub(self, other: Buffer) -> Buffer:
        return Buffer(self.backend, self.backend.sub(self.data, other.data), self.shape,
                      self.dtype)

    def mul(self, other: Buffer) -> Buffer:
        return Buffer(self.backend, self.backend.mul(self.data, other.data), self.shape,
                      self.dtype)

    def div(self, other: Buffer) -> Buffer:
        return Buffer(self.backend, self.backend.div(self.data, other.data), self.shape,
                      self.dtype)

    def pow(self, other: Buffer) -> Buffer:
        return Buffer(self.backend, self.backend.pow(self.data, other.data), self.shape,
                      self.dtype)

    def maximum(self, other: Buffer) -> Buffer:
        return Buffer(self.backend, self.backend.maximum(self.data, other.data), self.shape,
                      self.dtype)

    def cmpeq(self, other: Buffer) -> Buffer:
        return Buffer(self.backend, self.backend.cmpeq(self.data, other.data), self.shape, bool_)

    def cmplt(self, other: Buffer) -> Buffer:
        return Buffer(self.backend, self.backend.cmplt(self.data, other.data), self.shape, bool_)

    def where(self, x: Buffer, y: Buffer) -> Buffer:
        """``self ? x : y`` with ``self`` a bool buffer."""
        return Buffer(self.backend, self.backend.where(self.data, x.data, y.data), x.shape,
                      x.dtype)

    # --- reduce: reduced axes kept with size 1 -------------------------------------------
    def _reduced_shape(self, axes: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(1 if i in axes else n for i, n in enumerate(self.shape))

    def sum(self, axes: tuple[int, ...]) -> Buffer:
        data = self.backend.reduce_sum(self.data, axes)
        return Buffer(self.backend, data, self._reduced_shape(axes), self.dtype)

    def max(self, axes: tuple[int, ...]) -> Buffer:
        data = self.backend.reduce_max(self.data, axes)
        return Buffer(self.backend, data, self._reduced_shape(axes), self.dtype)

    # --- movement ------------------------------------------------------------------------
    def reshape(self, shape: tuple[int, ...]) -> Buffer:
        if shape == self.shape:
            return self
        return Buffer(self.backend, self.backend.reshape(self.data, shape), shape, self.dtype)

    def expand(self, shape: tuple[int, ...]) -> Buffer:
        if shape == self.shape:
            return self
        return Buffer(self.backend, self.backend.expand(self.data, shape), shape, self.dtype)

    def permute(self, order: tuple[int, ...]) -> Buffer:
        shape = tuple(self.shape[i] for i in order)
        return Buffer(self.backend, self.backend.permute(self.data, order), shape, self.dtype)

    def pad(self, widths: tuple[tuple[int, int], ...], value=0) -> Buffer:
        shape = tuple(n + b + a for n, (b, a) in zip(self.shape, widths))
        return Buffer(self.backend, self.backend.pad(self.data, widths, value), shape, self.dtype)

    def shrink(self, bounds: tuple[tuple[int, int], ...]) -> Buffer:
        shape = tuple(stop - start for start, stop in bounds)
        if shape == self.shape:
            return self
        return Buffer(self.backend, self.backend.shrink(self.data, bounds), shape, self.dtype)

    def flip(self, axes: tuple[int, ...]) -> Buffer:
        return Buffer(self.backend, self.backend.flip(self.data, axes), self.shape, self.dtype)

    # --- contraction ---------------------------------------------------------------------
    def contract(self, other: Buffer) -> Buffer:
        """Batched matmul: (..., m, k) with (..., k, n), batch axes equal, to (..., m, n)."""
        *batch, m, k = self.shape
        n = other.shape[-1]
        shape = (*batch, m, n)
        contract = getattr(self.backend, "contract", None)
        if contract is not None:
            return Buffer(self.backend, contract(self.data, other.data), shape, self.dtype)
        # SUM over k of MUL of (..., m, k, 1) and (..., 1, k, n) expanded to (..., m, k, n).
        full = (*batch, m, k, n)
        x = self.reshape((*batch, m, k, 1)).expand(full)
        y = other.reshape((*batch, 1, k, n)).expand(full)
        return x.mul(y).sum((len(full) - 2,)).reshape(shape)


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
        kept = backend.persist([b.data for b in group.values()])
        for buffer, data in zip(group.values(), kept, strict=True):
            buffer.data = data
