"""Views: how a kernel reads an input without copying it.

A :class:`View` maps every index ``(i0, i1, ...)`` of its ``shape`` to one element of a
source buffer, counted in the source's row-major order: ``offset + i0*s0 + i1*s1 + ...``.
Where a validity ``mask`` (one ``(low, high)`` per axis) excludes the index, the element
is the view's ``fill`` value instead (that is how PAD reads without a copy).

The movement primitives compose on a view instead of running: EXPAND is a stride of 0,
PERMUTE reorders strides, SHRINK moves the offset, FLIP negates a stride, PAD widens the
shape and the mask. RESHAPE keeps a view where the axes it merges are laid out one after the
other in memory; elsewhere :meth:`View.reshape` returns None, and the scheduler copies the
source into a contiguous buffer first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides of ``shape``, in elements; axes of size 1 get stride 0."""
    strides = []
    step = 1
    for n in reversed(shape):
        strides.append(step if n != 1 else 0)
        step *= n
    return tuple(reversed(strides))


@dataclass(frozen=True)
class View:
    """``shape`` read through ``strides`` and ``offset`` from a source, masked by ``mask``."""

    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0
    mask: tuple[tuple[int, int], ...] | None = None
    fill: object = 0

    @staticmethod
    def contiguous(shape: tuple[int, ...]) -> View:
        """The whole of a buffer of ``shape``, in its own order."""
        return View(shape, contiguous_strides(shape))

    @property
    def kind(self) -> str:
        """What a compiler needs to know of the view, never its sizes: ``"contiguous"`` (reads
        the source in order), ``"strided"`` or ``"masked"``."""
        if self.mask is not None:
            return "masked"
        if self.strides == contiguous_strides(self.shape):
            return "contiguous"
        return "strided"

    # --- the movement ops, composed ------------------------------------------------------
    def expand(self, shape: tuple[int, ...]) -> View:
        strides = tuple(0 if old != new else s
                        for old, new, s in zip(self.shape, shape, self.strides, strict=True))
        mask = self.mask
        if mask is not None:
            mask = tuple((0, new) if old != new and hi > lo else (lo, hi) if old == new
                         else (0, 0)
                         for (lo, hi), old, new in zip(mask, self.shape, shape, strict=True))
        return View(shape, strides, self.offset, mask, self.fill)

    def permute(self, order: tuple[int, ...]) -> View:
        mask = None if self.mask is None else tuple(self.mask[i] for i in order)
        return View(tuple(self.shape[i] for i in order), tuple(self.strides[i] for i in order),
                    self.offset, mask, self.fill)

    def shrink(self, bounds: tuple[tuple[int, int], ...]) -> View:
        offset = self.offset + sum(start * s
                                   for (start, _), s in zip(bounds, self.strides, strict=True))
        shape = tuple(stop - start for start, stop in bounds)
        mask = self.mask
        if mask is not None:
            mask = tuple((min(max(lo - start, 0), n), max(min(hi - start, n), 0))
                         for (lo, hi), (start, _), n in zip(mask, bounds, shape, strict=True))
        return View(shape, self.strides, offset, _simplified(mask, shape), self.fill)

    def flip(self, axes: tuple[int, ...]) -> View:
        strides = list(self.strides)
        offset = self.offset
        mask = None if self.mask is None else list(self.mask)
        for axis in axes:
            n = self.shape[axis]
            offset += (n - 1) * strides[axis] if n else 0
            strides[axis] = -strides[axis]
            if mask is not None:
                lo, hi = mask[axis]
                mask[axis] = (n - hi, n - lo)
        return View(self.shape, tuple(strides), offset,
                    None if mask is None else tuple(mask), self.fill)

    def pad(self, widths: tuple[tuple[int, int], ...], value) -> View | None:
        if self.mask is not None and self.fill != value:
            return None  # two fill values cannot share one mask
        shape = tuple(n + b + a for n, (b, a) in zip(self.shape, widths, strict=True))
        offset = self.offset - sum(b * s for (b, _), s in zip(widths, self.strides, strict=True))
        old = self.mask or tuple((0, n) for n in self.shape)
        mask = tuple((lo + b, hi + b) for (lo, hi), (b, _) in zip(old, widths, strict=True))
        return View(shape, self.strides, offset, _simplified(mask, shape), value)

    def reshape(self, shape: tuple[int, ...]) -> View | None:
        """The same elements as ``shape`` in row-major order, or None where no view can."""
        if math.prod(shape) == 0:
            return View.contiguous(shape)
        if self.mask is None and self.strides == contiguous_strides(self.shape):
            return View(shape, contiguous_strides(shape), self.offset)
        if self.mask is not None:
            return self._reshape_ones(shape)
        strides = _nocopy_strides(self.shape, self.strides, shape)
        return None if strides is None else View(shape, strides, self.offset)

    def _reshape_ones(self, shape: tuple[int, ...]) -> View | None:
        """A masked view may only gain or lose axes of size 1 that its mask does not cut."""
        kept = [i for i, n in enumerate(self.shape) if n != 1]
        if [self.shape[i] for i in kept] != [n for n in shape if n != 1]:
            return None
        if any(self.mask[i] != (0, 1) for i, n in enumerate(self.shape) if n == 1):
            return None
        strides, mask, k = [], [], iter(kept)
        for n in shape:
            if n == 1:
                strides.append(0)
                mask.append((0, 1))
            else:
                i = next(k)
                strides.append(self.strides[i])
                mask.append(self.mask[i])
        return View(shape, tuple(strides), self.offset, tuple(mask), self.fill)

    def apply(self, op, args: tuple) -> View | None:
        """This view after movement op ``op`` (a :class:`~fusion.core.ops.MovementOp`) with
        the arguments it takes; None where the result is no view of the same source."""
        return getattr(self, op.value)(*args)


def _simplified(mask, shape):
    """None for a mask that excludes nothing."""
    if mask is None or all(lo == 0 and hi == n for (lo, hi), n in zip(mask, shape, strict=True)):
        return None
    return mask


def _nocopy_strides(old_shape, old_strides, new_shape) -> tuple[int, ...] | None:
    """Strides that read ``new_shape`` in the row-major order of a strided ``old_shape``,
    or None when some axes it merges are not laid out one after the other."""
    old = [(n, s) for n, s in zip(old_shape, old_strides, strict=True) if n != 1]
    new_axes = [i for i, n in enumerate(new_shape) if n != 1]
    new_dims = [new_shape[i] for i in new_axes]
    new_strides = [0] * len(new_dims)
    oi = ni = 0
    while oi < len(old) and ni < len(new_dims):
        oj, nj = oi + 1, ni + 1
        size_old, size_new = old[oi][0], new_dims[ni]
        while size_old != size_new:
            if size_new < size_old:
                size_new *= new_dims[nj]
                nj += 1
            else:
                size_old *= old[oj][0]
                oj += 1
        for k in range(oi, oj - 1):  # the merged old axes must be one run in memory
            if old[k][1] != old[k + 1][0] * old[k + 1][1]:
                return None
        new_strides[nj - 1] = old[oj - 1][1]
        for k in range(nj - 1, ni, -1):
            new_strides[k - 1] = new_strides[k] * new_dims[k]
        oi, ni = oj, nj
    strides = [0] * len(new_shape)
    for i, s in zip(new_axes, new_strides, strict=True):
        strides[i] = s
    return tuple(strides)
