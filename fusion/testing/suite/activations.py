"""Rounding, sign, tan, exp2 and the activations against numpy, with gradients (zero for
rounding and sign, as PyTorch has them)."""

from __future__ import annotations

import numpy as np
import pytest

import fusion

from ..oracle import assert_close, check_op


def _pair(fusion_fn, numpy_fn):
    return lambda *xs: fusion_fn(*xs) if isinstance(xs[0], fusion.Tensor) else numpy_fn(*xs)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.logaddexp(0, beta * x) / beta)


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)

ACTIVATIONS = [
    ("tan", _pair(lambda x: x.tan(), np.tan)),
    ("exp2", _pair(lambda x: x.exp2(), np.exp2)),
    ("elu", _pair(lambda x: x.elu(), _elu)),
    ("elu_alpha", _pair(lambda x: x.elu(0.5), lambda x: _elu(x, 0.5))),
    ("celu", _pair(lambda x: x.celu(2.0), lambda x: np.maximum(x, 0) + np.minimum(
        0, 2.0 * np.expm1(x / 2.0)))),
    ("selu", _pair(lambda x: x.selu(), lambda x: SELU[1] * _elu(x, SELU[0]))),
    ("relu6", _pair(lambda x: (x * 4).relu6(), lambda x: np.clip(x * 4, 0, 6))),
    ("hardtanh", _pair(lambda x: x.hardtanh(-0.5, 1.5), lambda x: np.clip(x, -0.5, 1.5))),
    ("hardsigmoid", _pair(lambda x: (x * 3).hardsigmoid(),
                          lambda x: np.clip(x * 3 / 6 + 0.5, 0, 1))),
    ("hardswish", _pair(lambda x: (x * 3).hardswish(),
                        lambda x: x * 3 * np.clip(x * 3 + 3, 0, 6) / 6)),
    ("silu", _pair(lambda x: x.silu(), lambda x: x * _sigmoid(x))),
    ("quick_gelu", _pair(lambda x: x.quick_gelu(), lambda x: x * _sigmoid(1.702 * x))),
    ("mish", _pair(lambda x: x.mish(), lambda x: x * np.tanh(np.logaddexp(0, x)))),
    ("softsign", _pair(lambda x: x.softsign(), lambda x: x / (1 + np.abs(x)))),
    ("softplus_beta", _pair(lambda x: x.softplus(2.0, 3.0), lambda x: _softplus(x, 2.0, 3.0))),
    ("logsigmoid", _pair(lambda x: x.logsigmoid(), lambda x: -np.logaddexp(0, -x))),
]

ROUNDING = [
    ("floor", _pair(lambda x: x.floor(), np.floor)),
    ("ceil", _pair(lambda x: x.ceil(), np.ceil)),
    ("trunc", _pair(lambda x: x.trunc(), np.trunc)),
    ("round", _pair(lambda x: x.round(), np.round)),
    ("round_decimals", _pair(lambda x: x.round(2), lambda x: np.round(x, 2))),
    ("sign", _pair(lambda x: x.sign(), np.sign)),
    ("abs", _pair(lambda x: x.abs(), np.abs)),
]

# halves (ties to even), huge values, infinities, nan, negative zero
AWKWARD = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997, -0.0, 3e9, -7e30, 8388607.5,
                    np.inf, -np.inf, np.nan, -3.7, 3.7], np.float32)


class TestActivations:
    @pytest.mark.parametrize("name, fn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
    def test_activation(self, backend, name, fn):
        check_op(backend, [(3, 7)], fn, low=-3.0, high=3.0, grad_rtol=1e-3)

    @pytest.mark.parametrize("name, fn", ROUNDING, ids=[r[0] for r in ROUNDING])
    def test_rounding_values_and_zero_gradient(self, backend, name, fn):
        check_op(backend, [(4, 5)], fn, low=-4.0, high=4.0)

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("name, fn", ROUNDING[:-1], ids=[r[0] for r in ROUNDING[:-1]])
    def test_rounding_of_awkward_values(self, backend, name, fn, dtype):
        values = AWKWARD.astype(dtype)
        check_op(backend, [values], fn, dtype=dtype, grad=False, rtol=0, atol=0)

    @pytest.mark.parametrize("dtype", ["int32", "int64"])
    def test_rounding_and_sign_of_integers(self, backend, dtype):
        for _name, fn in ROUNDING:
            check_op(backend, [(3, 4)], fn, dtype=dtype, low=-5, high=5)

    def test_sign_has_a_zero_gradient(self, backend):
        x = fusion.Tensor([-2.0, 0.0, 3.0, np.inf], requires_grad=True, backend=backend)
        (x.sign() + 1).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 0.0])
        x.grad = None
        (x.floor() * 2 + x.round()).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 0.0])

    @pytest.mark.parametrize("name", ["elu", "celu", "selu", "mish", "softplus", "logsigmoid"])
    def test_no_nan_gradient_from_large_inputs(self, backend, name):
        x = fusion.Tensor([-200.0, -30.0, 0.0, 30.0, 200.0], requires_grad=True, backend=backend)
        out = getattr(x, name)()
        out.sum().backward()
        assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all()
        slope = {"selu": SELU[1], "logsigmoid": 0.0}.get(name, 1.0)  # at x = 200
        assert_close(x.grad.numpy()[-1:], np.array([slope]), "float32")
