"""Exact selection: sums over the positions a boolean matrix picks, never multiplying by 0.

Gathering (``x[index]``, ``x.gather``) and its dual, scatter-adding, are products with a one-hot
matrix, and the contraction is the one fast, memory-light way to compute such a product on every
backend. But a contraction multiplies: every value it does not pick still enters as
``0 * value``, and ``0 * inf`` and ``0 * nan`` are nan, so one inf anywhere would poison every
result. :func:`select_sum` keeps the contraction for the finite values and accounts for the
others by counting them:

* the finite values, with every inf and nan replaced by 0, go through the contraction: a sum of
  picked finite values and of zeros, exact as any sum of the picked values alone is;
* where the values hold any inf or nan (one host-side check), three more contractions count, per
  output, how many picked values were nan, +inf and -inf, and each output takes the value IEEE
  arithmetic gives the sum of the picked values: nan if a nan or both infinities were picked,
  else the infinity picked, else the finite sum.

Memory: the boolean matrix (``M x K`` per batch) cast to the values' dtype, a finite copy of the
values, and the ``M x N`` result; the rare non-finite path adds three ``M x N`` counts. The sign
of a zero is not kept (a picked ``-0.0`` comes back as ``0.0``): telling ``-0.0`` from ``0.0``
takes a division by zero, which numpy reports as a warning on every call.
"""

from __future__ import annotations

import math

from .autograd import Function
from .buffer import Buffer
from .dtypes import bool_, int32


def _swap_last(x: Buffer) -> Buffer:
    order = (*range(len(x.shape) - 2), len(x.shape) - 1, len(x.shape) - 2)
    return x.permute(order)


def select_sum(mask: Buffer, values: Buffer) -> Buffer:
    """``out[..., m, n]``: the sum of ``values[..., k, n]`` over the ``k`` where
    ``mask[..., m, k]`` is True, as IEEE addition of those values alone gives it.

    ``mask`` is a bool buffer of shape (..., M, K), ``values`` any buffer of shape (..., K, N)
    with the same leading axes; bool values are or-ed.
    """
    if values.dtype is bool_:
        counts = mask.cast(int32).contract(values.cast(int32))
        return counts.const(0).cmplt(counts)
    weights = mask.cast(values.dtype)
    if not values.dtype.is_float:
        return weights.contract(values)  # integers: 1 * v + 0 * w is exact
    zero = values.const(0)
    finite = values.sub(values).cmpeq(zero)  # v - v is 0 for finite v, nan for inf and nan
    out = weights.contract(finite.where(values, zero))
    if finite.cast(int32).sum(tuple(range(len(finite.shape)))).numpy().item() == finite.numel:
        return out
    one = values.const(1)
    picked = out.const(0)

    def count(which: Buffer) -> Buffer:  # how many picked values ``which`` holds, per output
        return picked.cmplt(weights.contract(which.where(one, zero)))

    nan = count(values.cmpeq(values).cmpeq(finite.const(False)))
    plus = count(values.cmpeq(values.const(math.inf)))
    minus = count(values.cmpeq(values.const(-math.inf)))
    out = minus.where(out.const(-math.inf), out)
    out = plus.where(out.const(math.inf), out)
    both = plus.where(minus, plus)  # plus and minus
    return nan.where(out.const(math.nan), both.where(out.const(math.nan), out))


class SelectSum(Function):
    """:func:`select_sum` as a graph node: the mask is a constant, the values get the gradient,
    which is the same selection transposed (a gather's gradient is a scatter-add of the output
    gradient, and a scatter-add's is a gather)."""

    def forward(self, mask: Buffer, values: Buffer) -> Buffer:
        self.mask = mask
        return select_sum(mask, values)

    def backward(self, grad: Buffer):
        return None, select_sum(_swap_last(self.mask), grad)
