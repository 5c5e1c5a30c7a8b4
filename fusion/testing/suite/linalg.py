"""matmul/dot with numpy's shape rules, and the losses of fusion.nn.functional, against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion.nn import functional as F

from ..oracle import check_op

MATMUL_SHAPES = [
    ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((1, 1), (1, 1)),
    ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (5, 3, 4)),
    ((3,), (2, 3, 4)), ((2, 2, 3), (3,)), ((2, 0), (0, 3)), ((0, 3), (3, 2)),
]


def _log_softmax(x):
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


def _picked(values, labels):
    """values[..., label] for each position of ``labels``."""
    return np.take_along_axis(values, labels[..., None], axis=-1)[..., 0]


def _cross_entropy_ref(reduction="mean", smoothing=0.0):
    def ref(x, labels):
        log_probs = _log_softmax(x)
        classes = x.shape[-1]
        probs = np.eye(classes, dtype=x.dtype)[labels] * (1 - smoothing) + smoothing / classes
        return _reduce(-(probs * log_probs).sum(-1), reduction)
    return ref


def _bce_ref(p, y, reduction="mean"):
    return _reduce(-(y * np.log(p) + (1 - y) * np.log(1 - p)), reduction)


def _bce_logits_ref(x, y, reduction="mean"):
    return _reduce(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))), reduction)


LABELS = np.array([2, 0, 4, 1, 2, 3], dtype=np.int64)


class TestLinalg:
    """``matmul``, ``@`` (reflected too) and ``dot`` for 1-D, 2-D and batched operands."""

    @pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
    def test_matmul(self, backend, shapes):
        check_op(backend, list(shapes), lambda x, y: x @ y)

    @pytest.mark.parametrize("shapes", MATMUL_SHAPES[:5], ids=str)
    def test_matmul_float64(self, backend, shapes):
        check_op(backend, list(shapes), lambda x, y: x @ y, dtype="float64")

    @pytest.mark.parametrize("method", ["matmul", "dot"])
    def test_methods(self, backend, method):
        check_op(backend, [(4, 3), (3, 2)],
                 lambda x, y: getattr(x, method)(y) if isinstance(x, fusion.Tensor) else x @ y)

    @pytest.mark.parametrize("dtype", ["int32", "int64"])
    def test_matmul_integers(self, backend, dtype):
        check_op(backend, [(3, 4), (4, 2)], lambda x, y: x @ y, dtype=dtype, low=-5, high=5)

    def test_matmul_bool_is_int64(self, backend):
        check_op(backend, [(3, 4), (4, 2)], lambda x, y: x @ y,
                 lambda x, y: x.astype(np.int64) @ y.astype(np.int64), dtype="bool")

    def test_matmul_promotes(self, backend):
        x = np.arange(6, dtype=np.int32).reshape(2, 3)
        check_op(backend, [x, (3, 2)], lambda a, b: a @ b, expect_dtype="float32")

    @pytest.mark.parametrize("name, fn", [
        ("array_operand", lambda x: x @ np.ones((4, 2), np.float32)),
        ("reflected_array", lambda x: np.ones((2, 3), np.float32) @ x),
        ("list_operand", lambda x: x @ [1.0, 2.0, 0.5, -1.0]),
    ])
    def test_matmul_with_arrays(self, backend, name, fn):
        check_op(backend, [(3, 4)], fn, expect_dtype="float32")

    @pytest.mark.parametrize("shapes", [((3,), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                                        ((2, 1, 2, 3), (5, 3, 4)), ((2, 0), (0, 3))], ids=str)
    @pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
    def test_matmul_without_the_fast_path(self, backend, shapes, dtype, monkeypatch):
        """Without the optional contraction, matmul is SUM of MUL of expanded views."""
        monkeypatch.setattr(fusion.get_backend(backend), "contract", None, raising=False)
        check_op(backend, list(shapes), lambda x, y: x @ y, dtype=dtype, low=-3, high=3)

    def test_matmul_larger(self, backend):
        check_op(backend, [(16, 32), (32, 8)], lambda x, y: x @ y, dtype="float32", rtol=1e-4,
                 atol=1e-4, grad=False)


class TestLosses:
    """cross_entropy (labels, probabilities, smoothing), nll_loss, binary_cross_entropy (with
    logits), mse_loss: forward against numpy, gradients against finite differences."""

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_cross_entropy_labels(self, backend, reduction):
        check_op(backend, [(6, 5), LABELS],
                 lambda x, t: F.cross_entropy(x, t, reduction=reduction),
                 _cross_entropy_ref(reduction), low=-3, high=3)

    def test_cross_entropy_method_and_int32_labels(self, backend):
        check_op(backend, [(6, 5), LABELS.astype(np.int32)], lambda x, t: x.cross_entropy(t),
                 _cross_entropy_ref())

    def test_cross_entropy_label_smoothing(self, backend):
        check_op(backend, [(6, 5), LABELS],
                 lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
                 _cross_entropy_ref(smoothing=0.1))

    def test_cross_entropy_more_dimensions(self, backend):
        labels = LABELS.reshape(2, 3)
        check_op(backend, [(2, 3, 5), labels], lambda x, t: F.cross_entropy(x, t),
                 _cross_entropy_ref())

    @pytest.mark.parametrize("reduction", ["mean", "sum"])
    def test_cross_entropy_probabilities(self, backend, reduction):
        probs = np.random.default_rng(5).dirichlet(np.ones(5), size=6).astype(np.float32)
        check_op(backend, [(6, 5), probs],
                 lambda x, p: F.cross_entropy(x, p, reduction=reduction),
                 lambda x, p: _reduce(-(p * _log_softmax(x)).sum(-1), reduction))

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_nll_loss(self, backend, reduction):
        check_op(backend, [(6, 5), LABELS],
                 lambda x, t: F.nll_loss(x.log_softmax(-1), t, reduction=reduction),
                 lambda x, t: _reduce(-_picked(_log_softmax(x), t), reduction))

    def test_nll_loss_of_raw_values(self, backend):
        check_op(backend, [(6, 5), LABELS], lambda x, t: F.nll_loss(x, t),
                 lambda x, t: -_picked(x, t).mean())

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_binary_cross_entropy(self, backend, reduction):
        targets = (np.random.default_rng(1).random((4, 3)) < 0.5).astype(np.float32)
        check_op(backend, [(4, 3), targets],
                 lambda p, y: F.binary_cross_entropy(p, y, reduction=reduction),
                 lambda p, y: _bce_ref(p, y, reduction), low=0.05, high=0.95)

    def test_binary_cross_entropy_method_soft_targets(self, backend):
        check_op(backend, [(4, 3), (4, 3)], lambda p, y: p.binary_cross_entropy(y), _bce_ref,
                 low=0.05, high=0.95)

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_binary_cross_entropy_with_logits(self, backend, reduction):
        targets = (np.random.default_rng(1).random((4, 3)) < 0.5).astype(np.float32)
        check_op(backend, [(4, 3), targets],
                 lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=reduction),
                 lambda x, y: _bce_logits_ref(x, y, reduction), low=-4, high=4)

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_mse_loss(self, backend, reduction):
        check_op(backend, [(4, 3), (4, 3)],
                 lambda x, y: F.mse_loss(x, y, reduction=reduction),
                 lambda x, y: _reduce((x - y) ** 2, reduction))

    def test_losses_float64(self, backend):
        check_op(backend, [(6, 5), LABELS], lambda x, t: F.cross_entropy(x, t),
                 _cross_entropy_ref(), dtype="float64")
        check_op(backend, [(5,), (5,)], F.binary_cross_entropy_with_logits, _bce_logits_ref,
                 dtype="float64")

    @pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
    def test_bad_labels(self, backend, loss):
        x = fusion.zeros(3, 4, backend=backend)
        with pytest.raises(ValueError, match=r"\[0, 4\)"):
            getattr(F, loss)(x, fusion.Tensor([0, 4, 1], backend=backend))
        with pytest.raises(ValueError, match=r"\(2,\)"):
            getattr(F, loss)(x, fusion.Tensor([0, 1], backend=backend))

    def test_bad_reduction(self, backend):
        x = fusion.zeros(3, backend=backend)
        with pytest.raises(ValueError, match="reduction"):
            F.mse_loss(x, x, reduction="average")
