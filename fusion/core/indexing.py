"""Indexing and gathering: ``x[...]`` with numpy's rules, ``gather``, ``scatter_add``,
``index_select``.

Basic indices (ints, slices with any step, None, Ellipsis) are movement primitives (SHRINK,
FLIP, PAD and RESHAPE for steps). Integer tensors (and lists, arrays, boolean masks) are advanced
indices: they broadcast together and pick positions, and each pick is a *selection*, not a
product, so an inf or nan elsewhere in the tensor never reaches a picked value (see
:mod:`fusion.core.select`). The gradient of a pick is a scatter-add of the output gradient.

Memory: picking ``n`` positions along an axis of size ``S`` builds an ``n x S`` mask (in the
tensor's dtype, for the contraction) and the result; indexing ``k`` axes at once picks along the
first and then, for each further axis, one position per picked row, so a pair of index tensors
on an (N, C) matrix (``logp[arange(N), labels]``) costs an ``N x N`` and an ``N x C`` mask,
never ``N x N x C``.
"""

from __future__ import annotations

import math

import numpy as np

from . import capture
from .dtypes import bool_, int64
from .select import SelectSum
from .tensor import Tensor, _apply, arange, broadcast_shape


def _is_index_tensor(item) -> bool:
    return isinstance(item, Tensor | list | np.ndarray)


def _as_index(x: Tensor, item) -> Tensor:
    """An integer index tensor on ``x``'s backend (a list or array becomes one)."""
    index = item if isinstance(item, Tensor) else x._operand(np.asarray(item)) if not (
        isinstance(item, list) and len(item) == 0) else x._operand(np.zeros(0, np.int64))
    if index.dtype.is_float:
        raise IndexError(f"tensor indices must be integers or booleans, not {index.dtype.name}")
    return index


def _in_range(index: Tensor, size: int, axis: int) -> Tensor:
    """``index`` with negative positions counted from the end; an IndexError if any is out of
    ``[-size, size)``."""
    if capture.recorder is not None:  # no branch on the values: a replay checks them again
        capture.host_check(index.data, _check_range, size, axis)
        index = index.cast(int64)
        return (index < 0).where(index + size, index)
    values = index.numpy()
    _check_range(values, size, axis)
    index = index.cast(int64)
    return (index < 0).where(index + size, index) if values.size and values.min() < 0 else index


def _check_range(values, size: int, axis: int) -> None:
    if values.size and (values.min() < -size or values.max() >= size):
        bad = values[(values < -size) | (values >= size)].flat[0]
        raise IndexError(f"index {bad} is out of range for axis {axis} of size {size}")


def pick(values: Tensor, index: Tensor) -> Tensor:
    """``out[b, j, r] = values[b, index[b, j], r]`` for ``values`` of shape (B, S, R) and an
    in-range, non-negative integer ``index`` of shape (B, n): (B, n, R), by selection."""
    positions = arange(values.shape[1], backend=values.data.backend)
    return _apply(SelectSum, index.unsqueeze(-1) == positions, values)  # mask (B, n, S)


def take(x: Tensor, axis: int, index) -> Tensor:
    """The positions ``index`` (an integer tensor of any shape) along ``axis``; the axis is
    replaced by the index's axes, as ``numpy.take`` does.

    >>> take(fusion.Tensor([[1.0, 2.0, 3.0]]), 1, fusion.Tensor([2, 0])).tolist()
    [[3.0, 1.0]]
    """
    if x.ndim == 0:
        raise IndexError("cannot pick along an axis of a 0-d tensor")
    axis = x._axis(axis)
    index = _in_range(_as_index(x, index), x.shape[axis], axis)
    moved = x.permute(axis, *[a for a in range(x.ndim) if a != axis])
    rest = moved.shape[1:]
    picked = pick(moved.reshape(1, x.shape[axis], math.prod(rest)), index.reshape(1, -1))
    picked = picked.reshape(*index.shape, *rest)
    k = index.ndim
    return picked.permute(*range(k, k + axis), *range(k), *range(k + axis, k + len(rest)))


def index_select(x: Tensor, axis: int, index) -> Tensor:
    """torch's ``index_select``: a 1-D (or 0-d) integer ``index`` along ``axis``."""
    index = _as_index(x, index)
    if index.ndim > 1:
        raise IndexError(f"index_select needs a 1-D index, got shape {index.shape}")
    return take(x, axis, index.reshape(-1))


