"""Ops defined by positions along an axis: cumsum, tril and triu, roll, split and chunk.

Each is a composition of movement primitives, additions and WHERE, so every backend runs and
differentiates it; none multiplies by a 0/1 mask, so an inf or nan stays where it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .dtypes import bool_, int64
from .tensor import Tensor, arange, cat


def cumsum(x: Tensor, axis: int) -> Tensor:
    """Running sums along ``axis`` (bool and int32 sums are int64, as ``sum``'s are).

    A scan in ``ceil(log2(n))`` steps, each adding the tensor to itself shifted by 1, 2, 4, ...
    positions (the shift brings in -0.0, which leaves every value, a zero's sign included, as
    it is): O(n log n) additions and ``log2(n)`` temporaries of ``x``'s size, against the
    ``n x n`` matrix a contraction with a triangular mask would need.

    >>> cumsum(fusion.Tensor([1.0, 2.0, 3.0]), 0).tolist()
    [1.0, 3.0, 6.0]
    """
    if x.ndim == 0:
        return x.sum()
    axis = x._axis(axis)
    out = x if x.dtype.is_float or x.dtype is int64 else x.cast(int64)
    n = x.shape[axis]
    fill = -0.0 if out.dtype.is_float else 0
    shift = 1
    while shift < n:
        kept = [(0, m) if a != axis else (0, n - shift) for a, m in enumerate(out.shape)]
        widths = [(0, 0) if a != axis else (shift, 0) for a in range(out.ndim)]
        out = out + out.shrink(kept).pad(widths, value=fill)
        shift *= 2
    return out


def _triangle(x: Tensor, k: int, lower: bool, name: str) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{name} needs a tensor of at least 2 dimensions, got shape {x.shape}")
    rows, cols = x.shape[-2:]
    backend = x.data.backend
    offset = arange(cols, backend=backend).reshape(1, cols) - arange(
        rows, backend=backend).reshape(rows, 1)  # j - i
    keep = (offset <= k) if lower else (offset >= k)
    return keep.where(x, False if x.dtype is bool_ else 0)


def tril(x: Tensor, k: int = 0) -> Tensor:
    """The lower triangle of the last two axes: ``x[..., i, j]`` where ``j - i <= k``, else 0.

    >>> tril(fusion.ones(2, 3)).tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    """
    return _triangle(x, int(k), True, "tril")


def triu(x: Tensor, k: int = 0) -> Tensor:
    """The upper triangle of the last two axes: ``x[..., i, j]`` where ``j - i >= k``, else 0.

    >>> triu(fusion.ones(2, 3), 1).tolist()
    [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
    """
    return _triangle(x, int(k), False, "triu")


def roll(x: Tensor, shifts, axis=None) -> Tensor:
    """Shift elements along ``axis`` (several shifts for several axes), wrapping around; with
    no axis, the flattened tensor is rolled and the shape restored (as torch's ``roll``).

    >>> roll(fusion.Tensor([1, 2, 3, 4]), 1).tolist()
    [4, 1, 2, 3]
    """
    if axis is None:
        if isinstance(shifts, Sequence):
            raise ValueError("roll with several shifts needs as many axes")
        return roll(x.flatten(), shifts, 0).reshape(*x.shape)
    shifts = tuple(shifts) if isinstance(shifts, Sequence) else (shifts,)
    axes = tuple(axis) if isinstance(axis, Sequence) else (axis,)
    if len(shifts) != len(axes):
        raise ValueError(f"roll needs one shift per axis, got shifts {shifts} and axes {axes}")
    for shift, a in zip(shifts, axes, strict=True):
        a = x._axis(a)
        n = x.shape[a]
        if n == 0 or int(shift) % n == 0:
            continue
        s = int(shift) % n
        tail = x.shrink([(n - s, n) if i == a else None for i in range(x.ndim)])
        head = x.shrink([(0, n - s) if i == a else None for i in range(x.ndim)])
        x = cat([tail, head], a)
    return x


def split(x: Tensor, split_size_or_sections, axis: int = 0) -> tuple[Tensor, ...]:
    """Pieces along ``axis``: of ``split_size`` each (the last may be shorter), or of the
    sizes listed, which must add up to the axis (torch's ``split``).

    >>> [p.tolist() for p in split(fusion.arange(5), 2)]
    [[0, 1], [2, 3], [4]]
    """
    axis = x._axis(axis)
    n = x.shape[axis]
    if isinstance(split_size_or_sections, Sequence):
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"split sizes {sizes} must be non-negative and add up to {n}, "
                             f"the size of axis {axis}")
    else:
        size = int(split_size_or_sections)
        if size <= 0 and n:
            raise ValueError(f"split size must be positive, got {size}")
        sizes = [min(size, n - start) for start in range(0, n, size)] if n else [0]
    pieces, start = [], 0
    for size in sizes:
        pieces.append(x.shrink([(start, start + size) if i == axis else None
                                for i in range(x.ndim)]))
        start += size
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, axis: int = 0) -> tuple[Tensor, ...]:
    """At most ``chunks`` pieces of ``ceil(n / chunks)`` along ``axis`` (torch's ``chunk``: the
    last may be shorter, and there may be fewer).

    >>> [p.shape for p in chunk(fusion.zeros(5, 2), 3)]
    [(2, 2), (2, 2), (1, 2)]
    """
    if int(chunks) < 1:
        raise ValueError(f"chunk needs at least 1 chunk, got {chunks}")
    n = x.shape[x._axis(axis)]
    return split(x, max(math.ceil(n / int(chunks)), 1), axis)
