"""Right answers at the edges of the Tensor API, on every installed backend: dtype promotion
of Python scalars in ``where`` and ``**``, scalars too large for an integer dtype, losses
with -inf scores, reductions over empty axes, rounding of special floats, and clear errors
for axes a tensor does not have. numpy (or torch's documented behaviour, written in numpy)
gives every expected value."""

from __future__ import annotations

import math
import operator

import numpy as np
import pytest

import fusion
from fusion.nn import functional as F

NAN, INF = math.nan, math.inf


def tensor(values, backend, dtype=None, requires_grad=False):
    return fusion.Tensor(values, dtype=dtype, backend=backend, requires_grad=requires_grad)


def same(out: fusion.Tensor, expected: np.ndarray, rtol: float = 0.0) -> None:
    """``out`` has ``expected``'s dtype, shape and values (NaN equal to NaN; exactly equal
    unless ``rtol`` is given)."""
    expected = np.asarray(expected)
    assert out.dtype.name == expected.dtype.name, f"{out.dtype.name} != {expected.dtype}"
    got = out.numpy()
    assert got.shape == expected.shape, f"{got.shape} != {expected.shape}"
    if rtol:
        np.testing.assert_allclose(got, expected, rtol=rtol)
    else:
        np.testing.assert_array_equal(got, expected)


# --- where promotes its branches as every binary op does -----------------------------------
@pytest.mark.parametrize("x, y, expected", [
    (0.5, [1, 2], np.array([0.5, 2.0], np.float32)),           # float scalar, int tensor
    ([1, 2], 0.5, np.array([1.0, 0.5], np.float32)),
    (7, np.array([1, 2], np.int32), np.array([7, 2], np.int32)),  # int scalar: weak
    (True, [1, 2], np.array([1, 2], np.int64)),
    (1, 0.5, np.array([1.0, 0.5], np.float32)),                # two scalars: their own dtypes
    (True, 2, np.array([1, 2], np.int64)),
    (True, False, np.array([True, False])),
    (np.array([1.0, 2.0]), 3, np.array([1.0, 3.0])),           # float64 tensor stays float64
    (1e30, np.array([1, 2], np.int32), np.array([1e30, 2.0], np.float32)),
])
def test_where_promotes_python_scalars_like_other_binary_ops(backend, x, y, expected):
    cond = tensor([True, False], backend)

    def operand(v):
        return tensor(v, backend) if isinstance(v, list | np.ndarray) else v

    same(fusion.where(cond, operand(x), operand(y)), expected)
    same(cond.where(operand(x), operand(y)), expected)


def test_where_of_a_huge_float_and_int32_is_float32(backend):
    out = fusion.where(tensor([True], backend), 1e30, tensor([1], backend, "int32"))
    same(out, np.array([1e30], np.float32))


def test_where_branches_keep_their_gradients(backend):
    x = tensor([1.0, 2.0], backend, requires_grad=True)
    (fusion.where(tensor([True, False], backend), x, 0.5) * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0])


# --- Python integers too large for the integer dtype they meet -----------------------------
@pytest.mark.parametrize("name, op", [
    ("add", lambda t: t + 2**40), ("rsub", lambda t: 2**40 - t), ("mul", lambda t: t * -2**40),
    ("maximum", lambda t: t.maximum(2**35)),
    ("where", lambda t: fusion.where(t > 0, 2**40, t)),
    ("pad", lambda t: t.pad([(1, 0)], value=2**40)),
    ("full", lambda t: fusion.full((2,), 2**40, dtype="int32", backend=t.backend)),
    ("full_float", lambda t: fusion.full((2,), 1e30, dtype="int32", backend=t.backend)),
    ("full_nan", lambda t: fusion.full((2,), NAN, dtype="int64", backend=t.backend)),
])
def test_python_int_out_of_range_is_an_overflow_error(backend, name, op):
    t = tensor([1, -2], backend, "int32")
    with pytest.raises(OverflowError, match="int32|int64"):
        op(t)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
@pytest.mark.parametrize("value", [2**31, -2**31 - 1, 2**63, -2**63 - 1, 2**70], ids=str)
def test_comparison_with_a_python_int_beyond_the_range_is_answered(backend, dtype, value):
    a = np.array([np.iinfo(dtype).min, -1, 0, np.iinfo(dtype).max], dtype)
    t = tensor(a, backend)
    for op in (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge):
        same(op(t, value), op(a, value))  # numpy compares exactly, whatever the int's size
        same(op(value, t), op(value, a))


