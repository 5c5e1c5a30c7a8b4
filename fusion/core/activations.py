"""More elementwise math and activations, composed from the primitives.

Rounding ops and ``sign`` are differentiable the way PyTorch treats them: their gradient is
zero (not an error), so ``(x.sign() + 1).sum().backward()`` works and gives ``x.grad == 0``.
Activations with an exponential branch take the exponential only of the side WHERE keeps
(``exp(min(x, 0))``), so that the other side's overflow never turns a gradient into nan.
"""

from __future__ import annotations

import math

from .dtypes import bool_, float32, int64
from .tensor import Tensor, full


def zero_gradient(x: Tensor, value: Tensor) -> Tensor:
    """``value``, in ``x``'s graph with a zero gradient for ``x`` (a WHERE that never picks
    ``x``: unlike ``x * 0``, it cannot turn an inf into nan)."""
    if not x.requires_grad:
        return value
    never = full(x.shape, False, backend=x.data.backend)
    return never.where(x, value)


# --- rounding -------------------------------------------------------------------------------
def _exact_limit(x: Tensor) -> float:
    """From this magnitude on, every float of ``x``'s dtype is an integer."""
    return 2.0 ** 23 if x.dtype is float32 else 2.0 ** 52


def trunc(x: Tensor) -> Tensor:
    """Round toward zero (exact for every float; inf and nan stay)."""
    if not x.dtype.is_float:
        return x
    v = x.detach()
    small = v.abs() < _exact_limit(v)  # False for inf and nan, which stay as they are
    whole = small.where(v, 0.0).cast(int64).cast(v.dtype)
    return zero_gradient(x, small.where(whole, v))


def floor(x: Tensor) -> Tensor:
    """Round down."""
    if not x.dtype.is_float:
        return x
    t = trunc(x.detach())
    return zero_gradient(x, t - (x.detach() < t).cast(x.dtype))


def ceil(x: Tensor) -> Tensor:
    """Round up."""
    if not x.dtype.is_float:
        return x
    t = trunc(x.detach())
    return zero_gradient(x, t + (t < x.detach()).cast(x.dtype))


def round_half_even(x: Tensor, decimals: int = 0) -> Tensor:
    """Round to the nearest integer, ties to even (numpy's and PyTorch's rule); with
    ``decimals``, to that many digits after the point."""
    if not x.dtype.is_float:
        return x
    v = x.detach()
    if decimals:
        scale = 10.0 ** decimals
        return zero_gradient(x, round_half_even(v * scale) / scale)
    low = floor(v)
    part = v - low  # exact: in [0, 1)
    odd = (low - floor(low * 0.5) * 2.0) == 1.0
    up = (part > 0.5) | ((part == 0.5) & odd)
    out = low + up.cast(v.dtype)
    return zero_gradient(x, (v == v).where(out, v))  # nan stays nan


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 (nan for nan), in ``x``'s dtype, with a zero gradient."""
    if x.dtype is bool_:
        return x
    v = x.detach()
    zero = v._operand(0)
    out = (zero < v).cast(v.dtype) - (v < zero).cast(v.dtype)
    if v.dtype.is_float:
        out = (v == v).where(out, v)
    return zero_gradient(x, out)


# --- math -----------------------------------------------------------------------------------
def tan(x: Tensor) -> Tensor:
    return x.sin() / x.cos()


def exp2(x: Tensor) -> Tensor:
    return (x._float() * math.log(2.0)).exp()


# --- activations ----------------------------------------------------------------------------
def _expm1_below_zero(x: Tensor) -> Tensor:
    """exp(min(x, 0)) - 1: the negative branch of the ELU family, safe on the other side."""
    return (x < 0).where(x, 0.0).exp() - 1.0


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (e^x - 1) below."""
    x = x._float()
    return (x > 0).where(x, _expm1_below_zero(x) * alpha)


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """max(0, x) + min(0, alpha (e^(x / alpha) - 1))."""
    x = x._float()
    return (x > 0).where(x, _expm1_below_zero(x / alpha) * alpha)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x: Tensor) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants."""
    return elu(x, _SELU_ALPHA) * _SELU_SCALE


def relu6(x: Tensor) -> Tensor:
    """min(max(x, 0), 6)."""
    return x.relu().minimum(6)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clipped to [min_val, max_val]."""
    return x.clip(min_val, max_val)


def hardsigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6."""
    return relu6(x._float() + 3.0) * (1.0 / 6.0)


def hardswish(x: Tensor) -> Tensor:
    """x * relu6(x + 3) / 6."""
    x = x._float()
    return x * hardsigmoid(x)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    x = x._float()
    return x * x.sigmoid()


def quick_gelu(x: Tensor) -> Tensor:
    """x * sigmoid(1.702 x), the fast GELU approximation."""
    x = x._float()
    return x * (x * 1.702).sigmoid()


def mish(x: Tensor) -> Tensor:
    """x * tanh(softplus(x))."""
    x = x._float()
    return x * x.softplus().tanh()


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    x = x._float()
    return x / (x.abs() + 1.0)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch's rule)."""
    x = x._float()
    scaled = x * beta if beta != 1.0 else x
    negative = scaled < 0  # max(s, 0) + log(1 + e^-|s|): nothing overflows
    smooth = negative.where(0.0, scaled) + (negative.where(scaled, -scaled).exp() + 1.0).log()
    if beta != 1.0:
        smooth = smooth / beta
    return (scaled > threshold).where(x, smooth)


def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    return -softplus(-x._float())
