"""Convolution, transposed convolution and pooling against direct numpy loops, with gradients:
odd sizes, strides, paddings, dilations, groups, ceil mode."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fusion

from ..oracle import check_op


def _pair(fusion_fn, numpy_fn):
    return lambda *xs: fusion_fn(*xs) if isinstance(xs[0], fusion.Tensor) else numpy_fn(*xs)


def _per_axis(value, n):
    return (value,) * n if isinstance(value, int) else tuple(value)


# --- references: the textbook loops, written for clarity ----------------------------------------
def conv_reference(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, f, o] = sum over c, tap of x_padded[n, g c, o s + tap d] w[f, c, tap]."""
    n = w.ndim - 2
    stride, dilation = _per_axis(stride, n), _per_axis(dilation, n)
    if padding == "same":  # as much as the dilated kernel reaches; the odd one at the end
        totals = [dilation[i] * (w.shape[2 + i] - 1) for i in range(n)]
        widths = [(t // 2, t - t // 2) for t in totals]
    else:
        widths = [(p, p) for p in _per_axis(padding, n)]
    x = np.pad(x, [(0, 0), (0, 0)] + widths)
    batch, channels = x.shape[:2]
    filters, kernel = w.shape[0], w.shape[2:]
    out = [(x.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
           for i in range(n)]
    y = np.zeros((batch, filters, *out))
    per_group, filters_per_group = channels // groups, filters // groups
    for f in range(filters):
        g = f // filters_per_group
        for tap in np.ndindex(*kernel):
            where = tuple(slice(tap[i] * dilation[i],
                                tap[i] * dilation[i] + (out[i] - 1) * stride[i] + 1, stride[i])
                          for i in range(n))
            patch = x[(slice(None), slice(g * per_group, (g + 1) * per_group)) + where]
            y[:, f] += np.tensordot(w[(f, slice(None)) + tap], patch, axes=([0], [1]))
    return (y if b is None else y + b.reshape(filters, *(1,) * n)).astype(x.dtype)


def conv_transpose_reference(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                             dilation=1):
    """Each input value scattered through the kernel: y[n, f, i s + tap d - p] += x w."""
    n = w.ndim - 2
    stride, padding, extra, dilation = (_per_axis(v, n) for v in
                                        (stride, padding, output_padding, dilation))
    channels, spatial, kernel = x.shape[1], x.shape[2:], w.shape[2:]
    filters_per_group, per_group = w.shape[1], channels // groups
    full = [(spatial[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1 + extra[i]
            for i in range(n)]
    y = np.zeros((x.shape[0], filters_per_group * groups, *full))
    for c in range(channels):
        g = c // per_group
        for f in range(filters_per_group):
            for tap in np.ndindex(*kernel):
                for pos in np.ndindex(*spatial):
                    o = tuple(pos[i] * stride[i] + tap[i] * dilation[i] for i in range(n))
                    y[(slice(None), g * filters_per_group + f) + o] += (
                        x[(slice(None), c) + pos] * w[(c, f) + tap])
    out = [full[i] - 2 * padding[i] for i in range(n)]
    y = y[(slice(None), slice(None)) + tuple(slice(padding[i], padding[i] + out[i])
                                             for i in range(n))]
    return (y if b is None else y + b.reshape(-1, *(1,) * n)).astype(x.dtype)


def _pool_size(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    count = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (count - 1) * s >= size + p:
        count -= 1
    return count


def pool_reference(x, kind, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   count_include_pad=True, divisor_override=None):
    """PyTorch's max and average pooling over the last two axes, window by window."""
    kernel = _per_axis(kernel_size, 2)
    stride = kernel if stride is None else _per_axis(stride, 2)
    padding, dilation = _per_axis(padding, 2), _per_axis(dilation, 2)
    height, width = x.shape[-2:]
    out = [_pool_size(n, kernel[i], stride[i], padding[i], dilation[i], ceil_mode)
           for i, n in enumerate((height, width))]
    y = np.zeros(x.shape[:-2] + tuple(out))
    for oh, ow in np.ndindex(*out):
        rows = [oh * stride[0] - padding[0] + t * dilation[0] for t in range(kernel[0])]
        cols = [ow * stride[1] - padding[1] + t * dilation[1] for t in range(kernel[1])]
        inside_rows = [r for r in rows if 0 <= r < height]
        inside_cols = [c for c in cols if 0 <= c < width]
        patch = x[..., inside_rows, :][..., inside_cols]
        if kind == "max":
            y[..., oh, ow] = patch.max(axis=(-2, -1))
            continue
        total = patch.sum(axis=(-2, -1))
        if divisor_override:
            y[..., oh, ow] = total / divisor_override
        elif count_include_pad:  # the window clipped to the padded input
            covered = [len([r for r in rows if r < height + padding[0]]),
                       len([c for c in cols if c < width + padding[1]])]
            y[..., oh, ow] = total / (covered[0] * covered[1])
        else:
            y[..., oh, ow] = total / (len(inside_rows) * len(inside_cols))
    return y.astype(x.dtype)


CONV = [  # (input shape, weight shape, arguments)
    ((2, 3, 7, 6), (4, 3, 3, 2), {}),
    ((1, 2, 5, 5), (3, 2, 3, 3), {"padding": 1}),
    ((2, 4, 9, 8), (6, 2, 3, 3), {"stride": (2, 3), "padding": (1, 2), "dilation": (2, 1),
                                  "groups": 2}),
    ((1, 3, 6, 7), (3, 1, 2, 3), {"groups": 3, "stride": 2}),
    ((1, 2, 6, 5), (2, 2, 3, 3), {"padding": "same", "dilation": 2}),
    ((1, 2, 6, 5), (2, 2, 2, 3), {"padding": "same"}),
    ((1, 2, 5, 4), (2, 2, 5, 4), {}),  # the kernel covers the input
    ((2, 2, 11), (3, 2, 4), {"stride": 3, "padding": 2, "dilation": 2}),  # 1-d
    ((1, 1, 4, 5, 3), (2, 1, 2, 3, 2), {"padding": (1, 0, 1)}),  # 3-d
    ((2, 5, 6), (3, 2, 2, 3), {}),  # unbatched 2-d
]

CONV_TRANSPOSE = [
    ((2, 3, 4, 5), (3, 2, 3, 2), {}),
    ((1, 4, 3, 4), (4, 3, 3, 3), {"stride": (2, 3), "padding": (1, 2), "output_padding": (1, 0),
                                  "dilation": (2, 1), "groups": 2}),
    ((1, 2, 3, 3), (2, 2, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((1, 2, 5), (2, 3, 4), {"stride": 3, "padding": 2, "dilation": 2, "output_padding": 2}),
    ((1, 2, 3, 3), (2, 1, 2, 2), {"padding": 1}),  # padding past the dilated kernel
]

POOL = [  # (input shape, arguments)
    ((2, 3, 6, 6), {"kernel_size": 2}),
    ((1, 2, 7, 5), {"kernel_size": 3, "stride": 2}),
    ((1, 2, 7, 6), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)}),
    ((1, 1, 7, 7), {"kernel_size": 3, "stride": 2, "ceil_mode": True}),
    ((1, 1, 6, 5), {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}),
    ((2, 5, 5), {"kernel_size": 2, "stride": 3}),  # unbatched, windows apart
]


class TestConvolution:
    @pytest.mark.parametrize("shapes, args", [(c[:2], c[2]) for c in CONV],
                             ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CONV])
    def test_conv(self, backend, shapes, args):
        bias = (shapes[1][0],)
        check_op(backend, [*shapes, bias], _pair(
            lambda x, w, b: x.conv2d(w, b, **args),
            lambda x, w, b: _unbatched(conv_reference, x, w, b, **args)))

    def test_conv_without_bias_in_float64(self, backend):
        check_op(backend, [(1, 2, 5, 6), (3, 2, 2, 3)], _pair(
            lambda x, w: x.conv2d(w, stride=(1, 2)),
            lambda x, w: conv_reference(x, w, stride=(1, 2))), dtype="float64")

    @pytest.mark.parametrize("shapes, args", [(c[:2], c[2]) for c in CONV_TRANSPOSE],
                             ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CONV_TRANSPOSE])
    def test_conv_transpose(self, backend, shapes, args):
        bias = (shapes[1][1] * args.get("groups", 1),)
        check_op(backend, [*shapes, bias], _pair(
            lambda x, w, b: x.conv_transpose2d(w, b, **args),
            lambda x, w, b: conv_transpose_reference(x, w, b, **args)))

    @pytest.mark.parametrize("shape, args", POOL, ids=[f"{p[0]}-{p[1]}" for p in POOL])
    def test_max_pool(self, backend, shape, args):
        check_op(backend, [shape], _pair(lambda x: x.max_pool2d(**args),
                                         lambda x: pool_reference(x, "max", **args)))

    def test_max_pool_dilation(self, backend):
        args = {"kernel_size": 2, "stride": 1, "dilation": 2, "padding": 1}
        check_op(backend, [(1, 2, 5, 6)], _pair(lambda x: x.max_pool2d(**args),
                                                lambda x: pool_reference(x, "max", **args)))

    @pytest.mark.parametrize("count_include_pad", [True, False])
    @pytest.mark.parametrize("shape, args", POOL, ids=[f"{p[0]}-{p[1]}" for p in POOL])
    def test_avg_pool(self, backend, shape, args, count_include_pad):
        args = {**args, "count_include_pad": count_include_pad}
        check_op(backend, [shape], _pair(lambda x: x.avg_pool2d(**args),
                                         lambda x: pool_reference(x, "avg", **args)))

    def test_avg_pool_divisor_override(self, backend):
        args = {"kernel_size": 3, "padding": 1, "divisor_override": 2}
        check_op(backend, [(1, 1, 5, 4)], _pair(lambda x: x.avg_pool2d(**args),
                                                lambda x: pool_reference(x, "avg", **args)))

    def test_max_pool_of_integers(self, backend):
        check_op(backend, [(1, 1, 4, 5)], _pair(
            lambda x: x.max_pool2d(2, padding=1),
            lambda x: pool_reference(x, "max", 2, padding=1).astype(x.dtype)), dtype="int32")

    def test_bad_arguments(self, backend):
        x = fusion.zeros(1, 4, 5, 5, backend=backend)
        with pytest.raises(ValueError, match="expects 6 input channels, got 4"):
            x.conv2d(fusion.zeros(2, 3, 3, 3, backend=backend), groups=2)
        with pytest.raises(ValueError, match="groups=3 must divide"):
            x.conv2d(fusion.zeros(3, 1, 3, 3, backend=backend), groups=3)
        with pytest.raises(ValueError, match="does not fit"):
            x.conv2d(fusion.zeros(1, 4, 6, 1, backend=backend))
        with pytest.raises(ValueError, match="stride of 1"):
            x.conv2d(fusion.zeros(1, 4, 3, 3, backend=backend), stride=2, padding="same")
        with pytest.raises(ValueError, match=r"expects input of shape \(N, C"):
            fusion.zeros(4, backend=backend).conv2d(fusion.zeros(1, 4, 3, 3, backend=backend))
        with pytest.raises(ValueError, match="output_padding"):
            x.conv_transpose2d(fusion.zeros(4, 1, 3, 3, backend=backend), output_padding=1)
        with pytest.raises(ValueError, match="half the kernel"):
            x.max_pool2d(2, padding=2)


def _unbatched(fn, x, *args, **kwargs):
    """A reference on an unbatched input: add the batch axis and take it off again."""
    if x.ndim == args[0].ndim - 1:
        return fn(x[None], *args, **kwargs)[0]
    return fn(x, *args, **kwargs)
