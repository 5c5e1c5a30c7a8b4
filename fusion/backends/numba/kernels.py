"""The numba kernels of the numba backend. Importing this module imports numba.

Conventions, which keep the number of compiled signatures small:

* Elementwise kernels take C-contiguous 1-D arrays and write into a preallocated ``out``. An
  operand of size 1 where ``out`` is larger is a scalar broadcast to every element (so that
  ``x * 2`` never materialises a full array of 2s). Each op has a serial kernel ``op`` and a
  parallel driver ``op_par(..., out, nt)`` that splits ``out`` into ``nt`` contiguous spans
  (one per thread) and runs the serial kernel on each: the two share one loop body. The
  thread count is an argument because a kernel calling ``numba.get_num_threads()`` cannot be
  cached.
* Reductions see a C-contiguous array viewed as ``(A, R, B)`` and reduce ``R``: ``*_rows``
  kernels when ``B == 1`` (contiguous rows), ``*_cols`` kernels otherwise (accumulating whole
  rows of ``B`` elements, which vectorises across ``B``). Parallel variants split ``A``, ``B``
  or ``R`` (the last into per-thread partial results merged afterwards); no two iterations of a
  ``prange`` ever write the same element.
* Sums accumulate in float64 (float inputs) or int64 (int and bool inputs); the backend casts
  the result back to the input dtype.

Compile options live in :mod:`.options`; vectorisable exp/log/maximum in :mod:`.vecmath`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .options import PARALLEL, REDUCE, REDUCE_PARALLEL, SERIAL
from .vecmath import vexp, vlog, vmaximum

_ONE_F32 = np.float32(1.0)  # 1 / float32 stays float32; 1 / float64 is float64
_ALIGN = 64  # elements: spans start on cache-line boundaries for every dtype
_BLOCK = 4096  # summation block: partial sums of blocks keep float64 error near pairwise


# --- scalar helpers ---------------------------------------------------------------------------


def vdiv(a, b):
    """Float: true division. Integer: floor division with ``a // 0 == 0``."""
    raise NotImplementedError("only callable from numba-compiled code")


