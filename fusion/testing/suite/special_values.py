"""NaN, infinities and the integers at the ends of their range, against numpy.

Comparisons, min and max, argmax and argmin and clip are compositions of a few primitives,
and each composition holds only if the backend keeps the primitives' rules at the edges: a
comparison with NaN is False, maximum and the max reduction propagate NaN, integer
arithmetic wraps as two's complement. These tests check the primitives there, then the
compositions the user calls.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest

from ..oracle import check_op
from .primitives import call, same

FLOATS = ["float32", "float64"]
INTS = ["int32", "int64"]
NAN, INF = np.nan, np.inf
#: Every pair of these is compared: NaN against everything, both infinities, both zeros.
SPECIALS = [NAN, INF, -INF, 0.0, -0.0, 1.0, -2.5]

COMPARISONS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
               "gt": operator.gt, "ge": operator.ge}


def _pairs(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Every (x, y) pair of :data:`SPECIALS`, as two arrays of ``dtype``."""
    n = len(SPECIALS)
    x = np.repeat(np.array(SPECIALS), n).astype(dtype)
    y = np.tile(np.array(SPECIALS), n).astype(dtype)
    return x, y


def _extremes(dtype: str) -> np.ndarray:
    """A (2, 4) array holding the smallest and the largest value of integer ``dtype``."""
    info = np.iinfo(dtype)
    return np.array([[5, info.min, info.max, -1], [info.max, 0, info.min, info.min]], dtype)


def _minimum(a, b):
    return np.minimum(a, b) if isinstance(a, np.ndarray) else a.minimum(b)


def _maximum(a, b):
    return np.maximum(a, b) if isinstance(a, np.ndarray) else a.maximum(b)


# name, expression written once for numpy arrays and Tensors alike (their methods agree)
EXTREME_OPS = [
    ("min", lambda x: x.min()), ("min_axis", lambda x: x.min(1)),
    ("min_axis0", lambda x: x.min(0)), ("max", lambda x: x.max()),
    ("max_axis", lambda x: x.max(1)), ("argmin", lambda x: x.argmin(1)),
    ("argmax", lambda x: x.argmax(1)), ("argmin_flat", lambda x: x.argmin()),
    ("minimum_scalar", lambda x: _minimum(x, 0)), ("maximum_scalar", lambda x: _maximum(x, -1)),
    ("minimum_flipped", lambda x: _minimum(x, x[::-1])),
    ("maximum_flipped", lambda x: _maximum(x, x[::-1])),
    ("clip_low", lambda x: x.clip(0, None)), ("clip_high", lambda x: x.clip(None, 0)),
    ("clip_both", lambda x: x.clip(-3, 3)),
    ("lt", lambda x: x < x[::-1]), ("le", lambda x: x <= x[::-1]),
    ("ge", lambda x: x >= x[::-1]), ("ne", lambda x: x != x[::-1]),
]

NAN_OPS = [
    ("max", lambda x: x.max(1)), ("min", lambda x: x.min(1)), ("max_all", lambda x: x.max()),
    ("min_all", lambda x: x.min()), ("maximum", lambda x: _maximum(x, x[::-1])),
    ("minimum", lambda x: _minimum(x, x[::-1])), ("clip", lambda x: x.clip(-1.0, 1.0)),
    ("argmax", lambda x: x.argmax(1)), ("argmin", lambda x: x.argmin(1)),
    ("argmax_axis0", lambda x: x.argmax(0)), ("argmin_axis0", lambda x: x.argmin(0)),
    ("argmax_flat", lambda x: x.argmax()), ("argmin_flat", lambda x: x.argmin()),
]


class TestSpecialValues:
    """NaN, inf and integer extremes: the primitives, then the compositions built on them."""

    # --- the primitives at the edges ---------------------------------------------------
    @pytest.mark.parametrize("dtype", FLOATS)
    def test_primitive_comparisons_of_every_special_pair(self, backend, dtype):
        x, y = _pairs(dtype)
        same(call(backend, "cmpeq", x, y), x == y, "bool")
        same(call(backend, "cmplt", x, y), x < y, "bool")

    @pytest.mark.parametrize("dtype", FLOATS)
    def test_primitive_maxima_of_every_special_pair(self, backend, dtype):
        x, y = _pairs(dtype)
        got = call(backend, "maximum", x, y)
        want = np.maximum(x, y)
        # which of two equal zeros comes back is not specified; their value is
        np.testing.assert_array_equal(got, want)
        rows = np.stack([x, y], axis=1)
        np.testing.assert_array_equal(call(backend, "reduce_max", rows, args=((1,),)),
                                      np.max(rows, axis=1, keepdims=True))

    @pytest.mark.parametrize("dtype", INTS)
    def test_primitives_at_integer_extremes(self, backend, dtype):
        x = _extremes(dtype)
        y = x[::-1].copy()
        same(call(backend, "neg", x), -x, dtype)  # the most negative integer wraps to itself
        same(call(backend, "sub", np.full_like(x, -1), x), -1 - x, dtype)  # never overflows
        same(call(backend, "maximum", x, y), np.maximum(x, y), dtype)
        same(call(backend, "cmplt", x, y), x < y, "bool")
        same(call(backend, "cmpeq", x, y), x == y, "bool")
        for axes in ((0,), (1,), (0, 1)):
            same(call(backend, "reduce_max", x, args=(axes,)),
                 np.max(x, axis=axes, keepdims=True), dtype)

    # --- comparisons ---------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("name", list(COMPARISONS))
    def test_comparisons_with_nan_and_infinities(self, backend, dtype, name):
        op = COMPARISONS[name]
        x, y = _pairs(dtype)
        check_op(backend, [x, y], op, dtype=dtype)

    @pytest.mark.parametrize("name", list(COMPARISONS))
    @pytest.mark.parametrize("scalar", [NAN, INF, -INF, 1.0], ids=str)
    def test_comparisons_with_a_special_python_float(self, backend, name, scalar):
        op = COMPARISONS[name]
        x = np.array(SPECIALS, np.float32)
        check_op(backend, [x], lambda t: op(t, scalar))
        check_op(backend, [x], lambda t: op(scalar, t))

    def test_isnan_and_isinf(self, backend):
        x = np.array(SPECIALS, np.float32)
        check_op(backend, [x], lambda t: t.isnan() if not isinstance(t, np.ndarray)
                 else np.isnan(t))
        check_op(backend, [x], lambda t: t.isinf() if not isinstance(t, np.ndarray)
                 else np.isinf(t))

    # --- extremes and their positions with NaN --------------------------------------------
    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("name, fn", NAN_OPS, ids=[n for n, _ in NAN_OPS])
    def test_extremes_with_nan(self, backend, dtype, name, fn):
        x = np.array([[1.0, NAN, 3.0, NAN], [INF, 2.0, -INF, 0.0], [NAN, -INF, INF, NAN],
                      [-1.0, -1.0, 4.0, 4.0]], dtype)
        out = check_op(backend, [x], fn, grad=False, dtype=dtype)
        if name.startswith("arg"):
            assert ((out.numpy() >= 0) & (out.numpy() < x.size)).all(), "index out of range"

    # --- integer extremes ------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", INTS)
    @pytest.mark.parametrize("name, fn", EXTREME_OPS, ids=[n for n, _ in EXTREME_OPS])
    def test_integer_extremes(self, backend, dtype, name, fn):
        check_op(backend, [_extremes(dtype)], fn, dtype=dtype)
