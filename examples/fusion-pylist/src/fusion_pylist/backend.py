"""Every primitive of Fusion's backend contract on flat, row-major lists of Python numbers.

An array is a :class:`ListArray`: a flat list of ``bool``, ``int`` or ``float`` values in
row-major order, with a shape and a dtype name. Python's own numbers are wider than Fusion's
dtypes, so every result is brought back to its dtype by :func:`fit`: integers wrap around as
32- or 64-bit two's complement, float32 values are rounded to the nearest float32.

All movement primitives are one *strided gather*: an output element at index ``(i0, i1, ...)``
reads the input at ``start + i0*s0 + i1*s1 + ...``. Expand is a stride of 0, flip a negative
stride, shrink a start offset, permute a reordering of the strides. Every result is a new list
(nothing here is a view of its input), which is why the backend does not claim the ``views``
capability.

Python raises where IEEE arithmetic gives inf or nan (``math.log(0)``, ``1.0 / 0.0``,
``math.exp(1000)``); the small functions below turn those exceptions back into the values the
contract asks for.
"""

from __future__ import annotations

import math
import operator
from array import array
from collections.abc import Callable, Sequence

import numpy as np

from fusion import Backend, DType

INT_BITS = {"int32": 32, "int64": 64}
DTYPE_NAMES = ("bool", "int32", "int64", "float32", "float64")
INF = math.inf
NAN = math.nan


class ListArray:
    """A flat row-major list of Python numbers with a ``shape`` and a ``dtype`` name.

    >>> ListArray([1.0, 2.0, 3.0, 4.0], (2, 2), "float32")
    ListArray([1.0, 2.0, 3.0, 4.0], shape=(2, 2), dtype=float32)
    """

    __slots__ = ("items", "shape", "dtype")

    def __init__(self, items: list, shape: tuple[int, ...], dtype: str):
        self.items = items
        self.shape = shape
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"ListArray({self.items!r}, shape={self.shape}, dtype={self.dtype})"


# --- fitting Python numbers into a dtype ---------------------------------------------------
def fit(values: list, dtype: str) -> list:
    """``values`` as the dtype holds them: integers wrapped, float32 rounded."""
    if dtype == "float32":
        return array("f", values).tolist()  # C float conversion: rounds, overflows to inf
    if dtype in INT_BITS:
        bits = INT_BITS[dtype]
        low, size = -(1 << (bits - 1)), 1 << bits
        high = -low
        # Most results are in range; only the others pay for the modulo.
        return [v if low <= v < high else (v - low) % size + low for v in values]
    return values


def scalar(value, dtype: str):
    """A Python number (or numpy scalar) as one element of ``dtype``."""
    if dtype == "bool":
        return bool(value)
    if dtype in INT_BITS:
        return fit([int(value)], dtype)[0]
    return fit([float(value)], dtype)[0]


# --- IEEE results where Python raises ------------------------------------------------------
def _exp(v: float) -> float:
    try:
        return math.exp(v)
    except OverflowError:
        return INF


def _log(v: float) -> float:
    if v > 0 or v != v:
        return math.log(v)  # includes log(inf) = inf and log(nan) = nan
    return -INF if v == 0 else NAN


def _sqrt(v: float) -> float:
    return NAN if v < 0 else math.sqrt(v)


def _recip(v: float) -> float:
    return 1.0 / v if v != 0 else math.copysign(INF, v)


def _sin(v: float) -> float:
    return math.sin(v) if math.isfinite(v) else NAN


def _true_div(a: float, b: float) -> float:
    if b != 0:
        return a / b
    if a == 0 or a != a:
        return NAN
    return math.copysign(INF, a) * math.copysign(1.0, b)  # the sign of a zero divisor counts


