"""The numpy functions that run on dask's workers, one block (chunk) at a time.

They are plain module-level functions so that a distributed scheduler ships them by name
(the workers import this module). Each runs with numpy's floating-point warnings off: overflow
in exp, log(0) and 0/0 give the documented inf, -inf and nan on every worker, silently, as on
the numpy backend. This module imports numpy only.
"""

from __future__ import annotations

import numpy as np


def elementwise(function, dtype, *blocks):
    """``function(*blocks)`` as ``dtype``, quietly (``function`` is a numpy ufunc or below)."""
    with np.errstate(all="ignore"):
        out = function(*blocks)
    return np.asarray(out, dtype=dtype)


def divide(x, y):
    """True division for floats; for integers floor division, with ``x // 0 = 0``."""
    if x.dtype.kind == "f":
        return np.true_divide(x, y)
    return np.floor_divide(x, y)


def where(cond, x, y):
    return np.where(cond, x, y)


def cast(x, dtype):
    return x.astype(dtype)


def block_sum(x, axis=None, keepdims=False, **_):
    """A sum that keeps the input's dtype (numpy would widen int32 to int64)."""
    with np.errstate(all="ignore"):
        return np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def block_max(x, axis=None, keepdims=False, **_):
    """The maximum; NaN propagates."""
    with np.errstate(all="ignore"):
        return np.max(x, axis=axis, keepdims=keepdims)


def matmul(x, y):
    with np.errstate(all="ignore"):
        return np.matmul(x, y)
