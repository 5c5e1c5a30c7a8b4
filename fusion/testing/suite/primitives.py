"""Every row of the primitive table, called on the backend directly, for each dtype it takes.

These tests speak the backend contract (:class:`fusion.Backend`), not the Tensor API: what a
third-party backend must get right before anything above it can work. Expected values come
from numpy or from Python's own arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion.core.dtypes import to_dtype
from fusion.core.ops import REQUIRED_METHODS

from ..fixtures import requires, skip_unless_supported
from ..oracle import assert_close

ALL = ["bool", "int32", "int64", "float32", "float64"]
INTS = ["int32", "int64"]
FLOATS = ["float32", "float64"]
NUMBERS = INTS + FLOATS

#: The primitives these tests call; test_every_primitive_is_covered keeps it complete.
COVERED = {
    "from_numpy", "to_numpy", "full", "neg", "exp", "log", "sqrt", "recip", "sin", "cast",
    "add", "sub", "mul", "div", "pow", "maximum", "cmpeq", "cmplt", "where", "reduce_sum",
    "reduce_max", "reshape", "expand", "permute", "pad", "shrink", "flip",
}


def values(dtype: str, shape=(2, 3, 4), seed: int = 0, low: float = -3.0,
           high: float = 3.0) -> np.ndarray:
    """Random test data of ``dtype``: floats in [low, high), integers in [low, high]."""
    rng = np.random.default_rng(seed)
    npd = np.dtype(dtype)
    if npd.kind == "f":
        return rng.uniform(low, high, shape).astype(npd)
    if npd.kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(int(low), int(high) + 1, shape).astype(npd)


def call(backend: str, method: str, *arrays: np.ndarray, args=(), dtype: str | None = None):
    """``backend.method(*arrays, *args)`` as a numpy array; checks the inputs were not written
    and, when ``dtype`` is given, the dtype of the result."""
    skip_unless_supported(backend, *[a.dtype.name for a in arrays], *([dtype] if dtype else []))
    impl = fusion.get_backend(backend)
    copies = [a.copy() for a in arrays]
    data = [impl.from_numpy(a) for a in arrays]
    out = np.asarray(impl.to_numpy(getattr(impl, method)(*data, *args)))
    for before, d in zip(copies, data, strict=True):
        np.testing.assert_array_equal(
            np.asarray(impl.to_numpy(d)), before, err_msg=f"{method} modified its input")
    if dtype is not None:
        assert out.dtype == np.dtype(dtype), f"{method} gave {out.dtype}, expected {dtype}"
    return out


def same(got: np.ndarray, expected, dtype: str) -> None:
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, expected {dtype}"
    # transcendental functions may differ from numpy's by an ulp or two
    tolerance = {"float32": (2e-6, 1e-7), "float64": (1e-13, 1e-15)}.get(dtype, (None, None))
    assert_close(got, expected, dtype, *tolerance)


class TestPrimitives:
    """The backend contract, one primitive at a time."""

    def test_every_primitive_is_covered(self):
        assert COVERED == set(REQUIRED_METHODS)

    # --- creation and transfer ---------------------------------------------------------
    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("layout", ["contiguous", "transposed", "flipped", "strided",
                                        "scalar", "empty"])
    def test_from_numpy_to_numpy(self, backend, dtype, layout):
        skip_unless_supported(backend, dtype)
        base = values(dtype, (4, 6))
        array = {"contiguous": base, "transposed": base.T, "flipped": base[::-1, ::-1],
                 "strided": base[1::2, ::3], "scalar": base[0, 0].reshape(()),
                 "empty": base[:0]}[layout]
        impl = fusion.get_backend(backend)
        out = np.asarray(impl.to_numpy(impl.from_numpy(array)))
        same(out, array, dtype)

    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 0)])
    def test_full(self, backend, dtype, shape):
        skip_unless_supported(backend, dtype)
        value = {"bool": True, "int32": -7, "int64": 2**40, "float32": -2.5,
                 "float64": 0.1}[dtype]
        impl = fusion.get_backend(backend)
        out = np.asarray(impl.to_numpy(impl.full(shape, value, to_dtype(dtype))))
        same(out, np.full(shape, value, dtype=dtype), dtype)

    # --- unary ---------------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", NUMBERS)
    def test_neg(self, backend, dtype):
        x = values(dtype)
        same(call(backend, "neg", x), -x, dtype)

    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("method, reference, low", [
        ("exp", np.exp, -5.0), ("log", np.log, 0.01), ("sqrt", np.sqrt, 0.0),
        ("recip", np.reciprocal, 0.1), ("sin", np.sin, -10.0),
    ])
    def test_float_unary(self, backend, dtype, method, reference, low):
        x = values(dtype, low=low, high=abs(low) + 3)
        same(call(backend, method, x), reference(x), dtype)

    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("method, given, expected", [
        ("exp", [1000.0, -1000.0, np.inf, -np.inf, np.nan], [np.inf, 0.0, np.inf, 0.0, np.nan]),
        ("log", [0.0, -1.0, np.inf, 1.0, np.nan], [-np.inf, np.nan, np.inf, 0.0, np.nan]),
        ("sqrt", [0.0, -1.0, np.inf, 4.0, np.nan], [0.0, np.nan, np.inf, 2.0, np.nan]),
        ("recip", [0.0, -0.0, np.inf, 4.0, np.nan], [np.inf, -np.inf, 0.0, 0.25, np.nan]),
        ("sin", [0.0, np.inf, np.nan, np.pi / 2, -np.pi / 2], [0.0, np.nan, np.nan, 1.0, -1.0]),
    ])
    def test_float_unary_special_values(self, backend, dtype, method, given, expected):
        with np.errstate(all="ignore"):
            out = call(backend, method, np.array(given, dtype=dtype))
        same(out, np.array(expected, dtype=dtype), dtype)

    @pytest.mark.parametrize("source", ALL)
    @pytest.mark.parametrize("target", ALL)
    def test_cast(self, backend, source, target):
        # in range for every target, so numpy's astype is the specification
        given = {"bool": [True, False, True, False],
                 "int32": [-3, 0, 1, 100], "int64": [-3, 0, 2**33, 7],
                 "float32": [-2.75, -0.0, 0.5, 3.9], "float64": [-2.75, 0.0, 1e-300, 100.5]}
        if target == "int32" and source == "int64":
            given["int64"] = [-3, 0, 2**31 - 1, 7]
        x = np.array(given[source], dtype=source)
        out = call(backend, "cast", x, args=(to_dtype(target),), dtype=target)
        same(out, x.astype(target), target)

    # --- binary --------------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", NUMBERS)
    @pytest.mark.parametrize("method, reference", [
        ("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
    ])
    def test_arithmetic(self, backend, dtype, method, reference):
        x, y = values(dtype, seed=1), values(dtype, seed=2)
        same(call(backend, method, x, y), reference(x, y), dtype)

    @pytest.mark.parametrize("dtype, big", [("int32", 2**31 - 1), ("int64", 2**63 - 1)])
    def test_integer_overflow_wraps(self, backend, dtype, big):
        x = np.array([big, -big - 1], dtype=dtype)
        one = np.array([1, 1], dtype=dtype)
        same(call(backend, "add", x, one), [-big - 1, -big], dtype)
        same(call(backend, "sub", x, one), [big - 1, big], dtype)

    @pytest.mark.parametrize("dtype", FLOATS)
    def test_div_float(self, backend, dtype):
        x = np.array([1.0, -3.0, 0.0, 7.5, -1.0, 2.0], dtype=dtype)
        y = np.array([4.0, 2.0, 0.0, 0.0, 0.0, -0.5], dtype=dtype)
        expected = np.array([0.25, -1.5, np.nan, np.inf, -np.inf, -4.0], dtype=dtype)
        same(call(backend, "div", x, y), expected, dtype)

    @pytest.mark.parametrize("dtype", INTS)
    def test_div_integer_floors(self, backend, dtype):
        pairs = [(7, 2), (-7, 2), (7, -2), (-7, -2), (6, 3), (0, 5), (5, 0), (-5, 0), (0, 0)]
        x = np.array([a for a, _ in pairs], dtype=dtype)
        y = np.array([b for _, b in pairs], dtype=dtype)
        expected = [a // b if b else 0 for a, b in pairs]  # Python's floor division; x // 0 = 0
        same(call(backend, "div", x, y), expected, dtype)

    @pytest.mark.parametrize("dtype", FLOATS)
    def test_pow_float(self, backend, dtype):
        x = values(dtype, low=0.1, high=3.0, seed=1)
        y = values(dtype, low=-2.0, high=2.0, seed=2)
        same(call(backend, "pow", x, y), np.power(x, y), dtype)
        special = np.array([0.0, -2.0, -8.0, 4.0], dtype=dtype)
        exponent = np.array([0.0, 2.0, 1 / 3, 0.5], dtype=dtype)
        with np.errstate(all="ignore"):
            expected = np.power(special, exponent)  # 0**0 = 1, (-2)**2 = 4, (-8)**(1/3) = nan
        same(call(backend, "pow", special, exponent), expected, dtype)

    @pytest.mark.parametrize("dtype", INTS)
    def test_pow_integer(self, backend, dtype):
        pairs = [(2, 0), (2, 10), (-3, 3), (0, 0), (0, 5), (7, 1), (-1, 4)]
        x = np.array([a for a, _ in pairs], dtype=dtype)
        y = np.array([b for _, b in pairs], dtype=dtype)
        same(call(backend, "pow", x, y), [a**b for a, b in pairs], dtype)

    @pytest.mark.parametrize("dtype", ALL)
    def test_maximum(self, backend, dtype):
        x, y = values(dtype, seed=1), values(dtype, seed=2)
        same(call(backend, "maximum", x, y), np.maximum(x, y), dtype)

    @pytest.mark.parametrize("dtype", FLOATS)
    def test_maximum_propagates_nan(self, backend, dtype):
        x = np.array([np.nan, 1.0, np.nan, -np.inf], dtype=dtype)
        y = np.array([1.0, np.nan, np.nan, -1.0], dtype=dtype)
        same(call(backend, "maximum", x, y), [np.nan, np.nan, np.nan, -1.0], dtype)

    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("method, reference", [("cmpeq", np.equal), ("cmplt", np.less)])
    def test_compare(self, backend, dtype, method, reference):
        # few distinct values, so that equal pairs occur
        x, y = values(dtype, seed=1, low=-1, high=1), values(dtype, seed=2, low=-1, high=1)
        if dtype in FLOATS:
            x, y = np.round(x), np.round(y)
        same(call(backend, method, x, y, dtype="bool"), reference(x, y), "bool")

    @pytest.mark.parametrize("dtype", FLOATS)
    def test_compare_nan_is_false(self, backend, dtype):
        x = np.array([np.nan, 1.0, np.nan], dtype=dtype)
        y = np.array([1.0, np.nan, np.nan], dtype=dtype)
        same(call(backend, "cmpeq", x, y), [False] * 3, "bool")
        same(call(backend, "cmplt", x, y), [False] * 3, "bool")

    # --- ternary -------------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", ALL)
    def test_where(self, backend, dtype):
        cond = values("bool", seed=3)
        x, y = values(dtype, seed=1), values(dtype, seed=2)
        same(call(backend, "where", cond, x, y), np.where(cond, x, y), dtype)

    # --- reduce --------------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", NUMBERS)
    @pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 2), (1, 2), (0, 1, 2)])
    def test_reduce_sum(self, backend, dtype, axes):
        x = values(dtype)
        out = call(backend, "reduce_sum", x, args=(axes,))
        same(out, np.sum(x, axis=axes, keepdims=True, dtype=dtype), dtype)

    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 2), (0, 1, 2)])
    def test_reduce_max(self, backend, dtype, axes):
        x = values(dtype)
        same(call(backend, "reduce_max", x, args=(axes,)), np.max(x, axis=axes, keepdims=True),
             dtype)

    @pytest.mark.parametrize("dtype", NUMBERS)
    def test_reduce_sum_of_nothing_is_zero(self, backend, dtype):
        x = values(dtype, (0, 3))
        same(call(backend, "reduce_sum", x, args=((0,),)), np.zeros((1, 3), dtype), dtype)
        same(call(backend, "reduce_sum", x, args=((1,),)), np.zeros((0, 1), dtype), dtype)

    @pytest.mark.parametrize("dtype", FLOATS)
    def test_reduce_max_propagates_nan(self, backend, dtype):
        x = np.array([[1.0, np.nan, 3.0], [-np.inf, -1.0, -2.0]], dtype=dtype)
        same(call(backend, "reduce_max", x, args=((1,),)), [[np.nan], [-1.0]], dtype)

    # --- movement ------------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("shape", [(24,), (6, 4), (4, 1, 6), (2, 3, 4)])
    def test_reshape(self, backend, dtype, shape):
        x = values(dtype)
        same(call(backend, "reshape", x, args=(shape,)), x.reshape(shape), dtype)

    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("source, shape", [
        ((1, 3, 1), (2, 3, 4)), ((1,), (5,)), ((2, 1), (2, 3)), ((1, 1), (0, 1)),
    ])
    def test_expand(self, backend, dtype, source, shape):
        x = values(dtype, source)
        same(call(backend, "expand", x, args=(shape,)), np.broadcast_to(x, shape), dtype)

    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 0, 2), (2, 1, 0)])
    def test_permute(self, backend, dtype, order):
        x = values(dtype)
        same(call(backend, "permute", x, args=(order,)), np.transpose(x, order), dtype)

    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("widths", [((1, 0), (0, 2), (1, 1)), ((0, 0), (0, 0), (3, 0))])
    def test_pad(self, backend, dtype, widths):
        x = values(dtype)
        value = {"bool": True, "int32": -1, "int64": 5, "float32": 0.5, "float64": -2.0}[dtype]
        out = call(backend, "pad", x, args=(widths, value))
        same(out, np.pad(x, widths, constant_values=value), dtype)

    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("bounds", [((0, 1), (1, 3), (0, 4)), ((1, 2), (0, 3), (3, 4)),
                                        ((0, 2), (2, 2), (0, 4))])
    def test_shrink(self, backend, dtype, bounds):
        x = values(dtype)
        expected = x[tuple(slice(a, b) for a, b in bounds)]
        same(call(backend, "shrink", x, args=(bounds,)), expected, dtype)

    @pytest.mark.parametrize("dtype", ALL)
    @pytest.mark.parametrize("axes", [(0,), (2,), (1, 2), (0, 1, 2)])
    def test_flip(self, backend, dtype, axes):
        x = values(dtype)
        same(call(backend, "flip", x, args=(axes,)), np.flip(x, axes), dtype)

    @pytest.mark.parametrize("layout", ["transposed", "flipped", "strided"])
    def test_non_contiguous_operands(self, backend, layout):
        """Arrays a backend made itself by a movement primitive are valid inputs to all."""
        impl = fusion.get_backend(backend)
        base = values("float32", (4, 6))
        x = impl.from_numpy(base)
        if layout == "transposed":
            view, expected = impl.permute(x, (1, 0)), base.T
        elif layout == "flipped":
            view, expected = impl.flip(x, (0, 1)), base[::-1, ::-1]
        else:
            view, expected = impl.shrink(x, ((1, 3), (2, 6))), base[1:3, 2:6]
        shape = expected.shape
        checks = [
            (impl.exp(view), np.exp(expected)),
            (impl.add(view, impl.from_numpy(np.ones(shape, np.float32))), expected + 1),
            (impl.reduce_sum(view, (0,)), expected.sum(0, keepdims=True)),
            (impl.reduce_max(view, (1,)), expected.max(1, keepdims=True)),
            (impl.reshape(view, (shape[0] * shape[1],)), expected.reshape(-1)),
            (impl.cast(view, fusion.int32), expected.astype(np.int32)),
            (impl.pad(view, ((1, 0), (0, 1)), 0.0), np.pad(expected, ((1, 0), (0, 1)))),
        ]
        for got, want in checks:
            same(np.asarray(impl.to_numpy(got)), want, want.dtype.name)

    @requires("views")
    def test_movement_returns_views(self, backend):
        impl = fusion.get_backend(backend)
        x = impl.from_numpy(values("float32", (2, 3, 4)))
        base = impl.to_numpy(x)
        for name, out in [("reshape", impl.reshape(x, (6, 4))),
                          ("expand", impl.expand(impl.reshape(x, (1, 2, 3, 4)), (5, 2, 3, 4))),
                          ("permute", impl.permute(x, (2, 0, 1))),
                          ("shrink", impl.shrink(x, ((0, 1), (1, 3), (0, 4)))),
                          ("flip", impl.flip(x, (1,)))]:
            assert np.shares_memory(impl.to_numpy(out), base), f"{name} copied its input"

    # --- the optional contraction --------------------------------------------------------
    @pytest.mark.parametrize("dtype", NUMBERS)
    @pytest.mark.parametrize("shapes", [((2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)),
                                        ((2, 3, 1, 4), (2, 3, 4, 2)), ((2, 0), (0, 3))])
    def test_contract(self, backend, dtype, shapes):
        if getattr(fusion.get_backend(backend), "contract", None) is None:
            pytest.skip(f"backend {backend!r} has no contraction fast path (optional)")
        x, y = values(dtype, shapes[0], seed=1), values(dtype, shapes[1], seed=2)
        tolerance = {"float32": (1e-5, 1e-5)}.get(dtype, (None, None))
        out = call(backend, "contract", x, y, dtype=dtype)
        assert out.shape == np.matmul(x, y).shape
        assert_close(out, np.matmul(x, y), dtype, *tolerance)