@overload(vdiv)
def _vdiv(a, b):
    if isinstance(a, types.Float):
        return lambda a, b: a / b
    if isinstance(a, types.Integer):
        # a // -1 is spelled -a: the machine division traps on INT64_MIN // -1.
        return lambda a, b: 0 if b == 0 else (-a if b == -1 else a // b)
    return None


def vpow(a, b):
    """Float: ``a ** b`` (libm pow). Integer and bool: by repeated squaring, ``b >= 0``."""
    raise NotImplementedError("only callable from numba-compiled code")


@njit(**SERIAL)
def _int_pow(a, b):
    result = 1
    base = a
    while b > 0:
        if b & 1:
            result = result * base
        base = base * base
        b = b >> 1
    return result


@overload(vpow)
def _vpow(a, b):
    if isinstance(a, types.Float):
        return lambda a, b: a**b
    if isinstance(a, (types.Integer, types.Boolean)):
        return lambda a, b: _int_pow(a, b)
    return None


@njit(**SERIAL)
def _span(chunk, nchunks, n):
    """Bounds of the ``chunk``-th of ``nchunks`` near-equal, aligned spans of ``range(n)``."""
    step = (n + nchunks - 1) // nchunks
    step = (step + _ALIGN - 1) // _ALIGN * _ALIGN
    lo = min(chunk * step, n)
    return lo, min(lo + step, n)


@njit(**SERIAL)
def _part(a, lo, hi, n):
    """``a[lo:hi]``, or ``a`` itself when it is a broadcast scalar (size 1, ``n > 1``)."""
    return a[lo:hi] if a.size == n else a


# --- unary ------------------------------------------------------------------------------------


@njit(**SERIAL)
def neg(x, out):
    for i in range(out.size):
        out[i] = -x[i]


@njit(**SERIAL)
def exp(x, out):
    for i in range(out.size):
        out[i] = vexp(x[i])


@njit(**SERIAL)
def log(x, out):
    for i in range(out.size):
        out[i] = vlog(x[i])


@njit(**SERIAL)
def sqrt(x, out):
    for i in range(out.size):
        out[i] = np.sqrt(x[i])


@njit(**SERIAL)
def recip(x, out):
    for i in range(out.size):
        out[i] = _ONE_F32 / x[i]


@njit(**SERIAL)
def sin(x, out):
    # libm sin per element: exact range reduction for large arguments, not vectorised.
    for i in range(out.size):
        out[i] = np.sin(x[i])


@njit(**SERIAL)
def cast(x, out):
    # numba converts as numpy's astype: float to int truncates, anything to bool is x != 0.
    for i in range(out.size):
        out[i] = x[i]


@njit(**PARALLEL)
def neg_par(x, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        neg(x[lo:hi], out[lo:hi])


@njit(**PARALLEL)
def exp_par(x, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        exp(x[lo:hi], out[lo:hi])


@njit(**PARALLEL)
def log_par(x, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        log(x[lo:hi], out[lo:hi])


@njit(**PARALLEL)
def sqrt_par(x, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        sqrt(x[lo:hi], out[lo:hi])


@njit(**PARALLEL)
def recip_par(x, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        recip(x[lo:hi], out[lo:hi])


@njit(**PARALLEL)
def sin_par(x, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        sin(x[lo:hi], out[lo:hi])


@njit(**PARALLEL)
def cast_par(x, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        cast(x[lo:hi], out[lo:hi])


# --- binary: three loops, for array-array, array-scalar and scalar-array ---------------------


@njit(**SERIAL)
def add(x, y, out):
    n = out.size
    if x.size == n and y.size == n:
        for i in range(n):
            out[i] = x[i] + y[i]
    elif x.size == n:
        b = y[0]
        for i in range(n):
            out[i] = x[i] + b
    else:
        a = x[0]
        for i in range(n):
            out[i] = a + y[i]


@njit(**SERIAL)
def sub(x, y, out):
    n = out.size
    if x.size == n and y.size == n:
        for i in range(n):
            out[i] = x[i] - y[i]
    elif x.size == n:
        b = y[0]
        for i in range(n):
            out[i] = x[i] - b
    else:
        a = x[0]
        for i in range(n):
            out[i] = a - y[i]


@njit(**SERIAL)
def mul(x, y, out):
    n = out.size
    if x.size == n and y.size == n:
        for i in range(n):
            out[i] = x[i] * y[i]
    elif x.size == n:
        b = y[0]
        for i in range(n):
            out[i] = x[i] * b
    else:
        a = x[0]
        for i in range(n):
            out[i] = a * y[i]


@njit(**SERIAL)
def div(x, y, out):
    n = out.size
    if x.size == n and y.size == n:
        for i in range(n):
            out[i] = vdiv(x[i], y[i])
    elif x.size == n:
        b = y[0]
        for i in range(n):
            out[i] = vdiv(x[i], b)
    else:
        a = x[0]
        for i in range(n):
            out[i] = vdiv(a, y[i])


@njit(**SERIAL)
def pow(x, y, out):
    n = out.size
    if x.size == n and y.size == n:
        for i in range(n):
            out[i] = vpow(x[i], y[i])
    elif x.size == n:
        b = y[0]
        for i in range(n):
            out[i] = vpow(x[i], b)
    else:
        a = x[0]
        for i in range(n):
            out[i] = vpow(a, y[i])


@njit(**SERIAL)
def maximum(x, y, out):
    n = out.size
    if x.size == n and y.size == n:
        for i in range(n):
            out[i] = vmaximum(x[i], y[i])
    elif x.size == n:
        b = y[0]
        for i in range(n):
            out[i] = vmaximum(x[i], b)
    else:
        a = x[0]
        for i in range(n):
            out[i] = vmaximum(a, y[i])


@njit(**SERIAL)
def cmpeq(x, y, out):
    n = out.size
    if x.size == n and y.size == n:
        for i in range(n):
            out[i] = x[i] == y[i]
    elif x.size == n:
        b = y[0]
        for i in range(n):
            out[i] = x[i] == b
    else:
        a = x[0]
        for i in range(n):
            out[i] = a == y[i]


@njit(**SERIAL)
def cmplt(x, y, out):
    n = out.size
    if x.size == n and y.size == n:
        for i in range(n):
            out[i] = x[i] < y[i]
    elif x.size == n:
        b = y[0]
        for i in range(n):
            out[i] = x[i] < b
    else:
        a = x[0]
        for i in range(n):
            out[i] = a < y[i]


@njit(**PARALLEL)
def add_par(x, y, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        add(_part(x, lo, hi, n), _part(y, lo, hi, n), out[lo:hi])


@njit(**PARALLEL)
def sub_par(x, y, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        sub(_part(x, lo, hi, n), _part(y, lo, hi, n), out[lo:hi])


@njit(**PARALLEL)
def mul_par(x, y, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        mul(_part(x, lo, hi, n), _part(y, lo, hi, n), out[lo:hi])


@njit(**PARALLEL)
def div_par(x, y, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        div(_part(x, lo, hi, n), _part(y, lo, hi, n), out[lo:hi])


@njit(**PARALLEL)
def pow_par(x, y, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        pow(_part(x, lo, hi, n), _part(y, lo, hi, n), out[lo:hi])


@njit(**PARALLEL)
def maximum_par(x, y, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        maximum(_part(x, lo, hi, n), _part(y, lo, hi, n), out[lo:hi])


@njit(**PARALLEL)
def cmpeq_par(x, y, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        cmpeq(_part(x, lo, hi, n), _part(y, lo, hi, n), out[lo:hi])


@njit(**PARALLEL)
def cmplt_par(x, y, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        cmplt(_part(x, lo, hi, n), _part(y, lo, hi, n), out[lo:hi])


# --- ternary ----------------------------------------------------------------------------------


@njit(**SERIAL)
def where(cond, x, y, out):
    """``cond`` is a full-size bool array (the backend handles a broadcast condition)."""
    n = out.size
    if x.size == n and y.size == n:
        for i in range(n):
            out[i] = x[i] if cond[i] else y[i]
    elif x.size == n:
        b = y[0]
        for i in range(n):
            out[i] = x[i] if cond[i] else b
    elif y.size == n:
        a = x[0]
        for i in range(n):
            out[i] = a if cond[i] else y[i]
    else:
        a = x[0]
        b = y[0]
        for i in range(n):
            out[i] = a if cond[i] else b


@njit(**PARALLEL)
def where_par(cond, x, y, out, nt):
    n = out.size
    for c in prange(nt):
        lo, hi = _span(c, nt, n)
        where(cond[lo:hi], _part(x, lo, hi, n), _part(y, lo, hi, n), out[lo:hi])


# --- reductions -------------------------------------------------------------------------------
# Rows: x2 is (A, R), out is (A,). Columns: x3 is (A, R, B), out is (A, B).
# Sum kernels add into ``out`` (zero-filled by the caller, in the accumulator dtype); max
# kernels overwrite ``out`` (same dtype as x), starting from the first element reduced.
# The helpers take whole (sliced) rows and loop from 0: LLVM did not vectorise the same loops
# when their bounds were run-time offsets (measured 8x slower).


@njit(**REDUCE)
def _row_sum(row):
    total = 0  # numba widens it to the accumulator type: float64, or int64 for ints and bools
    n = row.size
    for start in range(0, n, _BLOCK):
        block = 0
        chunk = row[start : min(start + _BLOCK, n)]
        for i in range(chunk.size):
            block += chunk[i]
        total += block
    return total


@njit(**SERIAL)
def _row_max(row):
    m = row[0]
    for i in range(1, row.size):
        m = vmaximum(m, row[i])
    return m


@njit(**REDUCE)
def _cols_sum(x2, blo, bhi, out):
    """out[blo:bhi] += the sum of the rows of x2[:, blo:bhi]."""
    acc = out[blo:bhi]
    for r in range(x2.shape[0]):
        row = x2[r, blo:bhi]
        for b in range(acc.size):
            acc[b] += row[b]


@njit(**SERIAL)
def _cols_max(x2, blo, bhi, out):
    """out[blo:bhi] = the maximum of the rows of x2[:, blo:bhi]."""
    acc = out[blo:bhi]
    first = x2[0, blo:bhi]
    for b in range(acc.size):
        acc[b] = first[b]
    for r in range(1, x2.shape[0]):
        row = x2[r, blo:bhi]
        for b in range(acc.size):
            acc[b] = vmaximum(acc[b], row[b])


@njit(**REDUCE)
def sum_rows(x2, out):
    for a in range(x2.shape[0]):
        out[a] += _row_sum(x2[a])


@njit(**SERIAL)
def max_rows(x2, out):
    for a in range(x2.shape[0]):
        out[a] = _row_max(x2[a])


@njit(**REDUCE_PARALLEL)
def sum_rows_par(x2, out):
    for a in prange(x2.shape[0]):
        out[a] += _row_sum(x2[a])


@njit(**PARALLEL)
def max_rows_par(x2, out):
    for a in prange(x2.shape[0]):
        out[a] = _row_max(x2[a])


@njit(**REDUCE_PARALLEL)
def sum_rows_split(x2, partial):
    """partial[a, p] += sum of the p-th span of row a (few long rows)."""
    nparts = partial.shape[1]
    for p in prange(nparts):
        lo, hi = _span(p, nparts, x2.shape[1])
        for a in range(x2.shape[0]):
            partial[a, p] += _row_sum(x2[a, lo:hi])


@njit(**PARALLEL)
def max_rows_split(x2, partial):
    """partial[a, p] = maximum of the p-th span of row a; spans are never empty."""
    nparts = partial.shape[1]
    for p in prange(nparts):
        lo, hi = _span(p, nparts, x2.shape[1])
        for a in range(x2.shape[0]):
            partial[a, p] = _row_max(x2[a, lo:hi])


@njit(**REDUCE)
def sum_cols(x3, out):
    for a in range(x3.shape[0]):
        _cols_sum(x3[a], 0, x3.shape[2], out[a])


@njit(**SERIAL)
def max_cols(x3, out):
    for a in range(x3.shape[0]):
        _cols_max(x3[a], 0, x3.shape[2], out[a])


@njit(**REDUCE_PARALLEL)
def sum_cols_par(x3, out):
    """One slice of A per iteration (A at least the thread count)."""
    for a in prange(x3.shape[0]):
        _cols_sum(x3[a], 0, x3.shape[2], out[a])


@njit(**PARALLEL)
def max_cols_par(x3, out):
    for a in prange(x3.shape[0]):
        _cols_max(x3[a], 0, x3.shape[2], out[a])


@njit(**REDUCE_PARALLEL)
def sum_cols_split_b(x3, out, nt):
    """One span of columns B per thread (few, wide slices)."""
    for p in prange(nt):
        lo, hi = _span(p, nt, x3.shape[2])
        for a in range(x3.shape[0]):
            _cols_sum(x3[a], lo, hi, out[a])


@njit(**PARALLEL)
def max_cols_split_b(x3, out, nt):
    for p in prange(nt):
        lo, hi = _span(p, nt, x3.shape[2])
        if lo < hi:
            for a in range(x3.shape[0]):
                _cols_max(x3[a], lo, hi, out[a])


@njit(**REDUCE_PARALLEL)
def sum_cols_split_r(x3, partial):
    """partial[p] (A, B) += sum over the p-th span of R (few, narrow slices, many rows)."""
    nparts = partial.shape[0]
    for p in prange(nparts):
        lo, hi = _span(p, nparts, x3.shape[1])
        for a in range(x3.shape[0]):
            _cols_sum(x3[a, lo:hi], 0, x3.shape[2], partial[p, a])


@njit(**PARALLEL)
def max_cols_split_r(x3, partial):
    nparts = partial.shape[0]
    for p in prange(nparts):
        lo, hi = _span(p, nparts, x3.shape[1])
        for a in range(x3.shape[0]):
            _cols_max(x3[a, lo:hi], 0, x3.shape[2], partial[p, a])
