"""Autograd behaviour (needs_input_grad, accumulation, no_grad, deep graphs, gradcheck) and
end-to-end training of small models, on each backend."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion.core import autograd
from fusion.core.buffer import Buffer
from fusion.core.tensor import _apply
from fusion.nn import functional as F


class _Square(autograd.Function):
    """x * x as one Function, written by a user."""

    def forward(self, x):
        self.x = x
        return x.mul(x)

    def backward(self, grad):
        return grad.mul(self.x).mul(self.x.const(2))


class _BrokenSquare(_Square):
    """x * x with a wrong gradient (x instead of 2x): what gradcheck exists to catch."""

    def backward(self, grad):
        return grad.mul(self.x)


def _leaf(values, backend, dtype="float32"):
    return fusion.Tensor(values, dtype=dtype, requires_grad=True, backend=backend)


class TestAutograd:
    """needs_input_grad, accumulation in .grad, no_grad, detach, deep graphs, gradcheck."""

    def test_constant_exponent_gets_no_gradient(self, backend, monkeypatch):
        x = _leaf([1.0, 2.0, 3.0], backend)
        out = x**3.0
        assert out._ctx.needs_input_grad == (True, False)

        # d(x**p)/dp needs log(x); with p constant, backward must never compute it
        def refuse(self):
            raise AssertionError("computed the gradient of a constant exponent")

        monkeypatch.setattr(Buffer, "log", refuse)
        out.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0, 27.0])

    def test_exponent_tensor(self, backend):
        x = _leaf([1.0, 2.0, 3.0], backend)
        p = fusion.Tensor(2.5, backend=backend)
        (x**p).sum().backward()
        assert p.grad is None
        np.testing.assert_allclose(x.grad.numpy(), 2.5 * np.array([1.0, 2.0, 3.0]) ** 1.5,
                                   rtol=1e-6)
        p = _leaf(2.5, backend)
        x.grad = None
        (x**p).sum().backward()
        expected = (np.array([1.0, 2.0, 3.0]) ** 2.5 * np.log([1.0, 2.0, 3.0])).sum()
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-5)

    def test_constant_operands_get_no_gradient(self, backend):
        x = _leaf([1.0, 2.0], backend)
        c = fusion.Tensor([3.0, 4.0], backend=backend)
        for out in (x * c, c * x, x / c, c - x, fusion.where(c > 3, x, c), x.maximum(c)):
            grads = out._ctx.needs_input_grad
            assert grads.count(True) == 1, (out._op, grads)
        (x * c).sum().backward()
        assert c.grad is None and not c.requires_grad

    def test_gradients_accumulate_until_zeroed(self, backend):
        x = _leaf([1.0, -2.0], backend)
        (x * x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0])
        (x * 3).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [5.0, -1.0])
        x.zero_grad()
        assert x.grad is None
        (x * x + x).sum().backward()  # two paths to x within one graph add up too
        np.testing.assert_allclose(x.grad.numpy(), [3.0, -3.0])

    def test_only_leaves_keep_gradients(self, backend):
        x = _leaf([1.0, 2.0], backend)
        hidden = x * 2
        (hidden * hidden).sum().backward()
        assert hidden.grad is None
        np.testing.assert_allclose(x.grad.numpy(), [8.0, 16.0])

    def test_backward_with_gradient(self, backend):
        x = _leaf([[1.0, 2.0], [3.0, 4.0]], backend)
        (x * x).backward(fusion.Tensor([[1.0, 0.0], [0.5, 2.0]], backend=backend))
        np.testing.assert_allclose(x.grad.numpy(), [[2.0, 0.0], [3.0, 16.0]])

    def test_backward_of_a_leaf(self, backend):
        x = _leaf(3.0, backend)
        x.backward()
        assert x.grad.item() == 1.0

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_gradient_has_the_leaf_dtype(self, backend, dtype):
        from ..fixtures import skip_unless_supported

        skip_unless_supported(backend, dtype)
        x = _leaf([1.0, 2.0], backend, dtype)
        (x.cast("float32") * 2).sum().backward()
        assert x.grad.dtype.name == dtype and x.grad.backend == backend

    def test_no_grad(self, backend):
        x = _leaf([1.0, 2.0], backend)
        assert fusion.is_grad_enabled()
        with fusion.no_grad():
            assert not fusion.is_grad_enabled()
            y = (x * 2).exp().sum()
            assert not y.requires_grad and y._ctx is None
            with fusion.enable_grad():
                z = x * 2
                assert z.requires_grad
        assert fusion.is_grad_enabled()
        np.testing.assert_allclose(y.item(), np.exp(2) + np.exp(4), rtol=1e-6)
        with pytest.raises(RuntimeError):
            y.backward()
        (x * 2).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])

    def test_no_grad_restores_after_an_error(self, backend):
        with pytest.raises(ZeroDivisionError):
            with fusion.no_grad():
                raise ZeroDivisionError
        assert fusion.is_grad_enabled()

    def test_detach_stops_the_gradient(self, backend):
        x = _leaf([1.0, 2.0], backend)
        y = x * x
        (y.detach() * x).sum().backward()  # d/dx of c * x with c = x*x held constant
        np.testing.assert_allclose(x.grad.numpy(), [1.0, 4.0])

    def test_deep_chain(self, backend):
        """10,000 steps, each y = y/2 + y/2 (two paths per step): no recursion limit hit,
        and the gradient (exactly 1) survives the shared nodes."""
        x = _leaf([1.5, -0.5], backend)
        y = x
        for _ in range(10_000):
            y = y * 0.5 + y * 0.5
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
        np.testing.assert_array_equal(y.numpy(), [1.5, -0.5])

    def test_gradcheck_passes_on_compositions(self, backend):
        fusion.manual_seed(0)
        a, b = fusion.randn(3, 4, backend=backend), fusion.randn(4, 2, backend=backend)
        assert fusion.gradcheck(lambda x, y: (x @ y).tanh().softmax(-1), [a, b])
        assert fusion.gradcheck(lambda x: x.logsumexp(0) * x.std(0), [a])
        assert fusion.gradcheck(lambda x: x[1:, ::-2].sigmoid().prod(), [a])

    def test_gradcheck_catches_a_wrong_gradient(self, backend):
        x = fusion.Tensor([0.5, -1.0, 2.0], backend=backend)
        with pytest.raises(fusion.GradcheckError, match="input 0"):
            fusion.gradcheck(lambda t: _apply(_BrokenSquare, t), [x])
        assert fusion.gradcheck(lambda t: _apply(_Square, t), [x])

    def test_graph_records_the_op(self, backend):
        x = _leaf([1.0, 2.0], backend)
        y = (x * 2).exp()
        assert y._op == "Exp" and y._ctx.parents[0]._op == "Mul"
        assert x._op is None and x._ctx is None


def _sgd(params, lr):
    return [(p - lr * p.grad).detach().requires_grad_() for p in params]


class TestEndToEnd:
    """Small models train with manual SGD on ``.grad``."""

    def test_mlp_learns_xor(self, backend):
        fusion.manual_seed(0)
        x = fusion.Tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], backend=backend)
        y = fusion.Tensor([[0.0], [1.0], [1.0], [0.0]], backend=backend)
        params = [fusion.randn(2, 8, backend=backend, requires_grad=True),
                  fusion.zeros(8, backend=backend, requires_grad=True),
                  fusion.randn(8, 1, backend=backend, requires_grad=True),
                  fusion.zeros(1, backend=backend, requires_grad=True)]
        losses = []
        for _ in range(400):
            w1, b1, w2, b2 = params
            logits = (x @ w1 + b1).tanh() @ w2 + b2
            loss = F.binary_cross_entropy_with_logits(logits, y)
            loss.backward()
            losses.append(loss.item())
            params = _sgd(params, 0.5)
        assert losses[-1] < 0.05, losses[::50]
        w1, b1, w2, b2 = params
        predicted = ((x @ w1 + b1).tanh() @ w2 + b2 > 0).numpy()
        np.testing.assert_array_equal(predicted, y.numpy() > 0.5)

    def test_softmax_classifier_on_blobs(self, backend):
        rng = np.random.default_rng(1)
        centers = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.5]])
        labels = rng.integers(0, 3, 300)
        points = centers[labels] + rng.normal(0, 0.7, (300, 2))
        x = fusion.Tensor(points.astype(np.float32), backend=backend)
        t = fusion.Tensor(labels, backend=backend)
        fusion.manual_seed(1)
        params = [(fusion.randn(2, 16, backend=backend) * 0.5).requires_grad_(),
                  fusion.zeros(16, backend=backend, requires_grad=True),
                  (fusion.randn(16, 3, backend=backend) * 0.5).requires_grad_(),
                  fusion.zeros(3, backend=backend, requires_grad=True)]
        for _ in range(150):
            w1, b1, w2, b2 = params
            loss = F.cross_entropy((x @ w1 + b1).relu() @ w2 + b2, t)
            loss.backward()
            params = _sgd(params, 0.3)
        w1, b1, w2, b2 = params
        accuracy = ((((x @ w1 + b1).relu() @ w2 + b2).argmax(-1) == t).float().mean().item())
        assert loss.item() < 0.3 and accuracy > 0.9, (loss.item(), accuracy)
