"""Convolution and pooling, composed from movement primitives, reductions and the contraction.

Everything rests on :func:`windows`, which lays out every window a kernel visits as new axes,
``(..., *spatial)`` to ``(..., *out, *kernel)``, using only PAD, SHRINK, RESHAPE, EXPAND and
PERMUTE (the strided-window, or im2col, formulation):

* the tensor is tiled ``r = ceil(k (i + d) / i)`` times along each spatial axis and cut to
  ``k`` rows of ``i + d`` values; row ``j`` then starts at element ``j d``, the ``j``-th kernel
  tap of dilation ``d``;
* in each row, every ``s``-th value (a reshape to ``(o, s)`` and a shrink to ``(o, 1)``) is the
  tap's value in each of the ``o`` windows of stride ``s``.

A convolution is then one contraction of the windows, ``(N out, C k)``, with the weight,
``(C k, F)``, batched over groups; max and average pooling are a MAX or SUM over the kernel
axes. Gradients come from the primitives' own (the transposed convolution's gradient is a
convolution and vice versa, without anything written for it).

Memory, for a stride of 1: the tile is about ``prod(k)`` times the padded input, that is about
the size of the unfolded input (``N C prod(k) prod(out)`` values), and the reshapes that follow
copy it about twice more before the contraction: a convolution holds 3 to 3.5 times the
unfolded input while its graph is alive. The tile does not shrink with the stride, so a stride
of 2 holds about 9.5 times the (four times smaller) unfolded input. Figures from
``benchmarks/conv.py``. Pooling with a stride of at least the kernel and no dilation
(``max_pool2d(x, 2)``) skips the tile: it is a reshape of the input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .dtypes import bool_
from .tensor import Tensor, ones


def _tuple(value, n: int, name: str) -> tuple[int, ...]:
    """An int (the same for every spatial axis) or a sequence of ``n`` ints."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(int(v) for v in value)
        if len(values) != n:
            raise ValueError(f"{name} needs 1 or {n} values (one per spatial axis), got {value}")
        return values
    return (int(value),) * n