def test_python_ints_at_the_ends_of_the_range_are_accepted(backend):
    t = tensor([0, 1], backend, "int32")
    same(t + (2**31 - 1), np.array([2**31 - 1, -2**31], np.int32))  # then wraps, as numpy
    same(t.minimum(-2**31), np.array([-2**31, -2**31], np.int32))
    same(fusion.full((1,), -2**63, dtype="int64", backend=backend), np.array([-2**63]))


# --- the power of an integer tensor by a Python float is float32 ---------------------------
@pytest.mark.parametrize("exponent", [2.0, 3.0, 0.5, 1.0, 0.0])
def test_int_tensor_to_a_python_float_power_is_float32(backend, exponent):
    for dtype in ("int32", "int64", "bool"):
        values = np.array([0, 1, 3], dtype)
        out = tensor(values, backend) ** exponent
        expected = values.astype(np.float32) ** np.float32(exponent)
        same(out, expected, rtol=1e-6)  # pow may differ from numpy's by an ulp


def test_int_tensor_to_a_python_int_power_stays_integer(backend):
    values = np.array([0, 1, 3], np.int32)
    same(tensor(values, backend) ** 2, values**2)
    same(tensor(values, backend) ** 3, values**3)


# --- losses with a -inf score --------------------------------------------------------------
def test_cross_entropy_ignores_minus_inf_scores_of_other_classes(backend):
    logits = tensor([[0.0, -INF], [-INF, 2.0], [1.0, 1.0]], backend, requires_grad=True)
    labels = tensor([0, 1, 0], backend)
    loss = logits.cross_entropy(labels, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, math.log(2)], rtol=1e-6)
    loss.sum().backward()
    # d/dlogits = softmax - one_hot; softmax of -inf is 0
    np.testing.assert_allclose(logits.grad.numpy(), [[0, 0], [0, 0], [-0.5, 0.5]], atol=1e-7)


def test_nll_loss_ignores_minus_inf_log_probabilities_of_other_classes(backend):
    log_probs = tensor([[0.0, -INF, -INF], [-INF, -INF, 0.0]], backend, requires_grad=True)
    loss = F.nll_loss(log_probs, tensor([0, 2], backend))
    assert loss.item() == 0.0
    loss.backward()
    np.testing.assert_array_equal(log_probs.grad.numpy(), [[-0.5, 0, 0], [0, 0, -0.5]])


def test_cross_entropy_of_the_target_at_minus_inf_is_inf(backend):
    # torch gives inf: the target class has probability 0
    assert F.cross_entropy(tensor([[0.0, -INF]], backend), tensor([1], backend)).item() == INF


def test_cross_entropy_with_probabilities_skips_zero_weights(backend):
    logits = tensor([[0.0, -INF, 0.0]], backend)
    probs = tensor([[0.5, 0.0, 0.5]], backend)
    np.testing.assert_allclose(F.cross_entropy(logits, probs).item(), math.log(2), rtol=1e-6)


# --- reductions over an empty axis --------------------------------------------------------
def _np_softmax(a, axis):
    # numpy has no softmax; over an empty axis the result is the empty input itself
    e = np.exp(a - (np.max(a, axis=axis, keepdims=True) if a.shape[axis] else 0))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_logsumexp(a, axis):
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a), axis=axis))


@pytest.mark.parametrize("shape, axis", [((2, 0), 1), ((2, 0), -1), ((0, 3), 0),
                                         ((3, 0, 2), 1), ((0,), 0)], ids=str)
def test_softmax_family_over_an_empty_axis(backend, shape, axis):
    a = np.zeros(shape, np.float32)
    x = tensor(a, backend, requires_grad=True)
    same(x.softmax(axis), _np_softmax(a, axis).astype(np.float32))
    same(x.log_softmax(axis), np.log(_np_softmax(a, axis)).astype(np.float32))
    same(x.logsumexp(axis), _np_logsumexp(a, axis).astype(np.float32))
    same(F.softmax(x, axis), _np_softmax(a, axis).astype(np.float32))
    x.log_softmax(axis).sum().backward()
    assert x.grad.shape == shape


