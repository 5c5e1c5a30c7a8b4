"""Elementwise Tensor methods and operators, and broadcasting, against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fusion

from ..oracle import check_op

FLOATS = ["float32", "float64"]
# The test classes keep no state, so the instance a test runs on (one per backend) and the
# session-scoped backend fixture cannot make examples differ.
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.differing_executors])


def rand(shape, low: float = -2.0, high: float = 2.0, seed: int = 0, dtype: str = "float32"):
    """Float test data in [low, high)."""
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


# name, fusion expression, numpy expression, input range, differentiable
UNARY = [
    ("neg", lambda x: -x, np.negative, (-2, 2), True),
    ("abs", abs, np.abs, (-2, 2), True),
    ("relu", lambda x: x.relu(), lambda x: np.maximum(x, 0), (-2, 2), True),
    ("leaky_relu", lambda x: x.leaky_relu(), lambda x: np.where(x > 0, x, 0.01 * x), (-2, 2),
     True),
    ("leaky_relu_0.2", lambda x: x.leaky_relu(0.2), lambda x: np.where(x > 0, x, 0.2 * x),
     (-2, 2), True),
    ("exp", lambda x: x.exp(), np.exp, (-3, 3), True),
    ("log", lambda x: x.log(), np.log, (0.1, 4), True),
    ("log2", lambda x: x.log2(), np.log2, (0.1, 4), True),
    ("sqrt", lambda x: x.sqrt(), np.sqrt, (0.1, 4), True),
    ("rsqrt", lambda x: x.rsqrt(), lambda x: 1 / np.sqrt(x), (0.1, 4), True),
    ("sin", lambda x: x.sin(), np.sin, (-6, 6), True),
    ("cos", lambda x: x.cos(), np.cos, (-6, 6), True),
    ("tanh", lambda x: x.tanh(), np.tanh, (-4, 4), True),
    ("sigmoid", lambda x: x.sigmoid(), _sigmoid, (-6, 6), True),
    ("softplus", lambda x: x.softplus(), lambda x: np.logaddexp(0, x), (-6, 6), True),
    ("gelu", lambda x: x.gelu(), _gelu, (-4, 4), True),
    ("square", lambda x: x.square(), np.square, (-2, 2), True),
    ("reciprocal", lambda x: x.reciprocal(), np.reciprocal, (0.5, 3), True),
    ("reciprocal_negative", lambda x: x.reciprocal(), np.reciprocal, (-3, -0.5), True),
    ("sign", lambda x: x.sign(), np.sign, (-2, 2), False),
]

#: ops that turn an integer tensor into float32
TO_FLOAT = [
    ("exp", lambda x: x.exp(), np.exp), ("log", lambda x: x.log(), np.log),
    ("sqrt", lambda x: x.sqrt(), np.sqrt), ("sin", lambda x: x.sin(), np.sin),
    ("cos", lambda x: x.cos(), np.cos), ("sigmoid", lambda x: x.sigmoid(), _sigmoid),
    ("tanh", lambda x: x.tanh(), np.tanh), ("reciprocal", lambda x: x.reciprocal(), np.reciprocal),
]

#: ops that keep an integer tensor's dtype
KEEP_INT = [
    ("neg", lambda x: -x, np.negative), ("abs", abs, np.abs),
    ("relu", lambda x: x.relu(), lambda x: np.maximum(x, 0)),
    ("square", lambda x: x.square(), np.square), ("sign", lambda x: x.sign(), np.sign),
]

BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)),
                   ((), (3,)), ((3, 1), ()), ((1,), (2, 3)), ((2, 3, 1), (1, 1, 5))]

BINARY = [
    ("add", lambda x, y: x + y), ("sub", lambda x, y: x - y), ("mul", lambda x, y: x * y),
    ("div", lambda x, y: x / y), ("pow", lambda x, y: x**y),
]

COMPARISONS = [
    ("eq", lambda x, y: x == y), ("ne", lambda x, y: x != y), ("lt", lambda x, y: x < y),
    ("le", lambda x, y: x <= y), ("gt", lambda x, y: x > y), ("ge", lambda x, y: x >= y),
]


class TestElementwise:
    """Unary functions, arithmetic operators (reflected too), comparisons, where and clip."""

    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("name, fn, ref, bounds, differentiable", UNARY,
                             ids=[u[0] for u in UNARY])
    def test_unary(self, backend, dtype, name, fn, ref, bounds, differentiable):
        check_op(backend, [(3, 4)], fn, ref, dtype=dtype, low=bounds[0], high=bounds[1],
                 grad=differentiable)

    @pytest.mark.parametrize("name, fn, ref", TO_FLOAT, ids=[u[0] for u in TO_FLOAT])
    @pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
    def test_unary_of_integers_is_float32(self, backend, dtype, name, fn, ref):
        # numpy computes bool and integer inputs in float16 or float64: give it float32
        check_op(backend, [(3, 4)], fn, lambda a: ref(a.astype(np.float32)), dtype=dtype,
                 low=1, high=4, expect_dtype="float32")

    @pytest.mark.parametrize("name, fn, ref", KEEP_INT, ids=[u[0] for u in KEEP_INT])
    @pytest.mark.parametrize("dtype", ["int32", "int64"])
    def test_unary_keeps_integers(self, backend, dtype, name, fn, ref):
        check_op(backend, [(3, 4)], fn, ref, dtype=dtype, low=-3, high=3)

    @pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
    @pytest.mark.parametrize("name, fn", BINARY, ids=[b[0] for b in BINARY])
    def test_binary_broadcasting(self, backend, name, fn, shapes):
        # positive operands keep pow real and division away from 0
        x, y = rand(shapes[0], 0.5, 2.0, seed=1), rand(shapes[1], 0.5, 2.0, seed=2)
        check_op(backend, [x, y], fn)

    @pytest.mark.parametrize("dtype", FLOATS)
    @pytest.mark.parametrize("name, fn", [
        ("add", lambda x, y: x + y), ("sub", lambda x, y: x - y), ("mul", lambda x, y: x * y),
    ])
    def test_binary_signed(self, backend, dtype, name, fn):
        check_op(backend, [(2, 3), (2, 3)], fn, dtype=dtype)

    @pytest.mark.parametrize("name, fn", [
        ("radd", lambda x: 2 + x), ("rsub", lambda x: 2 - x), ("rmul", lambda x: 3 * x),
        ("rdiv", lambda x: 2 / x), ("rpow", lambda x: 2**x), ("add_int", lambda x: x + 1),
        ("sub_float", lambda x: x - 0.5), ("mul_float", lambda x: x * 1.5),
        ("div_int", lambda x: x / 4), ("pow_2", lambda x: x**2), ("pow_3", lambda x: x**3),
        ("pow_half", lambda x: x**0.5), ("pow_neg", lambda x: x**-1.5),
        ("pow_0", lambda x: x**0), ("chain", lambda x: (x * 2 - 1) / (x + 3)),
        ("numpy_scalar", lambda x: x * np.float32(2.0) - np.float32(1)),
        ("list_operand", lambda x: x + [1.0, 2.0, 3.0, 4.0]),
        ("rlist_operand", lambda x: [1.0, 2.0, 3.0, 4.0] - x),
        ("array_operand", lambda x: x * np.arange(4, dtype=np.float32)),
        ("rarray_operand", lambda x: np.arange(4, dtype=np.float32) - x),
        ("rarray_div", lambda x: np.full((3, 1), 2.0, dtype=np.float32) / x),
    ])
    def test_numbers_and_arrays(self, backend, name, fn):
        # a list becomes a float32 tensor (numpy makes it float64), so results stay float32
        check_op(backend, [(3, 4)], fn, low=0.5, high=2.0, expect_dtype="float32")

    @pytest.mark.parametrize("dtype", ["int32", "int64"])
    @pytest.mark.parametrize("name, fn", [
        ("add", lambda x, y: x + y), ("sub", lambda x, y: x - y), ("mul", lambda x, y: x * y),
        ("floordiv", lambda x, y: x // y), ("pow", lambda x, y: x ** abs(y)),
        ("maximum", lambda x, y: fusion.maximum(x, y) if isinstance(x, fusion.Tensor)
         else np.maximum(x, y)),
        ("minimum", lambda x, y: fusion.minimum(x, y) if isinstance(x, fusion.Tensor)
         else np.minimum(x, y)),
    ])
    def test_integer_arithmetic(self, backend, dtype, name, fn):
        x = np.array([[7, -7, 3, 0], [-1, 5, 2, 9]], dtype=dtype)
        y = np.array([[2, 2, -2, 3], [3, -4, 2, 1]], dtype=dtype)
        check_op(backend, [x, y], fn)

    def test_true_division_of_integers_is_float32(self, backend):
        x = np.array([7, -7, 3, 1], dtype=np.int64)
        y = np.array([2, 2, -4, 3], dtype=np.int64)
        check_op(backend, [x, y], lambda a, b: a / b, expect_dtype="float32")

    @pytest.mark.parametrize("dtype", FLOATS)
    def test_floordiv_float(self, backend, dtype):
        check_op(backend, [(3, 4), (3, 4)], lambda x, y: x // y, dtype=dtype, low=0.5, high=5,
                 grad=False)

    @pytest.mark.parametrize("name, fn", COMPARISONS, ids=[c[0] for c in COMPARISONS])
    @pytest.mark.parametrize("dtype", ["float32", "int32", "int64", "bool"])
    def test_comparisons(self, backend, dtype, name, fn):
        # few distinct values, so that ties occur; one operand broadcast
        x = np.array([[0, 1, 2], [2, 1, 0]]).astype(dtype)
        y = np.array([1, 1, 0]).astype(dtype)
        check_op(backend, [x, y], fn, dtype=dtype)

    @pytest.mark.parametrize("name, fn", [
        ("gt_scalar", lambda x: x > 0.5), ("lt_scalar", lambda x: x < 1),
        ("eq_scalar", lambda x: x == 1.0), ("ne_scalar", lambda x: x != 1.0),
        ("reflected", lambda x: 1.0 <= x), ("reflected_ge", lambda x: 0.5 >= x),
        ("array", lambda x: x >= np.array([0.0, 1.0, 2.0])),
    ])
    def test_comparisons_with_numbers(self, backend, name, fn):
        check_op(backend, [np.array([[0.0, 1.0, 2.0], [1.0, 0.5, -1.0]], np.float32)], fn)

    def test_comparisons_carry_no_gradient(self, backend):
        x = fusion.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
        assert not (x > 1).requires_grad
        assert (x > 1).dtype is fusion.bool

    @pytest.mark.parametrize("name, fn, ref", [
        ("maximum", lambda x, y: x.maximum(y), np.maximum),
        ("minimum", lambda x, y: x.minimum(y), np.minimum),
        ("fusion.maximum", fusion.maximum, np.maximum),
        ("fusion.minimum", fusion.minimum, np.minimum),
    ])
    @pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4))],
                             ids=str)
    def test_maximum_minimum(self, backend, name, fn, ref, shapes):
        check_op(backend, [rand(shapes[0], seed=1), rand(shapes[1], seed=2)], fn, ref)

    def test_maximum_ties_share_the_gradient(self, backend):
        x = fusion.Tensor([1.0, 2.0, 3.0], requires_grad=True, backend=backend)
        y = fusion.Tensor([1.0, 3.0, 2.0], requires_grad=True, backend=backend)
        x.maximum(y).sum().backward()
        # a tie is a kink: either one-sided derivative is defensible; the sum must be 1
        np.testing.assert_allclose(x.grad.numpy() + y.grad.numpy(), [1.0, 1.0, 1.0])
        np.testing.assert_allclose(x.grad.numpy()[1:], [0.0, 1.0])

    @pytest.mark.parametrize("name, fn, ref", [
        ("tensors", lambda c, x, y: fusion.where(c > 0, x, y),
         lambda c, x, y: np.where(c > 0, x, y)),
        ("method", lambda c, x, y: (c > 0).where(x, y), lambda c, x, y: np.where(c > 0, x, y)),
        ("scalar_else", lambda c, x, y: fusion.where(c > 0, x, 0.0),
         lambda c, x, y: np.where(c > 0, x, np.float32(0))),
        ("scalar_then", lambda c, x, y: fusion.where(c > 0, -1.0, y),
         lambda c, x, y: np.where(c > 0, np.float32(-1), y)),
    ])
    def test_where(self, backend, name, fn, ref):
        c, x, y = rand((3, 1), seed=1), rand((3, 4), seed=2), rand((4,), seed=3)
        check_op(backend, [c, x, y], fn, ref)

    @pytest.mark.parametrize("name, fn, ref", [
        ("both", lambda x: x.clip(-0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7)),
        ("min", lambda x: x.clip(min=0.2), lambda x: np.maximum(x, 0.2)),
        ("max", lambda x: x.clip(max=0.2), lambda x: np.minimum(x, 0.2)),
        ("clamp", lambda x: x.clamp(-1, 1), lambda x: np.clip(x, -1, 1)),
    ])
    def test_clip(self, backend, name, fn, ref):
        check_op(backend, [(4, 5)], fn, ref)

    def test_clip_integers(self, backend):
        x = np.array([-5, -1, 0, 3, 9], dtype=np.int32)
        check_op(backend, [x], lambda t: t.clip(-2, 4), lambda a: np.clip(a, -2, 4))


class TestBroadcasting:
    """numpy's broadcasting rules, on shapes drawn by hypothesis."""

    @SETTINGS
    @given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                    max_side=3),
           op=st.sampled_from(["add", "sub", "mul", "div", "maximum"]))
    def test_binary(self, backend, shapes, op):
        fns = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
               "mul": lambda x, y: x * y, "div": lambda x, y: x / y,
               "maximum": lambda x, y: np.maximum(x, y) if isinstance(x, np.ndarray)
               else x.maximum(y)}
        x, y = rand(shapes.input_shapes[0], 0.5, 2, seed=1), rand(shapes.input_shapes[1], 0.5,
                                                                  2, seed=2)
        out = check_op(backend, [x, y], fns[op])
        assert out.shape == shapes.result_shape

    @SETTINGS
    @given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                    max_side=3))
    def test_where(self, backend, shapes):
        c, x, y = (rand(s, seed=i) for i, s in enumerate(shapes.input_shapes))
        check_op(backend, [c, x, y], lambda c, x, y: fusion.where(c > 0, x, y)
                 if isinstance(c, fusion.Tensor) else np.where(c > 0, x, y))

    @SETTINGS
    @given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=5,
                                                    max_side=4))
    def test_broadcast_shape(self, shapes):
        assert fusion.broadcast_shape(*shapes.input_shapes) == shapes.result_shape

    @SETTINGS
    @given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
           data=st.data())
    def test_expand(self, backend, shape, data):
        target = data.draw(hnp.broadcastable_shapes(shape, min_dims=len(shape), max_dims=4,
                                                    max_side=3).map(
            lambda s: np.broadcast_shapes(s, shape)))
        check_op(backend, [shape], lambda x: x.expand(*target) if isinstance(x, fusion.Tensor)
                 else np.broadcast_to(x, target))

    @SETTINGS
    @given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    def test_mismatch_names_both_shapes(self, backend, shape):
        bad = (*shape[:-1], shape[-1] + 1)
        x = fusion.zeros(shape, backend=backend)
        y = fusion.zeros(bad, backend=backend)
        with pytest.raises(ValueError) as info:
            x + y
        assert str(shape) in str(info.value) and str(bad) in str(info.value)