def _pad_or_cut(x: Tensor, widths: Sequence[tuple[int, int]], value=0) -> Tensor:
    """PAD the trailing axes by ``widths`` where positive, SHRINK them where negative."""
    lead = x.ndim - len(widths)
    cut = [None] * lead + [(max(-b, 0), n - max(-a, 0))
                           for (b, a), n in zip(widths, x.shape[lead:], strict=True)]
    x = x.shrink(cut)
    return x.pad([None] * lead + [(max(b, 0), max(a, 0)) for b, a in widths], value=value)


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                ceil_mode: bool = False) -> int:
    """Windows along one axis: ``floor((size + 2p - d (k - 1) - 1) / s) + 1`` (or its ceiling,
    where a last window may hang over the end, as long as it starts inside the input or its
    left padding)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    count = -(-span // stride) + 1
    if (count - 1) * stride >= size + padding:
        count -= 1
    return count


def windows(x: Tensor, kernel: Sequence[int], stride: Sequence[int],
            dilation: Sequence[int]) -> Tensor:
    """Every window of the trailing ``len(kernel)`` axes: ``(..., *spatial)`` to
    ``(..., *out, *kernel)`` with ``out = (i - d (k - 1) - 1) // s + 1`` per axis (no padding:
    pad first).

    >>> windows(fusion.arange(5), (2,), (2,), (1,)).tolist()
    [[0, 1], [2, 3]]
    """
    n = len(kernel)
    lead, spatial = x.shape[:-n], x.shape[-n:]
    out = [output_size(i, k, s, 0, d) for i, k, s, d in
           zip(spatial, kernel, stride, dilation, strict=True)]
    if any(o <= 0 for o in out):
        raise ValueError(f"a kernel of {tuple(kernel)} with dilation {tuple(dilation)} does not "
                         f"fit in an input of spatial shape {tuple(spatial)}")
    m = len(lead)
    if all(d == 1 and s >= k for k, s, d in zip(kernel, stride, dilation, strict=True)):
        # windows that do not overlap: cut to out * stride, split each axis into (out, stride)
        x = _pad_or_cut(x, [(0, o * s - i) for o, s, i in zip(out, stride, spatial, strict=True)])
        x = x.reshape(*lead, *[v for o, s in zip(out, stride, strict=True) for v in (o, s)])
        x = x.shrink([None] * m + [b for k in kernel for b in (None, (0, k))])
        return x.permute(*range(m), *range(m, m + 2 * n, 2), *range(m + 1, m + 2 * n, 2))
    # tile r times along each spatial axis, cut to k rows of i + d: row j starts at tap j
    repeats = [math.ceil(k * (i + d) / i) for k, i, d in zip(kernel, spatial, dilation,
                                                            strict=True)]
    x = x.reshape(*lead, *[v for i in spatial for v in (1, i)])
    x = x.expand(*lead, *[v for r, i in zip(repeats, spatial, strict=True) for v in (r, i)])
    x = x.reshape(*lead, *[r * i for r, i in zip(repeats, spatial, strict=True)])
    x = x.shrink([None] * m + [(0, k * (i + d)) for k, i, d in
                               zip(kernel, spatial, dilation, strict=True)])
    x = x.reshape(*lead, *[v for k, i, d in zip(kernel, spatial, dilation, strict=True)
                           for v in (k, i + d)])
    # in each row, every s-th value from 0: make the row o * s long, split it into (o, s)
    x = _pad_or_cut(x, [w for o, s, i, d in zip(out, stride, spatial, dilation, strict=True)
                        for w in ((0, 0), (0, o * s - i - d))])
    x = x.reshape(*lead, *[v for k, o, s in zip(kernel, out, stride, strict=True)
                           for v in (k, o, s)])
    x = x.shrink([None] * m + [b for _ in range(n) for b in (None, None, (0, 1))])
    x = x.reshape(*lead, *[v for k, o in zip(kernel, out, strict=True) for v in (k, o)])
    return x.permute(*range(m), *range(m + 1, m + 2 * n, 2), *range(m, m + 2 * n, 2))


def _batched(x: Tensor, n: int, name: str) -> tuple[Tensor, bool]:
    """(N, C, *spatial), adding a batch axis to an unbatched (C, *spatial) input."""
    if x.ndim == n + 1:
        return x.unsqueeze(0), True
    if x.ndim != n + 2:
        raise ValueError(f"{name} with a {n}-d kernel expects input of shape (N, C, "
                         f"{n} spatial axes) or (C, {n} spatial axes), got {x.shape}")
    return x, False


def _padding(padding, kernel, stride, dilation, name: str) -> list[tuple[int, int]]:
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' needs a stride of 1, got {stride}")
            totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            return [(t // 2, t - t // 2) for t in totals]
        raise ValueError(f"{name}: padding must be 'valid', 'same', an int or a tuple, "
                         f"not {padding!r}")
    pads = _tuple(padding, n, "padding")
    if any(p < 0 for p in pads):
        raise ValueError(f"{name}: padding must not be negative, got {padding}")
    return [(p, p) for p in pads]


def conv(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
         dilation=1, groups: int = 1) -> Tensor:
    """N-d convolution (cross-correlation, as in PyTorch), the dimension given by ``weight``
    of shape ``(F, C / groups, *kernel)``; ``x`` is ``(N, C, *spatial)`` or ``(C, *spatial)``.

    ``stride``, ``padding`` and ``dilation`` are an int or one per spatial axis; ``padding``
    may also be ``"valid"`` or ``"same"``.

    >>> conv(fusion.ones(1, 1, 3, 3), fusion.ones(1, 1, 2, 2)).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    weight = x._operand(weight)
    n = weight.ndim - 2
    if n < 1:
        raise ValueError(f"a convolution weight has shape (F, C / groups, *kernel), got "
                         f"{weight.shape}")
    x, unbatched = _batched(x, n, "conv")
    kernel = weight.shape[2:]
    stride, dilation = _tuple(stride, n, "stride"), _tuple(dilation, n, "dilation")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise ValueError(f"conv: stride and dilation must be positive, got {stride} and "
                         f"{dilation}")
    groups = int(groups)
    batch, channels = x.shape[:2]
    filters = weight.shape[0]
    if groups < 1 or channels % groups or filters % groups:
        raise ValueError(f"conv: groups={groups} must divide the input channels ({channels}) "
                         f"and the filters ({filters})")
    if weight.shape[1] * groups != channels:
        raise ValueError(f"conv: weight of shape {weight.shape} with groups={groups} expects "
                         f"{weight.shape[1] * groups} input channels, got {channels} "
                         f"(input of shape {x.shape})")
    x = x.pad([None, None, *_padding(padding, kernel, stride, dilation, "conv")])
    win = windows(x, kernel, stride, dilation)  # (N, C, *out, *kernel)
    out = win.shape[2:2 + n]
    per_group = channels // groups
    taps = per_group * math.prod(kernel)
    # (G, N * out, C/G * kernel) @ (G, C/G * kernel, F/G)
    win = win.reshape(batch, groups, per_group, *out, *kernel)
    win = win.permute(1, 0, *range(3, 3 + n), 2, *range(3 + n, 3 + 2 * n))
    win = win.reshape(groups, batch * math.prod(out), taps)
    w = weight.reshape(groups, filters // groups, taps).permute(0, 2, 1)
    y = win.matmul(w).reshape(groups, batch, *out, filters // groups)
    y = y.permute(1, 0, 2 + n, *range(2, 2 + n)).reshape(batch, filters, *out)
    if bias is not None:
        y = y + x._operand(bias).reshape(filters, *(1,) * n)
    return y.squeeze(0) if unbatched else y


def _dilate(x: Tensor, stride: Sequence[int]) -> Tensor:
    """``s - 1`` zeros between neighbours along each trailing axis."""
    n = len(stride)
    for axis, s in zip(range(x.ndim - n, x.ndim), stride, strict=True):
        size = x.shape[axis]
        if s == 1 or size == 0:
            continue
        x = x.unsqueeze(axis + 1).pad([None] * (axis + 1) + [(0, s - 1)] + [None] * (
            x.ndim - axis - 1))
        x = x.reshape(*x.shape[:axis], size * s, *x.shape[axis + 2:])
        x = x.shrink([None] * axis + [(0, (size - 1) * s + 1)] + [None] * (x.ndim - axis - 1))
    return x


def conv_transpose(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                   padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """The transposed convolution (the gradient of :func:`conv` with respect to its input),
    weight of shape ``(C, F / groups, *kernel)``: the input with ``stride - 1`` zeros between
    neighbours, padded by ``d (k - 1) - p`` (and ``output_padding`` at the end), convolved with
    the flipped kernel. Output size per axis: ``(i - 1) s - 2 p + d (k - 1) + output_padding + 1``.

    >>> conv_transpose(fusion.ones(1, 1, 2), fusion.ones(1, 1, 2), stride=2).tolist()
    [[[1.0, 1.0, 1.0, 1.0]]]
    """
    weight = x._operand(weight)
    n = weight.ndim - 2
    if n < 1:
        raise ValueError(f"a transposed convolution weight has shape (C, F / groups, "
                         f"*kernel), got {weight.shape}")
    x, unbatched = _batched(x, n, "conv_transpose")
    kernel = weight.shape[2:]
    stride, dilation = _tuple(stride, n, "stride"), _tuple(dilation, n, "dilation")
    padding = _tuple(padding, n, "padding")
    extra = _tuple(output_padding, n, "output_padding")
    groups = int(groups)
    channels = x.shape[1]
    if weight.shape[0] != channels:
        raise ValueError(f"conv_transpose: weight of shape {weight.shape} expects "
                         f"{weight.shape[0]} input channels, got {channels}")
    if groups < 1 or channels % groups:
        raise ValueError(f"conv_transpose: groups={groups} must divide the input channels "
                         f"({channels})")
    for e, s, d in zip(extra, stride, dilation, strict=True):
        if not 0 <= e < max(s, d):
            raise ValueError(f"conv_transpose: output_padding {extra} must be smaller than "
                             f"the stride {stride} or the dilation {dilation}")
    per_group, filters_per_group = channels // groups, weight.shape[1]
    # (C, F/G, *k) -> (G, C/G, F/G, *k) -> (F, C/G, *k), kernel flipped
    w = weight.reshape(groups, per_group, filters_per_group, *kernel)
    w = w.permute(0, 2, 1, *range(3, 3 + n)).reshape(groups * filters_per_group, per_group,
                                                     *kernel)
    w = w.flip(tuple(range(2, 2 + n)))
    x = _dilate(x, stride)
    widths = [(d * (k - 1) - p, d * (k - 1) - p + e) for k, p, e, d in
              zip(kernel, padding, extra, dilation, strict=True)]
    y = conv(_pad_or_cut(x, widths), w, bias, 1, 0, dilation, groups)
    return y.squeeze(0) if unbatched else y


def _pool_setup(x: Tensor, kernel_size, stride, padding, dilation, n: int, name: str):
    kernel = _tuple(kernel_size, n, "kernel_size")
    stride = kernel if stride is None or (isinstance(stride, Sequence) and not stride) else (
        _tuple(stride, n, "stride"))
    padding = _tuple(padding, n, "padding")
    dilation = _tuple(dilation, n, "dilation")
    if x.ndim not in (n + 1, n + 2):
        raise ValueError(f"{name} expects input of shape (N, C, {n} spatial axes) or (C, {n} "
                         f"spatial axes), got {x.shape}")
    if any(k < 1 for k in kernel) or any(s < 1 for s in stride) or any(
            d < 1 for d in dilation):
        raise ValueError(f"{name}: kernel_size, stride and dilation must be positive")
    if any(2 * p > k for p, k in zip(padding, kernel, strict=True)) or any(p < 0 for p in padding):
        raise ValueError(f"{name}: padding {padding} must lie between 0 and half the kernel "
                         f"size {kernel}")
    return kernel, stride, padding, dilation


def _pool_widths(spatial, kernel, stride, padding, dilation, ceil_mode):
    """(before, after) padding per axis, so that exactly the windows of the output fit: the
    padding before, and after it what the last window reaches past the input (more than the
    padding where a ceil-mode window hangs over the end; negative where the input's tail is
    in no window)."""
    widths = []
    for i, k, s, p, d in zip(spatial, kernel, stride, padding, dilation, strict=True):
        o = output_size(i, k, s, p, d, ceil_mode)
        if o <= 0:
            raise ValueError(f"a pooling window of {k} (dilation {d}) does not fit in an axis "
                             f"of {i} padded by {p}")
        widths.append((p, (o - 1) * s + d * (k - 1) + 1 - i - p))
    return widths


def max_pool(x: Tensor, kernel_size, stride=None, padding=0, dilation=1,
             ceil_mode: bool = False, n: int = 2) -> Tensor:
    """The maximum of each window over the last ``n`` axes (padding counts as -inf); where a
    window holds several maxima, the gradient is shared among them.

    >>> max_pool(fusion.Tensor([[[[1.0, 2.0], [4.0, 3.0]]]]), 2).tolist()
    [[[[4.0]]]]
    """
    kernel, stride, padding, dilation = _pool_setup(x, kernel_size, stride, padding, dilation,
                                                    n, "max_pool")
    if x.dtype is bool_:
        raise TypeError("max_pool of a bool tensor; cast it first")
    low = -math.inf if x.dtype.is_float else int(-(2 ** (8 * x.dtype.itemsize - 1)))
    widths = _pool_widths(x.shape[-n:], kernel, stride, padding, dilation, ceil_mode)
    win = windows(_pad_or_cut(x, widths, value=low), kernel, stride, dilation)
    return win.max(tuple(range(win.ndim - n, win.ndim)))


def avg_pool(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
             count_include_pad: bool = True, divisor_override: int | None = None,
             n: int = 2) -> Tensor:
    """The mean of each window over the last ``n`` axes, as PyTorch's ``avg_pool``: padding
    counts as zeros in the window (``count_include_pad``, else it is left out of the count);
    a ceil-mode window hanging over the end counts only what it covers of the padded input.

    >>> avg_pool(fusion.Tensor([[[[1.0, 2.0], [4.0, 3.0]]]]), 2).tolist()
    [[[[2.5]]]]
    """
    kernel, stride, padding, dilation = _pool_setup(x, kernel_size, stride, padding, 1, n,
                                                    "avg_pool")
    x = x._float()
    spatial = x.shape[-n:]
    widths = _pool_widths(spatial, kernel, stride, padding, dilation, ceil_mode)
    axes = tuple(range(x.ndim, x.ndim + n))
    win = windows(_pad_or_cut(x, widths), kernel, stride, dilation)
    total = win.sum(axes)
    if divisor_override is not None:
        if int(divisor_override) == 0:
            raise ValueError("avg_pool: divisor_override must not be 0")
        return total / int(divisor_override)
    # the count of each window: windows of ones over the input (and over the padding, if it
    # counts), zeros over what a ceil-mode window hangs over the end
    inside = ones(*spatial, dtype=x.dtype, backend=x.data.backend)
    if count_include_pad:
        inside = inside.pad([(p, p) for p in padding], value=1)
        widths = [(0, a - p) for (_, a), p in zip(widths, padding, strict=True)]
    count = windows(_pad_or_cut(inside, widths), kernel, stride, dilation).sum(
        tuple(range(n, 2 * n)))
    return total / count
