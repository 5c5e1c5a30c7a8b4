"""Reductions (axis None, int, tuple, negative; keepdim) and softmax-like ops against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import fusion

from ..oracle import check_op

AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]
SINGLE_AXES = [0, 1, -1, -3]


def _logsumexp(x, axis=None, keepdims=False):
    peak = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis)


def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis):
    return x - _logsumexp(x, axis, keepdims=True)


def _reduction(method: str, ref, **kwargs):
    """A (fusion, numpy) pair of lambdas for ``x.method(axis, keepdim)``."""

    def fn(x, axis, keepdim):
        return getattr(x, method)(axis=axis, keepdim=keepdim, **kwargs)

    def reference(x, axis, keepdim):
        return ref(x, axis=axis, keepdims=keepdim)

    return fn, reference


REDUCTIONS = {
    "sum": _reduction("sum", np.sum),
    "max": _reduction("max", np.max),
    "min": _reduction("min", np.min),
    "mean": _reduction("mean", np.mean),
    "var": _reduction("var", lambda x, **k: np.var(x, ddof=1, **k)),
    "var_correction0": _reduction("var", np.var, correction=0),
    "std": _reduction("std", lambda x, **k: np.std(x, ddof=1, **k)),
    "std_correction0": _reduction("std", np.std, correction=0),
    "prod": _reduction("prod", np.prod),
    "logsumexp": _reduction("logsumexp", _logsumexp),
}


class TestReductions:
    """sum, max, min, mean, var, std, prod, logsumexp, argmax, argmin, softmax, log_softmax."""

    @pytest.mark.parametrize("keepdim", [False, True])
    @pytest.mark.parametrize("axis", AXES, ids=str)
    @pytest.mark.parametrize("name", list(REDUCTIONS))
    def test_reduction(self, backend, name, axis, keepdim):
        fn, ref = REDUCTIONS[name]
        # prod: values near 1 keep the product and its finite differences well scaled
        low, high = (0.5, 1.5) if name == "prod" else (-2.0, 2.0)
        check_op(backend, [(2, 3, 4)], lambda x: fn(x, axis, keepdim),
                 lambda x: ref(x, axis, keepdim), low=low, high=high)

    @pytest.mark.parametrize("name", list(REDUCTIONS))
    def test_reduction_float64(self, backend, name):
        fn, ref = REDUCTIONS[name]
        low, high = (0.5, 1.5) if name == "prod" else (-2.0, 2.0)
        check_op(backend, [(3, 5)], lambda x: fn(x, -1, False), lambda x: ref(x, -1, False),
                 dtype="float64", low=low, high=high)

    @pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
    @pytest.mark.parametrize("name, expect", [("sum", "int64"), ("max", None), ("min", None),
                                              ("prod", "int64"), ("mean", "float32")])
    def test_integer_reductions(self, backend, dtype, name, expect):
        fn, ref = REDUCTIONS[name]
        # torch's rules: integer sums and products are int64, means are float
        check_op(backend, [(3, 4)], lambda x: fn(x, 1, False), lambda x: ref(x, 1, False),
                 dtype=dtype, low=-3, high=3, expect_dtype=expect or dtype)

    def test_prod_with_zeros_has_exact_gradient(self, backend):
        x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.5, 2.0, -1.0]], np.float32)
        check_op(backend, [x], lambda t: t.prod(axis=1), lambda a: np.prod(a, axis=1))

    @pytest.mark.parametrize("keepdim", [False, True])
    @pytest.mark.parametrize("axis", [None, 0, 1, -1])
    @pytest.mark.parametrize("method", ["argmax", "argmin"])
    def test_arg_extremes(self, backend, method, axis, keepdim):
        ref = getattr(np, method)
        check_op(backend, [(3, 4, 5)], lambda x: getattr(x, method)(axis=axis, keepdim=keepdim),
                 lambda x: ref(x, axis=axis, keepdims=keepdim), grad=False)

    @pytest.mark.parametrize("method", ["argmax", "argmin"])
    @pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
    def test_arg_extremes_take_the_first_of_ties(self, backend, method, dtype):
        x = np.array([[1, 3, 3, 0], [2, 2, 0, 0], [1, 1, 1, 1]]).astype(dtype)
        ref = getattr(np, method)
        for axis in (None, 0, 1):
            check_op(backend, [x], lambda t, axis=axis: getattr(t, method)(axis=axis),
                     lambda a, axis=axis: ref(a, axis=axis))

    @pytest.mark.parametrize("axis", SINGLE_AXES)
    @pytest.mark.parametrize("name, fn, ref", [
        ("softmax", lambda x, a: x.softmax(a), _softmax),
        ("log_softmax", lambda x, a: x.log_softmax(a), _log_softmax),
        ("fn.softmax", lambda x, a: fusion.nn.functional.softmax(x, a), _softmax),
        ("fn.log_softmax", lambda x, a: fusion.nn.functional.log_softmax(x, a), _log_softmax),
    ])
    def test_softmax(self, backend, name, fn, ref, axis):
        check_op(backend, [(2, 3, 4)], lambda x: fn(x, axis), lambda x: ref(x, axis))

    @pytest.mark.parametrize("dtype", ["float64"])
    def test_softmax_float64(self, backend, dtype):
        check_op(backend, [(4, 6)], lambda x: x.softmax(-1), lambda x: _softmax(x, -1),
                 dtype=dtype, low=-10, high=10)

    def test_softmax_of_integers_is_float32(self, backend):
        x = np.array([[1, 2, 3], [0, 0, 9]], np.int64)
        check_op(backend, [x], lambda t: t.softmax(-1),
                 lambda a: _softmax(a.astype(np.float32), -1), expect_dtype="float32")

    @pytest.mark.parametrize("shape, axis", [((5,), 0), ((1, 4), 0), ((3, 1), -1), ((), None)])
    def test_size_one_and_scalar(self, backend, shape, axis):
        for name in ("sum", "max", "min", "mean", "prod", "logsumexp"):
            fn, ref = REDUCTIONS[name]
            check_op(backend, [shape], lambda x, fn=fn: fn(x, axis, False),
                     lambda x, ref=ref: ref(x, axis, False), low=0.5, high=1.5)