def _along(x: Tensor, axis: int, index: Tensor, what: str) -> tuple[int, Tensor]:
    """Checks shared by gather and scatter_add (torch's rules)."""
    axis = x._axis(axis)
    index = _as_index(x, index)
    if index.dtype is bool_:
        raise IndexError(f"{what} needs an integer index, not bool")
    if index.ndim != x.ndim:
        raise ValueError(f"{what}: the index has {index.ndim} dimensions, the tensor "
                         f"{x.ndim}; they must have as many")
    for a, (n, m) in enumerate(zip(index.shape, x.shape, strict=True)):
        if a != axis and n > m:
            raise ValueError(f"{what}: index of shape {index.shape} is larger than the tensor "
                             f"of shape {x.shape} along axis {a}")
    return axis, _in_range(index, x.shape[axis], axis)


def _last(x: Tensor, axis: int) -> Tensor:
    """``axis`` moved to the end."""
    return x.permute(*[a for a in range(x.ndim) if a != axis], axis)


def _from_last(x: Tensor, axis: int) -> Tensor:
    """The inverse of :func:`_last`."""
    order = list(range(x.ndim - 1))
    order.insert(axis, x.ndim - 1)
    return x.permute(*order)


def gather(x: Tensor, axis: int, index) -> Tensor:
    """torch's ``gather``: ``out[i][j][k] = x[index[i][j][k]][j][k]`` for ``axis=0`` (and so on
    for other axes); ``index`` has ``x``'s number of dimensions, and the result its shape.

    >>> fusion.Tensor([[1.0, 2.0], [3.0, 4.0]]).gather(1, fusion.Tensor([[0, 0], [1, 0]])).tolist()
    [[1.0, 1.0], [4.0, 3.0]]
    """
    if x.ndim == 0:
        x = x.reshape(1)
        return gather(x, 0, _as_index(x, index).reshape(1)).reshape(())
    axis, index = _along(x, axis, index, "gather")
    bounds = [(0, n) if a != axis else None for a, n in enumerate(index.shape)]
    part = _last(x.shrink(bounds), axis)  # x cut to the index's shape off the axis
    idx = _last(index, axis)
    batch = idx.shape[:-1]
    picked = pick(part.reshape(-1, x.shape[axis], 1), idx.reshape(math.prod(batch), -1))
    return _from_last(picked.reshape(*idx.shape), axis)


def scatter_add(x: Tensor, axis: int, index, src) -> Tensor:
    """torch's ``scatter_add`` (out of place): ``x`` with ``src[i][j][k]`` added at
    ``[index[i][j][k]][j][k]`` for ``axis=0``; repeated positions add up. Differentiable in
    ``x`` (the identity) and ``src`` (a gather of the gradient).

    >>> fusion.zeros(3).scatter_add(0, fusion.Tensor([0, 2, 0]), fusion.ones(3)).tolist()
    [2.0, 0.0, 1.0]
    """
    src = x._operand(src)
    axis, index = _along(x, axis, index, "scatter_add")
    if src.ndim != index.ndim or any(n > m for n, m in zip(index.shape, src.shape, strict=True)):
        raise ValueError(f"scatter_add: index of shape {index.shape} does not fit src of shape "
                         f"{src.shape}")
    src = src.shrink([(0, n) for n in index.shape]).cast(x.dtype)
    idx, values = _last(index, axis), _last(src, axis)
    batch, n = idx.shape[:-1], idx.shape[-1]
    size = x.shape[axis]
    positions = arange(size, backend=x.data.backend).reshape(size, 1)
    mask = idx.reshape(-1, 1, n) == positions  # (B, S, n): which picks land on each position
    flat = values.reshape(-1, n, 1)
    added = _apply(SelectSum, mask, flat if flat.requires_grad else flat.detach())
    added = _from_last(added.reshape(*batch, size), axis)
    widths = [(0, m - k) for k, m in zip(added.shape, x.shape, strict=True)]
    return x + added.pad(widths)


# --- x[index] ---------------------------------------------------------------------------------
def _expand_index(x: Tensor, index) -> tuple:
    """The index as a tuple with the Ellipsis expanded and boolean masks turned into integer
    index tensors (one per axis they cover)."""
    if not isinstance(index, tuple):
        index = (index,)
    items = []
    for item in index:
        if isinstance(item, bool | np.bool_):
            raise IndexError("a bool as an index is not supported; use None to add an axis")
        if _is_index_tensor(item):
            tensor = _as_index(x, item)
            if tensor.dtype is bool_:
                if tensor.ndim == 0:
                    raise IndexError("a 0-d boolean index is not supported; use None to add "
                                     "an axis")
                positions = np.nonzero(tensor.numpy())
                items.extend(x._operand(p.astype(np.int64)) for p in positions)
                continue
            items.append(tensor)
        else:
            items.append(item)
    if sum(i is Ellipsis for i in items) > 1:
        raise IndexError("an index can only have a single ellipsis")
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"too many indices ({consumed}) for a tensor of {x.ndim} dimensions")
    at = next((k for k, i in enumerate(items) if i is Ellipsis), len(items))
    fill = [slice(None)] * (x.ndim - consumed)
    return tuple(items[:at] + fill + items[at + 1:])


