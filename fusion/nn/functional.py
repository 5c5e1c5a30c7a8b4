"""Losses and activations as functions of Tensors, stable for training.

Every function here is a composition of Tensor methods, so it runs and differentiates on any
backend.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.tensor import (
    Tensor,
    _check_labels,
    _label_mask,
    arange,
    one_hot,  # noqa: F401  (it lives with the Tensor's cross_entropy)
)
from ..core.tensor import _reduce_loss as _reduce


def nll_loss(log_probs: Tensor, target, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer labels under rows of log-probabilities (..., C)."""
    target = log_probs._operand(target)
    _check_labels(log_probs, target)
    # select, not multiply by a one-hot row: 0 * -inf at another class would be nan
    picked = _label_mask(target, log_probs.shape[-1]).where(log_probs, 0.0).sum(-1)
    return _reduce(-picked, reduction)


def cross_entropy(logits: Tensor, target, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of raw scores (..., C) against integer labels (...) or probabilities
    (..., C), computed through log_softmax so that no score overflows."""
    return logits.cross_entropy(target, reduction, label_smoothing)


def binary_cross_entropy(probs: Tensor, target, reduction: str = "mean",
                         eps: float = 1e-7) -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) with p clamped to [eps, 1 - eps], so log(0) never
    appears."""
    return probs.binary_cross_entropy(target, reduction, eps)


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of raw scores: log(1 + e^x) - x y, with softplus's stable form."""
    target = logits._operand(target).cast(logits.dtype)
    if target.shape != logits.shape:
        raise ValueError(f"targets of shape {target.shape} do not fit {logits.shape}")
    loss = logits.softplus() - logits * target
    return _reduce(loss, reduction)


def mse_loss(prediction: Tensor, target, reduction: str = "mean") -> Tensor:
    target = prediction._operand(target)
    if target.shape != prediction.shape:
        raise ValueError(f"targets of shape {target.shape} do not fit {prediction.shape}")
    return _reduce((prediction - target).square(), reduction)


def relu(x: Tensor) -> Tensor:
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return x.leaky_relu(negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def gelu(x: Tensor) -> Tensor:
    return x.gelu()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.softmax(axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x.log_softmax(axis)


# Abramowitz and Stegun 7.1.26: |error| <= 1.5e-7 over the real line, float32's resolution.
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: Tensor) -> Tensor:
    """The error function, to within 1.5e-7 (a rational approximation built from exp, so
    every backend runs and differentiates it).

    >>> round(erf(fusion.Tensor([0.5])).item(), 4)
    0.5205
    """
    x = x._float()
    # the sign as -1 or +1 (never 0), so that the gradient at 0 is the slope of erf there
    sign = (x < 0).cast(x.dtype) * -2.0 + 1.0
    t = (x * sign * _ERF_P + 1.0).reciprocal()
    poly = t * (_ERF_A[0] + t * (_ERF_A[1] + t * (_ERF_A[2] + t * (_ERF_A[3] + t * _ERF_A[4]))))
    return sign * (1.0 - poly * (-(x * x)).exp())


def gelu_exact(x: Tensor) -> Tensor:
    """GELU as defined, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), rather than the tanh
    approximation of :func:`gelu`.

    >>> round(gelu_exact(fusion.Tensor([1.0])).item(), 4)
    0.8413
    """
    x = x._float()
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


# --- convolution, pooling, normalisation, embedding, attention --------------------------------
def _check_spatial(x: Tensor, weight: Tensor, n: int, name: str) -> None:
    if weight.ndim != n + 2:
        raise ValueError(f"{name} needs a weight of shape (F, C / groups, {n} kernel sizes), "
                         f"got {weight.shape}")
    if x.ndim not in (n + 1, n + 2):
        raise ValueError(f"{name} expects input of shape (N, C, {n} spatial axes) or (C, {n} "
                         f"spatial axes), got {x.shape}")


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-d convolution of (N, C, L) with a weight of shape (F, C / groups, k)."""
    _check_spatial(x, weight, 1, "conv1d")
    return x.conv2d(weight, bias, stride, padding, dilation, groups)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-d convolution of (N, C, H, W) with a weight of shape (F, C / groups, kh, kw).

    >>> conv2d(fusion.ones(1, 1, 3, 3), fusion.ones(1, 1, 2, 2)).shape
    (1, 1, 2, 2)
    """
    _check_spatial(x, weight, 2, "conv2d")
    return x.conv2d(weight, bias, stride, padding, dilation, groups)


def conv3d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """3-d convolution of (N, C, D, H, W) with a weight of shape (F, C / groups, kd, kh, kw)."""
    _check_spatial(x, weight, 3, "conv3d")
    return x.conv2d(weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-d transposed convolution with a weight of shape (C, F / groups, kh, kw)."""
    _check_spatial(x, weight, 2, "conv_transpose2d")
    return x.conv_transpose2d(weight, bias, stride, padding, output_padding, groups, dilation)


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False) -> Tensor:
    """The maximum of each window of the last two axes (``stride`` defaults to the kernel)."""
    return x.max_pool2d(kernel_size, stride, padding, dilation, ceil_mode)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """The mean of each window of the last two axes (``stride`` defaults to the kernel)."""
    return x.avg_pool2d(kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override)


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` axes (mean 0, biased variance 1), then
    scale by ``weight`` and shift by ``bias``."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm over {shape} needs input of shape (..., "
                         f"{', '.join(map(str, shape))}), got {x.shape}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    x = x._float()
    mean = x.mean(axes, keepdim=True)
    out = (x - mean) * (x.var(axes, keepdim=True, correction=0) + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def embedding(index, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (V, D) picked by an integer ``index`` of any shape: (..., D). The
    row ``padding_idx`` gets no gradient."""
    index = weight._operand(index)
    if index.dtype.is_float or index.dtype.name == "bool":
        raise TypeError(f"embedding needs integer indices, not {index.dtype.name}")
    if padding_idx is not None:
        keep = (arange(weight.shape[0], backend=weight.backend) != padding_idx)
        weight = keep.unsqueeze(-1).where(weight, weight.detach())
    return weight[index]


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) (in
    training); the mask comes from Fusion's seeded generator."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must lie in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    from ..core.tensor import rand

    keep = rand(*x.shape, dtype=x.dtype if x.dtype.is_float else None,
                backend=x.backend) >= p
    return x * (keep.cast(x.dtype) * (1.0 / (1.0 - p)))


def attention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
              dropout_p: float = 0.0, scale: float | None = None) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T * scale + mask) V and the attention weights (before dropout); ``mask``
    is added to the scores (-inf where attention is not allowed)."""
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = query.matmul(key.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores + mask
    weights = scores.softmax(-1)
    return dropout(weights, dropout_p).matmul(value), weights


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None) -> Tensor:
    """softmax(Q K^T * scale + mask) V over (..., L, E), (..., S, E), (..., S, Ev): (..., L, Ev).

    ``scale`` defaults to 1 / sqrt(E); ``is_causal`` lets position i attend to positions
    j <= i only; a bool ``attn_mask`` is True where attention is allowed, a float one is added
    to the scores. ``dropout_p`` drops attention weights (from Fusion's seeded generator).

    >>> q = fusion.randn(2, 4, 8)
    >>> scaled_dot_product_attention(q, q, q, is_causal=True).shape
    (2, 4, 8)
    """
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    length, source = query.shape[-2], key.shape[-2]
    if is_causal:
        attn_mask = Tensor(np.tril(np.ones((length, source), dtype=bool)),
                           backend=query.backend)
    mask = None
    if attn_mask is not None:
        attn_mask = query._operand(attn_mask)
        if attn_mask.dtype.name == "bool":
            mask = attn_mask.where(0.0, -math.inf).cast(query._float().dtype)
        else:
            mask = attn_mask
    return attention(query, key, value, mask, dropout_p, scale)[0]
