"""The autograd machinery itself: one Function per differentiable primitive, each checked
against finite differences; graph traversal on shared nodes; gradcheck; grad mode per thread.

Behaviour users see on every backend (accumulation, no_grad, detach, deep chains) is in the
conformance suite (fusion/testing/suite/autograd.py), which tests/test_conformance.py runs.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import fusion
from fusion.core import autograd as F
from fusion.core.tensor import _apply

#: Every differentiable primitive has its Function (the composite ops are built from these
#: alone), and the two comparisons have one that carries no gradient.
DIFFERENTIABLE = ["Relu", "Log", "Exp", "Neg", "Sqrt", "Sin", "Recip", "Sum", "Max", "Maximum",
                  "Add", "Sub", "Mul", "Pow", "Div", "Where", "Cast", "Expand", "Reshape",
                  "Permute", "Pad", "Shrink", "Flip"]
NOT_DIFFERENTIABLE = ["Equal", "Less"]


def test_every_primitive_has_a_function():
    for name in DIFFERENTIABLE:
        fn = getattr(F, name)
        assert issubclass(fn, F.Function) and fn.differentiable, name
    for name in NOT_DIFFERENTIABLE:
        assert not getattr(F, name).differentiable, name


def _positive(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


def _signed(shape, seed=0):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, shape)


# Each Function applied directly (no Tensor-level composition around it), with float64
# inputs, checked by central finite differences.
FUNCTION_CASES = [
    ("Neg", lambda x: _apply(F.Neg, x), [_signed((3, 2))]),
    ("Relu", lambda x: _apply(F.Relu, x), [_signed((3, 2))]),
    ("Exp", lambda x: _apply(F.Exp, x), [_signed((3, 2))]),
    ("Log", lambda x: _apply(F.Log, x), [_positive((3, 2))]),
    ("Sqrt", lambda x: _apply(F.Sqrt, x), [_positive((3, 2))]),
    ("Recip", lambda x: _apply(F.Recip, x), [_positive((3, 2))]),
    ("Sin", lambda x: _apply(F.Sin, x), [_signed((3, 2))]),
    ("Add", lambda x, y: _apply(F.Add, x, y), [_signed((3, 2), 1), _signed((3, 2), 2)]),
    ("Sub", lambda x, y: _apply(F.Sub, x, y), [_signed((3, 2), 1), _signed((3, 2), 2)]),
    ("Mul", lambda x, y: _apply(F.Mul, x, y), [_signed((3, 2), 1), _signed((3, 2), 2)]),
    ("Div", lambda x, y: _apply(F.Div, x, y), [_signed((3, 2), 1), _positive((3, 2), 2)]),
    ("Pow", lambda x, y: _apply(F.Pow, x, y), [_positive((3, 2), 1), _signed((3, 2), 2)]),
    ("Maximum", lambda x, y: _apply(F.Maximum, x, y), [_signed((3, 2), 1), _signed((3, 2), 2)]),
    ("Where", lambda c, x, y: _apply(F.Where, (c > 0).detach(), x, y),
     [_signed((3, 2), 3), _signed((3, 2), 1), _signed((3, 2), 2)]),
    ("Sum", lambda x: _apply(F.Sum, x, axes=(0, 2)), [_signed((2, 3, 4))]),
    ("Max", lambda x: _apply(F.Max, x, axes=(1,)), [_signed((2, 3, 4))]),
    ("Reshape", lambda x: _apply(F.Reshape, x, shape=(4, 6)), [_signed((2, 3, 4))]),
    ("Expand", lambda x: _apply(F.Expand, x, shape=(2, 3, 4)), [_signed((2, 1, 4))]),
    ("Permute", lambda x: _apply(F.Permute, x, order=(2, 0, 1)), [_signed((2, 3, 4))]),
    ("Pad", lambda x: _apply(F.Pad, x, widths=((1, 0), (2, 1)), value=0.5), [_signed((2, 3))]),
    ("Shrink", lambda x: _apply(F.Shrink, x, bounds=((1, 2), (0, 2))), [_signed((2, 3))]),
    ("Flip", lambda x: _apply(F.Flip, x, axes=(0, 1)), [_signed((2, 3))]),
    ("Contract", lambda x, y: _apply(F.Contract, x, y), [_signed((2, 3, 4), 1),
                                                        _signed((2, 4, 5), 2)]),
]


@pytest.mark.parametrize("name, fn, inputs", FUNCTION_CASES, ids=[c[0] for c in FUNCTION_CASES])
def test_function_gradient(backend, name, fn, inputs):
    tensors = [fusion.Tensor(a, backend=backend) for a in inputs]
    assert fusion.gradcheck(fn, tensors)


@pytest.mark.parametrize("name", ["Mul", "Div", "Pow", "Sub", "Add", "Maximum", "Where"])
@pytest.mark.parametrize("constant_first", [False, True])
def test_functions_compute_only_the_gradients_needed(name, constant_first):
    """``needs_input_grad``: for a parent that needs none, backward gives None, or at most
    the incoming gradient itself (which costs nothing)."""
    x = fusion.Tensor([1.0, 2.0], requires_grad=True)
    c = fusion.Tensor([3.0, 0.5])
    a, b = (c, x) if constant_first else (x, c)
    out = {"Mul": lambda: a * b, "Div": lambda: a / b, "Pow": lambda: a**b,
           "Sub": lambda: a - b, "Add": lambda: a + b, "Maximum": lambda: a.maximum(b),
           "Where": lambda: fusion.where(c > 1, a, b)}[name]()
    ctx = out._ctx
    assert type(ctx).__name__ == name
    needs = [p.requires_grad for p in ctx.parents]
    assert list(ctx.needs_input_grad) == needs
    incoming = out.data.const(1.0)
    grads = ctx.backward(incoming)
    for grad, need in zip(grads, needs, strict=True):
        if need:
            assert grad is not None and grad.shape == out.shape
        else:
            assert grad is None or grad is incoming


def test_shared_nodes_are_visited_once():
    """A graph where one node feeds others at several depths: d = (a + 3a) * a with a = 2x,
    so d = 4a^2 = 16x^2 and dd/dx = 32x."""
    x = fusion.Tensor([1.0, -0.5], dtype="float64", requires_grad=True)
    a = x * 2
    b = a * 3
    c = a + b
    d = c * a
    d.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 32 * np.array([1.0, -0.5]))


def test_deep_graph_with_a_low_recursion_limit():
    x = fusion.Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(3000):
        y = y + 1
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        y.backward()
    finally:
        sys.setrecursionlimit(limit)
    np.testing.assert_array_equal(x.grad.numpy(), [1.0])


def test_gradcheck():
    rng = np.random.default_rng(0)
    assert fusion.gradcheck(lambda a, b: (a @ b).softmax(-1).log(), [rng.normal(size=(3, 4)),
                                                                     rng.normal(size=(4, 2))])
    assert fusion.gradcheck(lambda a: a.var(0) + a.prod(), [[[1.0, 2.0], [0.5, -1.5]]])
    # a function that ignores its input has gradient zero, and gradcheck agrees
    assert fusion.gradcheck(lambda a: a.detach() * 0 + 1, [[1.0, 2.0]])
    # one that cuts its graph by mistake does not
    with pytest.raises(fusion.GradcheckError, match="input 0"):
        fusion.gradcheck(lambda a: a.detach() * 2, [[1.0, 2.0]])


def test_gradcheck_reports_where_it_differs():
    class HalfExp(F.Exp):
        def backward(self, grad):
            return super().backward(grad).mul(grad.const(0.5))

    with pytest.raises(fusion.GradcheckError) as info:
        fusion.gradcheck(lambda a, b: a * _apply(HalfExp, b), [[1.0, 2.0], [0.5, -0.5]])
    message = str(info.value)
    assert "input 1" in message and "autograd" in message and "finite differences" in message
    assert isinstance(info.value, AssertionError)  # fails tests as an assertion does


def test_grad_mode_is_per_thread():
    seen = []
    with fusion.no_grad():
        thread = threading.Thread(target=lambda: seen.append(fusion.is_grad_enabled()))
        thread.start()
        thread.join()
        assert not fusion.is_grad_enabled()
    assert seen == [True]


def test_leaves_made_under_no_grad_keep_requires_grad():
    with fusion.no_grad():
        w = fusion.ones(2, requires_grad=True)
        assert w.requires_grad
        assert not (w * 2).requires_grad
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])


def test_cast_function_passes_the_gradient_back_in_the_input_dtype():
    x = fusion.Tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = _apply(F.Cast, x, dtype=fusion.float32)
    assert y.dtype is fusion.float32
    y.backward(fusion.Tensor([0.25, -3.0]))
    assert x.grad.dtype is fusion.float64
    np.testing.assert_array_equal(x.grad.numpy(), [0.25, -3.0])


def test_gradient_through_a_cast_comes_back_in_the_leaf_dtype():
    x = fusion.Tensor([1.0, 2.0], dtype="float32", requires_grad=True)
    (x.cast("float64") ** 3).sum().backward()
    assert x.grad.dtype is fusion.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])
