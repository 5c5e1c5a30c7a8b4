"""Every primitive of the contract as a numpy call; data is a numpy ndarray."""

from __future__ import annotations

import warnings

import numpy as np

from fusion.core.backend import Backend

# Floating-point warnings (overflow in exp, log(0), 0/0) are part of the documented results
# (inf, -inf, nan), so they are silenced where Fusion's own modules call numpy's ufuncs (the
# frame a ufunc warning names is its caller's), and nowhere else.
warnings.filterwarnings(
    "ignore",
    message=r"(divide by zero|overflow|invalid value|underflow) encountered",
    category=RuntimeWarning,
    module=r"fusion\.",
)


def _floor_divide(x, y, out=None):
    if x.dtype.kind == "f":
        return np.true_divide(x, y, out=out)
    return np.floor_divide(x, y, out=out)  # numpy gives 0 for x // 0, as the contract asks


class NumpyBackend(Backend):
    version = np.__version__
    capabilities = frozenset({"float64", "int64", "views", "assign"})
    #: The methods that take ``out=`` (a replay of a captured step computes into memory
    #: allocated once): numpy's ufuncs, reductions and matmul.
    writes_into = frozenset({"neg", "exp", "log", "sqrt", "sin", "recip", "cast", "add", "sub",
                             "mul", "div", "pow", "maximum", "cmpeq", "cmplt", "reduce_sum",
                             "reduce_max", "contract"})
    # numpy runs one primitive at a time, and its movement ops are views already: a lazy
    # graph would only add bookkeeping, so every primitive runs when it is called.
    lazy = False

    def from_numpy(self, array):
        return np.asarray(array)

    def to_numpy(self, x):
        return x

    def full(self, shape, value, dtype):
        out = np.empty(shape, dtype=dtype.np)
        out.fill(value)
        return out

    neg = staticmethod(np.negative)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    sin = staticmethod(np.sin)

    def recip(self, x, out=None):
        return np.reciprocal(x, out=out)

    def cast(self, x, dtype, out=None):
        if out is None:
            return x.astype(dtype.np)
        np.copyto(out, x, casting="unsafe")  # the conversion astype makes
        return out

    add = staticmethod(np.add)
    sub = staticmethod(np.subtract)
    mul = staticmethod(np.multiply)
    div = staticmethod(_floor_divide)
    pow = staticmethod(np.power)
    maximum = staticmethod(np.maximum)
    cmpeq = staticmethod(np.equal)
    cmplt = staticmethod(np.less)
    where = staticmethod(np.where)

    def reduce_sum(self, x, axes, out=None):
        # numpy would widen an int32 sum to int64; the contract keeps the input's dtype
        return np.sum(x, axis=axes, keepdims=True, dtype=x.dtype, out=out)

    def reduce_max(self, x, axes, out=None):
        return np.max(x, axis=axes, keepdims=True, out=out)

    reshape = staticmethod(np.reshape)
    permute = staticmethod(np.transpose)
    flip = staticmethod(np.flip)

    def expand(self, x, shape):
        return np.broadcast_to(x, shape)

    def pad(self, x, widths, value):
        return np.pad(x, widths, constant_values=value)

    def shrink(self, x, bounds):
        return x[tuple(slice(start, stop) for start, stop in bounds)]

    # The optional contraction fast path: numpy's BLAS-backed matmul.
    contract = staticmethod(np.matmul)

    def assign(self, dst, src):
        np.copyto(dst, src)