def getitem(x: Tensor, index) -> Tensor:
    """numpy's indexing: basic indices (ints, slices with steps, None, Ellipsis) and advanced
    ones (integer tensors, lists or arrays, and boolean masks), mixed.

    Advanced indices broadcast together; their axes replace the indexed ones where those are
    adjacent in the index (ints among them count as advanced), else they come first, as in
    numpy.
    """
    index = _expand_index(x, index)
    advanced = [k for k, i in enumerate(index) if isinstance(i, Tensor)]
    if advanced:  # an int among tensors is an advanced index of shape ()
        advanced = [k for k, i in enumerate(index) if isinstance(i, Tensor)
                    or (isinstance(i, int | np.integer))]
    bounds, flips, strides, shape = [], [], [], []
    tensors = []  # (axis of the result so far, index tensor)
    before = 0  # axes of the result ahead of the first advanced index
    axis = 0
    for k, item in enumerate(index):
        if advanced and k == advanced[0]:
            before = len(shape)
        if item is None:
            shape.append(1)
            continue
        size = x.shape[axis]
        if isinstance(item, Tensor):
            bounds.append((0, size))
            tensors.append((len(shape), _in_range(item, size, axis)))
            shape.append(size)
        elif isinstance(item, slice):
            start, stop, step = item.indices(size)
            count = len(range(start, stop, step))
            if count == 0:
                bounds.append((0, 0))
            elif step > 0:
                bounds.append((start, start + (count - 1) * step + 1))
            else:
                bounds.append((start + (count - 1) * step, start + 1))
                flips.append(axis)
            if abs(step) > 1 and count > 1:
                strides.append((axis, abs(step), count))
            shape.append(count)
        elif isinstance(item, int | np.integer):
            i = int(item)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of range for axis {axis} of size {size}")
            i %= size
            bounds.append((i, i + 1))
        else:
            raise IndexError(f"unsupported index {item!r} of type {type(item).__name__}")
        axis += 1

    out = x.shrink(bounds) if bounds else x
    if flips:
        out = out.flip(flips)
    for ax, step, count in strides:
        out = _stride(out, ax, step, count)
    out = out.reshape(*shape)
    if not tensors:
        return out
    adjacent = advanced == list(range(advanced[0], advanced[-1] + 1))
    return _advanced(out, tensors, before if adjacent else 0)


def _advanced(x: Tensor, tensors: list[tuple[int, Tensor]], at: int) -> Tensor:
    """Pick ``x`` at the broadcast index tensors, one per axis in ``tensors``; the broadcast
    index axes go to position ``at`` of the result, the other axes keep their order."""
    axes = [a for a, _ in tensors]
    picked_shape = broadcast_shape(*[t.shape for _, t in tensors])
    count = math.prod(picked_shape)
    indices = [t.expand(*picked_shape).reshape(count) for _, t in tensors]
    rest = [a for a in range(x.ndim) if a not in axes]
    moved = x.permute(*axes, *rest)
    rest_shape = tuple(x.shape[a] for a in rest)
    sizes = [x.shape[a] for a in axes]
    # the first axis: every picked row from all rows; each further axis: one position per row
    inner = math.prod(sizes[1:]) * math.prod(rest_shape)
    out = pick(moved.reshape(1, sizes[0], inner), indices[0].reshape(1, count))
    for t in range(1, len(sizes)):
        inner = math.prod(sizes[t + 1:]) * math.prod(rest_shape)
        out = pick(out.reshape(count, sizes[t], inner), indices[t].reshape(count, 1))
    out = out.reshape(*picked_shape, *rest_shape)
    k = len(picked_shape)
    order = [*range(k, k + at), *range(k), *range(k + at, k + len(rest_shape))]
    return out.permute(*order)


def _stride(x: Tensor, axis: int, step: int, count: int) -> Tensor:
    """Every ``step``-th element along ``axis`` starting at 0 (``count`` of them)."""
    x = x.pad([(0, 0)] * axis + [(0, count * step - x.shape[axis])] + [(0, 0)] * (
        x.ndim - axis - 1))
    x = x.reshape(*x.shape[:axis], count, step, *x.shape[axis + 1:])
    x = x.shrink([None] * (axis + 1) + [(0, 1)] + [None] * (x.ndim - axis - 2))
    return x.reshape(*x.shape[:axis + 1], *x.shape[axis + 2:])