@pytest.mark.parametrize("shape, axis", [((2, 0), 1), ((2, 0), 0), ((0, 3), 0), ((0, 3), None),
                                         ((2, 0, 3), (1, 2)), ((0,), None)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_any_all_and_prod_over_an_empty_axis(backend, shape, axis, keepdim):
    a = np.zeros(shape, np.float32)
    x = tensor(a, backend)
    same(x.any(axis, keepdim), np.any(a, axis=axis, keepdims=keepdim))
    same(x.all(axis, keepdim), np.all(a, axis=axis, keepdims=keepdim))
    same(x.prod(axis, keepdim), np.prod(a, axis=axis, keepdims=keepdim))
    same((x > 0).any(axis, keepdim), np.any(a > 0, axis=axis, keepdims=keepdim))


def test_prod_over_an_axis_of_a_tensor_with_an_empty_axis_has_a_gradient(backend):
    x = tensor(np.zeros((0, 3), np.float32), backend, requires_grad=True)
    out = x.prod(0)
    same(out, np.ones(3, np.float32))
    out.sum().backward()
    assert x.grad is None or x.grad.shape == (0, 3)


# --- rounding and signs of special floats -------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_floor_keeps_nan_infinities_and_large_values(backend, dtype):
    a = np.array([NAN, INF, -INF, 1e20, -1e20, 2.0**52 + 1, -2.5, -0.0, 0.5, 3.0], dtype)
    if dtype == "float64":
        a = np.append(a, [2.0**53 - 1, -(2.0**52) - 0.5])
    same(tensor(a, backend).floor(), np.floor(a))


def test_float_floor_division_by_zero_is_infinite_or_nan(backend):
    a = np.array([1.0, -1.0, 0.0, NAN, INF], np.float32)
    with np.errstate(all="ignore"):
        expected = np.floor_divide(a, np.float32(0.0))
    same(tensor(a, backend) // 0.0, expected)


def test_sign_of_nan_is_nan(backend):
    a = np.array([NAN, -INF, -2.0, 0.0, 3.0, INF], np.float32)
    same(tensor(a, backend).sign(), np.sign(a))
    same(abs(tensor(a, backend)), np.abs(a))


def test_leaky_relu_of_the_most_negative_integer_does_not_wrap(backend):
    a = np.array([-2**31, -100, 0, 7], np.int32)
    expected = np.where(a > 0, a, a * 0.01).astype(np.float32)
    np.testing.assert_allclose(tensor(a, backend).leaky_relu().numpy(), expected, rtol=1e-6)


# --- axes a tensor does not have --------------------------------------------------------------
@pytest.mark.parametrize("name, op", [
    ("transpose", lambda x: x.transpose(0, 0)), ("transpose_default", lambda x: x.transpose()),
    ("flip", lambda x: x.flip(0)), ("squeeze", lambda x: x.squeeze(1)),
])
def test_movement_along_an_axis_of_a_0d_tensor_names_the_problem(backend, name, op):
    with pytest.raises(IndexError, match="0-d|0 dimensions"):
        op(tensor(1.0, backend))


def test_movement_of_a_0d_tensor_without_axes_is_the_tensor(backend):
    x = tensor(1.5, backend)
    # squeeze takes axis 0 or -1 of a 0-d tensor, as torch does
    for out in (x.flip(), x.squeeze(), x.squeeze(0), x.squeeze(-1), x.T, x.permute()):
        same(out, np.array(1.5, np.float32))


def test_arg_extremes_of_a_0d_tensor_along_its_axis_are_0(backend):
    x = tensor(1.5, backend)
    for out in (x.argmax(0), x.argmin(-1), x.argmax(), x.argmin()):
        same(out, np.array(0))


@pytest.mark.parametrize("other, shape", [([[1.0, 2.0]], "(1, 2)"), ([1.0, 2.0, 3.0], "(3,)")])
def test_matmul_with_a_list_of_the_wrong_shape_names_both_shapes(backend, other, shape):
    x = tensor([[1.0, 2.0]], backend)
    with pytest.raises(ValueError) as info:
        x @ other
    assert "(1, 2)" in str(info.value) and shape in str(info.value), info.value
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        x.matmul(other)


# --- gradients of extremes with NaN ------------------------------------------------------------
def test_max_and_min_send_their_gradient_to_the_nans_of_a_run(backend):
    a = np.array([[1.0, NAN, 3.0, NAN], [1.0, 2.0, 3.0, 3.0], [NAN, -INF, 0.0, 5.0]], np.float32)
    for method in ("max", "min"):
        x = tensor(a, backend, requires_grad=True)
        getattr(x, method)(1).sum().backward()
        extreme = getattr(np, method)(a, axis=1, keepdims=True)
        # where a run holds NaN, its NaNs are the extreme; ties share the gradient equally
        hit = np.where(np.isnan(extreme), np.isnan(a), a == extreme).astype(np.float32)
        np.testing.assert_array_equal(x.grad.numpy(), hit / hit.sum(1, keepdims=True))
        assert np.isfinite(x.grad.numpy()).all()
