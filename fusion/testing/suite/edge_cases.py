"""Edge shapes (scalars, size-0 and size-1 axes), non-contiguous inputs, numerically hard
inputs, and bad input raising clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion.nn import functional as F

from ..oracle import check_op
from .elementwise import _gelu


def _pair(fusion_fn, numpy_fn):
    return lambda *xs: fusion_fn(*xs) if isinstance(xs[0], fusion.Tensor) else numpy_fn(*xs)


def _softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis=-1):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


SCALAR_OPS = [
    ("exp", _pair(lambda x: x.exp(), np.exp)),
    ("sigmoid", _pair(lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)))),
    ("add_number", lambda x: x + 2), ("rsub_number", lambda x: 1 - x),
    ("mul_vector", _pair(lambda x: x * fusion.Tensor([1.0, 2.0], backend=x.backend),
                         lambda x: x * np.array([1.0, 2.0], np.float32))),
    ("sum", _pair(lambda x: x.sum(), np.sum)), ("mean", _pair(lambda x: x.mean(), np.mean)),
    ("max", _pair(lambda x: x.max(), np.max)), ("prod", _pair(lambda x: x.prod(), np.prod)),
    ("reshape", _pair(lambda x: x.reshape(1, 1), lambda x: x.reshape(1, 1))),
    ("flatten", _pair(lambda x: x.flatten(), lambda x: x.reshape(1))),
    ("unsqueeze", _pair(lambda x: x.unsqueeze(0), lambda x: x[None])),
    ("none_index", lambda x: x[None]), ("ellipsis", lambda x: x[...]),
    ("expand", _pair(lambda x: x.expand(2, 3), lambda x: np.broadcast_to(x, (2, 3)))),
    ("stack", _pair(lambda x: fusion.stack([x, x * 2]), lambda x: np.stack([x, x * 2]))),
]

EMPTY_OPS = [
    ("exp", _pair(lambda x: x.exp(), np.exp)),
    ("add_broadcast", _pair(lambda x: x + fusion.ones(3, backend=x.backend),
                            lambda x: x + np.ones(3, np.float32))),
    ("sum", _pair(lambda x: x.sum(), np.sum)),
    ("sum_0", _pair(lambda x: x.sum(0), lambda x: np.sum(x, 0))),
    ("sum_1", _pair(lambda x: x.sum(1, keepdim=True), lambda x: np.sum(x, 1, keepdims=True))),
    ("prod_0", _pair(lambda x: x.prod(0), lambda x: np.prod(x, 0))),
    ("max_1", _pair(lambda x: x.max(1), lambda x: np.max(x, 1))),
    ("softmax_1", _pair(lambda x: x.softmax(1), lambda x: _softmax(x, 1))),
    ("reshape", _pair(lambda x: x.reshape(3, 0), lambda x: x.reshape(3, 0))),
    ("reshape_infer", _pair(lambda x: x.reshape(-1, 3), lambda x: x.reshape(-1, 3))),
    ("transpose", _pair(lambda x: x.T, lambda x: x.T)),
    ("flip", _pair(lambda x: x.flip(), np.flip)),
    ("pad", _pair(lambda x: x.pad(((1, 1), (0, 0))), lambda x: np.pad(x, ((1, 1), (0, 0))))),
    ("matmul", _pair(lambda x: x @ fusion.ones(3, 2, backend=x.backend),
                     lambda x: x @ np.ones((3, 2), np.float32))),
    ("matmul_inner", _pair(lambda x: x.T @ x, lambda x: x.T @ x)),
    ("cat", _pair(lambda x: fusion.cat([x, fusion.ones(1, 3, backend=x.backend)]),
                  lambda x: np.concatenate([x, np.ones((1, 3), np.float32)]))),
    ("getitem", lambda x: x[:, 1:]),
]

NON_CONTIGUOUS = {
    "transposed": _pair(lambda x: x.T, lambda x: x.T),
    "flipped": _pair(lambda x: x.flip(0), lambda x: x[::-1]),
    "sliced": lambda x: x[1:, ::2],
    "negative_step": lambda x: x[::-2, 1:],
    "permuted_then_reshaped": _pair(lambda x: x.T.reshape(2, -1),
                                    lambda x: x.T.reshape(2, -1)),
}

CONSUMERS = [
    ("exp", _pair(lambda x: x.exp(), np.exp)),
    ("add_self_T", _pair(lambda x: x + x.flip(), lambda x: x + np.flip(x))),
    ("sum_0", _pair(lambda x: x.sum(0), lambda x: x.sum(0))),
    ("max_1", _pair(lambda x: x.max(1), lambda x: x.max(1))),
    ("softmax", _pair(lambda x: x.softmax(-1), _softmax)),
    ("matmul", _pair(lambda x: x @ x.T, lambda x: x @ x.T)),
    ("reshape", _pair(lambda x: x.reshape(-1), lambda x: x.reshape(-1))),
    ("cast", _pair(lambda x: (x * 10).cast("int32"), lambda x: (x * 10).astype(np.int32))),
    ("pad", _pair(lambda x: x.pad(((0, 1), (1, 0))), lambda x: np.pad(x, ((0, 1), (1, 0))))),
]


class TestEdgeCases:
    """Shapes (), size 0 and size 1; non-contiguous inputs; numerically hard inputs."""

    @pytest.mark.parametrize("name, fn", SCALAR_OPS, ids=[s[0] for s in SCALAR_OPS])
    def test_scalar(self, backend, name, fn):
        check_op(backend, [()], fn)

    @pytest.mark.parametrize("shape", [(0, 3), (2, 0, 3)], ids=str)
    @pytest.mark.parametrize("name, fn", EMPTY_OPS[:4], ids=[s[0] for s in EMPTY_OPS[:4]])
    def test_size_zero_any_rank(self, backend, shape, name, fn):
        check_op(backend, [shape], fn)

    @pytest.mark.parametrize("name, fn", EMPTY_OPS, ids=[s[0] for s in EMPTY_OPS])
    def test_size_zero(self, backend, name, fn):
        check_op(backend, [(0, 3)], fn)

    def test_mean_of_nothing_is_nan(self, backend):
        x = fusion.zeros(0, 3, backend=backend)
        assert np.isnan(x.mean().item())
        np.testing.assert_array_equal(x.mean(0).numpy(), np.full(3, np.nan, np.float32))

    def test_max_of_nothing_is_an_error(self, backend):
        with pytest.raises(ValueError, match="empty"):
            fusion.zeros(0, 3, backend=backend).max(0)

    @pytest.mark.parametrize("shape", [(1,), (1, 1), (3, 1), (1, 4), (1, 1, 1)], ids=str)
    def test_size_one(self, backend, shape):
        for fn in (lambda x: x.sum(0), _pair(lambda x: x.max(-1), lambda x: x.max(-1)),
                   _pair(lambda x: x.softmax(0), lambda x: _softmax(x, 0)),
                   lambda x: x * np.ones((2, 1, *shape[1:]), np.float32),
                   _pair(lambda x: x.squeeze(), np.squeeze), lambda x: x[0]):
            check_op(backend, [shape], fn)

    @pytest.mark.parametrize("consumer, fn", CONSUMERS, ids=[c[0] for c in CONSUMERS])
    @pytest.mark.parametrize("view", list(NON_CONTIGUOUS))
    def test_non_contiguous(self, backend, view, consumer, fn):
        make = NON_CONTIGUOUS[view]
        check_op(backend, [(4, 6)], lambda x: fn(make(x)))

    @pytest.mark.parametrize("layout", ["transposed", "flipped", "strided"])
    def test_non_contiguous_numpy_input(self, backend, layout):
        base = np.random.default_rng(0).uniform(-2, 2, (4, 6)).astype(np.float32)
        array = {"transposed": base.T, "flipped": base[::-1, ::-1], "strided": base[::2, 1::2]}
        check_op(backend, [array[layout]], lambda x: (x * 2).sum(-1) + x.max(-1))

    # --- numerically hard inputs ---------------------------------------------------------
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("values", [[1000.0, 1000.0, 1001.0], [-1000.0, -1001.0, -1000.5],
                                        [3e4, -3e4, 0.0]], ids=str)
    def test_softmax_of_large_values(self, backend, dtype, values):
        x = np.array([values, [0.0, 1.0, 2.0]], dtype=dtype)
        for fn, ref in [(lambda t: t.softmax(-1), _softmax),
                        (lambda t: t.log_softmax(-1), _log_softmax),
                        (lambda t: t.logsumexp(-1), lambda a: np.log(np.sum(
                            np.exp(a - a.max(-1, keepdims=True)), -1)) + a.max(-1))]:
            out = check_op(backend, [x], fn, ref, dtype=dtype)
            assert np.isfinite(out.numpy()).all()

    def test_cross_entropy_of_large_logits(self, backend):
        logits = np.array([[1000.0, -1000.0, 0.0], [0.0, 5000.0, 4999.0]], np.float32)
        labels = np.array([1, 2])
        out = check_op(backend, [logits, labels], lambda x, t: F.cross_entropy(x, t),
                       lambda x, t: -_log_softmax(x)[np.arange(2), t].mean())
        assert np.isfinite(out.item())

    def test_logsumexp_of_infinities(self, backend):
        x = fusion.Tensor([[-np.inf, -np.inf], [np.inf, 1.0], [-np.inf, 0.0]], backend=backend)
        out = x.logsumexp(-1).numpy()
        np.testing.assert_array_equal(out, [-np.inf, np.inf, 0.0])

    def test_log_and_division_at_zero(self, backend):
        x = fusion.Tensor([0.0, -1.0, 1.0], backend=backend)
        np.testing.assert_array_equal(x.log().numpy(), [-np.inf, np.nan, 0.0])
        np.testing.assert_array_equal(x.sqrt().numpy(), [0.0, np.nan, 1.0])
        np.testing.assert_array_equal((1 / x).numpy(), [np.inf, -1.0, 1.0])
        np.testing.assert_array_equal((x / 0).numpy(), [np.nan, -np.inf, np.inf])
        np.testing.assert_array_equal(x.log2().numpy(), [-np.inf, np.nan, 0.0])

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_exp_overflow_and_saturating_functions(self, backend, dtype):
        x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
        with np.errstate(over="ignore"):
            cases = [
                (lambda t: t.exp(), np.exp),
                (lambda t: t.sigmoid(), lambda a: 0.5 * (1 + np.tanh(a / 2))),
                (lambda t: t.tanh(), np.tanh),
                (lambda t: t.softplus(), lambda a: np.logaddexp(0, a)),
                (lambda t: t.gelu(), _gelu),
            ]
            for fn, ref in cases:
                out = check_op(backend, [x], fn, ref, dtype=dtype, grad=False)
                if fn is not cases[0][0]:
                    assert not np.isnan(out.numpy()).any()

    def test_gradients_stay_finite_at_extremes(self, backend):
        x = fusion.Tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], requires_grad=True,
                          backend=backend)
        for fn in (lambda t: t.sigmoid(), lambda t: t.tanh(), lambda t: t.softplus(),
                   lambda t: t.softmax(-1), lambda t: t.log_softmax(-1),
                   lambda t: F.binary_cross_entropy_with_logits(t, fusion.ones_like(t)),
                   lambda t: F.binary_cross_entropy(t.sigmoid(), fusion.zeros_like(t))):
            x.grad = None
            fn(x).sum().backward()
            assert np.isfinite(x.grad.numpy()).all(), x.grad

    def test_gradients_at_kinks(self, backend):
        """Where a formula has a kink (relu, abs) but the function has none, the slope at
        0 is the function's own: softplus'(0) = sigmoid(0) = 1/2."""
        cases = [
            (lambda t: t.softplus(), 0.5), (lambda t: t.sigmoid(), 0.25),
            (lambda t: t.tanh(), 1.0), (lambda t: t.gelu(), 0.5),
            (lambda t: F.binary_cross_entropy_with_logits(t, fusion.zeros_like(t)), 0.5),
            (lambda t: F.binary_cross_entropy_with_logits(t, fusion.ones_like(t)), -0.5),
            (lambda t: t.relu(), 0.0), (lambda t: abs(t), 0.0),  # the usual subgradient
        ]
        for k, (fn, slope) in enumerate(cases):
            x = fusion.zeros(1, requires_grad=True, backend=backend)
            fn(x).sum().backward()
            np.testing.assert_allclose(x.grad.numpy(), [slope], atol=1e-7, err_msg=f"case {k}")

    def test_losses_at_extremes_are_finite(self, backend):
        logits = fusion.Tensor([-1000.0, 1000.0, 0.0], backend=backend)
        targets = fusion.Tensor([1.0, 0.0, 1.0], backend=backend)
        np.testing.assert_allclose(
            F.binary_cross_entropy_with_logits(logits, targets, reduction="none").numpy(),
            [1000.0, 1000.0, np.log(2)], rtol=1e-6)
        probs = fusion.Tensor([0.0, 1.0, 0.5], backend=backend)
        assert np.isfinite(F.binary_cross_entropy(probs, targets).item())

    def test_nan_propagates(self, backend):
        x = fusion.Tensor([[1.0, np.nan], [2.0, 3.0]], backend=backend)
        np.testing.assert_array_equal(x.sum(1).numpy(), [np.nan, 5.0])
        np.testing.assert_array_equal(x.max(1).numpy(), [np.nan, 3.0])
        np.testing.assert_array_equal(x.isnan().numpy(), [[False, True], [False, False]])

    @pytest.mark.parametrize("dtype, big", [("int32", 2**31 - 1), ("int64", 2**63 - 1)])
    def test_integer_overflow_wraps(self, backend, dtype, big):
        x = fusion.Tensor(np.array([big], dtype=dtype), backend=backend)
        assert (x + 1).item() == -big - 1


class TestErrors:
    """Bad input raises an error that says what was expected and what was given."""

    def test_shape_mismatch_names_both_shapes(self, backend):
        x, y = fusion.zeros(2, 3, backend=backend), fusion.zeros(4, backend=backend)
        for op in (lambda: x + y, lambda: x * y, lambda: x.maximum(y), lambda: x == y,
                   lambda: fusion.where(x > 0, x, y)):
            with pytest.raises(ValueError) as info:
                op()
            assert "(2, 3)" in str(info.value) and "(4,)" in str(info.value), info.value

    def test_matmul_mismatch(self, backend):
        x, y = fusion.zeros(2, 3, backend=backend), fusion.zeros(4, 5, backend=backend)
        with pytest.raises(ValueError) as info:
            x @ y
        assert "(2, 3)" in str(info.value) and "(4, 5)" in str(info.value)
        with pytest.raises(ValueError, match="0-d"):
            fusion.Tensor(2.0, backend=backend) @ x
        with pytest.raises(ValueError):
            fusion.zeros(2, 2, 3, backend=backend) @ fusion.zeros(3, 3, 4, backend=backend)

    @pytest.mark.parametrize("name, op", [
        ("sum", lambda x: x.sum(2)), ("sum_negative", lambda x: x.sum(-3)),
        ("sum_tuple", lambda x: x.sum((0, 5))), ("max", lambda x: x.max(7)),
        ("mean", lambda x: x.mean(2)), ("softmax", lambda x: x.softmax(2)),
        ("argmax", lambda x: x.argmax(2)), ("unsqueeze", lambda x: x.unsqueeze(4)),
        ("transpose", lambda x: x.transpose(0, 2)), ("flip", lambda x: x.flip(3)),
        ("cat", lambda x: fusion.cat([x, x], axis=2)),
        ("stack", lambda x: fusion.stack([x, x], axis=4)),
    ])
    def test_bad_axis(self, backend, name, op):
        x = fusion.zeros(2, 3, backend=backend)
        with pytest.raises(IndexError, match="axis"):
            op(x)

    def test_axis_of_wrong_type(self, backend):
        with pytest.raises(TypeError, match="axis"):
            fusion.zeros(2, 3, backend=backend).sum(1.0)

    @pytest.mark.parametrize("shape", [(5,), (2, 4), (-1, 4), (-1, -1), (7, -1), (0, -1)])
    def test_reshape_of_wrong_size(self, backend, shape):
        x = fusion.zeros(2, 3, backend=backend)
        with pytest.raises(ValueError) as info:
            x.reshape(*shape)
        assert "(2, 3)" in str(info.value) or "-1" in str(info.value), info.value

    @pytest.mark.parametrize("name, op", [
        ("squeeze", lambda x: x.squeeze(0)), ("permute", lambda x: x.permute(0, 0)),
        ("permute_short", lambda x: x.permute(1)), ("expand", lambda x: x.expand(4, 3)),
        ("expand_fewer", lambda x: x.expand(3)), ("pad", lambda x: x.pad(((1, 1),))),
        ("pad_negative", lambda x: x.pad(((0, -1), (0, 0)))),
        ("shrink", lambda x: x.shrink(((0, 3), (0, 3)))), ("repeat", lambda x: x.repeat(2)),
        ("cat_shapes", lambda x: fusion.cat([x, fusion.zeros(2, 4, backend=x.backend)])),
        ("stack_shapes", lambda x: fusion.stack([x, x.T])), ("cat_nothing", lambda x:
                                                                fusion.cat([])),
    ])
    def test_bad_movement(self, backend, name, op):
        x = fusion.zeros(2, 3, backend=backend)
        with pytest.raises(ValueError):
            op(x)

    @pytest.mark.parametrize("name, index, error", [
        ("int_out_of_range", (2,), IndexError), ("negative_out_of_range", (0, -4), IndexError),
        ("too_many", (0, 0, 0), IndexError), ("two_ellipses", (..., ...), IndexError),
        ("float", (1.5,), IndexError), ("gather_out_of_range", ([0, 3],), IndexError),
        ("gather_float", (np.array([0.0, 1.0]),), IndexError),
    ])
    def test_bad_index(self, backend, name, index, error):
        x = fusion.zeros(2, 3, backend=backend)
        with pytest.raises(error):
            x[index]

    def test_two_backends_do_not_mix(self, backend, other_backend):
        x = fusion.ones(3, backend=backend)
        y = fusion.ones(3, backend=other_backend)
        here = fusion.get_backend(backend).name
        for op in (lambda: x + y, lambda: y * x, lambda: x @ y, lambda: x.maximum(y),
                   lambda: fusion.cat([x, y]), lambda: fusion.where(x > 0, x, y),
                   lambda: x == y):
            with pytest.raises(ValueError) as info:
                op()
            assert here in str(info.value) and other_backend in str(info.value), info.value
        np.testing.assert_array_equal((x + y.to(backend)).numpy(), [2.0, 2.0, 2.0])

    def test_unknown_backend(self, backend):
        with pytest.raises(fusion.BackendNotFoundError) as info:
            fusion.ones(2, backend="no_such_backend")
        assert "no_such_backend" in str(info.value) and backend in str(info.value)
        with pytest.raises(fusion.BackendNotFoundError):
            fusion.ones(2, backend=backend).to("no_such_backend")

    def test_unknown_dtype(self, backend):
        x = fusion.ones(2, backend=backend)
        with pytest.raises(TypeError, match="float16"):
            x.cast("float16")
        with pytest.raises(TypeError, match="complex"):
            fusion.zeros(2, dtype="complex64", backend=backend)

    def test_backward_errors(self, backend):
        x = fusion.ones(2, 3, requires_grad=True, backend=backend)
        with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
            (x * 2).backward()
        with pytest.raises(RuntimeError, match="require"):
            fusion.ones(2, backend=backend).sum().backward()
        with pytest.raises(ValueError, match=r"\(3,\)"):
            (x * 2).backward(fusion.ones(3, backend=backend))