def _is_odd_integer(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and math.fmod(y, 2.0) != 0


def _float_pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except ValueError:  # a zero to a negative power, or a negative base to a fraction
        if a == 0:
            negative = math.copysign(1.0, a) < 0 and _is_odd_integer(b)
            return -INF if negative else INF
        return NAN
    except OverflowError:
        return -INF if a < 0 and _is_odd_integer(b) else INF


def _floor_div(a: int, b: int) -> int:
    return a // b if b != 0 else 0


def _maximum_float(a: float, b: float) -> float:
    if a != a or b != b:
        return NAN
    return a if a > b else b  # of two equal zeros, the second, as numpy gives


def _maximum(a, b):
    return a if a >= b else b


def _max_float(values: list) -> float:
    for v in values:
        if v != v:
            return NAN
    return max(values)


# --- the strided gather behind every movement primitive ------------------------------------
def strides_of(shape: Sequence[int]) -> list[int]:
    """Row-major strides, in elements: ``strides_of((2, 3, 4)) == [12, 4, 1]``."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return strides[::-1]


def offsets(start: int, shape: Sequence[int], strides: Sequence[int]) -> list[int]:
    """The flat index ``start + sum(i_k * strides[k])`` of every index of ``shape``, in
    row-major order."""
    result = [start]
    for n, stride in zip(shape, strides, strict=True):
        steps = [i * stride for i in range(n)]
        result = [o + s for o in result for s in steps]
    return result


def gather(x: ListArray, start: int, shape: tuple[int, ...], strides: Sequence[int]) -> ListArray:
    items = x.items
    return ListArray([items[o] for o in offsets(start, shape, strides)], shape, x.dtype)


class PyListBackend(Backend):
    """Fusion's primitives in pure Python: slow, small, and independent of numpy's kernels.

    numpy appears only where the contract speaks numpy (``from_numpy`` and ``to_numpy``).
    """

    # float64 and int64 are supported; "views" is not: every movement primitive copies.
    capabilities = frozenset({"float64", "int64"})

    # --- creation and transfer -------------------------------------------------------------
    def from_numpy(self, a: np.ndarray) -> ListArray:
        name = a.dtype.name
        if name not in DTYPE_NAMES:
            raise TypeError(f"pylist holds {', '.join(DTYPE_NAMES)}, not {name}")
        # ravel reads any strides in row-major order; tolist gives Python numbers, and a
        # float32 array's values are already exact float32 values.
        return ListArray(a.ravel().tolist(), tuple(a.shape), name)

    def to_numpy(self, x: ListArray) -> np.ndarray:
        return np.array(x.items, dtype=x.dtype).reshape(x.shape)

    def full(self, shape: tuple[int, ...], value, dtype: DType) -> ListArray:
        return ListArray([scalar(value, dtype.name)] * math.prod(shape), shape, dtype.name)

    # --- elementwise: one Python function per element --------------------------------------
    @staticmethod
    def _map(fn: Callable, x: ListArray, dtype: str | None = None) -> ListArray:
        dtype = dtype or x.dtype
        return ListArray(fit(list(map(fn, x.items)), dtype), x.shape, dtype)

    @staticmethod
    def _zip(fn: Callable, x: ListArray, y: ListArray, dtype: str | None = None) -> ListArray:
        dtype = dtype or x.dtype
        return ListArray(fit(list(map(fn, x.items, y.items)), dtype), x.shape, dtype)

    def neg(self, x):
        return self._map(operator.neg, x)

    def exp(self, x):
        return self._map(_exp, x)

    def log(self, x):
        return self._map(_log, x)

    def sqrt(self, x):
        return self._map(_sqrt, x)

    def recip(self, x):
        return self._map(_recip, x)

    def sin(self, x):
        return self._map(_sin, x)

    def cast(self, x, dtype: DType):
        target = dtype.name
        if target == "bool":
            return self._map(bool, x, target)  # nan is truthy, as numpy's nan != 0
        if target in INT_BITS:
            if x.dtype.startswith("float"):
                # numpy leaves nan, inf and out-of-range values undefined; like numpy on x86
                # we give the most negative integer for nan and inf, and wrap the rest.
                low = -(1 << (INT_BITS[target] - 1))
                return self._map(lambda v: math.trunc(v) if math.isfinite(v) else low,
                                 x, target)
            return self._map(int, x, target)
        return self._map(float, x, target)

    def add(self, x, y):
        return self._zip(operator.or_ if x.dtype == "bool" else operator.add, x, y)

    def sub(self, x, y):
        return self._zip(operator.sub, x, y)

    def mul(self, x, y):
        return self._zip(operator.and_ if x.dtype == "bool" else operator.mul, x, y)

    def div(self, x, y):
        return self._zip(_true_div if x.dtype.startswith("float") else _floor_div, x, y)

    def pow(self, x, y):
        if x.dtype.startswith("float"):
            return self._zip(_float_pow, x, y)
        size = 1 << INT_BITS[x.dtype]
        # pow with a modulus keeps huge exponents cheap; fit() makes the result signed again.
        # Negative exponents are outside the contract; 1/a**-b truncated toward 0 is 0
        # unless |a| is 1.
        return self._zip(lambda a, b: pow(a, b, size) if b >= 0 else
                         (a ** (b & 1) if a in (1, -1) else 0), x, y)

    def maximum(self, x, y):
        return self._zip(_maximum_float if x.dtype.startswith("float") else _maximum, x, y)

    def cmpeq(self, x, y):
        return self._zip(operator.eq, x, y, "bool")

    def cmplt(self, x, y):
        return self._zip(operator.lt, x, y, "bool")

    def where(self, cond, x, y):
        items = [a if c else b for c, a, b in zip(cond.items, x.items, y.items, strict=True)]
        return ListArray(items, x.shape, x.dtype)

    # --- reduce: gather the reduced axes last, then fold each run of them ------------------
    def _runs(self, x: ListArray, axes: tuple[int, ...]) -> tuple[list[list], tuple[int, ...]]:
        kept = [i for i in range(len(x.shape)) if i not in axes]
        order = (*kept, *axes)
        flat = self.permute(x, order).items
        size = math.prod(x.shape[i] for i in axes)
        count = math.prod(x.shape[i] for i in kept)
        runs = [flat[i * size:(i + 1) * size] for i in range(count)]
        shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        return runs, shape

    def reduce_sum(self, x, axes):
        runs, shape = self._runs(x, axes)
        if x.dtype == "bool":
            return ListArray([any(run) for run in runs], shape, x.dtype)
        zero = 0.0 if x.dtype.startswith("float") else 0
        return ListArray(fit([sum(run, zero) for run in runs], x.dtype), shape, x.dtype)

    def reduce_max(self, x, axes):
        runs, shape = self._runs(x, axes)
        fold = _max_float if x.dtype.startswith("float") else max
        return ListArray([fold(run) for run in runs], shape, x.dtype)

    # --- movement --------------------------------------------------------------------------
    def reshape(self, x, shape):
        # Row-major order is unchanged, so the items are too; lists are never written to after
        # they are made, so sharing one is safe.
        return ListArray(x.items, tuple(shape), x.dtype)

    def expand(self, x, shape):
        strides = [0 if n == 1 and m != 1 else s
                   for n, m, s in zip(x.shape, shape, strides_of(x.shape), strict=True)]
        return gather(x, 0, tuple(shape), strides)

    def permute(self, x, order):
        strides = strides_of(x.shape)
        return gather(x, 0, tuple(x.shape[i] for i in order), [strides[i] for i in order])

    def shrink(self, x, bounds):
        strides = strides_of(x.shape)
        start = sum(lo * s for (lo, _), s in zip(bounds, strides, strict=True))
        return gather(x, start, tuple(hi - lo for lo, hi in bounds), strides)

    def flip(self, x, axes):
        strides = strides_of(x.shape)
        start = sum((x.shape[i] - 1) * strides[i] for i in axes if x.shape[i] > 0)
        flipped = [-s if i in axes else s for i, s in enumerate(strides)]
        return gather(x, start, x.shape, flipped)

    def pad(self, x, widths, value):
        shape = tuple(n + sum(width) for n, width in zip(x.shape, widths, strict=True))
        out = [scalar(value, x.dtype)] * math.prod(shape)
        strides = strides_of(shape)
        start = sum(before * s for (before, _), s in zip(widths, strides, strict=True))
        # Scatter the input into the interior: the same strided walk, written to, not read.
        for o, v in zip(offsets(start, x.shape, strides), x.items, strict=True):
            out[o] = v
        return ListArray(out, shape, x.dtype)

    # --- the optional fast path ------------------------------------------------------------
    def contract(self, x, y):
        """Batched matmul: ``(..., m, k) @ (..., k, n)``, one dot product per output element.

        Without this method Fusion would build the ``(..., m, k, n)`` product with expand and
        mul and sum it; here no such intermediate exists.
        """
        *batch, m, k = x.shape
        n = y.shape[-1]
        dtype = x.dtype
        zero = 0.0 if dtype.startswith("float") else 0
        out = []
        for b in range(math.prod(batch)):
            xb = x.items[b * m * k:(b + 1) * m * k]
            yb = y.items[b * k * n:(b + 1) * k * n]
            rows = [xb[i * k:(i + 1) * k] for i in range(m)]
            cols = [yb[j::n] for j in range(n)]
            if dtype == "bool":  # numpy's bool matmul: any of the pairwise ands
                out += [any(map(operator.and_, row, col)) for row in rows for col in cols]
            else:
                out += [sum(map(operator.mul, row, col), zero) for row in rows for col in cols]
        return ListArray(fit(out, dtype), (*batch, m, n), dtype)

